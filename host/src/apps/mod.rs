//! Deploy: a signed-in user's app from a manifest URL into their order's sandbox, its
//! status, logs and teardown; and the end of an app's life when its order ends.
//!
//! - [`AppService`] (this file): the requests a user makes. Fetch and checks happen while
//!   the request waits, so a refused manifest is answered with its own status and code;
//!   the apply and the wait for readiness run in the background (`deploy`).
//! - `lifecycle`: teardown when the chain says an order ended or its time is up, and
//!   reconciliation of the store against the cluster at start.
//! - `routes`: the in-memory table of available apps the proxy reads on every request.
//!
//! Nothing here knows about HTTP; nothing here builds Kubernetes objects (grid-cluster does).

mod deploy;
mod lifecycle;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use grid_chain::ChainClient;
use grid_cluster::fetch::Fetcher;
use grid_cluster::{ClusterClient, ClusterConfig};
use grid_policy_sdk::{Address, Decision, RequestMeta};
use serde::Serialize;
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::policy::{PolicySet, unix_now};
use crate::store::{AppRecord, AppStatus, OrderRecord, Store};

pub use lifecycle::Lifecycle;
pub use routes::{Route, RouteTable};

/// The answer to a deploy: the order, its namespace and `deploying`.
#[derive(Clone, Debug, Serialize)]
pub struct DeployAccepted {
    /// The order.
    pub order_id: String,
    /// The namespace the app goes into.
    pub namespace: String,
    /// Always `deploying`.
    pub status: &'static str,
}

/// The app service.
#[derive(Clone)]
pub struct AppService {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Store,
    policies: Arc<PolicySet>,
    /// `None` when no cluster is configured: every app call answers `cluster_not_configured`.
    cluster: Option<Cluster>,
    routes: RouteTable,
    /// The chain, to tell at start whether an own namespace the store does not know
    /// belongs to an order still active (re-adopted) or ended (removed).
    chain: Option<ChainClient>,
    /// Bound on one read of an order from the chain.
    chain_timeout: std::time::Duration,
    /// Counts available apps found vanished by the sweep.
    vanished: prometheus_client::metrics::counter::Counter,
    /// The background deploy of each order, so a newer deploy or a teardown stops it.
    tasks: Mutex<HashMap<String, AbortHandle>>,
}

/// What the service needs of a configured cluster.
pub(crate) struct Cluster {
    client: ClusterClient,
    fetcher: Fetcher,
    config: ClusterConfig,
}

impl AppService {
    /// The service. Without `cluster`, apps cannot be deployed; without `chain` (and the
    /// bound on a read from it), own namespaces the store does not know are left alone.
    pub fn new(
        store: Store,
        policies: Arc<PolicySet>,
        cluster: Option<(ClusterClient, ClusterConfig)>,
        chain: Option<(ChainClient, std::time::Duration)>,
        vanished: prometheus_client::metrics::counter::Counter,
    ) -> Result<Self> {
        let (chain, chain_timeout) = match chain {
            Some((client, timeout)) => (Some(client), timeout),
            None => (None, std::time::Duration::from_secs(10)),
        };
        let cluster = match cluster {
            Some((client, config)) => Some(Cluster {
                fetcher: Fetcher::new(config.fetch.clone())?,
                client,
                config,
            }),
            None => None,
        };
        let service = AppService {
            inner: Arc::new(Inner {
                store,
                policies,
                cluster,
                routes: RouteTable::default(),
                chain,
                chain_timeout,
                vanished,
                tasks: Mutex::new(HashMap::new()),
            }),
        };
        service.inner.refresh_routes(unix_now())?;
        Ok(service)
    }

    /// The table of available apps (for the proxy).
    pub fn routes(&self) -> &RouteTable {
        &self.inner.routes
    }

    /// Rebuilds the route table from the store (every change of an app's state does).
    pub fn refresh_routes(&self) -> Result<()> {
        self.inner.refresh_routes(unix_now())
    }

    /// The namespace this node deploys `order_id` into (`None` without a cluster, or for an
    /// id that names no namespace).
    pub fn namespace_of(&self, order_id: &str) -> Option<String> {
        self.inner
            .cluster
            .as_ref()?
            .client
            .identity()
            .namespace_for(order_id)
    }

    /// The order-lifecycle side: teardown on chain events and expiry, reconciliation.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle::new(self.inner.clone())
    }

    /// `POST /_grid/v1/apps`: checks the caller and the order, asks the authorization
    /// policy, fetches and checks the manifest, then applies it in the background.
    pub async fn deploy(
        &self,
        caller: &Address,
        scopes: &[String],
        order_id: &str,
        manifest_url: &str,
    ) -> Result<DeployAccepted> {
        let cluster = self.inner.cluster()?;
        let now = unix_now();
        let order = self.inner.owned_order(caller, order_id)?;
        if !order.is_running(now) {
            return Err(Error::OrderNotRunning {
                id: order_id.to_owned(),
                why: not_running_why(&order, now),
            });
        }
        self.inner
            .authorize(caller, scopes, "POST", "/_grid/v1/apps", order_id)
            .await?;
        let fetched = cluster.fetcher.fetch(manifest_url).await?;
        let plan = grid_cluster::plan::prepare(
            fetched.bytes,
            &grid_cluster::plan::PlanInput {
                identity: cluster.client.identity(),
                order_id,
                user: &caller.to_string(),
                resources: &order.order.resources,
            },
            &cluster.config,
        )
        .await
        .map_err(Error::from_plan)?;
        let mut plan = plan;
        if let Some(namespace) = plan.sandbox.first_mut() {
            *namespace = namespace
                .clone()
                .with_annotations(&[(grid_cluster::labels::MANIFEST_URL_ANNOTATION, manifest_url)]);
        }
        let namespace = plan.namespace.clone();
        let record = self
            .inner
            .store
            .update_app(order_id, |current| {
                Some(AppRecord {
                    order_id: order_id.to_owned(),
                    user: *caller,
                    namespace: namespace.clone(),
                    manifest_url: manifest_url.to_owned(),
                    status: AppStatus::Deploying,
                    code: None,
                    reason: None,
                    conditions: Vec::new(),
                    entrance: None,
                    pod_selector: Some(plan.pod_selector.clone()),
                    generation: current.map_or(1, |c| c.generation + 1),
                    updated_at: now,
                })
            })?
            .ok_or_else(|| Error::AppNotFound(order_id.to_owned()))?;
        self.inner.refresh_routes(now)?;
        let inner = self.inner.clone();
        let generation = record.generation;
        let order_key = order_id.to_owned();
        let task = tokio::spawn(async move {
            deploy::run(inner, order_key, generation, plan).await;
        });
        self.inner.replace_task(order_id, Some(task.abort_handle()));
        Ok(DeployAccepted {
            order_id: order_id.to_owned(),
            namespace,
            status: AppStatus::Deploying.as_str(),
        })
    }

    /// `GET /_grid/v1/apps/{order_id}`.
    pub fn status(&self, caller: &Address, order_id: &str) -> Result<AppRecord> {
        let app = self
            .inner
            .store
            .app(order_id)?
            .ok_or_else(|| Error::AppNotFound(order_id.to_owned()))?;
        if &app.user != caller {
            return Err(Error::NotOrderOwner(order_id.to_owned()));
        }
        Ok(app)
    }

    /// `DELETE /_grid/v1/apps/{order_id}`: tears the app down (its namespace goes).
    pub async fn delete(&self, caller: &Address, order_id: &str) -> Result<AppRecord> {
        self.inner.cluster()?;
        self.status(caller, order_id)?;
        self.inner
            .teardown(order_id, "deleted_by_user", "deleted by its user")
            .await
    }

    /// `GET /_grid/v1/apps/{order_id}/logs`: the log of the app's first pod.
    pub async fn logs(
        &self,
        caller: &Address,
        order_id: &str,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + use<>>
    {
        let cluster = self.inner.cluster()?;
        let app = self.status(caller, order_id)?;
        if matches!(app.status, AppStatus::Failed | AppStatus::Deleted) {
            return Err(Error::AppNotRunning {
                id: order_id.to_owned(),
                status: app.status.as_str(),
            });
        }
        let selector = app
            .pod_selector
            .ok_or_else(|| Error::NoPods(order_id.to_owned()))?;
        cluster
            .client
            .logs(&app.namespace, &selector, follow, tail_lines)
            .await?
            .ok_or_else(|| Error::NoPods(order_id.to_owned()))
    }
}

fn not_running_why(order: &OrderRecord, now: u64) -> &'static str {
    use crate::store::OrderState;
    match order.state {
        OrderState::Accepted => "its lock is not confirmed yet",
        OrderState::Cancelled => "cancelled",
        OrderState::Completed => "completed",
        OrderState::Active if order.ends_at() <= now => "its time is up",
        OrderState::Active => "active",
    }
}

impl Inner {
    fn cluster(&self) -> Result<&Cluster> {
        self.cluster.as_ref().ok_or(Error::ClusterNotConfigured)
    }

    /// The order, if this node accepted it and `caller` is its user.
    fn owned_order(&self, caller: &Address, order_id: &str) -> Result<OrderRecord> {
        let order = self
            .store
            .order(order_id)?
            .ok_or_else(|| Error::OrderNotAccepted(order_id.to_owned()))?;
        if &order.order.user != caller {
            return Err(Error::NotOrderOwner(order_id.to_owned()));
        }
        Ok(order)
    }

    async fn authorize(
        &self,
        caller: &Address,
        scopes: &[String],
        method: &str,
        path: &str,
        order_id: &str,
    ) -> Result<()> {
        let meta = RequestMeta {
            method: method.to_owned(),
            path: path.to_owned(),
            host: None,
            headers: Vec::new(),
            caller: Some(*caller),
            order_id: Some(order_id.to_owned()),
            scopes: scopes.to_vec(),
        };
        match self.policies.authorize_request(meta).await? {
            Decision::Allow => Ok(()),
            Decision::Deny { reason } => Err(Error::RequestDenied(reason)),
        }
    }

    /// Records the running deploy of an order, stopping the one before it.
    fn replace_task(&self, order_id: &str, task: Option<AbortHandle>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let previous = match task {
            Some(task) => tasks.insert(order_id.to_owned(), task),
            None => tasks.remove(order_id),
        };
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Rebuilds the route table from the store: available apps of running orders.
    pub(crate) fn refresh_routes(&self, now: u64) -> Result<()> {
        let orders: HashMap<String, OrderRecord> = self
            .store
            .orders()?
            .into_iter()
            .map(|o| (o.order.id.clone(), o))
            .collect();
        let routes = self
            .store
            .apps()?
            .into_iter()
            .filter(|app| app.status == AppStatus::Available)
            .filter(|app| orders.get(&app.order_id).is_some_and(|o| o.is_running(now)))
            .filter_map(|app| {
                let entrance = app.entrance.as_deref()?.parse().ok()?;
                Some(Route {
                    order_id: app.order_id,
                    user: app.user,
                    entrance,
                })
            });
        self.routes.replace(routes);
        Ok(())
    }

    /// Tears an app down: stops its deploy, deletes its namespace, records `Deleted` with
    /// `code` and `reason`. On a cluster error the record is left as it was, so the caller
    /// (or the next sweep) can try again.
    pub(crate) async fn teardown(
        &self,
        order_id: &str,
        code: &str,
        reason: &str,
    ) -> Result<AppRecord> {
        let cluster = self.cluster()?;
        let app = self
            .store
            .app(order_id)?
            .ok_or_else(|| Error::AppNotFound(order_id.to_owned()))?;
        self.replace_task(order_id, None);
        cluster.client.delete_namespace(&app.namespace).await?;
        let now = unix_now();
        let record = self
            .store
            .update_app(order_id, |current| {
                let mut next = current?;
                next.status = AppStatus::Deleted;
                next.code = Some(code.to_owned());
                next.reason = Some(reason.to_owned());
                next.entrance = None;
                next.generation += 1;
                next.updated_at = now;
                Some(next)
            })?
            .ok_or_else(|| Error::AppNotFound(order_id.to_owned()))?;
        self.refresh_routes(now)?;
        tracing::info!(order = order_id, namespace = %app.namespace, code, "app torn down");
        Ok(record)
    }
}
