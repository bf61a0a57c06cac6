//! The records the store keeps.

use grid_policy_sdk::{Address, Order};
use serde::{Deserialize, Serialize};

/// Where an accepted order is on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Checked and stored; the lock transaction is not confirmed yet. Its capacity is
    /// already reserved, so a concurrent accept cannot oversell it.
    Accepted,
    /// Locked on chain.
    Active,
    /// Cancelled by its user on chain: holds no capacity, its app is torn down.
    Cancelled,
    /// Ran its full duration and was settled on chain: holds no capacity, app torn down.
    Completed,
}

impl OrderState {
    /// The state's name in the API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Accepted => "accepted",
            OrderState::Active => "active",
            OrderState::Cancelled => "cancelled",
            OrderState::Completed => "completed",
        }
    }

    /// True once the order is over on chain (cancelled or completed).
    pub fn is_ended(self) -> bool {
        matches!(self, OrderState::Cancelled | OrderState::Completed)
    }
}

/// What the settler knows of an accepted order's pay. Amounts are decimal strings in the
/// token's smallest unit; times are chain (block) time, unix seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    /// The order.
    pub order_id: String,
    /// Paid to the payee so far, as of the last look at the chain.
    pub paid: String,
    /// The last settlement transaction this node got mined.
    pub last_tx: Option<String>,
    /// Settlement transactions this node got mined for the order.
    pub settlements: u32,
    /// Block time of the last settlement, or of the last check that found the payout too
    /// small: the next interval settlement is due an interval after it.
    pub last_checked_at: Option<u64>,
    /// True once the order is over on chain (completed by our settlement, or cancelled, or
    /// completed by someone else): nothing more to settle.
    pub closed: bool,
    /// The last failure, for the operator (cleared by a success).
    pub last_error: Option<String>,
}

/// An order this node accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order as read from chain when it was accepted.
    pub order: Order,
    /// Where it is.
    pub state: OrderState,
    /// The lock transaction, once known.
    pub tx_hash: Option<String>,
    /// Unix seconds it was accepted here.
    pub accepted_at: u64,
}

impl OrderRecord {
    /// Unix seconds the order ends. An order not locked yet is counted from when it was
    /// accepted here, so a reservation whose lock never lands (the user cancelled while
    /// the chain was unreachable, say) frees its capacity after the order's duration
    /// rather than never.
    pub fn ends_at(&self) -> u64 {
        self.order
            .start_time
            .unwrap_or(self.accepted_at)
            .saturating_add(self.order.duration_secs)
    }

    /// True while the order holds capacity: accepted or active and not past its end.
    pub fn holds_capacity(&self, now: u64) -> bool {
        !self.state.is_ended() && self.ends_at() > now
    }

    /// True while the order may run an app: locked, not ended, not past its end.
    pub fn is_running(&self, now: u64) -> bool {
        self.state == OrderState::Active && self.ends_at() > now
    }
}

/// A signed-in session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Random id (hex); what the cookie carries, encrypted.
    pub id: String,
    /// The wallet that signed in.
    pub address: Address,
    /// Unix seconds the session ends.
    pub expires_at: u64,
    /// Scopes the authorization policy granted; `None` for unscoped.
    pub scopes: Option<Vec<String>>,
    /// Unix seconds it was created.
    pub created_at: u64,
    /// Ended by logout or revocation.
    pub revoked: bool,
}

/// Where a deployed app is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// Applied (or being applied); waiting for the workloads to become available.
    Deploying,
    /// Available: requests are forwarded to its entrance.
    Available,
    /// The deploy failed; `code` and `reason` say why. Nothing of it is left in the cluster.
    Failed,
    /// Torn down (by its user, because the order ended, or by reconciliation).
    Deleted,
}

impl AppStatus {
    /// The snake_case name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Deploying => "deploying",
            AppStatus::Available => "available",
            AppStatus::Failed => "failed",
            AppStatus::Deleted => "deleted",
        }
    }
}

/// A Kubernetes condition of one of the app's objects, as last seen.
pub type AppCondition = grid_cluster::Condition;

/// The app of one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The order (decimal).
    pub order_id: String,
    /// The order's user: the only caller who may see or change it.
    pub user: Address,
    /// The order's namespace.
    pub namespace: String,
    /// Where the manifest came from.
    pub manifest_url: String,
    /// Where it is.
    pub status: AppStatus,
    /// Stable code of the failure or the teardown's cause.
    pub code: Option<String>,
    /// Why it failed or was torn down, in words.
    pub reason: Option<String>,
    /// Conditions of its workloads, as last seen.
    pub conditions: Vec<AppCondition>,
    /// Where its traffic goes (`http://web.grid-order-7.svc:8080`), once available.
    pub entrance: Option<String>,
    /// Label selector of its first workload's pods (for logs).
    pub pod_selector: Option<String>,
    /// Bumped by every deploy and teardown: a background deploy writes its result only if
    /// the generation is still its own, so a stale deploy cannot overwrite a newer one.
    pub generation: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
}
