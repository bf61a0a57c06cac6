//! `pricing-surge`: an example pricing policy a provider would run on a busy node.
//!
//! Three rules on top of per-resource list rates (the rates of `pricing-linear`):
//!
//! - **Surge**: each resource's price rises with how busy that resource would be *once this
//!   order runs*: `(total − free + asked) / total`. The order itself counts, so a request for
//!   half an idle node is priced like half a node, and two users cannot each get the last
//!   cores at the idle price. Resources surge separately: a node whose GPUs are all taken
//!   does not charge more for CPU.
//! - **Term discount**: orders of at least a configured duration get a percentage off: a
//!   week-long order keeps the node earning without the provider having to resell it.
//! - **Headroom**: an order that would take CPU, memory or storage above
//!   `max_utilisation_percent` is refused, keeping slack for the node's own daemons and for
//!   bursts. GPUs are exempt: they are sold whole, and a headroom on them would leave whole
//!   cards unsold.
//!
//! Per resource, in the token's smallest unit, every step rounded up so the node never
//! under-charges by rounding:
//!
//! ```text
//! list   = ⌈rate × duration × quantity / unit⌉            (unit: a core, a GiB, a GPU)
//! line   = ⌈list × (100 − discount_percent) / 100⌉       → breakdown item "cpu", …
//! surge  = ⌈line × markup_percent / 100⌉                 → breakdown item "surge:cpu", …
//! price  = Σ line + Σ surge
//! ```
//!
//! All maths is integer: quantities and percentages are compared in u128 (a u64 times 100
//! cannot overflow it) and amounts are u256 with checked operations, so no input makes the
//! policy panic; a price too large for a u256 is refused with kind `other`.
//!
//! Utilisation comes from the `node-info` the gateway measures at quote time, so the price
//! of the same request moves with the node's load: a user who quoted at a quiet moment may
//! find the accept refused as `insufficient_payment` once the node filled up.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

const GIB: u64 = 1 << 30;
const DAY_SECS: u64 = 24 * 3600;
/// Highest surge markup accepted (×11). Anything above is almost surely basis points
/// written where percent was meant, which would multiply prices by a hundred.
pub const MAX_MARKUP_PERCENT: u32 = 1000;

/// One surge step: once a resource would be at least `utilisation_percent` used, its part of
/// the price is marked up by `markup_percent`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurgeTier {
    /// Threshold, in percent of the node's total of that resource (1..=100).
    pub utilisation_percent: u32,
    /// Markup on the resource's part of the price, in percent (1..=1000).
    pub markup_percent: u32,
}

/// One discount step: orders of at least `min_duration_secs` get `discount_percent` off.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermDiscount {
    /// Shortest order the discount applies to, in seconds.
    pub min_duration_secs: u64,
    /// Discount on every resource's part of the price, in percent (1..=99).
    pub discount_percent: u32,
}

/// Settings of `pricing-surge`. Rates are per second in the token's smallest unit; the
/// defaults are `pricing-linear`'s (an 18-decimal token, a core-hour at 0.02, a GiB-hour of
/// memory at 0.005, of storage at 0.0001, a GPU-hour at 1).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurgePricing {
    /// Price of one CPU core for one second.
    pub cpu_core_per_second: Amount,
    /// Price of one GiB of memory for one second.
    pub memory_gib_per_second: Amount,
    /// Price of one GiB of storage for one second.
    pub storage_gib_per_second: Amount,
    /// Price of one GPU (of the model the node offers) for one second; `null` when the node
    /// does not sell GPUs. A node offers one GPU model, so one rate is enough.
    pub gpu_per_second: Option<Amount>,
    /// Shortest order sold, in seconds.
    pub min_duration_secs: u64,
    /// Longest order sold, in seconds.
    pub max_duration_secs: u64,
    /// Most of the node's CPU, memory or storage an order may bring into use, in percent.
    pub max_utilisation_percent: u32,
    /// Surge steps, from least to most busy; the highest step reached applies.
    pub surge: Vec<SurgeTier>,
    /// Discount steps, from shortest to longest; the longest step reached applies.
    pub term_discounts: Vec<TermDiscount>,
}

impl Default for SurgePricing {
    /// `pricing-linear`'s rates, +25 % from 75 % busy and +50 % from 90 %, 10 % off a week
    /// and 20 % off four weeks, no headroom (an operator sets one for their node).
    fn default() -> Self {
        SurgePricing {
            cpu_core_per_second: Amount::from(5_555_555_555_556u64),
            memory_gib_per_second: Amount::from(1_388_888_888_889u64),
            storage_gib_per_second: Amount::from(27_777_777_778u64),
            gpu_per_second: Some(Amount::from(277_777_777_777_778u64)),
            min_duration_secs: 60,
            max_duration_secs: 30 * DAY_SECS,
            max_utilisation_percent: 100,
            surge: vec![
                SurgeTier {
                    utilisation_percent: 75,
                    markup_percent: 25,
                },
                SurgeTier {
                    utilisation_percent: 90,
                    markup_percent: 50,
                },
            ],
            term_discounts: vec![
                TermDiscount {
                    min_duration_secs: 7 * DAY_SECS,
                    discount_percent: 10,
                },
                TermDiscount {
                    min_duration_secs: 28 * DAY_SECS,
                    discount_percent: 20,
                },
            ],
        }
    }
}

impl Policy for SurgePricing {
    /// Refuses settings that are inconsistent or that contain a step that could never
    /// apply; every message names the field, with its index for list entries, as the
    /// operator wrote it.
    fn validate(&self) -> Result<(), String> {
        if self.max_duration_secs == 0 {
            return Err("max_duration_secs must be above 0".into());
        }
        if self.min_duration_secs > self.max_duration_secs {
            return Err(format!(
                "min_duration_secs ({}) is above max_duration_secs ({})",
                self.min_duration_secs, self.max_duration_secs
            ));
        }
        if !(1..=100).contains(&self.max_utilisation_percent) {
            return Err(format!(
                "max_utilisation_percent must be between 1 and 100, not {}",
                self.max_utilisation_percent
            ));
        }
        for (i, tier) in self.surge.iter().enumerate() {
            if !(1..=100).contains(&tier.utilisation_percent) {
                return Err(format!(
                    "surge[{i}].utilisation_percent must be between 1 and 100, not {}",
                    tier.utilisation_percent
                ));
            }
            if tier.utilisation_percent > self.max_utilisation_percent {
                return Err(format!(
                    "surge[{i}].utilisation_percent ({}) is above max_utilisation_percent ({}): \
                     the step could never apply",
                    tier.utilisation_percent, self.max_utilisation_percent
                ));
            }
            if !(1..=MAX_MARKUP_PERCENT).contains(&tier.markup_percent) {
                return Err(format!(
                    "surge[{i}].markup_percent must be between 1 and {MAX_MARKUP_PERCENT}, not {} \
                     (it is a percentage: 25 means +25 %)",
                    tier.markup_percent
                ));
            }
        }
        for (i, pair) in self.surge.windows(2).enumerate() {
            let (before, tier) = (&pair[0], &pair[1]);
            if tier.utilisation_percent <= before.utilisation_percent {
                return Err(format!(
                    "surge[{}].utilisation_percent ({}) must be above surge[{i}].utilisation_percent \
                     ({}): list the steps from least to most busy",
                    i + 1,
                    tier.utilisation_percent,
                    before.utilisation_percent
                ));
            }
            if tier.markup_percent < before.markup_percent {
                return Err(format!(
                    "surge[{}].markup_percent ({}) is below surge[{i}].markup_percent ({}): \
                     a busier node must not be cheaper",
                    i + 1,
                    tier.markup_percent,
                    before.markup_percent
                ));
            }
        }
        for (i, step) in self.term_discounts.iter().enumerate() {
            if !(1..=99).contains(&step.discount_percent) {
                return Err(format!(
                    "term_discounts[{i}].discount_percent must be between 1 and 99, not {}",
                    step.discount_percent
                ));
            }
            if step.min_duration_secs > self.max_duration_secs {
                return Err(format!(
                    "term_discounts[{i}].min_duration_secs ({}) is above max_duration_secs ({}): \
                     the discount could never apply",
                    step.min_duration_secs, self.max_duration_secs
                ));
            }
        }
        for (i, pair) in self.term_discounts.windows(2).enumerate() {
            let (before, step) = (&pair[0], &pair[1]);
            if step.min_duration_secs <= before.min_duration_secs {
                return Err(format!(
                    "term_discounts[{}].min_duration_secs ({}) must be above \
                     term_discounts[{i}].min_duration_secs ({}): list the steps from shortest \
                     to longest",
                    i + 1,
                    step.min_duration_secs,
                    before.min_duration_secs
                ));
            }
            if step.discount_percent < before.discount_percent {
                return Err(format!(
                    "term_discounts[{}].discount_percent ({}) is below \
                     term_discounts[{i}].discount_percent ({}): a longer order must not get a \
                     smaller discount",
                    i + 1,
                    step.discount_percent,
                    before.discount_percent
                ));
            }
        }
        Ok(())
    }
}

/// One priced resource of a request, with the node's numbers for it.
#[derive(Clone, Debug)]
pub struct Dimension {
    /// Breakdown name: "cpu", "memory", "storage" or "gpu".
    pub name: &'static str,
    /// Quantity asked for, in the resource's base unit (millicores, bytes, GPUs).
    pub asked: u64,
    /// All the node has of it.
    pub total: u64,
    /// What active orders leave of it.
    pub free: u64,
    rate: Amount,
    /// Base units in one priced unit (1000 millicores in a core, 2^30 bytes in a GiB).
    unit: u64,
    /// Whether `max_utilisation_percent` applies (not to GPUs, sold whole).
    headroom: bool,
}

impl Dimension {
    /// In use once this order runs, in base units. u128: `asked` and the in-use part are
    /// each at most u64::MAX, and callers multiply the sum by 100.
    fn in_use_after(&self) -> u128 {
        // `free` above `total` would be a host bug; read it as idle rather than underflow.
        u128::from(self.total.saturating_sub(self.free)) + u128::from(self.asked)
    }

    /// True when, once this order runs, at least `percent` of the node's total is in use.
    /// A resource the node does not have (total 0) is never busy: it has nothing to surge.
    pub fn reaches(&self, percent: u32) -> bool {
        self.total > 0 && self.in_use_after() * 100 >= u128::from(percent) * u128::from(self.total)
    }

    /// True when, once this order runs, more than `percent` of the node's total is in use.
    pub fn exceeds(&self, percent: u32) -> bool {
        self.total > 0 && self.in_use_after() * 100 > u128::from(percent) * u128::from(self.total)
    }

    /// Percent in use once this order runs, rounded up, for messages (so "above 95 %" is
    /// never shown as "95 %"). 0 for a resource the node does not have.
    pub fn percent_after(&self) -> u128 {
        if self.total == 0 {
            return 0;
        }
        (self.in_use_after() * 100).div_ceil(u128::from(self.total))
    }
}

/// The price of a request and its breakdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    /// Total.
    pub price: Amount,
    /// Discounted base lines first, then one surge line per surged resource.
    pub breakdown: Vec<PriceLine>,
}

fn overflow() -> Refusal {
    Refusal {
        kind: RefusalKind::Other,
        reason: "the price does not fit in a u256".into(),
    }
}

impl SurgePricing {
    /// The request's resources as dimensions, or a refusal when it asks for GPUs and the
    /// node sells none. GPUs appear only when asked for, so a CPU order's breakdown is not
    /// cluttered with a zero GPU line.
    pub fn dimensions(
        &self,
        request: &QuoteRequest,
        node: &NodeInfo,
    ) -> Result<Vec<Dimension>, Refusal> {
        let (asked, total, free) = (&request.resources, &node.total, &node.free);
        let mut dims = vec![
            Dimension {
                name: "cpu",
                asked: asked.cpu_millis,
                total: total.cpu_millis,
                free: free.cpu_millis,
                rate: self.cpu_core_per_second,
                unit: 1000,
                headroom: true,
            },
            Dimension {
                name: "memory",
                asked: asked.memory_bytes,
                total: total.memory_bytes,
                free: free.memory_bytes,
                rate: self.memory_gib_per_second,
                unit: GIB,
                headroom: true,
            },
            Dimension {
                name: "storage",
                asked: asked.storage_bytes,
                total: total.storage_bytes,
                free: free.storage_bytes,
                rate: self.storage_gib_per_second,
                unit: GIB,
                headroom: true,
            },
        ];
        if asked.gpus > 0 {
            let rate = self.gpu_per_second.ok_or_else(|| Refusal {
                kind: RefusalKind::UnsupportedResource,
                reason: "this node does not sell GPUs".into(),
            })?;
            dims.push(Dimension {
                name: "gpu",
                asked: u64::from(asked.gpus),
                total: u64::from(total.gpus),
                free: u64::from(free.gpus),
                rate,
                unit: 1,
                headroom: false,
            });
        }
        Ok(dims)
    }

    /// The discount for an order of `duration_secs`, in percent: the longest step reached.
    pub fn discount_percent(&self, duration_secs: u64) -> u32 {
        self.term_discounts
            .iter()
            .rev()
            .find(|step| duration_secs >= step.min_duration_secs)
            .map_or(0, |step| step.discount_percent)
    }

    /// The surge markup of a resource, in percent: the highest step it reaches.
    pub fn markup_percent(&self, dim: &Dimension) -> u32 {
        self.surge
            .iter()
            .rev()
            .find(|tier| dim.reaches(tier.utilisation_percent))
            .map_or(0, |tier| tier.markup_percent)
    }

    /// Prices the request's `dims` for `duration` seconds on the node as it is now (see
    /// the crate docs for the formula).
    pub fn price(&self, dims: &[Dimension], duration: u64) -> Result<Priced, Refusal> {
        // `validate` caps discounts at 99 %; the `min` only keeps a hand-built, unvalidated
        // value from underflowing.
        let keep_percent = 100 - u64::from(self.discount_percent(duration).min(100));
        let mut base = Vec::new();
        let mut surges = Vec::new();
        for dim in dims {
            // rate × duration first (u256), then × quantity / unit with a 512-bit product,
            // so neither a long order nor a large memory size overflows in the middle.
            let line = dim
                .rate
                .checked_mul(duration)
                .and_then(|r| r.mul_div_ceil(dim.asked, dim.unit))
                .and_then(|list| list.mul_div_ceil(keep_percent, 100))
                .ok_or_else(overflow)?;
            let markup = self.markup_percent(dim);
            if markup > 0 && !line.is_zero() {
                surges.push(PriceLine {
                    item: format!("surge:{}", dim.name),
                    amount: line
                        .mul_div_ceil(u64::from(markup), 100)
                        .ok_or_else(overflow)?,
                });
            }
            base.push(PriceLine {
                item: dim.name.into(),
                amount: line,
            });
        }
        base.extend(surges);
        let price = base
            .iter()
            .try_fold(Amount::ZERO, |sum, line| sum.checked_add(line.amount))
            .ok_or_else(overflow)?;
        Ok(Priced {
            price,
            breakdown: base,
        })
    }

    /// The first resource this order would take above the headroom, as a sentence.
    pub fn headroom_exceeded(&self, dims: &[Dimension]) -> Option<String> {
        let max = self.max_utilisation_percent;
        dims.iter()
            .find(|d| d.headroom && d.asked > 0 && d.exceeds(max))
            .map(|d| {
                format!(
                    "{} would be {}% in use with this order, above the {max}% this node sells",
                    d.name,
                    d.percent_after()
                )
            })
    }
}

impl PricingPolicy for SurgePricing {
    /// Refusals, in this order: `duration_out_of_range`, `unsupported_resource` (GPUs on a
    /// node that sells none), `other` (the price overflows a u256), `insufficient_capacity`
    /// (not enough free, then the headroom), `insufficient_payment`. Refusals after pricing
    /// carry the price, so the user sees what it would have cost.
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
        // A request that cannot be priced is refused with no price rather than a wrong one.
        let unpriced = |refusal: Refusal| Quote {
            price: Amount::ZERO,
            breakdown: Vec::new(),
            refusal: Some(refusal),
        };
        let dims = match self.dimensions(request, node) {
            Ok(dims) => dims,
            Err(refusal) => return unpriced(refusal),
        };
        let Priced { price, breakdown } = match self.price(&dims, d) {
            Ok(priced) => priced,
            Err(refusal) => return unpriced(refusal),
        };
        if let Some(shortfall) = request.resources.first_shortfall(&node.free) {
            return Quote::refuse(
                price,
                breakdown,
                RefusalKind::InsufficientCapacity,
                format!("not enough free capacity: {shortfall}"),
            );
        }
        if let Some(reason) = self.headroom_exceeded(&dims) {
            return Quote::refuse(price, breakdown, RefusalKind::InsufficientCapacity, reason);
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

grid_policy_sdk::export_pricing!(SurgePricing);

#[cfg(test)]
mod tests;
