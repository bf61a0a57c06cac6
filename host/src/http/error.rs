//! The one place an [`Error`] becomes an HTTP response:
//! `{"error":{"code":"snake_case","message":"…"}}` with the status for its kind.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code to match on. Requests to apps can also be refused before
    /// they reach one: 400 `ambiguous_path` (an encoded `/` or `\`, an encoded dot segment,
    /// a control byte in the path), `non_canonical_method` (`get` for `GET`),
    /// `duplicate_host`, `bad_host` (no `Host` in HTTP/1.1, or one that is no
    /// `host[:port]`), `body_not_allowed` (a body on GET or HEAD), `bad_request_body` (a
    /// malformed chunked body), `ambiguous_length`; 403 `request_denied`; 413
    /// `body_too_large`; 502 `upstream_unreachable`, `upstream_bad_response`; 504
    /// `upstream_timeout`.
    pub code: String,
    /// A sentence for people (the policy's reason, where a policy refused).
    pub message: String,
}

/// The HTTP status of an error.
pub fn status_of(error: &Error) -> StatusCode {
    use crate::policy::PolicyError;
    match error {
        Error::BadRequest(_) | Error::InvalidOrderId(_) | Error::MalformedMessage(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::NotFound(_) | Error::OrderNotFound(_) => StatusCode::NOT_FOUND,
        Error::NotOurOrder { .. } | Error::PayeeRejected(_) | Error::SessionDenied(_) => {
            StatusCode::FORBIDDEN
        }
        // The payment is what is missing: 402 says exactly that.
        Error::InsufficientPayment(_) => StatusCode::PAYMENT_REQUIRED,
        // The request is fine; the node's state does not allow it now.
        Error::InsufficientCapacity(_) | Error::OrderClosed { .. } | Error::LockReverted(_) => {
            StatusCode::CONFLICT
        }
        Error::DurationOutOfRange(_) | Error::UnsupportedResource(_) | Error::QuoteRefused(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::LockPending(_)
        | Error::ChainNotConfigured
        | Error::ChainUnavailable(_)
        | Error::Policy(PolicyError::NotLoaded(_))
        | Error::Policy(PolicyError::Eval(_)) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Chain(_) => StatusCode::BAD_GATEWAY,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::WrongDomain { .. }
        | Error::WrongUri { .. }
        | Error::WrongChain { .. }
        | Error::MessageExpired
        | Error::MessageNotYetValid
        | Error::InvalidNonce
        | Error::InvalidSignature
        | Error::Unauthenticated
        | Error::InvalidSession
        | Error::SessionExpired
        | Error::SessionRevoked => StatusCode::UNAUTHORIZED,
        Error::Store(_) | Error::Injected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::ClusterNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        Error::OrderNotAccepted(_) | Error::AppNotFound(_) => StatusCode::NOT_FOUND,
        Error::NotOrderOwner(_) | Error::RequestDenied(_) => StatusCode::FORBIDDEN,
        Error::OrderNotRunning { .. } | Error::AppNotRunning { .. } | Error::NoPods(_) => {
            StatusCode::CONFLICT
        }
        Error::NoSuchApp => StatusCode::NOT_FOUND,
        Error::AppNotAvailable(_) => StatusCode::CONFLICT,
        Error::OrderRequired(_)
        | Error::AmbiguousPath(_)
        | Error::NonCanonicalMethod(_)
        | Error::DuplicateHost
        | Error::BadHost(_)
        | Error::BodyNotAllowed(_) => StatusCode::BAD_REQUEST,
        Error::HandoffInvalid => StatusCode::UNAUTHORIZED,
        Error::OperatorScopeRequired | Error::CandidatePathOutside(_) => StatusCode::BAD_REQUEST,
        Error::NotAnOperator(_) | Error::MissingRole(_) => StatusCode::FORBIDDEN,
        Error::Lifecycle(e) => lifecycle_status(e),
        Error::AppsDomainNotConfigured => StatusCode::CONFLICT,
        Error::Proxy(e) => e.status(),
        Error::ManifestFetch(e) => {
            StatusCode::from_u16(e.status_hint()).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Error::Manifest(e) if !e.is_user_error() => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Manifest(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Sandbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The API server was unreachable or slow: a dependency is down, try again later.
        Error::Cluster(grid_cluster::ClusterError::Unreachable(_))
        | Error::Cluster(grid_cluster::ClusterError::Timeout(_)) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Cluster(_) => StatusCode::BAD_GATEWAY,
    }
}

/// A refused lifecycle operation: nothing to promote is a conflict with the node's state,
/// an unknown version a missing resource, a candidate that does not load or verify
/// unprocessable, a registry that does not answer a bad gateway.
fn lifecycle_status(error: &crate::policy::lifecycle::LifecycleError) -> StatusCode {
    use crate::policy::lifecycle::LifecycleError;
    match error {
        LifecycleError::NoCandidate(_) => StatusCode::CONFLICT,
        LifecycleError::UnknownVersion { .. } => StatusCode::NOT_FOUND,
        LifecycleError::Load(e) => match e.code() {
            "registry_unavailable" => StatusCode::BAD_GATEWAY,
            "compile_task_failed" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
    }
}

/// The message a caller sees. A policy's trap, bad answer or failed instantiation carries
/// the runtime's detail (a wasm backtrace, the policy's output): that goes to the log
/// only, and callers get a fixed sentence.
fn public_message(error: &Error) -> String {
    use crate::policy::{EvalError, PolicyError};
    match error {
        Error::Policy(PolicyError::Eval(
            EvalError::Trap(_) | EvalError::InvalidOutput(_) | EvalError::Instantiate(_),
        )) => "the node's policy failed on this request; the operator's log has the detail".into(),
        other => other.to_string(),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "request refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: public_message(&self),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Error::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}
