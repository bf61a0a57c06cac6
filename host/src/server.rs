//! `grid-gateway serve`: build the node, listen, stop cleanly on SIGTERM / SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::{Config, LogFormat};
use crate::gateway::{BuildError, Gateway};
use crate::http::Listener;
use crate::orders::Hooks;
use crate::wire::WorkerState;
use crate::wire::client_stream::{ClientStream, Slot};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The node could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Installs the global tracing subscriber: `RUST_LOG` filter (default `info`), text or
/// JSON lines on stderr. Request ids appear as the `request_id` field of the request span.
pub fn init_tracing(format: LogFormat) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The log filter: `RUST_LOG`'s directives (default `info`), with rustls held at `error`
/// unless `RUST_LOG` names rustls itself. rustls warns once per handshake about inputs a
/// client chooses (an IP address as SNI, say): at `warn` any client could fill the log.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let directives = match rust_log.map(str::trim) {
        Some(env) if !env.is_empty() => env.to_owned(),
        _ => "info,tower_http=info".to_owned(),
    };
    let directives = if directives.contains("rustls") {
        directives
    } else {
        format!("{directives},rustls=error")
    };
    tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"))
}

/// A running server (for tests and embedding): its address and a way to stop it.
/// Dropping it without [`Running::shutdown`] leaves the server up until the process ends.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the HTTPS listener listens, with `[tls]`.
    pub tls_addr: Option<SocketAddr>,
    /// The node.
    pub gateway: Arc<Gateway>,
    stop: tokio::sync::watch::Sender<bool>,
    workers: Vec<oneshot::Receiver<Result<(), ServeError>>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the policy watcher.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for finished in self.workers {
            let outcome = finished.await.unwrap_or_else(|_| {
                Err(ServeError::Io(std::io::Error::other(
                    "an HTTP worker thread panicked",
                )))
            });
            if result.is_ok() {
                result = outcome;
            }
        }
        self.gateway.stop().await;
        result
    }
}

/// Builds the node from `config`, binds, and serves on `http.workers` threads.
///
/// Each worker is a single-threaded event loop on its own thread taking connections from
/// the one listening socket (nginx's model): a proxied request, its connection and its
/// upstream connections stay on one thread, with no cross-thread hand-offs and none of the
/// work-stealing scheduler's wake-ups on the request path (~4 µs of kernel time per
/// proxied request, `host/benches/README.md`). Each connection is served by
/// [`crate::wire::serve`]: plain HTTP/1.1 Process requests on the wire fast path,
/// the rest of the connection by hyper from its first request that is anything else. API
/// requests are handed to the caller's runtime, where the node's background work runs too
/// (the chain follower, the policy watcher, sweeps): what they start (a deploy, a chain
/// client's connections) lives there, not on a worker.
pub async fn start(config: Config, hooks: Hooks) -> Result<Running, ServeError> {
    let listen = config.listen;
    let workers = config.http.worker_count();
    let gateway = Gateway::build(config, hooks).await?;
    gateway.watch_policies();
    gateway.start_background();
    let bind_error = |source| ServeError::Bind {
        addr: listen,
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr()?;
    let mut listeners = Vec::with_capacity(2);
    let mut tls_addr = None;
    if let (Some(tls), Some(files)) = (&gateway.config.tls, &gateway.tls) {
        let bind_error = |source| ServeError::Bind {
            addr: tls.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(tls.listen).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        tls_addr = Some(listener.local_addr()?);
        let acceptor = TlsAcceptor::from(
            crate::tls::server_config(files.store().clone()).map_err(BuildError::from)?,
        );
        listeners.push((listener, Arc::new(Listener::tls(tls)), Some(acceptor)));
    }
    let https_port = tls_addr.map_or(443, |a: SocketAddr| a.port());
    let plain = Arc::new(Listener::plain(&gateway.config, https_port));
    listeners.insert(0, (listener, plain, None));
    let api = crate::http::api_router(gateway.clone());
    let api_runtime = tokio::runtime::Handle::current();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let cloned: std::io::Result<Vec<_>> = listeners
            .iter()
            .map(|(listener, role, acceptor)| {
                Ok((listener.try_clone()?, role.clone(), acceptor.clone()))
            })
            .collect();
        let spawned = cloned.and_then(|listeners| {
            let (done, worker) = oneshot::channel();
            let (gateway, api, api_runtime, stopping) = (
                gateway.clone(),
                api.clone(),
                api_runtime.clone(),
                stopping.clone(),
            );
            std::thread::Builder::new()
                .name(format!("http-worker-{index}"))
                .spawn(move || {
                    let served = serve_on(listeners, gateway, api, api_runtime, stopping);
                    if let Err(error) = &served {
                        tracing::error!(worker = index, %error, "HTTP worker stopped");
                    }
                    let _ = done.send(served);
                })?;
            Ok(worker)
        });
        match spawned {
            Ok(worker) => finished.push(worker),
            Err(error) => {
                // Stop the workers already serving: no half-started server is left behind.
                let _ = stop.send(true);
                gateway.stop().await;
                return Err(ServeError::Io(error));
            }
        }
    }
    tracing::info!(%addr, ?tls_addr, workers, "grid-gateway listening");
    Ok(Running {
        addr,
        tls_addr,
        gateway,
        stop,
        workers: finished,
    })
}

/// How often a worker drops keep-alive connections to apps that have idled out.
const IDLE_SWEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// A listening socket, its role, and for HTTPS its TLS acceptor.
type Bound = (std::net::TcpListener, Arc<Listener>, Option<TlsAcceptor>);

/// One worker: a current-thread runtime serving the connections it accepts from
/// `listeners`, until `stopping` turns true; then it stops accepting and lets the requests
/// in flight finish.
///
/// The runtime is a local one: its connections are tasks of this thread only
/// (`spawn_local`), so what they share, the worker's [`WorkerState`], is a plain value
/// behind an `Rc`, made here and dropped (its idle app connections closed) when the worker
/// stops.
fn serve_on(
    listeners: Vec<Bound>,
    gateway: Arc<Gateway>,
    api: axum::Router,
    api_runtime: tokio::runtime::Handle,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(tokio::runtime::LocalOptions::default())?;
    let header_read_timeout = gateway.config.http.header_read_timeout();
    let grace = gateway.config.http.shutdown_grace();
    runtime.block_on(async move {
        let mut hyper = auto::Builder::new(TokioExecutor::new());
        hyper
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        // HTTP/2 has no head to time: its connections are cut after this much silence
        // (`ClientStream::limit_silence`), and pinged while requests are open so that a
        // live client always has something to answer within it.
        hyper
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(header_read_timeout / 2))
            .keep_alive_timeout(header_read_timeout / 2);
        let tracker = TaskTracker::new();
        let worker = Rc::new(WorkerState::new());
        let sweeper = tokio::task::spawn_local({
            let worker = worker.clone();
            async move {
                let mut every = tokio::time::interval(IDLE_SWEEP);
                loop {
                    every.tick().await;
                    worker.idle.sweep();
                }
            }
        });
        let mut loops = Vec::with_capacity(listeners.len());
        for (listener, role, acceptor) in listeners {
            let listener = TcpListener::from_std(listener)?;
            let connections = Rc::new(crate::wire::Connections {
                gateway: gateway.clone(),
                api: api.clone(),
                api_runtime: api_runtime.clone(),
                hyper: hyper.clone(),
                header_read_timeout,
                listener: role,
                worker: worker.clone(),
            });
            loops.push(accept_loop(
                listener,
                connections,
                acceptor,
                tracker.clone(),
                stopping.clone(),
            ));
        }
        futures_util::future::join_all(loops).await;
        // Each connection sees the stop itself: idle ones close, busy ones finish their
        // request first.
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("requests still in flight after {grace:?}: cut");
        }
        sweeper.abort();
        worker.idle.clear();
        Ok(())
    })
}

/// Accepts connections on `listener` until the server stops; with `acceptor`, each one's
/// TLS handshake is done (within the head deadline) before it is served.
async fn accept_loop(
    listener: TcpListener,
    connections: Rc<crate::wire::Connections>,
    acceptor: Option<TlsAcceptor>,
    tracker: TaskTracker,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let gateway = connections.gateway.clone();
    let send_timeout = gateway.config.http.send_timeout();
    let max_connections = gateway.config.http.max_connections;
    let mut stop = stopping.clone();
    let stop = async move {
        // The sender gone without a stop (a dropped `Running`): keep serving.
        if stop.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Small responses (and proxied frames: SSE events, websocket messages) go out
        // at once instead of waiting for the peer's delayed ACK (Nagle).
        let _ = stream.set_nodelay(true);
        let metrics = &gateway.metrics;
        let Some(slot) = Slot::take(&metrics.connections_open, max_connections) else {
            // At the cap: closed at once, before any work (nginx does the same when
            // its worker_connections are used up); an answer would need the request
            // read first.
            metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let (connections, stopping) = (connections.clone(), stopping.clone());
        match &acceptor {
            None => {
                let stream = ClientStream::new(stream, send_timeout, Some(slot));
                tracker.spawn_local(crate::wire::serve(connections, stream, peer, stopping));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tracker.spawn_local(async move {
                    let deadline = connections.header_read_timeout;
                    let stream = match tokio::time::timeout(deadline, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_elapsed) => {
                            tracing::debug!(%peer, "TLS handshake not done in time");
                            return;
                        }
                    };
                    let mut stream = ClientStream::tls(stream, send_timeout, Some(slot));
                    if stream.alpn() == Some(crate::tls::ACME_TLS_ALPN) {
                        // A TLS-ALPN-01 validation: the handshake was the answer.
                        let _ = stream.shutdown().await;
                        return;
                    }
                    crate::wire::serve(connections, stream, peer, stopping).await;
                });
            }
        }
    }
}

/// A failed accept: the peer's own failure is skipped; running out of descriptors or
/// memory is logged and waited out for a moment instead of spinning.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

/// `serve`: runs until `shutdown` resolves (SIGTERM / SIGINT in the binary).
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let running = start(config, Hooks::default()).await?;
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn rustls_is_held_at_error_unless_rust_log_names_it() {
        let default = log_filter(None).to_string();
        assert!(default.contains("rustls=error"), "{default}");
        assert!(default.contains("info"), "{default}");
        let operator = log_filter(Some("debug")).to_string();
        assert!(
            operator.contains("rustls=error") && operator.contains("debug"),
            "{operator}"
        );
        let named = log_filter(Some("info,rustls=debug")).to_string();
        assert!(
            named.contains("rustls=debug") && !named.contains("rustls=error"),
            "{named}"
        );
        // A RUST_LOG that does not parse falls back to the default, still holding rustls.
        let broken = log_filter(Some("[[[")).to_string();
        assert!(broken.contains("rustls=error"), "{broken}");
    }
}
