//! Admission: what a request for an app (anything outside `/_grid/` and `/greet`) goes
//! through before it is forwarded, on either request path — the wire fast path
//! ([`crate::wire`]) and hyper's path ([`hyper_path`], for what the fast path hands over).
//!
//! The checks are written once here and called by both: the host a request names
//! ([`settle_host`], [`require_host`]; the fast path's parser applies the same rules), a
//! body where none belongs ([`refuses_body`]), a sign-in hand-off ([`handoff_code`]), and
//! [`admit`]: the method and path, the session, the route, the authorization policy. Then
//! what is stripped on the way ([`strip_gateway_bearers`], [`forward_options`]). Whatever
//! refuses a request answers with the API's JSON error body. `crate::http` is the API's
//! alone; it dispatches the rest here.

pub mod hyper_path;

use crate::apps::Route;
use crate::auth::cookie_name;
use crate::auth::credential::{Credential, session_credential};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::handoff;
use crate::policy::unix_now;
use crate::process::{ORDER_HEADER, RequestView};
use crate::proxy::ForwardOptions;
use crate::proxy::headers::Headers;

use http::header;

/// The gateway's session cookie under both names: a node switching `session.secure` must
/// not leak the other one to apps.
const SESSION_COOKIES: &[&str] = &[cookie_name(true), cookie_name(false)];

/// The hand-off code of a request that redeems one: a `grid_handoff` query parameter on an
/// app's own host.
pub(crate) fn handoff_code<'q>(
    gw: &Gateway,
    query: Option<&'q str>,
    host: Option<&str>,
) -> Option<&'q str> {
    query
        .and_then(handoff::code_in)
        .filter(|_| gw.process.is_app_host(host))
}

/// Whether a `method` request with a body (`has_body`) is refused: GET and HEAD, unless
/// `process.allow_get_body`. An app that ignores a GET body reads it as a request of its
/// own, one no policy saw.
pub(crate) fn refuses_body(gw: &Gateway, method: &str, has_body: bool) -> bool {
    has_body && matches!(method, "GET" | "HEAD") && !gw.process.config().allow_get_body
}

/// Settles which host a request on hyper's path names, before anything routes on it:
/// two `Host` fields and a `Host` that is no `host[:port]` are refused (RFC 9112 §3.2;
/// [`require_host`] refuses HTTP/1.1 without one off a socket), and an absolute-form
/// target's (or HTTP/2's `:authority`) authority replaces the `Host` field (RFC 9112
/// §3.2.2), so that routing, the policy and the app all read the one host.
pub(crate) fn settle_host<B>(request: &mut http::Request<B>) -> Result<(), Error> {
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(Error::DuplicateHost);
    }
    if let Some(value) = request.headers().get(header::HOST)
        && !valid_host(value.as_bytes())
    {
        return Err(Error::BadHost("the Host field is not a host and port"));
    }
    if let Some(authority) = request.uri().authority() {
        // Never a userinfo (`user@`): the host and port alone.
        let host = match authority.port() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        };
        let value = http::HeaderValue::from_str(&host)
            .map_err(|_| Error::BadRequest("the request's authority is not a valid host".into()))?;
        request.headers_mut().insert(header::HOST, value);
    }
    Ok(())
}

/// Refuses an HTTP/1.1 request read off a socket without a `Host` field (RFC 9112 §3.2),
/// absolute form included. (HTTP/2 names its authority otherwise, HTTP/1.0 may omit it, and
/// requests built in process for [`crate::http::router`] have no wire to carry one.)
pub(crate) fn require_host<B>(request: &http::Request<B>) -> Result<(), Error> {
    if request.version() == http::Version::HTTP_11 && !request.headers().contains_key(header::HOST)
    {
        return Err(Error::BadHost("an HTTP/1.1 request needs a Host field"));
    }
    Ok(())
}

pub(crate) use grid_wire::request::valid_host;

/// The host a request names: its `Host` header, or the URI's authority (HTTP/2).
pub fn host<B>(request: &http::Request<B>) -> Option<&str> {
    host_of(request.headers(), request.uri())
}

pub(crate) fn host_of<'r>(headers: &'r http::HeaderMap, uri: &'r http::Uri) -> Option<&'r str> {
    headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// What routing needs of a request; its headers only when the policy will be asked.
pub(crate) fn view<'a, H: Headers>(
    gw: &Gateway,
    method: &'a str,
    path: &'a str,
    host: Option<&'a str>,
    headers: &'a H,
) -> RequestView<'a, H> {
    RequestView {
        method,
        path,
        host,
        order_header: headers.values(ORDER_HEADER).next(),
        headers: (!gw.process.config().skip_request_policy).then_some(headers),
    }
}

/// Who is asking and where their request goes, in the order of cost: a method and path
/// the policy and the app read alike (else 400), the session (a
/// cookie decrypt and a cache read), the route (an in-memory map), the authorization
/// policy (a wasm call). Returns the route and what carried the session.
pub(crate) async fn admit<H: Headers + Sync>(
    gw: &Gateway,
    headers: &H,
    view: &RequestView<'_, H>,
) -> Result<(Route, Credential), Error> {
    gw.process.check_request(view.method, view.path)?;
    let (token, credential) = session_credential(headers, gw.auth.settings().cookie_name)
        .ok_or(Error::Unauthenticated)?;
    let session = gw.auth.authenticate(&token, unix_now())?;
    let route = gw.process.route(&session, view)?;
    if let Err(e) = gw.process.authorize(&session, &route, view).await {
        if matches!(e, Error::RequestDenied(_)) {
            gw.forwarder.metrics().policy_denials.inc();
        }
        return Err(e);
    }
    Ok((route, credential))
}

/// Removes every `Authorization: Bearer` that carries a gateway session token — the
/// caller's own or anyone's, live or expired — whatever signed the request in: an app must
/// never hold a credential it could replay at the gateway. Other `Authorization` values
/// (the app's own bearer, `Basic`) pass. Costs a decrypt per bearer header, and none when
/// a bearer signed the request in: then [`forward_options`] has the forwarder drop every
/// `Authorization`, so opening the token again would only repeat work on each request.
pub(crate) fn strip_gateway_bearers(
    gw: &Gateway,
    headers: &mut impl Headers,
    credential: Credential,
) {
    if credential == Credential::Bearer {
        return;
    }
    crate::proxy::headers::strip_bearers(headers, |token| gw.auth.is_token(token));
}

/// What the proxy strips on the way to the app: the gateway's session cookie under both
/// names, and the bearer token when it signed the request in (an `Authorization` header
/// next to a session cookie is the app's own and goes through).
pub(crate) fn forward_options(credential: Credential) -> ForwardOptions {
    ForwardOptions {
        strip_cookies: SESSION_COOKIES,
        strip_authorization: credential == Credential::Bearer,
    }
}
