//! The end of an app's life, and the gateway's memory of apps matched against the cluster.
//!
//! - Chain events: `OrderCancelled` / `OrderCompleted` mark the order ended (its capacity is
//!   free from then on) and tear its app down; `OrderExtended` moves its end.
//! - Expiry: a sweep tears down apps whose order's time is up. The sweep also retries
//!   teardowns that failed earlier (the API server was down), because it looks at every app
//!   that is not deleted yet.
//! - Reconciliation at start: namespaces the gateway labelled but no longer has a live app
//!   for (the gateway died mid-teardown, or its store was restored) are deleted; deploys
//!   that were in flight when it stopped are failed and cleaned; the route table is rebuilt.
//!
//! Each step logs what it did; none of them stops the gateway on a cluster error — they
//! retry on the next sweep.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use grid_chain::{ChainEvent, MarketEvent};

use super::Inner;
use crate::error::Result;
use crate::policy::unix_now;
use crate::store::{AppStatus, OrderState};

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
                Some(o) if o.is_running(now) => continue,
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
            if !live.contains(&namespace.name) {
                cluster.client.delete_namespace(&namespace.name).await?;
                tracing::info!(namespace = %namespace.name, order = ?namespace.order_id, "orphan namespace deleted");
                report.orphans_deleted.push(namespace.name);
            }
        }
        self.inner.refresh_routes(unix_now())?;
        report.restored = self.inner.routes.len();
        tracing::info!(?report, "reconciled apps with the cluster");
        Ok(report)
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
