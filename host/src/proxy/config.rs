//! Proxy settings, every default explained.

use std::net::IpAddr;
use std::time::Duration;

use crate::policy::limits::duration_ms;

/// How the proxy talks to entrances.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// TCP connect to an entrance. Entrances are in-cluster services: 2 s means the
    /// service is down, not slow.
    #[serde(with = "duration_ms", rename = "connect_timeout_ms")]
    pub connect_timeout: Duration,
    /// From the request sent to the response's headers. Apps doing long work should
    /// stream (send headers early); 60 s matches common load balancers.
    #[serde(with = "duration_ms", rename = "response_header_timeout_ms")]
    pub response_header_timeout: Duration,
    /// Longest pause inside a request or response body. Server-sent events that send
    /// nothing for longer than this should send keep-alive comments.
    #[serde(with = "duration_ms", rename = "body_idle_timeout_ms")]
    pub body_idle_timeout: Duration,
    /// Longest silence on an upgraded connection (websocket) in both directions.
    #[serde(with = "duration_ms", rename = "tunnel_idle_timeout_ms")]
    pub tunnel_idle_timeout: Duration,
    /// Largest request body, also when streamed without a length. 0 means no limit.
    pub max_request_body_bytes: u64,
    /// Idle keep-alive connections kept per entrance and HTTP worker.
    pub pool_max_idle_per_host: usize,
    /// Peers whose `X-Forwarded-*` / `Forwarded` headers are believed (a load balancer in
    /// front of the gateway). From anyone else those headers are replaced, not extended.
    pub trusted_proxies: Vec<IpAddr>,
    /// Also send an RFC 7239 `Forwarded` header.
    pub forwarded_header: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(2),
            response_header_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(300),
            max_request_body_bytes: 1 << 30,
            pool_max_idle_per_host: 64,
            trusted_proxies: Vec::new(),
            forwarded_header: false,
        }
    }
}
