//! The assembled node: store, policies, chain client, capacity, and the services built on
//! them, from a [`Config`]. The HTTP layer holds an `Arc<Gateway>` and calls its services.

use std::sync::Arc;
use std::time::Duration;

use grid_chain::{ChainClient, NodeWallet, OrderId};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::apps::AppService;
use crate::auth::{AuthService, AuthSettings, KeyRing, cookie_name, siwe};
use crate::capacity::{
    Capacity, CapacitySnapshot, CapacitySource, RefreshedCapacity, StaticCapacity,
};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::GatewayMetrics;
use crate::orders::{Hooks, OrderService, OrderTimeouts};
use crate::policy::{
    self, EngineError, PolicyEngine, PolicyMetrics, PolicySet, WatcherHandle, WorldStatus,
};
use crate::process::ProcessService;
use crate::proxy::{Forwarder, ProxyMetrics};
use crate::settlement::{SettlementMetrics, Settler};
use crate::store::{Store, StoreError};

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store could not be opened (another gateway may hold the file).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The session keys could not be loaded or generated.
    #[error("session keys: {0}")]
    Keys(String),
    /// The policy engine could not start.
    #[error("policy engine: {0}")]
    Engine(#[from] EngineError),
    /// `[policy.recording]` cannot start (its directory).
    #[error(transparent)]
    PolicyRecording(#[from] crate::policy::recording::RecordingError),
    /// `[policy.oci]` is unusable (its credentials file, say).
    #[error("policy registry: {0}")]
    PolicyRegistry(#[from] crate::oci::OciError),
    /// The node wallet or the chain client could not be set up.
    #[error("chain: {0}")]
    Chain(#[from] grid_chain::Error),
    /// The capacity in the config is unusable.
    #[error("{0}")]
    Capacity(String),
    /// The cluster client could not be set up.
    #[error("cluster: {0}")]
    Cluster(#[from] grid_cluster::ClusterError),
    /// The app service could not start (its manifest fetcher, or the store).
    #[error("apps: {0}")]
    Apps(#[from] Error),
    /// The TLS settings or certificate files are unusable.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The ACME state in `data_dir/acme` is unusable.
    #[error("tls.acme: {0}")]
    Acme(#[from] crate::tls::acme::AcmeError),
}

/// `/_grid/v1/node`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// The node wallet (orders must name it as provider).
    pub wallet: String,
    /// The chain id.
    pub chain_id: u64,
    /// The Market, if a chain is configured.
    pub market: Option<String>,
    /// Total and free capacity.
    pub capacity: CapacitySnapshot,
    /// The policies in service and their last reload errors.
    pub policies: Vec<WorldStatus>,
    /// The certificates from files and their last reload errors (absent without `[tls]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Vec<crate::tls::CertificateStatus>>,
    /// The certificates from ACME, per host: validity, renewal time, failures (absent
    /// without `[tls.acme]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<Vec<crate::tls::AcmeHostStatus>>,
}

/// `/_grid/readyz`.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    /// All of the below.
    pub ready: bool,
    /// The store answers.
    pub store: bool,
    /// Every world has a policy.
    pub policies: bool,
    /// The chain answers (`null` without a chain).
    pub chain: Option<bool>,
    /// The Kubernetes API server answers (`null` without a cluster).
    pub cluster: Option<bool>,
}

/// The node.
pub struct Gateway {
    /// The config it was built from.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The policies in service.
    pub policies: Arc<PolicySet>,
    /// Quote and accept.
    pub orders: OrderService,
    /// Sign-in and sessions.
    pub auth: AuthService,
    /// Deploy, status, logs, teardown of apps.
    pub apps: AppService,
    /// Routing of proxied requests and their authorization.
    pub process: ProcessService,
    /// The reverse proxy to apps.
    pub forwarder: Forwarder,
    /// HTTP and chain metrics.
    pub metrics: GatewayMetrics,
    /// Everything `/_grid/metrics` shows.
    pub registry: Registry,
    /// The certificates the HTTPS listener serves, when `[tls]` is on.
    pub tls: Option<Arc<crate::tls::FileCertificates>>,
    /// Obtains and renews certificates from an ACME CA, when `[tls.acme]` is on.
    pub acme: Option<Arc<crate::tls::AcmeIssuer>>,
    /// Settles the node's orders on chain (`None` without a chain). Started by
    /// [`Gateway::start_background`] when `settlement.enabled`; tests call its `tick`.
    pub settler: Option<Arc<Settler>>,
    /// Keeps the worlds named in `[policy.oci]` on their signed registry artefacts
    /// (`None` when none is named). Polls from [`Gateway::watch_policies`]; tests call its
    /// `check_once`.
    pub policy_follower: Option<Arc<crate::oci::follower::Follower>>,
    watcher: std::sync::Mutex<Option<WatcherHandle>>,
    cluster: Option<grid_cluster::ClusterClient>,
    node_capacity: Option<Arc<RefreshedCapacity>>,
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Gateway {
    /// Builds the node from `config` with the config's capacity. Must run inside a tokio
    /// runtime (the chain client spawns its signer task). Loads the policies once; the
    /// watcher starts with [`Gateway::watch_policies`].
    pub async fn build(config: Config, hooks: Hooks) -> Result<Arc<Gateway>, BuildError> {
        let total = config.capacity.resources().map_err(BuildError::Capacity)?;
        let wallet = load_wallet(&config)?;
        let cluster = connect_cluster(&config, wallet.as_ref()).await?;
        let (capacity, node_capacity): (Arc<dyn CapacitySource>, _) = match (
            &cluster,
            &config.cluster,
        ) {
            (Some(client), Some(cc)) if cc.capacity_from_nodes => {
                let initial = match client.node_capacity().await {
                    Ok(nodes) => nodes,
                    Err(e) => {
                        // Start anyway (the API server may be coming up); the refresher
                        // replaces the config's numbers as soon as the nodes answer.
                        tracing::warn!(error = %e, "cannot read node capacity yet; using [capacity] until it can");
                        total
                    }
                };
                let refreshed = Arc::new(RefreshedCapacity::new(initial));
                (refreshed.clone(), Some(refreshed))
            }
            _ => (Arc::new(StaticCapacity(total)), None),
        };
        Gateway::assemble(config, capacity, wallet, cluster, node_capacity, hooks).await
    }

    /// [`Gateway::build`] with another capacity source.
    pub async fn build_with(
        config: Config,
        capacity: Arc<dyn CapacitySource>,
        hooks: Hooks,
    ) -> Result<Arc<Gateway>, BuildError> {
        let wallet = load_wallet(&config)?;
        let cluster = connect_cluster(&config, wallet.as_ref()).await?;
        Gateway::assemble(config, capacity, wallet, cluster, None, hooks).await
    }

    async fn assemble(
        config: Config,
        capacity: Arc<dyn CapacitySource>,
        wallet: Option<NodeWallet>,
        cluster: Option<grid_cluster::ClusterClient>,
        node_capacity: Option<Arc<RefreshedCapacity>>,
        hooks: Hooks,
    ) -> Result<Arc<Gateway>, BuildError> {
        create_private_dir(&config.data_dir)?;
        let store = Store::open(&config.data_dir)?;

        let mut registry = Registry::default();
        let metrics = GatewayMetrics::default();
        metrics.register(&mut registry);
        let policy_metrics = PolicyMetrics::default();
        policy_metrics.register(&mut registry);
        let engine = PolicyEngine::builder()
            .limits(config.policy.limits.clone())
            .metrics(policy_metrics)
            .compile_cache(
                config.data_dir.join("policy-cache"),
                config.policy.compile_cache_max_bytes,
            )
            .build()?;
        let mut policies = PolicySet::new(engine)
            .with_max_file_bytes(config.policy.max_file_bytes)
            .with_require_signatures(config.policy.require_signatures)
            .with_lifecycle(
                config.policy.shadow.clone(),
                config.policy.keep_previous_versions,
            );
        if config.policy.recording.enabled {
            let metrics = crate::policy::recording::RecordingMetrics::default();
            metrics.register(&mut registry);
            policies = policies.with_recording(crate::policy::recording::Recorder::start(
                &config.policy.recording,
                &config.data_dir,
                metrics,
            )?);
        }
        let policies = Arc::new(policies);
        // Worlds named by reference are marked before the directory is read: neither a
        // file nor the built-in policy stands in for a registry artefact.
        let policy_follower = crate::oci::follower::Follower::new(
            policies.clone(),
            &config.policy.oci,
            &config.data_dir,
        )?
        .map(Arc::new);
        policy::reload(&policies, config.policy.dir.as_deref()).await;
        if let Some(follower) = &policy_follower {
            follower.start().await;
        }
        // A candidate that does not load is logged and counted; the node serves without it.
        crate::oci::follower::load_candidates(
            &policies,
            &config.policy.candidates,
            &config.policy.oci,
        )
        .await;

        let chain = match (&config.chain, wallet) {
            (Some(chain_config), Some(wallet)) => Some(ChainClient::new(
                chain_config.clone(),
                store.database(),
                wallet,
            )?),
            _ => None,
        };
        let chain_id = config.auth_chain_id();
        let settlement_metrics = SettlementMetrics::default();
        settlement_metrics.register(&mut registry);
        let settler = chain.clone().map(|chain| {
            Arc::new(Settler::new(
                chain,
                store.clone(),
                config.settlement.clone(),
                settlement_metrics,
            ))
        });
        let apps = AppService::new(
            store.clone(),
            policies.clone(),
            match (&cluster, &config.cluster) {
                (Some(client), Some(cc)) => Some((client.clone(), cc.clone())),
                _ => None,
            },
            chain
                .clone()
                .map(|chain| (chain, config.http.chain_timeout())),
            metrics.apps_vanished.clone(),
        )?;
        let process = ProcessService::new(
            store.clone(),
            apps.clone(),
            policies.clone(),
            config.process.clone(),
        );
        let tls = match &config.tls {
            Some(tls_config) => {
                let tls_metrics = crate::tls::TlsMetrics::default();
                tls_metrics.register(&mut registry);
                Some(Arc::new(crate::tls::FileCertificates::load(
                    Arc::new(crate::tls::CertStore::new()),
                    tls_config.sources(),
                    tls_metrics,
                )?))
            }
            None => None,
        };
        let acme = match (&tls, config.tls.as_ref().and_then(|t| t.acme.as_ref())) {
            (Some(files), Some(acme_config)) => {
                let acme_metrics = crate::tls::AcmeMetrics::default();
                acme_metrics.register(&mut registry);
                Some(Arc::new(crate::tls::AcmeIssuer::load(
                    acme_config.clone(),
                    &config.data_dir,
                    files.store().clone(),
                    acme_metrics,
                )?))
            }
            _ => None,
        };
        let proxy_metrics = ProxyMetrics::default();
        proxy_metrics.register(&mut registry);
        let forwarder = Forwarder::with_metrics(config.proxy.clone(), proxy_metrics);
        let orders = OrderService::new(
            chain.clone(),
            policies.clone(),
            Capacity::new(capacity, store.clone()),
            store.clone(),
            metrics.clone(),
            OrderTimeouts {
                read: config.http.chain_timeout(),
                accept: config.http.accept_timeout(),
            },
            chain_id,
            hooks,
        );
        let keys = KeyRing::load(&config.session, &config.data_dir).map_err(BuildError::Keys)?;
        let auth = AuthService::new(
            store.clone(),
            chain,
            policies.clone(),
            keys,
            AuthSettings {
                expect: siwe::Expectations {
                    domain: config.auth.domain.clone(),
                    origins: config.http.cors_origins.clone(),
                    chain_id,
                    skew_secs: config.auth.clock_skew_secs,
                },
                nonce_ttl_secs: config.auth.nonce_ttl_secs,
                nonce_rate_per_sec: config.auth.nonce_rate_per_sec,
                nonce_burst: config.auth.nonce_burst,
                max_lifetime_secs: config.session.max_lifetime_secs,
                cookie_name: cookie_name(config.session.secure),
            },
        );
        Ok(Arc::new(Gateway {
            config,
            store,
            policies,
            orders,
            auth,
            apps,
            process,
            forwarder,
            metrics,
            registry,
            tls,
            acme,
            settler,
            policy_follower,
            watcher: std::sync::Mutex::new(None),
            cluster,
            node_capacity,
            background: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// Starts watching the policy directory, if one is configured, and following the
    /// registry references of `[policy.oci]`.
    pub fn watch_policies(&self) {
        if let Some(follower) = &self.policy_follower {
            let task = follower.clone().spawn();
            self.background
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
        if let Some(dir) = &self.config.policy.dir {
            let handle = policy::spawn_watcher(
                self.policies.clone(),
                dir.clone(),
                self.config.policy.watch.clone(),
            );
            *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
    }

    /// Starts the background work: following the chain's events (orders ending), settling
    /// orders (a first pass at once: orders whose time ran out while the node was down), the
    /// expiry sweep and reconciliation with the cluster, refreshing node capacity.
    pub fn start_background(&self) {
        let mut tasks = Vec::new();
        if let Some(chain) = self.orders.chain() {
            let (sender, events) = tokio::sync::mpsc::channel(256);
            match chain.follower(sender) {
                Ok(follower) => {
                    tasks.push(tokio::spawn(async move {
                        if let Err(e) = follower.run().await {
                            tracing::error!(error = %e, "chain event follower stopped");
                        }
                    }));
                    tasks.push(tokio::spawn(self.apps.lifecycle().run_events(events)));
                }
                Err(e) => tracing::error!(error = %e, "cannot follow the chain's events"),
            }
        }
        if let (Some(files), Some(tls)) = (&self.tls, &self.config.tls) {
            tasks.push(files.clone().spawn_watcher(tls.reload_poll()));
        }
        if let Some(acme) = &self.acme {
            let apps = Arc::new(AvailableAppHosts {
                apps: self.apps.clone(),
                domain: self.config.process.apps_domain.clone(),
            });
            tasks.push(tokio::spawn(acme.clone().run(apps)));
        }
        if let Some(settler) = &self.settler
            && self.config.settlement.enabled
        {
            tasks.push(tokio::spawn(settler.clone().run()));
        }
        if let (Some(_), Some(cc)) = (&self.cluster, &self.config.cluster) {
            tasks.push(tokio::spawn(
                self.apps.lifecycle().run_sweeper(cc.sweep_interval()),
            ));
        }
        if let (Some(client), Some(refreshed), Some(cc)) =
            (&self.cluster, &self.node_capacity, &self.config.cluster)
        {
            let (client, refreshed, every) =
                (client.clone(), refreshed.clone(), cc.capacity_refresh());
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match client.node_capacity().await {
                        Ok(total) => refreshed.set(total),
                        Err(e) => tracing::warn!(error = %e, "cannot refresh node capacity"),
                    }
                }
            }));
        }
        self.background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
    }

    /// Stops the policy watcher and the background work.
    pub async fn stop(&self) {
        for task in self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let handle = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.stop().await;
        }
    }

    /// What `/_grid/v1/node` shows.
    pub fn node_status(&self) -> Result<NodeStatus, Error> {
        let capacity = self.orders.capacity().snapshot(policy::unix_now(), None)?;
        Ok(NodeStatus {
            // EIP-55 checksummed, like `market`.
            wallet: match self.orders.chain() {
                Some(c) => c.wallet_address().to_string(),
                None => self.orders.wallet().to_string(),
            },
            chain_id: self.config.auth_chain_id(),
            market: self.config.chain.as_ref().map(|c| c.market.to_string()),
            capacity,
            policies: self.policies.status(),
            tls: self.tls.as_ref().map(|files| files.status()),
            acme: self.acme.as_ref().map(|acme| acme.status()),
        })
    }

    /// Readiness: store open, policies loaded, chain reachable.
    pub async fn readiness(&self) -> Readiness {
        let store = self.store.is_healthy();
        let policies = self.policies.all_loaded();
        let chain = match self.orders.chain() {
            // Reading order 0 is the cheapest call that proves the Market answers: it
            // exists or reverts with OrderNotFound; either way the chain is reachable.
            Some(client) => Some(matches!(
                tokio::time::timeout(Duration::from_secs(2), client.order(OrderId::from(0))).await,
                Ok(Ok(_)) | Ok(Err(grid_chain::Error::OrderNotFound { .. }))
            )),
            None => None,
        };
        let cluster = match &self.cluster {
            Some(client) => Some(client.namespace_exists("default").await.is_ok()),
            None => None,
        };
        Readiness {
            ready: store && policies && chain.unwrap_or(true) && cluster.unwrap_or(true),
            store,
            policies,
            chain,
            cluster,
        }
    }
}

/// The node wallet, when `[chain]` is configured.
fn load_wallet(config: &Config) -> Result<Option<NodeWallet>, BuildError> {
    match &config.chain {
        Some(chain_config) => Ok(Some(NodeWallet::load(&chain_config.key_source()?)?)),
        None => Ok(None),
    }
}

/// Who this node is in a cluster: its chain id, Market and wallet (zero addresses without
/// a chain). Names its namespaces, labels and selects its objects, names its field manager.
pub fn cluster_identity(config: &Config, wallet: Option<&NodeWallet>) -> grid_cluster::Identity {
    let chain_id = config
        .chain
        .as_ref()
        .map_or(config.auth_chain_id(), |c| c.chain_id);
    let market = config.chain.as_ref().map_or([0; 20], |c| c.market.0.0);
    let wallet = wallet.map_or([0; 20], |w| w.address().0.0);
    grid_cluster::Identity::new(chain_id, market, wallet)
}

/// The cluster client, when `[cluster]` is configured. Builds the client only; nothing is
/// asked of the API server here, so a node starts while its API server is down.
async fn connect_cluster(
    config: &Config,
    wallet: Option<&NodeWallet>,
) -> Result<Option<grid_cluster::ClusterClient>, BuildError> {
    match &config.cluster {
        Some(cc) => Ok(Some(
            grid_cluster::ClusterClient::connect(
                cc.kubeconfig.as_deref(),
                cc.api_timeout(),
                cluster_identity(config, wallet),
            )
            .await?,
        )),
        None => Ok(None),
    }
}

fn create_private_dir(path: &std::path::Path) -> Result<(), BuildError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| BuildError::DataDir {
            path: path.to_owned(),
            source,
        })
}

/// The hosts of the apps available now: `<order-id>.<apps_domain>` for each (none without
/// an apps domain), what `[tls.acme] on_demand_apps` orders certificates for.
struct AvailableAppHosts {
    apps: AppService,
    domain: Option<String>,
}

impl crate::tls::acme::AppHosts for AvailableAppHosts {
    fn app_hosts(&self) -> Vec<String> {
        let Some(domain) = &self.domain else {
            return Vec::new();
        };
        self.apps
            .routes()
            .order_ids()
            .into_iter()
            .map(|id| format!("{id}.{domain}"))
            .collect()
    }
}
