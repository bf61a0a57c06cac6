//! The background half of a deploy: sandbox, dry run, apply, wait, entrance.
//!
//! Order of work, and why:
//! 1. the sandbox (namespace, quota, limit range, network policies) is applied for real
//!    first: a server-side dry run of a namespaced object needs its namespace to exist,
//!    and the quota must be in place before any pod can be created;
//! 2. the app's objects are dry-run as a whole, so admission (Pod Security, the quota,
//!    webhooks) refuses a bad manifest before any of it is stored;
//! 3. then applied for real; objects of an earlier deploy the manifest no longer has are
//!    deleted (a re-deploy replaces the app); its workloads are waited for within the deadline.
//!
//! Any failure after step 1 began deletes the namespace, so a failed deploy leaves
//! nothing behind in the cluster, and records `failed` with a code and the reason.

use std::sync::Arc;

use grid_cluster::plan::{DeployPlan, EntranceMode};
use grid_cluster::{ClusterError, ReadyOutcome};

use super::Inner;
use crate::policy::unix_now;
use crate::store::{AppCondition, AppRecord, AppStatus};

/// Why a deploy failed: a stable code and a sentence.
pub(super) struct Failure {
    pub(super) code: &'static str,
    pub(super) reason: String,
}

impl From<ClusterError> for Failure {
    fn from(e: ClusterError) -> Self {
        Failure {
            code: e.code(),
            reason: e.to_string(),
        }
    }
}

/// Runs one deploy to its end and records the outcome, if `generation` is still the
/// order's latest (a newer deploy or a teardown supersedes this one).
pub(super) async fn run(inner: Arc<Inner>, order_id: String, generation: u64, plan: DeployPlan) {
    let outcome = apply_and_wait(&inner, &plan).await;
    let now = unix_now();
    let (status, entrance, conditions, failure) = match outcome {
        Ok((entrance, conditions)) => (AppStatus::Available, Some(entrance), conditions, None),
        Err((failure, conditions)) => {
            if let Ok(cluster) = inner.cluster() {
                // Best effort: if this fails too, reconciliation at the next start (or the
                // user's DELETE) removes the namespace.
                if let Err(e) = cluster.client.delete_namespace(&plan.namespace).await {
                    tracing::warn!(order = %order_id, error = %e, "failed deploy: cannot delete its namespace");
                }
            }
            (AppStatus::Failed, None, conditions, Some(failure))
        }
    };
    let written = inner.store.update_app(&order_id, |current| {
        let current = current.filter(|c| c.generation == generation)?;
        Some(AppRecord {
            status,
            entrance: entrance.clone(),
            conditions: conditions.clone(),
            code: failure.as_ref().map(|f| f.code.to_owned()),
            reason: failure.as_ref().map(|f| f.reason.clone()),
            updated_at: now,
            ..current
        })
    });
    match written {
        Ok(Some(record)) => {
            match &failure {
                None => {
                    tracing::info!(order = %order_id, entrance = ?record.entrance, "app available")
                }
                Some(f) => {
                    tracing::warn!(order = %order_id, code = f.code, reason = %f.reason, "deploy failed")
                }
            }
            if let Err(e) = inner.refresh_routes(now) {
                tracing::error!(error = %e, "cannot rebuild the route table");
            }
        }
        Ok(None) => tracing::debug!(order = %order_id, "deploy superseded; result dropped"),
        Err(e) => {
            tracing::error!(order = %order_id, error = %e, "cannot record the deploy's outcome")
        }
    }
    let mut tasks = inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
    tasks.remove(&order_id);
}

type Conditions = Vec<AppCondition>;

async fn apply_and_wait(
    inner: &Inner,
    plan: &DeployPlan,
) -> Result<(String, Conditions), (Failure, Conditions)> {
    let cluster = inner.cluster().map_err(|e| {
        (
            Failure {
                code: "cluster_not_configured",
                reason: e.to_string(),
            },
            Vec::new(),
        )
    })?;
    let client = &cluster.client;
    let config = &cluster.config;
    let fail = |e: ClusterError| (Failure::from(e), Vec::new());
    client
        .apply(&plan.namespace, &plan.sandbox, false)
        .await
        .map_err(fail)?;
    client
        .apply(&plan.namespace, &plan.app, true)
        .await
        .map_err(fail)?;
    client
        .apply(&plan.namespace, &plan.app, false)
        .await
        .map_err(fail)?;
    let pruned = client
        .prune(&plan.namespace, &plan.app)
        .await
        .map_err(fail)?;
    if !pruned.is_empty() {
        tracing::info!(namespace = %plan.namespace, ?pruned, "objects the new manifest dropped were deleted");
    }
    let readiness = client
        .wait_ready(
            &plan.namespace,
            &plan.workloads,
            config.ready_timeout(),
            config.ready_poll(),
        )
        .await
        .map_err(fail)?;
    let conditions: Conditions = readiness.conditions;
    match readiness.outcome {
        ReadyOutcome::Ready => {}
        ReadyOutcome::Failed(reason) => {
            return Err((
                Failure {
                    code: "app_failed",
                    reason,
                },
                conditions,
            ));
        }
        ReadyOutcome::DeadlinePassed(deadline) => {
            return Err((
                Failure {
                    code: "app_not_ready",
                    reason: format!(
                        "the app's workloads did not become available within {} s",
                        deadline.as_secs()
                    ),
                },
                conditions,
            ));
        }
    }
    let entrance = entrance(cluster, &plan.namespace, &plan.service, plan.port)
        .await
        .map_err(|f| (f, conditions.clone()))?;
    Ok((entrance, conditions))
}

/// The URL of the app's entrance: Service `service` in `namespace` on `port`, addressed as
/// `[cluster] entrance` says.
pub(super) async fn entrance(
    cluster: &super::Cluster,
    namespace: &str,
    service: &str,
    port: u16,
) -> Result<String, Failure> {
    let host = match cluster.config.entrance {
        EntranceMode::ServiceDns => format!("{service}.{namespace}.svc"),
        EntranceMode::ClusterIp => {
            match cluster
                .client
                .service_cluster_ip(namespace, service)
                .await?
            {
                Some(ip) if ip.contains(':') => format!("[{ip}]"),
                Some(ip) => ip,
                None => {
                    return Err(Failure {
                        code: "app_no_cluster_ip",
                        reason: format!("Service {service} has no cluster IP"),
                    });
                }
            }
        }
    };
    Ok(format!("http://{host}:{port}"))
}
