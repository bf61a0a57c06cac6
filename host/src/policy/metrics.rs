//! Prometheus metrics of the policy runtime.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one evaluation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvaluationLabels {
    /// The world.
    pub world: String,
    /// The policy's name (file name, or `builtin:<name>`).
    pub policy: String,
    /// `ok`, or the [`EvalError::kind`](super::EvalError::kind) of the failure.
    pub outcome: String,
}

/// Labels naming a world.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorldLabels {
    /// The world.
    pub world: String,
}

/// Labels of a trap.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrapLabels {
    /// The world.
    pub world: String,
    /// `deadline`, `memory` or `other`.
    pub kind: String,
}

/// Labels of a reload attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// The world.
    pub world: String,
    /// `ok`, or the [`LoadError::code`](super::LoadError::code) of the failure.
    pub result: String,
}

/// Labels of a shadow disagreement.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    /// The world.
    pub world: String,
    /// The kind (see [`Disagreement::kind`](super::shadow::Disagreement::kind)).
    pub kind: String,
}

/// Labels of a lifecycle change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// The world.
    pub world: String,
    /// `candidate_set`, `candidate_cleared`, `promote`, `rollback` or `reload`.
    pub action: String,
}

/// The runtime's metrics. Cloning shares the underlying series.
#[derive(Clone)]
pub struct PolicyMetrics {
    /// Evaluations by world, policy and outcome.
    pub evaluations: Family<EvaluationLabels, Counter>,
    /// Time of one evaluation, instance checkout included, in seconds (µs buckets).
    pub duration: Family<WorldLabels, Histogram>,
    /// Traps by world and kind.
    pub traps: Family<TrapLabels, Counter>,
    /// Reload attempts by world and result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Instances created, by world (instantiations; with pooling, misses of the warm pool).
    pub instantiations: Family<WorldLabels, Counter>,
    /// Policy log lines dropped by the per-evaluation budget, by world.
    pub log_lines_dropped: Family<WorldLabels, Counter>,
    /// Components compiled (a load whose bytes were not in the compile cache).
    pub compilations: Counter,
    /// Components loaded already compiled from the on-disk cache instead of compiled.
    pub compile_cache_loads: Counter,
    /// Rescans of the policy directory by the watcher (each reads what changed).
    pub rescans: Counter,
    /// Candidate evaluations beside the live version, by world.
    pub shadow_evaluations: Family<WorldLabels, Counter>,
    /// Candidate answers that differ from the live one, by world and kind.
    pub shadow_disagreements: Family<ShadowLabels, Counter>,
    /// (candidate price − live price) / live price, per shadowed quote.
    pub shadow_price_delta: Family<WorldLabels, Histogram>,
    /// Sampled per-request evaluations dropped on a full shadow queue, by world.
    pub shadow_dropped: Family<WorldLabels, Counter>,
    /// Changes of the versions in service or of candidates, by world and action.
    pub lifecycle_changes: Family<ChangeLabels, Counter>,
}

/// Buckets of the relative price delta: from the candidate charging half to three times
/// the live price; 0 is its own bucket edge so agreement is visible.
const PRICE_DELTA_BUCKETS: [f64; 13] = [
    -0.5, -0.2, -0.1, -0.05, -0.01, 0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
];

fn price_delta_histogram() -> Histogram {
    Histogram::new(PRICE_DELTA_BUCKETS)
}

/// Latency buckets from 2 µs to 50 ms: evaluations sit in the microseconds, a deadline
/// overrun lands in the top buckets.
const DURATION_BUCKETS: [f64; 14] = [
    2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        PolicyMetrics {
            evaluations: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            traps: Family::default(),
            reloads: Family::default(),
            instantiations: Family::default(),
            log_lines_dropped: Family::default(),
            compilations: Counter::default(),
            compile_cache_loads: Counter::default(),
            rescans: Counter::default(),
            shadow_evaluations: Family::default(),
            shadow_disagreements: Family::default(),
            shadow_price_delta: Family::new_with_constructor(price_delta_histogram),
            shadow_dropped: Family::default(),
            lifecycle_changes: Family::default(),
        }
    }
}

impl PolicyMetrics {
    /// Registers every series under the `grid_policy_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_policy");
        sub.register(
            "evaluations",
            "Policy evaluations by world, policy and outcome",
            self.evaluations.clone(),
        );
        sub.register(
            "evaluation_duration_seconds",
            "Duration of one policy evaluation",
            self.duration.clone(),
        );
        sub.register(
            "traps",
            "Policy traps by world and kind",
            self.traps.clone(),
        );
        sub.register(
            "reloads",
            "Policy reload attempts by world and result",
            self.reloads.clone(),
        );
        sub.register(
            "directory_rescans",
            "Rescans of the policy directory by the watcher",
            self.rescans.clone(),
        );
        sub.register(
            "compiles",
            "Policy components compiled (not found compiled in memory or on disk)",
            self.compilations.clone(),
        );
        sub.register(
            "compile_cache_loads",
            "Policy components loaded compiled from the on-disk cache",
            self.compile_cache_loads.clone(),
        );
        sub.register(
            "instantiations",
            "Policy instances created, by world",
            self.instantiations.clone(),
        );
        sub.register(
            "shadow_evaluations",
            "Candidate policy evaluations beside the live version, by world",
            self.shadow_evaluations.clone(),
        );
        sub.register(
            "shadow_disagreements",
            "Candidate answers that differ from the live version's, by world and kind",
            self.shadow_disagreements.clone(),
        );
        sub.register(
            "shadow_price_delta_ratio",
            "Relative price difference of the candidate's quote to the live one",
            self.shadow_price_delta.clone(),
        );
        sub.register(
            "shadow_dropped",
            "Sampled per-request shadow evaluations dropped on a full queue",
            self.shadow_dropped.clone(),
        );
        sub.register(
            "lifecycle_changes",
            "Candidates set or cleared, promotions, rollbacks and reloads, by world",
            self.lifecycle_changes.clone(),
        );
    }

    /// The count of shadow disagreements of a kind in a world.
    pub fn shadow_disagreement_count(&self, world: super::World, kind: &str) -> u64 {
        self.shadow_disagreements
            .get_or_create(&ShadowLabels {
                world: world.name().into(),
                kind: kind.into(),
            })
            .get()
    }

    /// The count of lifecycle changes of an action in a world.
    pub fn lifecycle_change_count(&self, world: super::World, action: &str) -> u64 {
        self.lifecycle_changes
            .get_or_create(&ChangeLabels {
                world: world.name().into(),
                action: action.into(),
            })
            .get()
    }

    /// The count of evaluations with these labels (for tests and the node endpoint).
    pub fn evaluation_count(&self, world: &str, policy: &str, outcome: &str) -> u64 {
        self.evaluations
            .get_or_create(&EvaluationLabels {
                world: world.into(),
                policy: policy.into(),
                outcome: outcome.into(),
            })
            .get()
    }

    /// The count of traps of a kind.
    pub fn trap_count(&self, world: &str, kind: &str) -> u64 {
        self.traps
            .get_or_create(&TrapLabels {
                world: world.into(),
                kind: kind.into(),
            })
            .get()
    }

    /// Log lines dropped in a world.
    pub fn log_lines_dropped(&self, world: &str) -> u64 {
        self.log_lines_dropped
            .get_or_create(&WorldLabels {
                world: world.into(),
            })
            .get()
    }

    /// The count of reloads with a result.
    pub fn reload_count(&self, world: &str, result: &str) -> u64 {
        self.reloads
            .get_or_create(&ReloadLabels {
                world: world.into(),
                result: result.into(),
            })
            .get()
    }
}
