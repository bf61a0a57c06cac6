//! `{{name}}`: a pricing policy for grid-gateway (world `pricing`).
//!
//! price = ⌈cpu_core_per_second × duration × cores⌉, one breakdown line "cpu".
//! Refused, in this order: a duration below `min_duration_secs`, more than the node has
//! free, a payment below the price.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// The settings (`fixtures/settings.json`): a key left out keeps its default, an unknown
/// key is refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// One CPU core for one second, in the token's smallest unit.
    pub cpu_core_per_second: Amount,
    /// Shortest order sold, in seconds.
    pub min_duration_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cpu_core_per_second: Amount::from(5_555_555_555_556u64),
            min_duration_secs: 60,
        }
    }
}

impl Policy for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.cpu_core_per_second.is_zero() {
            return Err("cpu_core_per_second must be above 0".into());
        }
        Ok(())
    }
}

impl PricingPolicy for Settings {
    fn quote(&self, request: &QuoteRequest, node: &NodeInfo, _ctx: &Context) -> Quote {
        if request.duration_secs < self.min_duration_secs {
            let reason = format!(
                "duration {}s is below the {}s this node sells at least",
                request.duration_secs, self.min_duration_secs
            );
            return Quote::refuse(
                Amount::ZERO,
                vec![],
                RefusalKind::DurationOutOfRange,
                reason,
            );
        }
        if let Some(short) = request.resources.first_shortfall(&node.free) {
            let reason = format!("not enough free capacity: {short}");
            return Quote::refuse(
                Amount::ZERO,
                vec![],
                RefusalKind::InsufficientCapacity,
                reason,
            );
        }
        let Some(price) = self
            .cpu_core_per_second
            .checked_mul(request.duration_secs)
            .and_then(|p| p.mul_div_ceil(request.resources.cpu_millis, 1000))
        else {
            let reason = "the price does not fit in a u256";
            return Quote::refuse(Amount::ZERO, vec![], RefusalKind::Other, reason);
        };
        let breakdown = vec![PriceLine {
            item: "cpu".into(),
            amount: price,
        }];
        if request.payment < price {
            let reason = format!("payment {} is below the price {price}", request.payment);
            return Quote::refuse(price, breakdown, RefusalKind::InsufficientPayment, reason);
        }
        Quote::accept(price, breakdown)
    }
}

grid_policy_sdk::export_pricing!(Settings);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use grid_policy_sdk::fixture::{Fixture, check_dir};

    use super::*;

    #[test]
    fn every_fixture_gives_its_expected_answer() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
        let ran =
            check_dir::<Settings>(dir, Fixture::run_pricing).unwrap_or_else(|e| panic!("{e}"));
        assert!(ran >= 3, "only {ran} fixtures");
    }

    #[test]
    fn a_zero_rate_is_refused() {
        let refused = parse_settings::<Settings>(r#"{"cpu_core_per_second": "0"}"#);
        assert_eq!(
            refused.err().as_deref(),
            Some("cpu_core_per_second must be above 0")
        );
    }
}
