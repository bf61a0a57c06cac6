//! Extractors whose rejections are API errors: JSON bodies, query strings, order ids in the
//! path, and the session. axum's own extractors answer `400 text/plain`; every refusal of
//! the API is the one JSON envelope instead.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::credential::session_credential;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::policy::unix_now;
use crate::store::SessionRecord;

/// `axum::Json` with our error body on rejection.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge;
    }
    Error::BadRequest(rejection.body_text())
}

/// `axum::extract::Query` with our error body on rejection (a missing or mistyped
/// parameter is `400 bad_request`, naming it).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

/// The order id of a route's one path parameter (`{id}`, `{order_id}`), parsed once and in
/// its canonical spelling ([`crate::orders::canonical_order_id`]): `/orders/03` and
/// `/apps/03` both name order 3. Not an id: `400 invalid_order_id`.
pub struct OrderIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for OrderIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
        crate::orders::canonical_order_id(&raw).map(OrderIdPath)
    }
}

/// The caller's session, from the session cookie or `Authorization: Bearer`.
pub struct Session {
    /// The session record.
    pub record: SessionRecord,
    /// The sealed value it came in (to end it).
    pub token: String,
}

/// The sealed session value a request carries, if any: the cookie first, then the bearer
/// token.
pub fn session_token(parts: &Parts, cookie_name: &str) -> Option<String> {
    session_credential(&parts.headers, cookie_name).map(|(token, _)| token)
}

impl FromRequestParts<Arc<Gateway>> for Session {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(parts, gateway.auth.settings().cookie_name)
            .ok_or(Error::Unauthenticated)?;
        let record = gateway.auth.authenticate(&token, unix_now())?;
        Ok(Session { record, token })
    }
}
