//! The TCP connector under the fetch client: it resolves the host itself and checks every
//! address against the policy right before connecting, then checks the socket's peer.
//!
//! The check lives here, not in a pre-flight lookup, because a name can resolve to a public
//! address for the pre-check and to 169.254.169.254 a second later (DNS rebinding); here
//! the address checked is the one connected to. It is not a resolver plugged into
//! hyper-util's `HttpConnector` either: that connector skips its resolver for IP-literal
//! hosts, so `http://10.0.0.1/` would never be checked.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::TimeoutPhase;
use super::address::{AddressPolicy, Reason};

/// Why the connector gave up; `Fetcher` turns it into a `FetchError` with the URL attached.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ConnectFailure {
    #[error("{addr} is {reason}")]
    Refused {
        host: String,
        addr: IpAddr,
        reason: Reason,
    },
    #[error("cannot resolve {host}: {detail}")]
    Unresolvable { host: String, detail: String },
    #[error("timed out while {phase}")]
    Timeout { phase: TimeoutPhase, after_ms: u64 },
    #[error("cannot connect to {host}: {detail}")]
    Failed { host: String, detail: String },
}

#[derive(Clone)]
pub(crate) struct GuardedConnector {
    pub(crate) policy: Arc<AddressPolicy>,
    pub(crate) connect_timeout: Duration,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(&uri).await.map(TokioIo::new) })
    }
}

impl GuardedConnector {
    async fn connect(&self, uri: &Uri) -> Result<TcpStream, ConnectFailure> {
        let host = uri.host().unwrap_or_default();
        // `Fetcher` only hands over URLs it parsed with a host; this guards the invariant.
        if host.is_empty() {
            return Err(ConnectFailure::Unresolvable {
                host: String::new(),
                detail: "the URL has no host".into(),
            });
        }
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let candidates = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => self.resolve(bare, port).await?,
        };

        let mut refused: Option<(IpAddr, Reason)> = None;
        let mut failure: Option<ConnectFailure> = None;
        for addr in candidates {
            if let Err(reason) = self.policy.check(addr.ip()) {
                tracing::debug!(%host, %addr, %reason, "manifest fetch: address refused");
                refused.get_or_insert((addr.ip(), reason));
                continue;
            }
            let stream =
                match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        failure = Some(ConnectFailure::Failed {
                            host: host.to_owned(),
                            detail: format!("{addr}: {e}"),
                        });
                        continue;
                    }
                    Err(_) => {
                        failure = Some(ConnectFailure::Timeout {
                            phase: TimeoutPhase::Connect,
                            after_ms: millis(self.connect_timeout),
                        });
                        continue;
                    }
                };
            // The address the kernel actually connected to. It cannot differ from `addr` for
            // a plain TCP connect, but this is the check everything rests on, so it is made
            // on the socket itself.
            let peer = stream.peer_addr().map_err(|e| ConnectFailure::Failed {
                host: host.to_owned(),
                detail: format!("{addr}: no peer address: {e}"),
            })?;
            if let Err(reason) = self.policy.check(peer.ip()) {
                return Err(ConnectFailure::Refused {
                    host: host.to_owned(),
                    addr: peer.ip(),
                    reason,
                });
            }
            // Requests are one small write; without NODELAY Nagle can hold it back. Failing
            // to set it only costs latency.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%addr, error = %e, "manifest fetch: cannot set TCP_NODELAY");
            }
            return Ok(stream);
        }
        // A failed connect says more than the refusal of other addresses of the same name,
        // which were never tried.
        Err(match (failure, refused) {
            (Some(failure), _) => failure,
            (None, Some((addr, reason))) => ConnectFailure::Refused {
                host: host.to_owned(),
                addr,
                reason,
            },
            (None, None) => ConnectFailure::Unresolvable {
                host: host.to_owned(),
                detail: "no addresses".into(),
            },
        })
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectFailure> {
        let lookup = tokio::net::lookup_host((host, port));
        let addrs = match tokio::time::timeout(self.connect_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                return Err(ConnectFailure::Unresolvable {
                    host: host.to_owned(),
                    detail: e.to_string(),
                });
            }
            Err(_) => {
                return Err(ConnectFailure::Timeout {
                    phase: TimeoutPhase::Resolve,
                    after_ms: millis(self.connect_timeout),
                });
            }
        };
        let mut unique: Vec<SocketAddr> = Vec::new();
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        Ok(unique)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
