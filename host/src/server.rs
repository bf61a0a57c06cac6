//! `grid-gateway serve`: build the node, listen, stop cleanly on SIGTERM / SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{Config, LogFormat};
use crate::gateway::{BuildError, Gateway};
use crate::orders::Hooks;

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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A running server (for tests and embedding): its address and a way to stop it.
/// Dropping it without [`Running::shutdown`] leaves the server up until the process ends.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
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
/// the one listening socket (nginx's model): a connection, its requests and its upstream
/// connections stay on one thread, with no cross-thread hand-offs and none of the
/// work-stealing scheduler's wake-ups on the request path (~4 µs of kernel time per
/// proxied request, `host/benches/README.md`). Background work (the chain follower, the
/// policy watcher, sweeps) stays on the caller's runtime.
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
    let app = crate::http::router(gateway.clone());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let (listener, app, stopping) = (listener.try_clone()?, app.clone(), stopping.clone());
        let (done, worker) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("http-worker-{index}"))
            .spawn(move || {
                let _ = done.send(serve_on(listener, app, stopping));
            })?;
        finished.push(worker);
    }
    tracing::info!(%addr, workers, "grid-gateway listening");
    Ok(Running {
        addr,
        gateway,
        stop,
        workers: finished,
    })
}

/// One worker: a current-thread runtime serving `app` on connections it accepts from
/// `listener`, until `stopping` turns true.
fn serve_on(
    listener: std::net::TcpListener,
    app: axum::Router,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Small responses (and proxied frames: SSE events, websocket messages) go out at
        // once instead of waiting for the peer's delayed ACK (Nagle).
        let listener = TcpListener::from_std(listener)?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            // The sender gone without a stop (a dropped `Running`): keep serving.
            if stopping.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(ServeError::Io)
    })
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
