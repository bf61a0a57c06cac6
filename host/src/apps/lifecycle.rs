//! The end of an app's life, and the gateway's memory of apps matched against the cluster.
//!
//! - Chain events: `OrderCancelled` / `OrderCompleted` mark the order ended (its capacity is
//!   free from then on) and tear its app down; `OrderExtended` moves its end.
//! - Expiry: a sweep tears down apps whose order's time is up. The sweep also retries
//!   teardowns that failed earlier (the API server was down), because it looks at every app
//!   that is not deleted yet.
//! - Reconciliation at start: only this gateway's namespaces are looked at (selected by its
//!   identity's labels; other gateways sharing the cluster are never touched). One the
//!   store has no live app for (the gateway died mid-teardown, or its store was restored
//!   from an older backup) is asked about on chain: while its order is active and addressed
//!   to this node, the app is re-adopted (its order and app records rebuilt from the chain
//!   and the namespace's labels and annotations); once the order has ended, or the chain
//!   does not know it, the namespace is deleted. Deploys that were in flight when the
//!   gateway stopped are failed and cleaned; the route table is rebuilt.
//!
//! Each step logs what it did; none of them stops the gateway on a cluster error — they
//! retry on the next sweep.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use grid_chain::{ChainEvent, MarketEvent, OrderId, to_sdk_address};
use grid_cluster::client::ManagedNamespace;
use grid_cluster::labels;
use grid_policy_sdk::{Order, OrderStatus};

use super::{Cluster, Inner};
use crate::error::{Error, Result};
use crate::policy::unix_now;
use crate::store::{AppRecord, AppStatus, OrderRecord, OrderState};

/// What the chain says of the order of an own namespace the store has no live app for.
enum OnChain {
    /// Active, addressed to this node, not past its end: adopt the app.
    Active(Box<Order>),
    /// Ended, expired, someone else's, or unknown to the Market: delete the namespace.
    Gone,
    /// No chain configured: nothing can be told, so the namespace is left alone.
    Unknown,
}

/// The lifecycle side of the app service.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

/// What a reconciliation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Namespaces deleted because nothing live owns them.
    pub orphans_deleted: Vec<String>,
    /// Deploys that were in flight at start, now failed and cleaned.
    pub interrupted: Vec<String>,
    /// Own namespaces the store did not know, whose order is active on chain: their app
    /// records (and order records, when missing) rebuilt from the chain and the cluster.
    pub adopted: Vec<String>,
    /// Apps torn down because their order ended.
    pub ended: Vec<String>,
    /// Available apps kept (their routes restored).
    pub restored: usize,
}

impl Lifecycle {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Lifecycle { inner }
    }

    /// Applies one chain event to the order it is about (if this node accepted it).
    pub async fn on_event(&self, event: &ChainEvent) -> Result<()> {
        let id = event.order_id.to_string();
        let Some(mut order) = self.inner.store.order(&id)? else {
            return Ok(());
        };
        let (state, code, reason) = match &event.event {
            MarketEvent::Cancelled { .. } => (
                OrderState::Cancelled,
                "order_cancelled",
                "its order was cancelled on chain",
            ),
            MarketEvent::Completed => (
                OrderState::Completed,
                "order_completed",
                "its order completed on chain",
            ),
            MarketEvent::Extended {
                duration_secs,
                amount,
                ..
            } => {
                order.order.duration_secs = *duration_secs;
                order.order.payment = *amount;
                self.inner.store.put_order(&order)?;
                self.inner.refresh_routes(unix_now())?;
                tracing::info!(order = %id, duration_secs, "order extended");
                return Ok(());
            }
            _ => return Ok(()),
        };
        if order.state != state {
            order.state = state;
            self.inner.store.put_order(&order)?;
            tracing::info!(order = %id, ?state, "order ended on chain; its capacity is free");
        }
        self.teardown_if_live(&id, code, reason).await
    }

    async fn teardown_if_live(&self, order_id: &str, code: &str, reason: &str) -> Result<()> {
        let live = self
            .inner
            .store
            .app(order_id)?
            .is_some_and(|a| a.status != AppStatus::Deleted);
        if live && self.inner.cluster.is_some() {
            self.inner.teardown(order_id, code, reason).await?;
        }
        self.inner.refresh_routes(unix_now())
    }

    /// One expiry sweep: tears down every app that is not deleted and whose order is not
    /// running any more (time up, ended, or gone from the store). Returns the orders torn
    /// down.
    pub async fn sweep(&self) -> Result<Vec<String>> {
        let now = unix_now();
        let mut done = Vec::new();
        for app in self.inner.store.apps()? {
            if app.status == AppStatus::Deleted {
                continue;
            }
            let order = self.inner.store.order(&app.order_id)?;
            let (code, reason) = match &order {
                Some(o) if o.is_running(now) => {
                    if app.status == AppStatus::Available {
                        self.check_present(&app.order_id, &app.namespace).await;
                    }
                    continue;
                }
                Some(o) if o.state == OrderState::Cancelled => {
                    ("order_cancelled", "its order was cancelled on chain")
                }
                Some(o) if o.state == OrderState::Completed => {
                    ("order_completed", "its order completed on chain")
                }
                _ => ("order_expired", "its order's time is up"),
            };
            match self.inner.teardown(&app.order_id, code, reason).await {
                Ok(_) => done.push(app.order_id),
                Err(e) => {
                    tracing::warn!(order = %app.order_id, error = %e, "teardown failed; retrying on the next sweep")
                }
            }
        }
        // Orders past their end drop out of the route table even before the teardown.
        self.inner.refresh_routes(now)?;
        Ok(done)
    }

    /// Fails an available app whose namespace or workloads are gone from the cluster
    /// (deleted by hand, by another tool): `failed` with `app_vanished`, its route gone,
    /// what is left of its namespace deleted, counted in `grid_gateway_apps_vanished`.
    /// A cluster error is logged and left to the next sweep.
    async fn check_present(&self, order_id: &str, namespace: &str) {
        let Ok(cluster) = self.inner.cluster() else {
            return;
        };
        match cluster.client.app_present(namespace).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = cluster.client.delete_namespace(namespace).await {
                    tracing::warn!(order = %order_id, error = %e, "vanished app: cannot delete what is left of its namespace");
                }
                let now = unix_now();
                let written = self.inner.store.update_app(order_id, |current| {
                    let mut next = current.filter(|c| c.status == AppStatus::Available)?;
                    next.status = AppStatus::Failed;
                    next.code = Some("app_vanished".into());
                    next.reason = Some(
                        "its namespace or workloads vanished from the cluster; deploy again".into(),
                    );
                    next.entrance = None;
                    next.generation += 1;
                    next.updated_at = now;
                    Some(next)
                });
                match written {
                    Ok(Some(_)) => {
                        self.inner.vanished.inc();
                        tracing::warn!(order = %order_id, %namespace, "app vanished from the cluster; failed");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(order = %order_id, error = %e, "cannot record a vanished app")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(order = %order_id, error = %e, "cannot check the app's presence")
            }
        }
    }

    /// Matches the store against the cluster (see the module doc).
    pub async fn reconcile(&self) -> Result<Reconciled> {
        let cluster = self.inner.cluster()?;
        let mut report = Reconciled::default();
        for app in self.inner.store.apps()? {
            if app.status == AppStatus::Deploying {
                // The deploy's task died with the process; what it applied may be half
                // done, so clean it and say so rather than guess.
                cluster.client.delete_namespace(&app.namespace).await?;
                let now = unix_now();
                self.inner.store.update_app(&app.order_id, |current| {
                    let mut next = current?;
                    next.status = AppStatus::Failed;
                    next.code = Some("deploy_interrupted".into());
                    next.reason =
                        Some("the gateway restarted while it deployed; deploy again".into());
                    next.generation += 1;
                    next.updated_at = now;
                    Some(next)
                })?;
                report.interrupted.push(app.order_id);
            }
        }
        report.ended = self.sweep().await?;
        let live: HashSet<String> = self
            .inner
            .store
            .apps()?
            .into_iter()
            .filter(|a| matches!(a.status, AppStatus::Available | AppStatus::Deploying))
            .map(|a| a.namespace)
            .collect();
        for namespace in cluster.client.managed_namespaces().await? {
            if live.contains(&namespace.name) {
                continue;
            }
            // The order a namespace is for: its label, agreeing with its name.
            let identity = cluster.client.identity();
            let order_id = namespace
                .order_id
                .clone()
                .filter(|id| identity.namespace_for(id).as_deref() == Some(&namespace.name));
            let verdict = match &order_id {
                Some(id) => self.order_on_chain(id).await?,
                None => OnChain::Gone,
            };
            match (verdict, order_id) {
                (OnChain::Active(order), Some(id)) => {
                    match self.adopt(cluster, &namespace, *order).await {
                        Ok(()) => report.adopted.push(id),
                        Err(e) => {
                            tracing::warn!(namespace = %namespace.name, error = %e, "cannot adopt the app of an active order; its namespace is kept")
                        }
                    }
                }
                (OnChain::Unknown, _) => {
                    tracing::warn!(namespace = %namespace.name, "no chain to ask about this namespace's order; left alone")
                }
                _ => {
                    cluster.client.delete_namespace(&namespace.name).await?;
                    tracing::info!(namespace = %namespace.name, order = ?namespace.order_id, "orphan namespace deleted: its order has ended");
                    report.orphans_deleted.push(namespace.name);
                }
            }
        }
        self.inner.refresh_routes(unix_now())?;
        report.restored = self.inner.routes.len();
        tracing::info!(?report, "reconciled apps with the cluster");
        Ok(report)
    }

    /// Reads `order_id` from the chain: is it still this node's live order?
    async fn order_on_chain(&self, order_id: &str) -> Result<OnChain> {
        let Some(chain) = &self.inner.chain else {
            return Ok(OnChain::Unknown);
        };
        let id: OrderId = order_id
            .parse()
            .map_err(|_| Error::InvalidOrderId(order_id.to_owned()))?;
        let read = tokio::time::timeout(self.inner.chain_timeout, chain.order(id))
            .await
            .map_err(|_| {
                Error::ChainUnavailable(format!(
                    "order {order_id} not read within {:?}",
                    self.inner.chain_timeout
                ))
            })?;
        let order = match read {
            Ok(order) => order,
            Err(grid_chain::Error::OrderNotFound { .. }) => return Ok(OnChain::Gone),
            // Unreachable or unreadable: nothing is deleted on a guess; reconciliation
            // is retried.
            Err(e) => return Err(Error::from_chain(e)),
        };
        let ours = order.provider == to_sdk_address(chain.wallet_address());
        let ends = order
            .start_time
            .unwrap_or(0)
            .saturating_add(order.duration_secs);
        Ok(
            if ours && order.status == OrderStatus::Active && ends > unix_now() {
                OnChain::Active(Box::new(order))
            } else {
                OnChain::Gone
            },
        )
    }

    /// Rebuilds the records of the app in `namespace` for the active `order`: the order
    /// (when the store lacks it or holds it as not running) from the chain, the app from
    /// the namespace's annotations, its entrance from its Service.
    async fn adopt(
        &self,
        cluster: &Cluster,
        namespace: &ManagedNamespace,
        order: Order,
    ) -> Result<()> {
        let now = unix_now();
        let id = order.id.clone();
        let annotation = |key: &str| namespace.annotations.get(key).cloned();
        let service = annotation(labels::ENTRANCE_SERVICE_ANNOTATION);
        let port = annotation(labels::ENTRANCE_PORT_ANNOTATION).and_then(|p| p.parse().ok());
        let (Some(service), Some(port)) = (service, port) else {
            return Err(Error::Cluster(grid_cluster::ClusterError::Protocol(
                format!("namespace {} has no entrance annotations", namespace.name),
            )));
        };
        let entrance = super::deploy::entrance(cluster, &namespace.name, &service, port)
            .await
            .map_err(|f| {
                Error::Cluster(grid_cluster::ClusterError::Protocol(format!(
                    "{}: {}",
                    f.code, f.reason
                )))
            })?;
        if !self
            .inner
            .store
            .order(&id)?
            .is_some_and(|o| o.is_running(now))
        {
            self.inner.store.put_order(&OrderRecord {
                order: order.clone(),
                state: OrderState::Active,
                tx_hash: None,
                accepted_at: now,
            })?;
        }
        self.inner.store.update_app(&id, |current| {
            Some(AppRecord {
                order_id: id.clone(),
                user: order.user,
                namespace: namespace.name.clone(),
                manifest_url: annotation(labels::MANIFEST_URL_ANNOTATION).unwrap_or_default(),
                status: AppStatus::Available,
                code: None,
                reason: None,
                conditions: Vec::new(),
                entrance: Some(entrance.clone()),
                pod_selector: annotation(labels::POD_SELECTOR_ANNOTATION),
                generation: current.map_or(1, |c| c.generation + 1),
                updated_at: now,
            })
        })?;
        tracing::info!(order = %id, namespace = %namespace.name, %entrance, "app re-adopted: its order is active on chain");
        Ok(())
    }

    /// Runs reconciliation (retrying until it succeeds), then sweeps every `interval`.
    pub async fn run_sweeper(self, interval: Duration) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.reconcile().await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reconciliation failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(interval.max(Duration::from_secs(1)));
                }
            }
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "expiry sweep failed");
            }
        }
    }

    /// Applies chain events as they arrive, until the channel closes.
    pub async fn run_events(self, mut events: tokio::sync::mpsc::Receiver<ChainEvent>) {
        while let Some(event) = events.recv().await {
            if let Err(e) = self.on_event(&event).await {
                // The order's state is written before the teardown; a failed teardown is
                // retried by the sweep, which sees the ended order.
                tracing::warn!(order = %event.order_id, error = %e, "chain event not fully applied");
            }
        }
    }
}
