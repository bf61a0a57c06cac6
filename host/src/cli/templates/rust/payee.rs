//! `{{name}}`: a payee policy for grid-gateway (world `payee`).
//!
//! An order is accepted when its payee is the node's own wallet or one of `payees`.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// The settings (`fixtures/settings.json`): a key left out keeps its default, an unknown
/// key is refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Payees accepted besides the node's own wallet.
    pub payees: Vec<Address>,
}

impl Policy for Settings {}

impl PayeePolicy for Settings {
    fn check(&self, order: &Order, node: &NodeInfo, _ctx: &Context) -> Decision {
        if order.payee == node.wallet || self.payees.contains(&order.payee) {
            Decision::Allow
        } else {
            Decision::deny(format!(
                "payee {} is not accepted by this node",
                order.payee
            ))
        }
    }
}

grid_policy_sdk::export_payee!(Settings);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use grid_policy_sdk::fixture::{Fixture, check_dir};

    use super::*;

    #[test]
    fn every_fixture_gives_its_expected_answer() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
        let ran = check_dir::<Settings>(dir, Fixture::run_payee).unwrap_or_else(|e| panic!("{e}"));
        assert!(ran >= 3, "only {ran} fixtures");
    }

    #[test]
    fn a_bad_address_is_refused() {
        assert!(parse_settings::<Settings>(r#"{"payees": ["0x12"]}"#).is_err());
    }
}
