//! Fetching a user's manifest URL without giving the user a way into the provider's network.
//!
//! The rules (README: "Fetching manifests"):
//! - `http` and `https` only (`http` can be switched off), no user info in the URL;
//! - every address is checked in the connector, on the address actually connected to
//!   ([`address::is_refused`] plus the operator's `allow_cidrs`/`deny_cidrs`), so DNS
//!   rebinding and IP-literal hosts get the same check as everything else;
//! - no proxy (the environment's proxy variables are never read);
//! - redirects are followed by hand, at most `max_redirects`, each target checked again;
//! - the body is capped at `max_bytes` while it streams, and no content coding is accepted,
//!   so nothing is ever decompressed;
//! - connect and total timeouts.
//!
//! Every failure is a [`FetchError`] with a stable [`code`](FetchError::code) and a
//! suggested HTTP [`status`](FetchError::status_hint) for the host's API.

pub mod address;
mod connector;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, HeaderMap, HeaderValue, LOCATION, TRANSFER_ENCODING,
    USER_AGENT,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use address::AddressPolicy;
pub use address::{Embedding, Reason, is_refused};
use connector::{ConnectFailure, GuardedConnector};

/// The `User-Agent` of every manifest request, so a user's server logs show who asked.
pub const USER_AGENT_VALUE: &str = "grid-gateway";

/// The longest manifest URL accepted. Pre-signed object-store URLs run to a few hundred
/// characters; this leaves room for those while keeping logs and errors bounded.
pub const MAX_URL_LEN: usize = 4096;

/// How manifests are fetched. Deserialised from the host's configuration; every key is
/// optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// The largest body accepted, in bytes. Default 1 MiB: a manifest of a few dozen
    /// objects is tens of KB, and the manifest checks parse the whole body in memory.
    pub max_bytes: u64,
    /// How many redirects are followed. Default 5: enough for a moved repository behind a
    /// URL shortener, few enough that a redirect loop ends quickly.
    pub max_redirects: u32,
    /// Bound on resolving the host, and on each TCP connect attempt, in ms. Default 5000: a
    /// reachable server answers a SYN well within that from anywhere.
    pub connect_timeout_ms: u64,
    /// Bound on the whole fetch (every redirect, TLS handshake and the body), in ms. Default
    /// 20000: a 1 MiB body at a slow 100 KB/s, plus the handshakes; the user's deploy
    /// request waits for it, so it is not much longer.
    pub total_timeout_ms: u64,
    /// Whether plain `http://` URLs (and redirects to them) are fetched. Default `true`: the
    /// address checks are the same for both schemes, so `http` opens nothing on the
    /// provider's side, and the body is the user's own input that the manifest checks vet
    /// field by field either way. What `https` adds protects the user (a manifest altered
    /// in transit); operators who want that for every user set `false`. Local development
    /// and tests serve manifests over plain `http`.
    pub allow_http: bool,
    /// Networks fetched from although the built-in rules refuse them, e.g. `127.0.0.1/32`
    /// for a dev node or tests that serve manifests from loopback, or an internal manifest
    /// server. Lifts every built-in refusal except the unspecified address, 0.0.0.0/8,
    /// multicast and broadcast. Never lifts `deny_cidrs`. Default empty.
    pub allow_cidrs: Vec<IpNet>,
    /// Networks always refused: the host fills in the cluster's pod CIDR, service CIDR and
    /// API server address, which may be ordinary public addresses. Also matched against the
    /// IPv4 address that an IPv4-mapped, NAT64 or 6to4 address carries. Wins over
    /// `allow_cidrs`. Default empty.
    pub deny_cidrs: Vec<IpNet>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_bytes: 1024 * 1024,
            max_redirects: 5,
            connect_timeout_ms: 5_000,
            total_timeout_ms: 20_000,
            allow_http: true,
            allow_cidrs: Vec::new(),
            deny_cidrs: Vec::new(),
        }
    }
}

/// A fetched manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The body, at most `max_bytes`, exactly as sent (never decoded).
    pub bytes: Bytes,
    /// The URL the body came from, after redirects.
    pub final_url: Url,
}

/// Which bound a [`FetchError::Timeout`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Resolving the host name (`connect_timeout_ms`).
    Resolve,
    /// A TCP connect (`connect_timeout_ms`).
    Connect,
    /// The whole fetch (`total_timeout_ms`).
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Resolve => "resolving the host",
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Total => "fetching",
        })
    }
}

/// Why a manifest was not fetched. [`code`](Self::code) is stable for clients to match on;
/// the message is for people and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The [`FetchConfig`] cannot be used (a zero limit or timeout, or TLS setup failed).
    #[error("manifest fetch configuration: {0}")]
    Config(String),
    /// Not a URL, or one the gateway does not fetch (no host, user info, too long).
    #[error("manifest URL is invalid: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A scheme other than `https`, or `http` while `allow_http` is off.
    #[error("manifest URL scheme {scheme:?} is not fetched (only {allowed})")]
    Scheme {
        /// The scheme of the URL.
        scheme: String,
        /// The schemes that are fetched, for the message.
        allowed: &'static str,
    },
    /// The host is, or resolves only to, an address the rules refuse.
    #[error("manifest address refused: {addr} is {reason}{}", via(.host, .addr, .url))]
    AddressRefused {
        /// The URL being fetched (a redirect target when a redirect led there).
        url: String,
        /// The host as written in that URL.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Why it is refused.
        reason: Reason,
    },
    /// A redirect's `Location` is not a URL the gateway fetches.
    #[error("manifest redirect to {location:?} refused: {reason}")]
    RedirectRefused {
        /// The `Location` header as sent (lossily decoded).
        location: String,
        /// Why it is refused.
        reason: String,
    },
    /// More than `max_redirects` redirects.
    #[error("manifest URL redirected more than {max} times")]
    TooManyRedirects {
        /// The configured `max_redirects`.
        max: u32,
    },
    /// The host name does not resolve.
    #[error("manifest host {host} does not resolve: {detail}")]
    Unresolvable {
        /// The host name.
        host: String,
        /// The resolver's error.
        detail: String,
    },
    /// No TCP connection could be made to an allowed address of the host.
    #[error("cannot connect to manifest host {host}: {detail}")]
    ConnectFailed {
        /// The host as written in the URL.
        host: String,
        /// The last connect error.
        detail: String,
    },
    /// The TLS handshake failed (certificate not valid for the host, not trusted, or the
    /// server does not speak TLS).
    #[error("TLS with manifest host {host} failed: {detail}")]
    Tls {
        /// The host as written in the URL.
        host: String,
        /// The TLS error.
        detail: String,
    },
    /// A bound on time was hit.
    #[error("manifest fetch timed out {phase} (after {after_ms} ms)")]
    Timeout {
        /// Which bound.
        phase: TimeoutPhase,
        /// The bound, in ms.
        after_ms: u64,
    },
    /// The final response's status is not 2xx.
    #[error("manifest server answered {status} for {url}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The URL that answered it.
        url: String,
    },
    /// The body is larger than `max_bytes`; `declared` is the size the server announced
    /// when it announced one above the limit (then nothing was read).
    #[error("manifest is larger than {limit} bytes{}", declared.map(|n| format!(" (server says {n})")).unwrap_or_default())]
    TooLarge {
        /// The configured `max_bytes`.
        limit: u64,
        /// The announced length, when it was the reason.
        declared: Option<u64>,
    },
    /// The body has a content coding (or a transfer coding other than chunked); the gateway
    /// never decompresses, since a small compressed body can expand without bound.
    #[error("manifest is sent with encoding {encoding:?}; only uncompressed manifests are fetched")]
    Encoded {
        /// The `Content-Encoding` or `Transfer-Encoding` value.
        encoding: String,
    },
    /// The server broke the connection or HTTP itself.
    #[error("manifest server failed: {detail}")]
    Upstream {
        /// What went wrong.
        detail: String,
    },
}

fn via(host: &str, addr: &IpAddr, url: &str) -> String {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
        .is_ok();
    if literal {
        format!(" (fetching {url})")
    } else {
        format!(" ({host} resolves to {addr}; fetching {url})")
    }
}

impl FetchError {
    /// A stable snake_case code per kind of failure, for API responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Config(_) => "manifest_fetch_config",
            FetchError::InvalidUrl { .. } => "manifest_url_invalid",
            FetchError::Scheme { .. } => "manifest_url_scheme",
            FetchError::AddressRefused { .. } => "manifest_address_refused",
            FetchError::RedirectRefused { .. } => "manifest_redirect_refused",
            FetchError::TooManyRedirects { .. } => "manifest_too_many_redirects",
            FetchError::Unresolvable { .. } => "manifest_unresolvable",
            FetchError::ConnectFailed { .. } => "manifest_connect_failed",
            FetchError::Tls { .. } => "manifest_tls_failed",
            FetchError::Timeout { .. } => "manifest_timeout",
            FetchError::HttpStatus { .. } => "manifest_http_status",
            FetchError::TooLarge { .. } => "manifest_too_large",
            FetchError::Encoded { .. } => "manifest_encoded",
            FetchError::Upstream { .. } => "manifest_upstream_failed",
        }
    }

    /// The HTTP status the host's API should answer with.
    ///
    /// - 422: the URL the user gave cannot be used as it is: refused by the rules (scheme,
    ///   address, redirects, size, encoding) or naming a host that does not resolve. The user
    ///   has to change the URL or what it serves.
    /// - 502: the user's server failed (no connection, TLS, a non-2xx status, broken HTTP).
    /// - 504: the user's server was too slow.
    /// - 500: the gateway's own configuration is broken (never the user's doing).
    pub fn status_hint(&self) -> u16 {
        match self {
            FetchError::Config(_) => 500,
            FetchError::InvalidUrl { .. }
            | FetchError::Scheme { .. }
            | FetchError::AddressRefused { .. }
            | FetchError::RedirectRefused { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::Unresolvable { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Encoded { .. } => 422,
            FetchError::ConnectFailed { .. }
            | FetchError::Tls { .. }
            | FetchError::HttpStatus { .. }
            | FetchError::Upstream { .. } => 502,
            FetchError::Timeout { .. } => 504,
        }
    }

    /// Whether the user's input is at fault ([`status_hint`](Self::status_hint) is 4xx),
    /// as opposed to their server, the network, or the gateway.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status_hint())
    }
}

type HttpClient = Client<HttpsConnector<GuardedConnector>, Empty<Bytes>>;

/// Fetches manifest URLs under a [`FetchConfig`]. Build it once and clone it: clones share
/// the client and the configuration.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    config: FetchConfig,
    client: HttpClient,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher for `config`; fails on a zero `max_bytes` or timeout, or when TLS cannot be
    /// set up.
    pub fn new(config: FetchConfig) -> Result<Fetcher, FetchError> {
        if config.max_bytes == 0 {
            return Err(FetchError::Config("max_bytes must be at least 1".into()));
        }
        if usize::try_from(config.max_bytes).is_err() {
            return Err(FetchError::Config(
                "max_bytes does not fit in memory".into(),
            ));
        }
        if config.connect_timeout_ms == 0 || config.total_timeout_ms == 0 {
            return Err(FetchError::Config(
                "connect_timeout_ms and total_timeout_ms must be at least 1".into(),
            ));
        }
        let connector = GuardedConnector {
            policy: Arc::new(AddressPolicy {
                allow: config.allow_cidrs.clone(),
                deny: config.deny_cidrs.clone(),
            }),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
        };
        // The provider is named explicitly: if another crate in the process enables a second
        // rustls provider, the implicit default would panic at first use.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| FetchError::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        // No pooling: fetches are rare, and an idle socket to a user's server would only sit
        // in the gateway. Every request gets a fresh, freshly checked connection.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        Ok(Fetcher {
            inner: Arc::new(Inner { config, client }),
        })
    }

    /// The configuration this fetcher was built with.
    pub fn config(&self) -> &FetchConfig {
        &self.inner.config
    }

    /// Fetches `url`, following redirects, within every bound of the configuration.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let url = self.parse_url(url)?;
        let total = self.inner.config.total_timeout_ms;
        match tokio::time::timeout(Duration::from_millis(total), self.fetch_from(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                phase: TimeoutPhase::Total,
                after_ms: total,
            }),
        }
    }

    fn parse_url(&self, input: &str) -> Result<Url, FetchError> {
        if input.len() > MAX_URL_LEN {
            return Err(FetchError::InvalidUrl {
                reason: format!("longer than {MAX_URL_LEN} characters"),
            });
        }
        let url = Url::parse(input).map_err(|e| FetchError::InvalidUrl {
            reason: e.to_string(),
        })?;
        self.check_url(url)
    }

    fn check_url(&self, mut url: Url) -> Result<Url, FetchError> {
        let allow_http = self.inner.config.allow_http;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            other => {
                return Err(FetchError::Scheme {
                    scheme: other.to_owned(),
                    allowed: if allow_http {
                        "http and https"
                    } else {
                        "https"
                    },
                });
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FetchError::InvalidUrl {
                reason: "no host".into(),
            });
        }
        // The gateway sends no credentials, and a URL with them would print them in errors.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::InvalidUrl {
                reason: "user info (user:password@) is not accepted".into(),
            });
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(FetchError::InvalidUrl {
                reason: format!("longer than {MAX_URL_LEN} characters"),
            });
        }
        // Never sent to a server; dropping it keeps final_url what was requested.
        url.set_fragment(None);
        Ok(url)
    }

    async fn fetch_from(&self, mut url: Url) -> Result<Fetched, FetchError> {
        let config = &self.inner.config;
        let mut redirects = 0u32;
        loop {
            let response = self.get(&url).await?;
            let status = response.status();
            // A 3xx without a Location is a final answer like any other non-2xx.
            let location = is_followed_redirect(status)
                .then(|| response.headers().get(LOCATION))
                .flatten();
            if let Some(location) = location {
                if redirects >= config.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        max: config.max_redirects,
                    });
                }
                redirects += 1;
                let next = self.redirect_target(&url, location)?;
                tracing::debug!(from = %url, to = %next, "manifest fetch: following redirect");
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::HttpStatus {
                    status: status.as_u16(),
                    url: url.into(),
                });
            }
            refuse_codings(response.headers())?;
            let bytes = read_capped(response.into_body(), config.max_bytes).await?;
            return Ok(Fetched {
                bytes,
                final_url: url,
            });
        }
    }

    fn redirect_target(&self, current: &Url, location: &HeaderValue) -> Result<Url, FetchError> {
        let shown = String::from_utf8_lossy(location.as_bytes()).into_owned();
        let refuse = |reason: String| FetchError::RedirectRefused {
            location: shown.clone(),
            reason,
        };
        let text = location
            .to_str()
            .map_err(|_| refuse("not visible ASCII".into()))?;
        if text.len() > MAX_URL_LEN {
            return Err(refuse(format!("longer than {MAX_URL_LEN} characters")));
        }
        let next = current
            .join(text)
            .map_err(|e| refuse(format!("not a URL: {e}")))?;
        self.check_url(next).map_err(|e| refuse(e.to_string()))
    }

    async fn get(&self, url: &Url) -> Result<hyper::Response<Incoming>, FetchError> {
        let uri: Uri = url.as_str().parse().map_err(|e| FetchError::InvalidUrl {
            reason: format!("not usable as a request target: {e}"),
        })?;
        let request = Request::get(uri)
            .header(USER_AGENT, USER_AGENT_VALUE)
            // Without the header any coding is acceptable (RFC 9110 12.5.3); naming identity
            // asks for the plain body that is the only one accepted.
            .header(ACCEPT_ENCODING, "identity")
            .body(Empty::new())
            .map_err(|e| FetchError::InvalidUrl {
                reason: format!("not usable as a request target: {e}"),
            })?;
        self.inner
            .client
            .request(request)
            .await
            .map_err(|e| client_error(&e, url))
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Refuses any content coding and any transfer coding hyper does not undo itself (it undoes
/// only chunked), so the body is always the manifest's own bytes.
fn refuse_codings(headers: &HeaderMap) -> Result<(), FetchError> {
    let allowed: [(&http::HeaderName, &[&str]); 2] = [
        (&CONTENT_ENCODING, &["identity"]),
        (&TRANSFER_ENCODING, &["identity", "chunked"]),
    ];
    for (name, ok) in allowed {
        for value in headers.get_all(name) {
            let text = String::from_utf8_lossy(value.as_bytes());
            let coded = text.split(',').map(str::trim).any(|token| {
                !token.is_empty() && !ok.iter().any(|ok| token.eq_ignore_ascii_case(ok))
            });
            if coded {
                return Err(FetchError::Encoded {
                    encoding: text.into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Reads at most `limit` bytes of `body`; the frame that would go past the limit is refused
/// before it is appended, and the body is dropped (closing the connection) unread.
async fn read_capped(mut body: Incoming, limit: u64) -> Result<Bytes, FetchError> {
    // hyper validated Content-Length; its lower bound is that length, or 0 without one.
    let declared = body.size_hint().lower();
    if declared > limit {
        return Err(FetchError::TooLarge {
            limit,
            declared: Some(declared),
        });
    }
    let too_large = FetchError::TooLarge {
        limit,
        declared: None,
    };
    // `Fetcher::new` checked that the limit fits a usize.
    let limit = usize::try_from(limit).map_err(|_| too_large.clone())?;
    let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Upstream {
            detail: format!("reading the body: {}", chain(&e)),
        })?;
        let Ok(data) = frame.into_data() else {
            // Trailers carry nothing the manifest needs.
            continue;
        };
        if data.len() > limit - buf.len() {
            return Err(too_large);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Finds what went wrong inside the client's error: the connector's own verdict, a TLS
/// error, or else whatever hyper says.
fn client_error(err: &hyper_util::client::legacy::Error, url: &Url) -> FetchError {
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(failure) = e.downcast_ref::<ConnectFailure>() {
            return from_connect_failure(failure.clone(), url);
        }
        // io::Error's `source` skips the error it wraps, and TLS errors come wrapped twice.
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(io_err) = io {
            let inner = io_err.get_ref();
            if let Some(tls) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return FetchError::Tls {
                    host,
                    detail: tls.to_string(),
                };
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        current = e.source();
    }
    if err.is_connect() {
        FetchError::ConnectFailed {
            host,
            detail: chain(err),
        }
    } else {
        FetchError::Upstream { detail: chain(err) }
    }
}

fn from_connect_failure(failure: ConnectFailure, url: &Url) -> FetchError {
    match failure {
        ConnectFailure::Refused { host, addr, reason } => FetchError::AddressRefused {
            url: url.to_string(),
            host,
            addr,
            reason,
        },
        ConnectFailure::Unresolvable { host, detail } => FetchError::Unresolvable { host, detail },
        ConnectFailure::Timeout { phase, after_ms } => FetchError::Timeout { phase, after_ms },
        ConnectFailure::Failed { host, detail } => FetchError::ConnectFailed { host, detail },
    }
}

/// An error and its sources on one line.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let next = e.to_string();
        // Wrappers often repeat their source's message.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetcher_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Fetcher>();
    }

    #[test]
    fn config_defaults_and_keys() {
        let parsed: FetchConfig = serde_json::from_str("{}").expect("empty config");
        assert_eq!(parsed, FetchConfig::default());
        assert_eq!(parsed.max_bytes, 1 << 20);
        assert_eq!(parsed.max_redirects, 5);
        assert_eq!(parsed.connect_timeout_ms, 5000);
        assert_eq!(parsed.total_timeout_ms, 20000);
        assert!(parsed.allow_http);
        assert!(parsed.allow_cidrs.is_empty() && parsed.deny_cidrs.is_empty());

        let parsed: FetchConfig = serde_json::from_str(
            r#"{"max_bytes": 10, "allow_cidrs": ["127.0.0.1/32"], "deny_cidrs": ["10.96.0.0/12", "fd00::/8"], "allow_http": false}"#,
        )
        .expect("config");
        assert_eq!(parsed.max_bytes, 10);
        assert_eq!(parsed.allow_cidrs.len(), 1);
        assert_eq!(parsed.deny_cidrs.len(), 2);
        assert!(!parsed.allow_http);

        let again: FetchConfig =
            serde_json::from_value(serde_json::to_value(&parsed).expect("serialise"))
                .expect("round trip");
        assert_eq!(again, parsed);

        assert!(serde_json::from_str::<FetchConfig>(r#"{"max_size": 10}"#).is_err());
        assert!(serde_json::from_str::<FetchConfig>(r#"{"allow_cidrs": ["localhost"]}"#).is_err());
    }

    #[test]
    fn unusable_configs_are_refused() {
        for config in [
            FetchConfig {
                max_bytes: 0,
                ..FetchConfig::default()
            },
            FetchConfig {
                total_timeout_ms: 0,
                ..FetchConfig::default()
            },
            FetchConfig {
                connect_timeout_ms: 0,
                ..FetchConfig::default()
            },
        ] {
            let err = Fetcher::new(config).expect_err("refused");
            assert_eq!(err.code(), "manifest_fetch_config");
            assert_eq!(err.status_hint(), 500);
        }
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let fetcher = Fetcher::new(FetchConfig::default()).expect("fetcher");
        let code = |s: &str| fetcher.parse_url(s).map_err(|e| e.code());
        assert_eq!(code("not a url"), Err("manifest_url_invalid"));
        assert_eq!(code("ftp://example.com/m.yaml"), Err("manifest_url_scheme"));
        assert_eq!(code("file:///etc/passwd"), Err("manifest_url_scheme"));
        assert_eq!(code("gopher://example.com/"), Err("manifest_url_scheme"));
        assert_eq!(
            code("http://user:pw@example.com/"),
            Err("manifest_url_invalid")
        );
        assert_eq!(
            code("http://user@example.com/"),
            Err("manifest_url_invalid")
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(code(&long), Err("manifest_url_invalid"));
        let ok = fetcher
            .parse_url("HTTPS://Example.COM/app.yaml#frag")
            .expect("valid");
        assert_eq!(ok.as_str(), "https://example.com/app.yaml");
        // WHATWG parsing turns odd IPv4 spellings into the address that would be dialled.
        let odd = fetcher.parse_url("http://0x7f.1/").expect("valid");
        assert_eq!(odd.host_str(), Some("127.0.0.1"));

        let https_only = Fetcher::new(FetchConfig {
            allow_http: false,
            ..FetchConfig::default()
        })
        .expect("fetcher");
        let err = https_only
            .parse_url("http://example.com/")
            .expect_err("http off");
        assert_eq!(err.code(), "manifest_url_scheme");
        assert!(https_only.parse_url("https://example.com/").is_ok());
    }

    #[test]
    fn redirect_targets_are_checked_like_urls() {
        let fetcher = Fetcher::new(FetchConfig::default()).expect("fetcher");
        let base = Url::parse("http://example.com/a/b.yaml").expect("url");
        let target = |loc: &'static str| {
            fetcher
                .redirect_target(&base, &HeaderValue::from_static(loc))
                .map(|u| u.to_string())
                .map_err(|e| e.code())
        };
        assert_eq!(
            target("c.yaml").as_deref(),
            Ok("http://example.com/a/c.yaml")
        );
        assert_eq!(target("/x").as_deref(), Ok("http://example.com/x"));
        assert_eq!(
            target("https://other.example/y").as_deref(),
            Ok("https://other.example/y")
        );
        assert_eq!(
            target("ftp://example.com/"),
            Err("manifest_redirect_refused")
        );
        assert_eq!(
            target("file:///etc/passwd"),
            Err("manifest_redirect_refused")
        );
        assert_eq!(
            target("http://u:p@example.com/"),
            Err("manifest_redirect_refused")
        );
        assert_eq!(target("http://[::1"), Err("manifest_redirect_refused"));
    }

    #[test]
    fn codings_other_than_identity_are_refused() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.append(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(refuse_codings(&headers(&[])).is_ok());
        assert!(refuse_codings(&headers(&[("content-encoding", "identity")])).is_ok());
        assert!(refuse_codings(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        for bad in [
            ("content-encoding", "gzip"),
            ("content-encoding", "identity, br"),
            ("content-encoding", "deflate"),
            ("transfer-encoding", "gzip, chunked"),
        ] {
            let err = refuse_codings(&headers(&[bad])).expect_err("coded");
            assert_eq!(err.code(), "manifest_encoded", "{bad:?}");
        }
    }

    #[test]
    fn codes_and_statuses() {
        let cases: Vec<(FetchError, &str, u16)> = vec![
            (
                FetchError::InvalidUrl { reason: "x".into() },
                "manifest_url_invalid",
                422,
            ),
            (
                FetchError::AddressRefused {
                    url: "http://169.254.169.254/".into(),
                    host: "169.254.169.254".into(),
                    addr: "169.254.169.254".parse().expect("ip"),
                    reason: Reason::CloudMetadata,
                },
                "manifest_address_refused",
                422,
            ),
            (
                FetchError::TooLarge {
                    limit: 1,
                    declared: None,
                },
                "manifest_too_large",
                422,
            ),
            (
                FetchError::HttpStatus {
                    status: 404,
                    url: "http://example.com/".into(),
                },
                "manifest_http_status",
                502,
            ),
            (
                FetchError::Timeout {
                    phase: TimeoutPhase::Total,
                    after_ms: 1,
                },
                "manifest_timeout",
                504,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.status_hint(), status, "{code}");
            assert_eq!(err.is_client_error(), status < 500, "{code}");
        }
        let refused = FetchError::AddressRefused {
            url: "http://169.254.169.254/".into(),
            host: "169.254.169.254".into(),
            addr: "169.254.169.254".parse().expect("ip"),
            reason: Reason::CloudMetadata,
        };
        assert!(
            refused
                .to_string()
                .contains("169.254.169.254 is link-local (cloud metadata)"),
            "{refused}"
        );
    }
}
