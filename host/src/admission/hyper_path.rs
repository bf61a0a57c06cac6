//! hyper's path for requests to apps: what the wire fast path hands over (chunked uploads,
//! upgrades, HTTP/1.0, HTTP/2, anything it does not take) is admitted with the same checks
//! ([`super::admit`]) and forwarded by [`crate::proxy::Forwarder::forward`]; a sign-in
//! hand-off on an app's host is redeemed here.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{admit, forward_options, handoff_code, host, host_of, refuses_body};
use super::{strip_gateway_bearers, view};
use crate::auth::credential::session_cookie;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::handoff;
use crate::policy::unix_now;
use crate::process::ORDER_HEADER;
use crate::proxy::{BoxError, ClientInfo};

/// Every request outside the API: Process.
pub async fn handle<B>(gw: &Gateway, request: http::Request<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    match admit_and_forward(gw, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Redeems a hand-off, or admits `request` and forwards it on hyper's path.
async fn admit_and_forward<B>(gw: &Gateway, request: http::Request<B>) -> Result<Response, Error>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if let Some(code) = handoff_code(gw, request.uri().query(), host(&request)) {
        return redeem_handoff(gw, &request, code);
    }
    let (mut parts, body) = request.into_parts();
    if refuses_body(gw, parts.method.as_str(), !body.is_end_stream()) {
        return Err(Error::BodyNotAllowed(parts.method.to_string()));
    }
    let (route, credential) = {
        let view = view(
            gw,
            parts.method.as_str(),
            parts.uri.path(),
            host_of(&parts.headers, &parts.uri),
            &parts.headers,
        );
        admit(gw, &parts.headers, &view).await?
    };
    // The header is the gateway's; the app has no use for it.
    parts.headers.remove(ORDER_HEADER);
    strip_gateway_bearers(gw, &mut parts.headers, credential);
    let client = ClientInfo {
        peer: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            // Requests handed to the router directly (tests) have no connection.
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        https: parts
            .extensions
            .get::<crate::http::ClientTls>()
            .is_some_and(|tls| tls.0),
    };
    let options = forward_options(credential);
    let request = http::Request::from_parts(parts, body);
    let response = gw
        .forwarder
        .forward(request, &route.entrance, &client, &options)
        .await?;
    Ok(response.map(Body::new))
}

/// A sign-in hand-off arriving on an app's host: the code becomes the session cookie of
/// this host, and the browser goes on to the same URL without the code.
fn redeem_handoff<B>(
    gw: &Gateway,
    request: &http::Request<B>,
    code: &str,
) -> Result<Response, Error> {
    let session_id = gw.process.redeem_handoff(host(request), code)?;
    let now = unix_now();
    let token = gw.auth.seal(&session_id);
    // Revoked or expired since the code was issued: no cookie.
    let session = gw.auth.authenticate(&token, now)?;
    let cookie = session_cookie(
        &gw.config.session,
        gw.auth.settings().cookie_name,
        token,
        session.expires_at,
        now,
    );
    let uri = request.uri();
    // Always a path on this host: `//evil.example` or `/\evil.example` would be read by
    // browsers as another host.
    let path = format!("/{}", uri.path().trim_start_matches(['/', '\\']));
    let location = match uri.query().and_then(handoff::strip_param) {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie.encoded().to_string()),
            // The URL carried a credential: keep it out of caches and referrers.
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response())
}
