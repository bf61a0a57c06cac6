//! Forwarding one request to an entrance on a pooled client.

use std::error::Error as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::body::{BoxError, ClientBodyError, IdleTimeout, IdleTimeoutError, ProxyBody};
use super::config::ProxyConfig;
use super::error::ProxyError;
use super::headers::{self, Origin};
use super::metrics::ProxyMetrics;
use super::pool::{Pool, SendError};
use super::tunnel;

/// An app's entrance: where its traffic goes (`http://<service>.<namespace>.svc:<port>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    /// `Host` for requests to it, made once.
    host: HeaderValue,
}

/// An entrance URL the proxy cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an entrance: expected http://host:port")]
pub struct UpstreamParseError(String);

impl std::str::FromStr for Upstream {
    type Err = UpstreamParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UpstreamParseError(s.to_owned());
        let uri: Uri = s.parse().map_err(|_| err())?;
        // Entrances are in-cluster plain HTTP; TLS to the app is the app's business.
        if uri.scheme() != Some(&Scheme::HTTP)
            || uri.path_and_query().is_some_and(|p| p.as_str() != "/")
        {
            return Err(err());
        }
        let authority = uri.authority().cloned().ok_or_else(err)?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| err())?;
        Ok(Upstream { authority, host })
    }
}

impl Upstream {
    /// host:port.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}

/// The client side of a request, as the gateway's listener saw it.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// `true` when the listener is TLS.
    pub https: bool,
}

/// Per-request choices made by the layers before the proxy.
#[derive(Clone, Debug, Default)]
pub struct ForwardOptions {
    /// Cookies to remove (the gateway's session cookie under its names).
    pub strip_cookies: &'static [&'static str],
    /// Remove `Authorization` (the request authenticated with the gateway's bearer token).
    pub strip_authorization: bool,
}

/// The proxy: a pooled HTTP/1.1 client with keep-alive to entrances. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    pool: Pool,
    config: ProxyConfig,
    metrics: ProxyMetrics,
}

impl Forwarder {
    /// A forwarder with these settings and its own metrics.
    pub fn new(config: ProxyConfig) -> Self {
        Self::with_metrics(config, ProxyMetrics::default())
    }

    /// A forwarder recording into `metrics` (shared with the gateway's registry).
    pub fn with_metrics(config: ProxyConfig, metrics: ProxyMetrics) -> Self {
        // Idle connections are closed after 90 s, under the 2 minutes after which servers
        // commonly drop an idle keep-alive connection themselves.
        let pool = Pool::new(
            config.pool_max_idle_per_host,
            std::time::Duration::from_secs(90),
            config.connect_timeout,
        );
        Forwarder {
            pool,
            config,
            metrics,
        }
    }

    /// The metrics this forwarder records into.
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }

    /// The settings in force.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Forwards `request` to `upstream` and returns the app's response, bodies streamed
    /// both ways. An upgrade answered with 101 is tunnelled on its own task. Records the
    /// status class (the error's status on failure) in the metrics.
    pub async fn forward<B>(
        &self,
        request: Request<B>,
        upstream: &Upstream,
        client: &ClientInfo,
        options: &ForwardOptions,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        self.metrics.served_by(super::metrics::ServedBy::Hyper);
        let result = self.forward_inner(request, upstream, client, options).await;
        self.metrics.count(match &result {
            Ok(response) => response.status(),
            Err(e) => e.status(),
        });
        result
    }

    async fn forward_inner<B>(
        &self,
        mut request: Request<B>,
        upstream: &Upstream,
        client: &ClientInfo,
        options: &ForwardOptions,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let headers = request.headers();
        if headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH) {
            return Err(ProxyError::AmbiguousLength);
        }
        let limit = self.config.max_request_body_bytes;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if limit > 0 && declared.is_some_and(|len| len > limit) {
            return Err(ProxyError::BodyTooLarge { limit });
        }
        let upgrade = headers::upgrade_protocol(headers);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));

        let (mut parts, body) = request.into_parts();
        // Entrances get origin-form (`/path?query`); the connection says where.
        if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
            parts.uri = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"))
                .into();
        }
        let h = &mut parts.headers;
        headers::remove_hop_by_hop(h);
        if let Some(protocol) = upgrade.clone() {
            headers::set_upgrade(h, protocol);
        }
        headers::strip_cookies(h, options.strip_cookies);
        if options.strip_authorization {
            headers::strip_authorization(h);
        }
        headers::set_forwarding(
            h,
            &headers::Origin {
                peer: client.peer.ip(),
                proto: if client.https { "https" } else { "http" },
                host: host.as_deref(),
                trusted: self.config.trusted_proxies.contains(&client.peer.ip()),
                forwarded_header: self.config.forwarded_header,
            } as &Origin<'_>,
        );
        headers::add_via(h, parts.version);
        h.insert(HOST, upstream.host.clone());
        // The client talks HTTP/1.1 or 2 to us; entrances get HTTP/1.1.
        parts.version = http::Version::HTTP_11;

        let limit = if limit == 0 {
            usize::MAX
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        };
        // The client's own body errors are marked as such: they are the client's 400, not
        // the app's 502.
        let body = body.map_err(|e| -> BoxError { Box::new(ClientBodyError(e.into())) });
        let body = IdleTimeout::new(Limited::new(body, limit), self.config.body_idle_timeout)
            .boxed_unsync();
        let started = std::time::Instant::now();
        self.metrics.in_flight.inc();
        let sent = tokio::time::timeout(
            self.config.response_header_timeout,
            self.pool
                .send(&upstream.authority, Request::from_parts(parts, body)),
        )
        .await;
        self.metrics.in_flight.dec();
        self.metrics
            .upstream_duration
            .observe(started.elapsed().as_secs_f64());
        let mut response = match sent {
            Err(_elapsed) => return Err(ProxyError::UpstreamTimeout),
            Ok(Err(e)) => return Err(self.classify(e)),
            Ok(Ok(response)) => response,
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let (Some(client_upgrade), Some(_)) = (client_upgrade, upgrade) {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                let (idle, open) = (
                    self.config.tunnel_idle_timeout,
                    self.metrics.tunnels_open.clone(),
                );
                tokio::spawn(async move {
                    open.inc();
                    tunnel::run(client_upgrade, upstream_upgrade, idle).await;
                    open.dec();
                });
                let (mut parts, _) = response.into_parts();
                self.drop_gateway_cookies(&mut parts.headers);
                return Ok(Response::from_parts(parts, super::body::empty()));
            }
            return Err(ProxyError::UpstreamBadResponse(
                "101 Switching Protocols without an upgrade request".into(),
            ));
        }
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        self.drop_gateway_cookies(&mut parts.headers);
        headers::add_via(&mut parts.headers, parts.version);
        let body = IdleTimeout::new(body, self.config.body_idle_timeout).boxed_unsync();
        Ok(Response::from_parts(parts, body))
    }

    /// Drops the app's `Set-Cookie`s of the gateway's session cookie, counted.
    pub(super) fn drop_gateway_cookies(&self, response: &mut impl headers::Headers) {
        let dropped = headers::drop_gateway_set_cookies(response);
        if dropped > 0 {
            self.metrics.app_cookies_dropped.inc_by(dropped as u64);
        }
    }

    /// Names a failed exchange: our own body limits first (they surface as body errors of
    /// the upstream request), then connect failures and timeouts, then anything else.
    pub(crate) fn classify(&self, error: SendError) -> ProxyError {
        let error = match error {
            SendError::ConnectTimeout => return ProxyError::UpstreamTimeout,
            SendError::Connect(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return ProxyError::UpstreamTimeout;
            }
            SendError::Connect(e) => return ProxyError::UpstreamUnreachable(chain(&e)),
            SendError::Exchange(e) => e,
        };
        let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
        while let Some(e) = source {
            if e.is::<LengthLimitError>() {
                return ProxyError::BodyTooLarge {
                    limit: self.config.max_request_body_bytes,
                };
            }
            if e.is::<IdleTimeoutError>() {
                return ProxyError::ClientBodyTimeout;
            }
            if e.is::<ClientBodyError>() {
                return ProxyError::BadRequestBody;
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return ProxyError::UpstreamTimeout;
            }
            source = e.source();
        }
        ProxyError::UpstreamBadResponse(chain(&error))
    }
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
