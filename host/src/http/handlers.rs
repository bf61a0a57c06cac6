//! The handlers: each parses, calls one service, and shapes the answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite as CookieSameSite};

use super::api::*;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, OrderIdPath, Session};
use crate::config::SameSite;
use crate::error::Error;
use crate::gateway::{Gateway, Readiness};
use crate::orders::QuoteInput;
use crate::policy::unix_now;

type AppState = State<Arc<Gateway>>;

/// Quote an order or an inline spec (greet type 0).
#[utoipa::path(post, path = "/_grid/v1/quote", request_body = QuoteBody, tag = "orders",
    responses((status = 200, body = QuoteResponse),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn quote(
    State(gw): AppState,
    ApiJson(body): ApiJson<QuoteBody>,
) -> Result<Json<QuoteResponse>, Error> {
    let outcome = gw.orders.quote(body.input()?).await?;
    Ok(Json(outcome.into()))
}

/// Accept (lock) an order (greet type 1). Idempotent.
#[utoipa::path(post, path = "/_grid/v1/orders/{id}/accept", tag = "orders",
    params(("id" = String, Path, description = "order id, decimal")),
    responses((status = 200, body = AcceptResponse),
              (status = 400, body = ErrorBody, description = "invalid_order_id"),
              (status = 402, body = ErrorBody, description = "insufficient_payment"),
              (status = 403, body = ErrorBody, description = "not_our_order, payee_rejected"),
              (status = 404, body = ErrorBody, description = "order_not_found"),
              (status = 409, body = ErrorBody, description = "insufficient_capacity, order_closed, lock_reverted"),
              (status = 503, body = ErrorBody, description = "chain_unavailable, lock_pending")))]
pub async fn accept(
    State(gw): AppState,
    OrderIdPath(id): OrderIdPath,
) -> Result<Json<AcceptResponse>, Error> {
    Ok(Json(gw.orders.accept(&id).await?.into()))
}

/// An order this node accepted: its state, terms (extensions included), end, and pay (paid
/// so far, releasable now, the last settlement transaction).
#[utoipa::path(get, path = "/_grid/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "order id, decimal")),
    responses((status = 200, body = OrderResponse),
              (status = 400, body = ErrorBody, description = "invalid_order_id"),
              (status = 404, body = ErrorBody, description = "order_not_accepted")))]
pub async fn order(
    State(gw): AppState,
    OrderIdPath(id): OrderIdPath,
) -> Result<Json<OrderResponse>, Error> {
    let record = gw.orders.accepted_order(&id)?;
    let pay = gw.orders.pay(&record.order.id).await?;
    Ok(Json(OrderResponse::with_pay(record, pay)))
}

/// A single-use login nonce. Issuing one writes nothing (it is sealed with the node's
/// key); each client address gets `auth.nonce_burst` at once, then
/// `auth.nonce_rate_per_sec`.
#[utoipa::path(get, path = "/_grid/v1/auth/nonce", tag = "auth",
    responses((status = 200, body = NonceResponse),
              (status = 429, body = ErrorBody, description = "rate_limited (with Retry-After, seconds)",
               headers(("Retry-After" = u64, description = "seconds until a nonce can be had")))))]
pub async fn nonce(
    State(gw): AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Json<NonceResponse>, Error> {
    // The TCP peer, which the server puts on every request (none when the router is called
    // without a socket).
    let client = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let (nonce, expires_at) = gw.auth.nonce(client, unix_now())?;
    Ok(Json(NonceResponse { nonce, expires_at }))
}

/// Sign in with Ethereum (greet type 2): sets the session cookie.
#[utoipa::path(post, path = "/_grid/v1/auth/login", request_body = LoginBody, tag = "auth",
    responses((status = 200, body = LoginResponse),
              (status = 400, body = ErrorBody, description = "malformed_message"),
              (status = 401, body = ErrorBody, description = "wrong_domain, wrong_uri, wrong_chain, message_expired, message_not_yet_valid, invalid_nonce, invalid_signature"),
              (status = 403, body = ErrorBody, description = "session_denied")))]
pub async fn login(
    State(gw): AppState,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, Error> {
    do_login(&gw, jar, &body.message, &body.signature).await
}

async fn do_login(
    gw: &Gateway,
    jar: CookieJar,
    message: &str,
    signature: &str,
) -> Result<Response, Error> {
    let now = unix_now();
    let login = gw.auth.login(message, signature, now).await?;
    let cookie = session_cookie(gw, login.token.clone(), login.session.expires_at, now);
    let body = LoginResponse {
        address: login.session.address.to_string(),
        expires_at: login.session.expires_at,
        token: login.token,
    };
    Ok((jar.add(cookie), Json(body)).into_response())
}

/// The session cookie carrying `token` until `expires_at`, for the host that answers
/// (no `Domain`: never shared with other hosts, such as the apps' own).
pub fn session_cookie(gw: &Gateway, token: String, expires_at: u64, now: u64) -> Cookie<'static> {
    let settings = &gw.config.session;
    Cookie::build((gw.auth.settings().cookie_name, token))
        .path("/")
        .http_only(true)
        .secure(settings.secure)
        .same_site(match settings.same_site {
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::None => CookieSameSite::None,
        })
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(expires_at.saturating_sub(now)).unwrap_or(i64::MAX),
        ))
        .build()
}

/// The current session (cookie or bearer token).
#[utoipa::path(get, path = "/_grid/v1/auth/session", tag = "auth",
    responses((status = 200, body = SessionResponse),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired, session_revoked")))]
pub async fn session(session: Session) -> Json<SessionResponse> {
    Json(SessionResponse {
        address: session.record.address.to_string(),
        expires_at: session.record.expires_at,
        scopes: session.record.scopes,
    })
}

/// End the current session.
#[utoipa::path(post, path = "/_grid/v1/auth/logout", tag = "auth",
    responses((status = 200, body = LogoutResponse), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(gw): AppState,
    jar: CookieJar,
    session: Session,
) -> Result<Response, Error> {
    let ended = gw.auth.logout(&session.token, unix_now())?;
    let removal = Cookie::build((gw.auth.settings().cookie_name, "")).path("/");
    Ok((
        jar.remove(removal),
        Json(LogoutResponse {
            address: ended.address.to_string(),
            ended: true,
        }),
    )
        .into_response())
}

/// End every session of the current session's wallet, on every device (a new login
/// leaves earlier sessions alive until they expire; this ends them).
#[utoipa::path(post, path = "/_grid/v1/auth/logout-all", tag = "auth",
    responses((status = 200, body = LogoutAllResponse),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired, session_revoked")))]
pub async fn logout_all(
    State(gw): AppState,
    jar: CookieJar,
    session: Session,
) -> Result<Response, Error> {
    let (current, ended) = gw.auth.logout_all(&session.token, unix_now())?;
    let removal = Cookie::build((gw.auth.settings().cookie_name, "")).path("/");
    Ok((
        jar.remove(removal),
        Json(LogoutAllResponse {
            address: current.address.to_string(),
            sessions_ended: ended,
        }),
    )
        .into_response())
}

/// The original GRID gateway's form, mapped onto the same handlers.
#[utoipa::path(get, path = "/greet", tag = "greet", params(GreetQuery),
    responses((status = 200, description = "as the mapped endpoint"), (status = 400, body = ErrorBody)))]
pub async fn greet(
    State(gw): AppState,
    jar: CookieJar,
    ApiQuery(query): ApiQuery<GreetQuery>,
) -> Result<Response, Error> {
    let input = || {
        query
            .input
            .clone()
            .ok_or_else(|| Error::BadRequest("input (the order id) is required".into()))
    };
    match query.kind {
        0 => {
            let outcome = gw.orders.quote(QuoteInput::Order(input()?)).await?;
            Ok(Json(QuoteResponse::from(outcome)).into_response())
        }
        1 => Ok(Json(AcceptResponse::from(gw.orders.accept(&input()?).await?)).into_response()),
        2 => {
            let (Some(message), Some(sig)) = (&query.message, &query.sig) else {
                return Err(Error::BadRequest("type 2 needs message and sig".into()));
            };
            do_login(&gw, jar, message, sig).await
        }
        other => Err(Error::BadRequest(format!(
            "type {other} is not served here (0 quote, 1 accept, 2 login)"
        ))),
    }
}

/// The node: wallet, chain, capacity, policies.
#[utoipa::path(get, path = "/_grid/v1/node", tag = "ops",
    responses((status = 200, description = "wallet, chain_id, market, capacity, policies (per world the version in force: name, sha256, settings_sha256, source {kind: builtin|file|oci}, loaded_at, and for a registry artefact artefact {reference, digest, signer}; last_error {code, message, at}; candidate: the version evaluated in shadow, same fields, or null; previous: the versions kept for rollback, newest first, same fields; shadow {evaluations, disagreements {allow_to_deny, deny_to_allow, price_delta, scopes_changed, error, live_error}, dropped}), and with [tls] the certificates from files (tls: hosts, cert_file, serving, last_error), with [tls.acme] those from ACME (acme: host, serving, not_after, renew_at, failures, last_error, retry_at)")))]
pub async fn node(State(gw): AppState) -> Result<Response, Error> {
    Ok(Json(gw.node_status()?).into_response())
}

/// An ACME HTTP-01 challenge (RFC 8555 §8.3): the key authorization of a pending
/// challenge's token, served on every host and never redirected; 404 `not_found` for a
/// token with no challenge pending (or without `[tls.acme]`).
#[utoipa::path(get, path = "/.well-known/acme-challenge/{token}", tag = "ops",
    params(("token" = String, Path, description = "The challenge's token")),
    responses((status = 200, content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody)))]
pub async fn acme_challenge(
    State(gw): AppState,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<Response, Error> {
    let answer = gw
        .acme
        .as_ref()
        .and_then(|acme| acme.http01_answer(&token))
        .ok_or_else(|| Error::NotFound("no ACME challenge is pending for this token".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response())
}

/// Liveness.
#[utoipa::path(get, path = "/_grid/healthz", tag = "ops", responses((status = 200)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: store open, policies loaded, chain reachable.
#[utoipa::path(get, path = "/_grid/readyz", tag = "ops",
    responses((status = 200), (status = 503)))]
pub async fn readyz(State(gw): AppState) -> (StatusCode, Json<Readiness>) {
    let readiness = gw.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/_grid/metrics", tag = "ops", responses((status = 200)))]
pub async fn metrics(State(gw): AppState) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &gw.registry) {
        tracing::error!(error = %e, "encoding metrics failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
