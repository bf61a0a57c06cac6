//! The policy runtime: WebAssembly components that decide prices, payees and access.
//!
//! Shape (as in Kubewarden's policy-evaluator): [`engine`] (one wasmtime engine, its
//! linker and epoch ticker), [`compiled`] (a loaded, pre-linked policy version and its
//! instances), [`set`] (the versions in service, swapped atomically), [`watcher`] (hot
//! reload), [`lifecycle`] (candidates, promotion, rollback) and [`shadow`] (candidates
//! evaluated beside the live versions), [`error`], [`limits`], [`metrics`].
//!
//! # Isolation model
//!
//! Every evaluation runs in an instance with an empty WASI context (no files, network,
//! environment or arguments), a memory cap, and an epoch deadline. Instances come from a
//! pre-linked `InstancePre` on the pooling allocator. Two modes ([`Isolation`]):
//!
//! - **pooled** (default): warm instances are reused, as proxy-wasm hosts do. An instance
//!   that traps, overruns its deadline or its memory is dropped, never reused, so one
//!   evaluation never sees another's failure; after `max_uses` evaluations it is replaced,
//!   which bounds how long state a policy keeps on purpose (the SDK's parsed settings)
//!   lives. Cost per evaluation: a call (≈1–3 µs).
//! - **fresh**: a new instance per evaluation; nothing at all carries over. Cost: an
//!   instantiation per evaluation (≈15–30 µs).
//!
//! Nothing in this module knows about HTTP.

pub mod bindings;
pub mod compiled;
mod convert;
pub mod disk_cache;
pub mod engine;
pub mod error;
mod eval_pool;
mod imports;
mod inline;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod recording;
pub mod shadow;
mod state;
pub mod world;

pub use compiled::{ArtefactOrigin, CompiledPolicy, PolicyInfo, PolicySource, sha256_hex};
pub use engine::{EngineError, PolicyEngine, PolicyEngineBuilder};
pub use error::{EvalError, LoadError};
pub use limits::{Isolation, RuntimeLimits};
pub use metrics::PolicyMetrics;
pub use state::unix_now;
pub use world::World;
pub mod builtin;
pub mod set;
pub mod watcher;

pub use lifecycle::{DEFAULT_KEEP_PREVIOUS, LifecycleError};
pub use set::{DEFAULT_MAX_FILE_BYTES, PolicyError, PolicySet, WorldStatus};
pub use shadow::{Answer, Disagreement, ShadowConfig, ShadowCounters};
pub use watcher::{ReloadOutcome, WatchConfig, WatcherHandle, reload, spawn_watcher};
