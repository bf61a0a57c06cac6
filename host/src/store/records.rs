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
        self.ends_at() > now
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
