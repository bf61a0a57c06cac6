//! Process: which app a request goes to, and whether the authorization policy lets it.
//!
//! Routing, in order:
//! 1. host-based: with `apps_domain` configured, a request to `<order-id>.<apps_domain>`
//!    goes to that order's app, whatever its path;
//! 2. the `X-Grid-Order` header names the order;
//! 3. otherwise the caller's only available app.
//!
//! An order that is not the caller's is answered exactly like one that does not exist (404),
//! so nobody learns which orders run here by probing. The caller's own order without an
//! available app is 409 `app_not_available`.
//!
//! The forwarding itself is `proxy`'s; nothing here touches a socket.

use std::sync::Arc;

use grid_policy_sdk::{Decision, RequestMeta};
use serde::{Deserialize, Serialize};

use crate::apps::{AppService, Route};
use crate::error::{Error, Result};
use crate::handoff::HandoffCodes;
use crate::policy::{PolicySet, unix_now};
use crate::proxy::headers::Headers;
use crate::store::{AppStatus, SessionRecord, Store};

/// The header that picks one of several apps.
pub const ORDER_HEADER: &str = "x-grid-order";

/// Request headers the authorization policy sees (lower case). A small fixed set: enough
/// for rules on content type, origin or client, and never a credential.
const POLICY_HEADERS: [&str; 7] = [
    "accept",
    "content-length",
    "content-type",
    "origin",
    "referer",
    "upgrade",
    "user-agent",
];

/// `[process]`: how requests find apps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessConfig {
    /// Serve each app on `<order-id>.<apps_domain>` too (e.g. `apps.example-node.net`).
    /// It must not share a registrable domain with the gateway's own host: an app on a
    /// same-site host could read or overwrite the gateway's cookies. Default none.
    pub apps_domain: Option<String>,
    /// Skip the authorization policy's `authorize-request` on proxied requests. Default
    /// false (every proxied request is asked; it costs a few microseconds).
    pub skip_request_policy: bool,
    /// Let targets with an encoded slash (`%2F`) through, for apps that need one in a path
    /// segment. The policy then sees it still encoded (`/files/a%2Fb`, one segment), while an
    /// app that decodes before routing reads two: write rules for such apps accordingly.
    /// Default false: such a target is refused (400 `ambiguous_path`).
    pub allow_encoded_slash: bool,
    /// Let a GET or HEAD request carry a body (a non-empty `Content-Length` or any
    /// `Transfer-Encoding`). Default false: refused (400 `body_not_allowed`), since an app
    /// that ignores such a body reads it as a request of its own that no policy saw.
    pub allow_get_body: bool,
}

/// True for an order id in its canonical spelling (decimal digits, no leading zero): the only
/// spelling an app's host has, so that one app is never served on two origins.
fn is_canonical_order_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && (id == "0" || !id.starts_with('0'))
}

/// `X-Grid-Order` as the order's canonical id (`03` is order 3, as on every endpoint);
/// borrowed when it already is one, as nearly every request's is.
fn canonical_order_header(raw: &str) -> Result<std::borrow::Cow<'_, str>> {
    if is_canonical_order_id(raw) {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    crate::orders::canonical_order_id(raw).map(std::borrow::Cow::Owned)
}

/// What the router needs of a request; `H` is the header container it came in (hyper's map,
/// or the wire fast path's list).
#[derive(Clone, Debug)]
pub struct RequestView<'a, H = http::HeaderMap> {
    /// Method, upper case.
    pub method: &'a str,
    /// Path as received (normalised before the policy sees it).
    pub path: &'a str,
    /// The Host header (or the URI's authority).
    pub host: Option<&'a str>,
    /// `X-Grid-Order`, if sent.
    pub order_header: Option<&'a str>,
    /// The request's headers, to pick the policy's from (only read when it is asked).
    pub headers: Option<&'a H>,
}

/// Routing and per-request authorization.
#[derive(Clone)]
pub struct ProcessService {
    store: Store,
    apps: AppService,
    policies: Arc<PolicySet>,
    config: ProcessConfig,
    handoffs: Arc<HandoffCodes>,
}

/// A sign-in hand-off to an app's host.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// Open this in the browser: the app's host with a one-time code.
    pub url: String,
    /// Unix seconds the code stops working.
    pub expires_at: u64,
}

impl ProcessService {
    /// The service.
    pub fn new(
        store: Store,
        apps: AppService,
        policies: Arc<PolicySet>,
        config: ProcessConfig,
    ) -> Self {
        ProcessService {
            store,
            apps,
            policies,
            config,
            handoffs: Arc::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// The app `request` goes to, for the signed-in `caller`.
    ///
    /// An app that the store already records as available but the route table does not
    /// have yet (its deploy wrote the store and is about to rebuild the table) gets the
    /// table rebuilt and one more lookup: a client that saw `available` is never told
    /// `app_not_available` after it.
    pub fn route<H>(&self, caller: &SessionRecord, request: &RequestView<'_, H>) -> Result<Route> {
        self.with_fresh_routes(|| self.lookup(caller, request))
    }

    /// Runs `find` against the route table; when it misses an app the store already
    /// records as available, rebuilds the table from the store and runs it once more.
    fn with_fresh_routes(&self, find: impl Fn() -> Result<Route>) -> Result<Route> {
        match find() {
            Err(Error::AppNotAvailable(order_id))
                if self
                    .store
                    .app(&order_id)?
                    .is_some_and(|app| app.status == AppStatus::Available) =>
            {
                self.apps.refresh_routes()?;
                find()
            }
            found => found,
        }
    }

    fn lookup<H>(&self, caller: &SessionRecord, request: &RequestView<'_, H>) -> Result<Route> {
        let wanted = match self.order_from_host(request.host) {
            Some(order_id) => Some(std::borrow::Cow::Borrowed(order_id)),
            None => request
                .order_header
                .map(|raw| canonical_order_header(raw.trim()))
                .transpose()?,
        };
        match wanted {
            Some(order_id) => self.find_route(caller, &order_id),
            None => {
                let mut mine = self.apps.routes().of_user(&caller.address);
                match mine.len() {
                    1 => Ok(mine.remove(0)),
                    0 => Err(self.why_no_app(caller)),
                    n => Err(Error::OrderRequired(n)),
                }
            }
        }
    }

    /// `caller`'s available app of `order_id`, or why there is none.
    fn find_route(&self, caller: &SessionRecord, order_id: &str) -> Result<Route> {
        self.apps
            .routes()
            .find(&caller.address, order_id)
            .ok_or_else(|| self.why_no_route(caller, order_id))
    }

    /// A hand-off URL for `caller`'s available app of `order_id`: its own host, on the
    /// port and scheme the gateway was reached with (`gateway_host`, `https`), with a
    /// one-time code that signs the browser in there.
    pub fn handoff(
        &self,
        caller: &SessionRecord,
        order_id: &str,
        gateway_host: Option<&str>,
        https: bool,
    ) -> Result<Handoff> {
        let domain = self
            .config
            .apps_domain
            .as_deref()
            .ok_or(Error::AppsDomainNotConfigured)?;
        let route = self.with_fresh_routes(|| self.find_route(caller, order_id))?;
        let (code, expires_at) = self.handoffs.issue(&caller.id, &route.order_id, unix_now());
        let port = gateway_host
            .and_then(|host| split_port(host).1)
            .filter(|port| !port.is_empty())
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let scheme = if https { "https" } else { "http" };
        Ok(Handoff {
            url: format!(
                "{scheme}://{}.{domain}{port}/?{}={code}",
                route.order_id,
                crate::handoff::PARAM
            ),
            expires_at,
        })
    }

    /// The session id a hand-off `code` signs in on `host` (an app's own host).
    pub fn redeem_handoff(&self, host: Option<&str>, code: &str) -> Result<String> {
        let order_id = self.order_from_host(host).ok_or(Error::HandoffInvalid)?;
        self.handoffs
            .redeem(code, order_id, unix_now())
            .ok_or(Error::HandoffInvalid)
    }

    /// True when `host` is an app's own (`<order-id>.<apps_domain>`): every path on it,
    /// `/_grid/` included, is the app's.
    pub fn is_app_host(&self, host: Option<&str>) -> bool {
        self.order_from_host(host).is_some()
    }

    /// The order a host names: `<order-id>.<apps_domain>` (port ignored, case-insensitive).
    fn order_from_host<'r>(&self, host: Option<&'r str>) -> Option<&'r str> {
        let domain = self.config.apps_domain.as_deref()?;
        let (host, _port) = split_port(host?);
        let (label, rest) = host.split_once('.')?;
        (rest.eq_ignore_ascii_case(domain) && is_canonical_order_id(label)).then_some(label)
    }

    /// 404 for an order that is not the caller's (or not here), 409 for the caller's own
    /// order whose app is not available.
    fn why_no_route(&self, caller: &SessionRecord, order_id: &str) -> Error {
        match self.store.order(order_id) {
            Ok(Some(order)) if order.order.user == caller.address => {
                Error::AppNotAvailable(order_id.to_owned())
            }
            Ok(_) => Error::NoSuchApp,
            Err(e) => Error::Store(e),
        }
    }

    /// Why a caller without an app has none: 409 when they have a running order here
    /// (deploy to it), 404 when they have none.
    fn why_no_app(&self, caller: &SessionRecord) -> Error {
        let now = unix_now();
        match self.store.orders() {
            Ok(orders) => match orders
                .into_iter()
                .find(|o| o.order.user == caller.address && o.is_running(now))
            {
                Some(order) => Error::AppNotAvailable(order.order.id),
                None => Error::NoSuchApp,
            },
            Err(e) => Error::Store(e),
        }
    }

    /// Refuses what the policy and the app could read differently, before anything else
    /// looks at the request: a standard method spelled otherwise than upper case
    /// ([`check_method`]) and a path no normalisation makes unambiguous ([`check_path`]).
    pub fn check_request(&self, method: &str, path: &str) -> Result<()> {
        check_method(method)?;
        check_path(path, self.config.allow_encoded_slash)
    }

    /// Asks the authorization policy about one request (unless configured off).
    pub async fn authorize<H: Headers>(
        &self,
        caller: &SessionRecord,
        route: &Route,
        request: &RequestView<'_, H>,
    ) -> Result<()> {
        if self.config.skip_request_policy {
            return Ok(());
        }
        let meta = RequestMeta {
            method: request.method.to_owned(),
            path: normalize_path(request.path),
            host: request.host.map(str::to_owned),
            headers: request
                .headers
                .map(|headers| {
                    POLICY_HEADERS
                        .iter()
                        .flat_map(|name| {
                            headers
                                .values(name)
                                .map(|v| ((*name).to_owned(), v.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            caller: Some(caller.address),
            order_id: Some(route.order_id.clone()),
            scopes: caller.scopes.clone().unwrap_or_default(),
        };
        match self.policies.authorize_request(meta).await? {
            Decision::Allow => Ok(()),
            Decision::Deny { reason } => Err(Error::RequestDenied(reason)),
        }
    }
}

/// `host[:port]` split in two; a suffix after the last `:` that is not all digits is part
/// of the host.
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
        _ => (host, None),
    }
}

/// The methods RFC 9110 §9 and RFC 5789 define: an app reads these in upper case
/// whatever was sent (many frameworks upper-case the method), so the policy must too.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Refuses a standard method in any spelling but its own (`trace`, `Get`): a policy
/// comparing with `"TRACE"` must not be side-stepped by case. Extension methods are
/// case-sensitive tokens (RFC 9110 §9.1) and pass as sent.
pub fn check_method(method: &str) -> Result<()> {
    match STANDARD_METHODS
        .iter()
        .find(|standard| standard.eq_ignore_ascii_case(method))
    {
        Some(standard) if *standard != method => Err(Error::NonCanonicalMethod(method.into())),
        _ => Ok(()),
    }
}

/// Refuses a path (without its query) that [`normalize_path`] cannot make the path an app
/// routes on: an encoded `/` (unless `allow_encoded_slash`) or `\`, a raw `\`, a control
/// byte or NUL raw or encoded, and a segment that is a dot segment only once decoded or
/// cut (`%2e%2e`, `.%2e`, `..;x` as Java servers read it, `..%2F` with encoded slashes
/// allowed). Python's http.server, WSGI and most routers decode `%2F` before routing, so
/// `/admin%2Fsecret` is `/admin/secret` to them but one segment to a prefix rule.
pub fn check_path(path: &str, allow_encoded_slash: bool) -> Result<()> {
    let refuse = |why: &str| Err(Error::AmbiguousPath(why.to_owned()));
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\\' {
            return refuse("a backslash");
        }
        if b.is_ascii_control() {
            return refuse("a control byte");
        }
        if b == b'%'
            && let [hi, lo, ..] = bytes[i + 1..]
            && let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo))
        {
            match h << 4 | l {
                b'/' if !allow_encoded_slash => return refuse("an encoded slash"),
                b'\\' => return refuse("an encoded backslash"),
                d if d.is_ascii_control() => return refuse("an encoded control byte"),
                _ => {}
            }
        }
    }
    for segment in path.split('/') {
        if !segment.contains(['%', ';']) {
            // Plain `.` and `..` are resolved by `normalize_path` as apps resolve them.
            continue;
        }
        let decoded = decode_unreserved(segment);
        for piece in decoded.split("%2F") {
            let piece = piece.split(';').next().unwrap_or_default();
            if piece == "." || piece == ".." {
                return refuse("an encoded or parameterised dot segment");
            }
        }
    }
    Ok(())
}

/// The path a policy sees (the WIT's promise): percent-escapes of unreserved characters
/// decoded (`%41` is `A`; reserved ones such as `%2F` stay encoded, since decoding them
/// would change the path's structure), `.` and `..` segments resolved (never above the
/// root), repeated slashes merged. So `/admin`, `//admin`, `/x/../admin` and `/%61dmin` are
/// all `/admin` to a prefix rule.
pub fn normalize_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    out
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let [b'%', hi, lo, ..] = bytes[i..]
            && let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo))
        {
            let b = h << 4 | l;
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b);
            } else {
                // Reserved or non-ASCII: keep the escape, upper-cased (RFC 3986 §6.2.2.1).
                out.extend_from_slice(&[b'%', hi.to_ascii_uppercase(), lo.to_ascii_uppercase()]);
            }
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII bytes were added or replaced, so valid UTF-8 stays valid.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalise_alike() {
        for spelling in [
            "/admin",
            "//admin",
            "/x/../admin",
            "/%61dmin",
            "/./admin",
            "/../admin",
        ] {
            assert_eq!(normalize_path(spelling), "/admin", "{spelling}");
        }
        assert_eq!(normalize_path("/a/b/"), "/a/b/");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a%2fb"), "/a%2Fb", "reserved escapes stay");
        assert_eq!(normalize_path("/%7euser"), "/~user");
        assert_eq!(normalize_path("/bad%zz"), "/bad%zz");
        assert_eq!(normalize_path("/end%4"), "/end%4");
    }
}
