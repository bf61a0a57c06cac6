//! Process: every request outside `/_grid/` (and `/greet`) goes to the caller's app.
//!
//! The order of checks is the order of cost: the session (a cookie decrypt and a store
//! read), the route (an in-memory map), the authorization policy (a wasm call), then the
//! forward. Whatever refuses the request answers with the API's JSON error body.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::extract::{Credential, session_credential};
use crate::auth::cookie_name;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::policy::unix_now;
use crate::process::{ORDER_HEADER, RequestView};
use crate::proxy::{BoxError, ClientInfo, ForwardOptions};

/// Unknown API paths.
pub async fn not_found(uri: axum::http::Uri) -> Error {
    Error::NotFound(uri.path().to_owned())
}

/// Every path outside the API: Process (`/_grid` paths that reach here are 404).
pub async fn handle<B>(gw: &Gateway, request: http::Request<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let path = request.uri().path();
    if path == "/_grid" || path.starts_with("/_grid/") {
        return Error::NotFound(path.to_owned()).into_response();
    }
    match process(gw, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The gateway's session cookie under both names: a node switching `session.secure` must
/// not leak the other one to apps.
const SESSION_COOKIES: &[&str] = &[cookie_name(true), cookie_name(false)];

async fn process<B>(gw: &Gateway, request: http::Request<B>) -> Result<Response, Error>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let (token, credential) = session_credential(&parts.headers, gw.auth.settings().cookie_name)
        .ok_or(Error::Unauthenticated)?;
    let session = gw.auth.authenticate(&token, unix_now())?;

    let route = {
        let asks_policy = !gw.process.config().skip_request_policy;
        let view = view(&parts, asks_policy);
        let route = gw.process.route(&session, &view)?;
        if let Err(e) = gw.process.authorize(&session, &route, &view).await {
            if matches!(e, Error::RequestDenied(_)) {
                gw.forwarder.metrics().policy_denials.inc();
            }
            return Err(e);
        }
        route
    };

    // The header is the gateway's; the app has no use for it.
    parts.headers.remove(ORDER_HEADER);
    let client = ClientInfo {
        peer: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            // Requests handed to the router directly (tests) have no connection.
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        https: false,
    };
    let options = ForwardOptions {
        strip_cookies: SESSION_COOKIES,
        // A bearer token that signed the request in is the gateway's; an Authorization
        // header next to a session cookie is the app's own and goes through.
        strip_authorization: credential == Credential::Bearer,
    };
    let request = http::Request::from_parts(parts, body);
    let response = gw
        .forwarder
        .forward(request, &route.entrance, &client, &options)
        .await?;
    Ok(response.map(Body::new))
}

/// What routing needs of the request; its headers only when the policy will be asked.
fn view(parts: &Parts, with_headers: bool) -> RequestView<'_> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    RequestView {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        host: header("host").or_else(|| parts.uri.authority().map(|a| a.as_str())),
        order_header: header(ORDER_HEADER),
        headers: with_headers.then_some(&parts.headers),
    }
}
