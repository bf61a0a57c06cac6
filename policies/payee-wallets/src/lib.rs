//! `payee-wallets`: accept an order only when it is addressed to this node, its payee is
//! one of the operator's wallets, it is waiting to be locked, and its start time (if it
//! has one) is near now.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// Settings of `payee-wallets`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayeeWallets {
    /// Wallets the node accepts as payee. Empty means only the node's own wallet.
    pub payees: Vec<Address>,
    /// An order whose start time lies further in the past than this is refused (seconds).
    pub max_start_age_secs: u64,
    /// An order whose start time lies further in the future than this is refused (seconds).
    pub max_start_ahead_secs: u64,
}

impl Default for PayeeWallets {
    fn default() -> Self {
        PayeeWallets {
            payees: Vec::new(),
            max_start_age_secs: 600,
            max_start_ahead_secs: 60,
        }
    }
}

impl Policy for PayeeWallets {
    fn validate(&self) -> Result<(), String> {
        if let Some(zero) = self.payees.iter().find(|p| **p == Address::ZERO) {
            return Err(format!(
                "payees: {zero} (the zero address) can never receive a payment"
            ));
        }
        Ok(())
    }
}

impl PayeePolicy for PayeeWallets {
    fn check(&self, order: &Order, node: &NodeInfo, ctx: &Context) -> Decision {
        if order.provider != node.wallet {
            return Decision::deny(format!(
                "order {} names provider {}, not this node ({})",
                order.id, order.provider, node.wallet
            ));
        }
        if order.status != OrderStatus::Created {
            return Decision::deny(format!(
                "order {} is {}, only created orders can be accepted",
                order.id, order.status
            ));
        }
        let payee_ok = if self.payees.is_empty() {
            order.payee == node.wallet
        } else {
            self.payees.contains(&order.payee)
        };
        if !payee_ok {
            return Decision::deny(format!(
                "payee {} is not a wallet of this node",
                order.payee
            ));
        }
        if let Some(start) = order.start_time {
            let now = ctx.now();
            if start.saturating_add(self.max_start_age_secs) < now {
                return Decision::deny(format!(
                    "start time {start} is more than {}s in the past",
                    self.max_start_age_secs
                ));
            }
            if start > now.saturating_add(self.max_start_ahead_secs) {
                return Decision::deny(format!(
                    "start time {start} is more than {}s in the future",
                    self.max_start_ahead_secs
                ));
            }
        }
        Decision::Allow
    }
}

grid_policy_sdk::export_payee!(PayeeWallets);

#[cfg(test)]
mod tests;
