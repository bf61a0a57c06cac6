//! The reverse proxy (Process): streams a session's requests to its app's entrance and the
//! responses back, websockets included.
//!
//! This module only forwards: who the caller is and which entrance serves it is decided
//! before ([`Forwarder::forward`] takes the entrance). It owns what a correct HTTP proxy
//! must do on the way: hop-by-hop headers (RFC 9110 §7.6.1), `X-Forwarded-*` / `Forwarded`
//! (RFC 7239) / `Via`, stripping the gateway's own credentials, body limits and idle
//! timeouts on streamed bodies, `Upgrade` tunnels, and mapping upstream failures to 502/504.

mod body;
mod config;
mod error;
mod forward;
pub mod headers;
mod metrics;
mod pool;
mod tunnel;

pub use body::{BoxError, ProxyBody, empty, full};
pub use config::ProxyConfig;
pub use error::ProxyError;
pub use forward::{ClientInfo, ForwardOptions, Forwarder, Upstream, UpstreamParseError};
pub use metrics::{PathLabels, ProxyMetrics, ServedBy, StatusClassLabels};
pub(crate) use pool::connect_tcp;
