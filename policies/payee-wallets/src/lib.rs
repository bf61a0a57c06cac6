//! `payee-wallets`: accept an order only when it is addressed to this node, its payee is
//! one of the operator's wallets, it is waiting to be locked, and it was created recently
//! (an order that waited long to be locked may no longer be wanted by its user, and locking
//! it starts charging them).

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// Settings of `payee-wallets`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayeeWallets {
    /// Wallets the node accepts as payee. Empty means only the node's own wallet.
    pub payees: Vec<Address>,
    /// An order created longer ago than this is refused (seconds).
    pub max_order_age_secs: u64,
    /// Tolerated difference between the chain's clock and the node's: an order created
    /// further in the future than this is refused (seconds).
    pub max_clock_skew_secs: u64,
}

impl Default for PayeeWallets {
    fn default() -> Self {
        PayeeWallets {
            payees: Vec::new(),
            max_order_age_secs: 3600,
            max_clock_skew_secs: 60,
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
        let (created, now) = (order.created_at, ctx.now());
        if created.saturating_add(self.max_order_age_secs) < now {
            return Decision::deny(format!(
                "order {} was created {}s ago, more than the {}s this node accepts",
                order.id,
                now - created,
                self.max_order_age_secs
            ));
        }
        if created > now.saturating_add(self.max_clock_skew_secs) {
            return Decision::deny(format!(
                "order {} was created {}s in the future: the node's clock and the chain's disagree",
                order.id,
                created - now
            ));
        }
        Decision::Allow
    }
}

grid_policy_sdk::export_payee!(PayeeWallets);

#[cfg(test)]
mod tests;
