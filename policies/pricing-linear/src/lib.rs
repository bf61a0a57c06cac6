//! `pricing-linear`: a price linear in resources × time.
//!
//! price = duration × (cpu cores × cpu rate + memory GiB × memory rate
//!                     + storage GiB × storage rate + gpus × gpu rate of the model)
//!
//! Each part is rounded up to the token's smallest unit, so the node never under-charges
//! by rounding. The quote is refused, with the reason, when the duration is outside the
//! configured range, a GPU model has no price, the node lacks free capacity, or the
//! payment is below the price.

use std::collections::BTreeMap;

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

const GIB: u64 = 1 << 30;
/// The key of `gpu_per_second` that prices GPUs of any model not listed by name.
pub const ANY_GPU_MODEL: &str = "*";

/// Settings of `pricing-linear`. Rates are per second in the token's smallest unit; the
/// defaults assume an 18-decimal token and price a core-hour at 0.02, a GiB-hour of memory
/// at 0.005, of storage at 0.0001 and a GPU-hour at 1.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearPricing {
    /// Price of one CPU core for one second.
    pub cpu_core_per_second: Amount,
    /// Price of one GiB of memory for one second.
    pub memory_gib_per_second: Amount,
    /// Price of one GiB of storage for one second.
    pub storage_gib_per_second: Amount,
    /// Price of one GPU for one second, by model (lower case); `"*"` prices any other model
    /// and GPUs asked for without a model. A model with no entry and no `"*"` is not sold.
    pub gpu_per_second: BTreeMap<String, Amount>,
    /// Shortest order sold, in seconds.
    pub min_duration_secs: u64,
    /// Longest order sold, in seconds.
    pub max_duration_secs: u64,
}

impl Default for LinearPricing {
    fn default() -> Self {
        LinearPricing {
            cpu_core_per_second: Amount::from(5_555_555_555_556u64),
            memory_gib_per_second: Amount::from(1_388_888_888_889u64),
            storage_gib_per_second: Amount::from(27_777_777_778u64),
            gpu_per_second: BTreeMap::from([(
                ANY_GPU_MODEL.to_owned(),
                Amount::from(277_777_777_777_778u64),
            )]),
            min_duration_secs: 60,
            max_duration_secs: 30 * 24 * 3600,
        }
    }
}

impl Policy for LinearPricing {
    fn validate(&self) -> Result<(), String> {
        if self.min_duration_secs > self.max_duration_secs {
            return Err(format!(
                "min_duration_secs ({}) is above max_duration_secs ({})",
                self.min_duration_secs, self.max_duration_secs
            ));
        }
        if self.max_duration_secs == 0 {
            return Err("max_duration_secs must be above 0".into());
        }
        if let Some(model) = self
            .gpu_per_second
            .keys()
            .find(|m| m.as_str() != ANY_GPU_MODEL && m.to_ascii_lowercase() != **m)
        {
            return Err(format!(
                "gpu_per_second: model {model:?} must be lower case"
            ));
        }
        Ok(())
    }
}

impl LinearPricing {
    /// The GPU rate for a model, falling back to `"*"`.
    fn gpu_rate(&self, model: Option<&str>) -> Option<(String, Amount)> {
        let named = model.map(str::to_ascii_lowercase);
        named
            .as_ref()
            .and_then(|m| self.gpu_per_second.get(m).map(|r| (m.clone(), *r)))
            .or_else(|| {
                self.gpu_per_second
                    .get(ANY_GPU_MODEL)
                    .map(|r| (named.unwrap_or_else(|| ANY_GPU_MODEL.to_owned()), *r))
            })
    }

    /// The price and its breakdown, or the refusal when a resource has no price or the
    /// arithmetic overflows a u256.
    pub fn price(
        &self,
        resources: &Resources,
        duration_secs: u64,
    ) -> Result<(Amount, Vec<PriceLine>), Refusal> {
        let overflow = || Refusal {
            kind: RefusalKind::Other,
            reason: "the price does not fit in a u256".into(),
        };
        // rate × duration × quantity / unit, rounded up: the product is taken wide in
        // mul_div_ceil so large memory sizes cannot overflow in the middle.
        let part = |rate: Amount, quantity: u64, unit: u64| -> Result<Amount, Refusal> {
            rate.checked_mul(duration_secs)
                .and_then(|r| r.mul_div_ceil(quantity, unit))
                .ok_or_else(overflow)
        };
        let mut lines = vec![
            PriceLine {
                item: "cpu".into(),
                amount: part(self.cpu_core_per_second, resources.cpu_millis, 1000)?,
            },
            PriceLine {
                item: "memory".into(),
                amount: part(self.memory_gib_per_second, resources.memory_bytes, GIB)?,
            },
            PriceLine {
                item: "storage".into(),
                amount: part(self.storage_gib_per_second, resources.storage_bytes, GIB)?,
            },
        ];
        if resources.gpus > 0 {
            let (model, rate) = self
                .gpu_rate(resources.gpu_model.as_deref())
                .ok_or_else(|| Refusal {
                    kind: RefusalKind::UnsupportedResource,
                    reason: format!(
                        "gpu model {} is not sold here",
                        resources.gpu_model.as_deref().unwrap_or("(any)")
                    ),
                })?;
            lines.push(PriceLine {
                item: format!("gpu:{model}"),
                amount: part(rate, u64::from(resources.gpus), 1)?,
            });
        }
        let total = lines
            .iter()
            .try_fold(Amount::ZERO, |sum, line| sum.checked_add(line.amount))
            .ok_or_else(overflow)?;
        Ok((total, lines))
    }
}

impl PricingPolicy for LinearPricing {
    fn quote(&self, request: &QuoteRequest, node: &NodeInfo, _ctx: &Context) -> Quote {
        let d = request.duration_secs;
        if d < self.min_duration_secs || d > self.max_duration_secs {
            return Quote::refuse(
                Amount::ZERO,
                Vec::new(),
                RefusalKind::DurationOutOfRange,
                format!(
                    "duration {d}s is outside the {}s..={}s this node sells",
                    self.min_duration_secs, self.max_duration_secs
                ),
            );
        }
        let (price, breakdown) = match self.price(&request.resources, d) {
            Ok(p) => p,
            Err(refusal) => {
                return Quote {
                    price: Amount::ZERO,
                    breakdown: Vec::new(),
                    refusal: Some(refusal),
                };
            }
        };
        if let Some(shortfall) = request.resources.first_shortfall(&node.free) {
            return Quote::refuse(
                price,
                breakdown,
                RefusalKind::InsufficientCapacity,
                format!("not enough free capacity: {shortfall}"),
            );
        }
        if request.payment < price {
            return Quote::refuse(
                price,
                breakdown,
                RefusalKind::InsufficientPayment,
                format!("payment {} is below the price {price}", request.payment),
            );
        }
        Quote::accept(price, breakdown)
    }
}

grid_policy_sdk::export_pricing!(LinearPricing);

#[cfg(test)]
mod tests;
