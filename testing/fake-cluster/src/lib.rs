//! A fake Kubernetes API server for grid-gateway's tests and local development.
//!
//! **A development stand-in, not a cluster**: nothing is scheduled or run. Objects are kept in
//! memory by [`kube_fake_client`]; this crate serves them over real HTTP on loopback with the
//! API server's semantics the gateway relies on, and fills in what that crate lacks:
//!
//! - an HTTP/1 server (`hyper`) on `127.0.0.1:0`, reachable by any `kube::Client` built from a
//!   `kube::Config` or a kubeconfig file ([`FakeCluster::client`], [`FakeCluster::write_kubeconfig`]);
//! - Namespaces through `/api/v1/namespaces` (kube-fake-client's router cannot address them:
//!   they are stored as a private custom kind and translated on the way in and out);
//! - server-side dry run (`dryRun=All`) on POST, PUT, PATCH and DELETE;
//! - server-side apply pruning: fields the same manager applied before and left out now are
//!   removed (kube-fake-client only merges);
//! - stand-ins for the controllers: Deployments and StatefulSets become available and get
//!   Pods, Services get a cluster IP, deleting a Namespace deletes its contents, PVCs bind,
//!   ResourceQuotas report `status.hard`;
//! - API-server checks: the namespace must exist, names must be DNS names, the body's
//!   apiVersion/kind/name/namespace must agree with the URL;
//! - pod logs (`pods/{name}/log`, with `tailLines`, `follow`, `container`, `timestamps`,
//!   `limitBytes`), seeded Nodes with allocatable capacity, discovery (`/version`, `/api`,
//!   `/apis`);
//! - fault injection ([`FakeCluster::fail_next`]) and a request log ([`FakeCluster::requests`]).
//!
//! Watches are not supported (answered with 405): clients must poll. See the crate's README
//! for every difference from a real API server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), grid_fake_cluster::Error> {
//! use grid_fake_cluster::{FakeCluster, FakeOptions};
//! let cluster = FakeCluster::start(FakeOptions::default()).await?;
//! let client = cluster.client(); // a kube::Client over HTTP, as the gateway builds it
//! # let _ = client;
//! cluster.shutdown().await; // the port now refuses connections
//! # Ok(())
//! # }
//! ```

mod api;
mod controllers;
mod discovery;
mod logs;
mod server;
mod ssa;
mod storage;
mod util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Annotation that keeps a Deployment or StatefulSet (and its Pods) from ever becoming
/// ready: `grid.test/never-ready: "true"`.
pub const NEVER_READY_ANNOTATION: &str = "grid.test/never-ready";

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// kube-fake-client refused the seed objects (namespaces, nodes).
    #[error("cannot build the in-memory store: {0}")]
    Store(#[from] kube_fake_client::Error),
}

/// One Node seeded into the fake, with its allocatable capacity (capacity is the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNode {
    pub name: String,
    /// CPU quantity, e.g. `"8"` or `"7500m"`.
    pub cpu: String,
    /// Memory quantity, e.g. `"32Gi"`.
    pub memory: String,
    /// `ephemeral-storage` quantity, e.g. `"500Gi"`.
    pub ephemeral_storage: String,
    /// `nvidia.com/gpu` count; the resource is left out when 0, as on a node without the
    /// device plugin.
    pub gpu: u32,
    /// Extra labels (the node always has `kubernetes.io/hostname`).
    pub labels: Vec<(String, String)>,
}

impl FakeNode {
    /// A node with the default capacity (8 CPUs, 32Gi memory, 500Gi storage, no GPU).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl Default for FakeNode {
    fn default() -> Self {
        Self {
            name: "fake-node-0".into(),
            cpu: "8".into(),
            memory: "32Gi".into(),
            ephemeral_storage: "500Gi".into(),
            gpu: 0,
            labels: Vec::new(),
        }
    }
}

/// How to start a [`FakeCluster`].
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port on loopback).
    pub listen: SocketAddr,
    /// When set, every Service of type ClusterIP/NodePort/LoadBalancer gets this cluster IP
    /// (and Pods this pod IP), e.g. 127.0.0.1 so `http://<clusterIP>:<port>` reaches an app
    /// the test runs on loopback. When `None`, Services get sequential addresses from the
    /// fake range 10.96.0.0/12 (10.96.0.1, 10.96.0.2, ...), never reachable.
    pub service_ip: Option<IpAddr>,
    /// Nodes to seed; default one [`FakeNode::default`].
    pub nodes: Vec<FakeNode>,
    /// Delay of the stand-in workload controller. Zero (the default): a Deployment's or
    /// StatefulSet's status and Pods are written before the response to the write that
    /// changed it is sent, so the next request sees them. Non-zero: they are written that
    /// long after the write, by a background task (the response never carries them).
    pub controller_delay: Duration,
    /// How many log lines each container has already written; default 10.
    pub log_lines: usize,
    /// With `follow=true`, one more line every `log_interval`; default 100 ms.
    pub log_interval: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            service_ip: None,
            nodes: vec![FakeNode::default()],
            controller_delay: Duration::ZERO,
            log_lines: 10,
            log_interval: Duration::from_millis(100),
        }
    }
}

/// A fault to inject: the next `times` requests whose method matches (any when `None`) and
/// whose path-and-query contains `path_contains` get a Kubernetes `Status` error with this
/// HTTP status and reason, without reaching the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_contains: String,
    /// HTTP status, e.g. 500 or 409.
    pub status: u16,
    /// Kubernetes reason, e.g. `"InternalError"`, `"Conflict"`, `"ServiceUnavailable"`.
    pub reason: String,
    pub times: usize,
}

impl Fault {
    /// A fault for any method, once.
    pub fn new(path_contains: impl Into<String>, status: u16, reason: impl Into<String>) -> Self {
        Self {
            method: None,
            path_contains: path_contains.into(),
            status,
            reason: reason.into(),
            times: 1,
        }
    }

    /// Only requests with this method match.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Match this many requests (0 is treated as 1).
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
}

/// A running fake API server. Dropping it stops the server (connections are closed at once);
/// [`FakeCluster::shutdown`] does the same and waits until the port refuses connections.
pub struct FakeCluster {
    state: Arc<api::State>,
    addr: SocketAddr,
    url: String,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

/// Installs rustls' `ring` provider as the process default, unless one is installed.
///
/// Depending on this crate brings in kube-fake-client, whose `jsonschema` dependency enables
/// rustls' `aws-lc-rs` provider beside the `ring` one kube uses; with two providers compiled
/// in, rustls refuses to choose and building any `kube::Client` panics. [`FakeCluster::start`]
/// calls this; call it yourself before building a client in a test that starts no fake.
pub fn install_rustls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl FakeCluster {
    /// Seeds the store (namespaces `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease`; the configured nodes), binds the listen address and serves.
    pub async fn start(options: FakeOptions) -> Result<FakeCluster, Error> {
        install_rustls_provider();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
        let store = storage::build_store(&options).await?;
        let state = Arc::new(api::State::new(store, options, addr, shutdown_tx));
        let accept_task = tokio::spawn(server::serve(listener, state.clone(), shutdown_rx));
        tracing::info!(%addr, "grid-fake-cluster (a development stand-in, not a cluster) listening");
        Ok(FakeCluster {
            state,
            addr,
            url: format!("http://{addr}"),
            accept_task: Mutex::new(Some(accept_task)),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Config` for this server (no credentials, default namespace `default`).
    pub fn kube_config(&self) -> kube::Config {
        let url = self.url.parse().expect("the server URL is a valid URI");
        kube::Config::new(url)
    }

    /// A `kube::Client` over HTTP to this server, built as the gateway builds its own:
    /// `kube::Config::new(url)` then `kube::Client::try_from`. Must be called inside a Tokio
    /// runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("a plain-HTTP kube::Client builds")
    }

    /// A `kube::Client` that reaches the same fake without HTTP, for tests to inspect or seed
    /// objects directly. It has the same semantics as the HTTP side (namespaces, dry run,
    /// controllers), but its requests are not in [`FakeCluster::requests`], faults do not
    /// apply to it, and it keeps working after [`FakeCluster::shutdown`].
    pub fn in_memory(&self) -> kube::Client {
        kube::Client::new(api::Direct(self.state.clone()), "default")
    }

    /// The kubeconfig YAML for this server: one cluster, one user without credentials, one
    /// context (namespace `default`), all named `grid-fake`.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "# grid-fake-cluster: a DEVELOPMENT STAND-IN for a Kubernetes API server, not a cluster.\n\
             apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: grid-fake\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: grid-fake\n  user: {{}}\n\
             contexts:\n\
             - name: grid-fake\n  context:\n    cluster: grid-fake\n    user: grid-fake\n    namespace: default\n\
             current-context: grid-fake\n\
             preferences: {{}}\n",
            url = self.url
        )
    }

    /// Writes [`FakeCluster::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Queues a fault (see [`Fault`]); faults are matched in the order they were queued.
    pub fn fail_next(&self, fault: Fault) {
        self.state.push_fault(fault);
    }

    /// Every HTTP request received so far, in order: method and path-and-query as sent
    /// (still percent-encoded). Requests answered by an injected fault are included.
    pub fn requests(&self) -> Vec<(Method, String)> {
        self.state.requests()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Stops serving: the listener is closed, open connections (including log streams) are
    /// dropped, and when this returns new connections are refused.
    pub async fn shutdown(&self) {
        self.state.signal_shutdown();
        let task = self.accept_task.lock().expect("lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.state.signal_shutdown();
        if let Ok(mut guard) = self.accept_task.lock()
            && let Some(task) = guard.take()
        {
            task.abort();
        }
    }
}
