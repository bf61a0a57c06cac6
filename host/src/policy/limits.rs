//! Per-evaluation limits and the runtime's sizing, with every default explained.

use std::time::Duration;

use super::world::World;

/// How instances are handed to evaluations; see the module docs of [`crate::policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Isolation {
    /// A new instance for every evaluation: nothing of one evaluation can reach another,
    /// at the cost of an instantiation (tens of µs) per evaluation.
    Fresh,
    /// Warm instances are reused, proxy-wasm style: an instance is discarded after any
    /// trap, deadline or memory overrun, and after `max_uses` evaluations, so a failure
    /// never reaches another evaluation and state a policy keeps on purpose (a parsed
    /// settings cache, say) lives at most `max_uses` evaluations.
    Pooled {
        /// Evaluations one instance serves before it is replaced.
        max_uses: u32,
    },
}

impl Default for Isolation {
    fn default() -> Self {
        // Reuse is what makes per-request authorization affordable (≈2 µs against ≈25 µs
        // for an instantiation); 1000 uses bounds how long deliberate policy state lives.
        Isolation::Pooled { max_uses: 1000 }
    }
}

/// Limits applied to every evaluation and the runtime's capacity.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeLimits {
    /// Wall-clock budget of one call into a policy. Policies answer in microseconds; 10 ms
    /// leaves room for a cold instance while keeping a runaway policy from holding a
    /// request (or a blocking thread) for long.
    #[serde(with = "duration_ms", rename = "deadline_ms")]
    pub deadline: Duration,
    /// Granularity of the deadline: the engine's epoch advances this often. 1 ms costs one
    /// atomic increment per millisecond on a background thread.
    #[serde(with = "duration_ms", rename = "epoch_tick_ms")]
    pub epoch_tick: Duration,
    /// Largest linear memory one policy instance may have. The reference policies use about
    /// 1–2 MiB; 64 MiB leaves room for real policies and stops a memory bomb early.
    pub memory_bytes: usize,
    /// A different memory cap for the policy of some worlds (`pricing = 134217728`): a
    /// TypeScript or Python runtime starts at 9–13 MiB and may need more than
    /// `memory_bytes`. Each at most `max_memory_bytes`.
    pub memory_bytes_by_world: std::collections::BTreeMap<World, usize>,
    /// Node-wide ceiling of every memory cap above (the pooling allocator's slot size).
    /// 1 GiB: address space is reserved per slot anyway; memory is only used as it grows.
    pub max_memory_bytes: usize,
    /// Instances alive at once across all policies (pooling allocator slots). Each slot
    /// reserves virtual address space, not memory.
    pub max_instances: u32,
    /// Warm instances kept per policy version (pooled isolation).
    pub warm_instances_per_policy: usize,
    /// How instances are reused.
    pub isolation: Isolation,
    /// Bytes the host copies out of a policy in one call (its answer, or one log line). Real
    /// answers are a few hundred bytes; 1 MiB stops a policy that answers with a list of
    /// entries aliasing one large string from making the host allocate gigabytes.
    pub transfer_bytes: usize,
    /// Deadline for loading a version (instantiation and `validate-settings` on a cold
    /// instance), which happens once per version, possibly on a busy machine.
    #[serde(with = "duration_ms", rename = "load_deadline_ms")]
    pub load_deadline: Duration,
    /// Log lines one evaluation may write; more are counted and dropped.
    pub log_lines_per_evaluation: u32,
    /// Longest log line kept, in bytes; longer lines are cut.
    pub log_line_bytes: usize,
    /// Bytes of `wasi:random` (secure and insecure together) one evaluation may draw; one
    /// call may ask for at most [`RANDOM_BYTES_PER_CALL`]. The standard library draws 16
    /// bytes once (hash map keys); 1 MiB is far beyond any real need, while a policy asking
    /// for megabytes at a time would otherwise hold the host (where the deadline cannot
    /// interrupt it) for seconds. Over it: the evaluation traps.
    pub random_bytes_per_evaluation: u64,
}

/// Largest `wasi:random` request of one call: generating it is host work the deadline
/// cannot interrupt, so it is kept to well under a millisecond.
pub const RANDOM_BYTES_PER_CALL: u64 = 64 << 10;

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            deadline: Duration::from_millis(10),
            epoch_tick: Duration::from_millis(1),
            memory_bytes: 64 << 20,
            memory_bytes_by_world: Default::default(),
            max_memory_bytes: 1 << 30,
            max_instances: 256,
            warm_instances_per_policy: 16,
            isolation: Isolation::default(),
            transfer_bytes: 1 << 20,
            load_deadline: Duration::from_millis(500),
            log_lines_per_evaluation: 32,
            log_line_bytes: 4096,
            random_bytes_per_evaluation: 1 << 20,
        }
    }
}

/// Why limits cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// The deadline must be at least one epoch tick, or no evaluation could finish.
    #[error("deadline ({deadline:?}) must be at least one epoch tick ({tick:?})")]
    DeadlineBelowTick {
        /// The deadline asked for.
        deadline: Duration,
        /// The epoch tick.
        tick: Duration,
    },
    /// A zero tick would spin the ticker thread.
    #[error("epoch_tick_ms must be above 0")]
    ZeroTick,
    /// Policies need at least one 64 KiB wasm page.
    #[error("memory_bytes ({0}) must be at least 65536 (one wasm page)")]
    MemoryTooSmall(usize),
    /// A memory cap above the node-wide ceiling.
    #[error("{key} ({bytes}) must be at most max_memory_bytes ({max})")]
    MemoryAboveMax {
        /// The setting.
        key: String,
        /// Its value.
        bytes: usize,
        /// The ceiling.
        max: usize,
    },
    /// At least one instance per world must fit.
    #[error("max_instances ({0}) must be at least 3")]
    TooFewInstances(u32),
    /// Answers need some room.
    #[error("transfer_bytes ({0}) must be at least 4096")]
    TransferTooSmall(usize),
    /// Loading must allow at least an evaluation's time.
    #[error("load_deadline_ms must be at least deadline_ms")]
    LoadDeadlineTooShort,
    /// Pooled isolation with zero uses would never serve anything.
    #[error("isolation.max_uses must be above 0")]
    ZeroUses,
}

impl RuntimeLimits {
    /// Checks the limits are usable; called by the engine's builder.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.epoch_tick.is_zero() {
            return Err(LimitsError::ZeroTick);
        }
        if self.deadline < self.epoch_tick {
            return Err(LimitsError::DeadlineBelowTick {
                deadline: self.deadline,
                tick: self.epoch_tick,
            });
        }
        let caps = std::iter::once(("memory_bytes".to_owned(), self.memory_bytes)).chain(
            self.memory_bytes_by_world
                .iter()
                .map(|(world, bytes)| (format!("memory_bytes_by_world.{world}"), *bytes)),
        );
        for (key, bytes) in caps {
            if bytes < 65536 {
                return Err(LimitsError::MemoryTooSmall(bytes));
            }
            if bytes > self.max_memory_bytes {
                return Err(LimitsError::MemoryAboveMax {
                    key,
                    bytes,
                    max: self.max_memory_bytes,
                });
            }
        }
        if self.max_instances < 3 {
            return Err(LimitsError::TooFewInstances(self.max_instances));
        }
        if self.transfer_bytes < 4096 {
            return Err(LimitsError::TransferTooSmall(self.transfer_bytes));
        }
        if self.load_deadline < self.deadline {
            return Err(LimitsError::LoadDeadlineTooShort);
        }
        if self.isolation == (Isolation::Pooled { max_uses: 0 }) {
            return Err(LimitsError::ZeroUses);
        }
        Ok(())
    }

    /// The memory cap of an instance of `world`'s policy.
    pub fn memory_bytes_of(&self, world: World) -> usize {
        self.memory_bytes_by_world
            .get(&world)
            .copied()
            .unwrap_or(self.memory_bytes)
    }

    /// The deadline in epoch ticks. An epoch deadline of N fires on the N-th increment
    /// after it is set, which comes after N−1 to N ticks; one more tick guarantees the
    /// policy at least its whole budget.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        ticks(self.deadline, self.epoch_tick)
    }

    /// The load deadline in epoch ticks, the same way.
    pub(crate) fn load_deadline_ticks(&self) -> u64 {
        ticks(self.load_deadline, self.epoch_tick)
    }
}

fn ticks(budget: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (budget.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_deadline_rounds_up() {
        let limits = RuntimeLimits::default();
        limits.validate().unwrap();
        assert_eq!(
            limits.deadline_ticks(),
            11,
            "10 ticks of budget plus the partial first tick"
        );
        let odd = RuntimeLimits {
            deadline: Duration::from_micros(2500),
            ..limits
        };
        assert_eq!(odd.deadline_ticks(), 4);
    }

    #[test]
    fn unusable_limits_are_refused() {
        let base = RuntimeLimits::default();
        let cases = [
            RuntimeLimits {
                epoch_tick: Duration::ZERO,
                ..base.clone()
            },
            RuntimeLimits {
                deadline: Duration::from_micros(10),
                ..base.clone()
            },
            RuntimeLimits {
                memory_bytes: 100,
                ..base.clone()
            },
            RuntimeLimits {
                memory_bytes: 2 << 30,
                ..base.clone()
            },
            RuntimeLimits {
                memory_bytes_by_world: [(World::Pricing, 2 << 30)].into(),
                ..base.clone()
            },
            RuntimeLimits {
                max_instances: 1,
                ..base.clone()
            },
            RuntimeLimits {
                isolation: Isolation::Pooled { max_uses: 0 },
                ..base.clone()
            },
        ];
        for limits in cases {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }

    #[test]
    fn limits_read_from_config_json() {
        let limits: RuntimeLimits =
            serde_json::from_str(r#"{"deadline_ms":5,"isolation":{"mode":"fresh"}}"#).unwrap();
        assert_eq!(limits.deadline, Duration::from_millis(5));
        assert_eq!(limits.isolation, Isolation::Fresh);
        assert_eq!(limits.memory_bytes, RuntimeLimits::default().memory_bytes);
        let limits: RuntimeLimits =
            serde_json::from_str(r#"{"memory_bytes_by_world":{"pricing":134217728}}"#).unwrap();
        limits.validate().unwrap();
        assert_eq!(limits.memory_bytes_of(World::Pricing), 128 << 20);
        assert_eq!(limits.memory_bytes_of(World::Payee), 64 << 20);
    }
}
