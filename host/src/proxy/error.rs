//! Why a request could not be forwarded, with the status and stable code the client gets.

use http::StatusCode;

/// A forwarding failure.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request carries both `Transfer-Encoding` and `Content-Length`: the length is
    /// ambiguous and such requests are the raw material of request smuggling.
    #[error("the request has both Transfer-Encoding and Content-Length")]
    AmbiguousLength,
    /// The request body could not be read as sent (a malformed chunked body).
    #[error("the request body is malformed")]
    BadRequestBody,
    /// The request body is larger than allowed.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client stopped sending its body for longer than the idle timeout.
    #[error("the request body stalled")]
    ClientBodyTimeout,
    /// The entrance could not be connected to (refused, reset, no route).
    #[error("the app is not reachable: {0}")]
    UpstreamUnreachable(String),
    /// The entrance did not answer in time (connect or response headers).
    #[error("the app did not answer in time")]
    UpstreamTimeout,
    /// The entrance answered with something that is not a valid HTTP response, or closed
    /// the connection before answering.
    #[error("the app answered badly: {0}")]
    UpstreamBadResponse(String),
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::AmbiguousLength | ProxyError::BadRequestBody => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::UpstreamUnreachable(_) | ProxyError::UpstreamBadResponse(_) => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable error code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::AmbiguousLength => "ambiguous_length",
            ProxyError::BadRequestBody => "bad_request_body",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::ClientBodyTimeout => "body_timeout",
            ProxyError::UpstreamUnreachable(_) => "upstream_unreachable",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::UpstreamBadResponse(_) => "upstream_bad_response",
        }
    }
}
