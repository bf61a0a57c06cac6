//! The one wasmtime engine of the gateway: configuration, the pre-linked imports every
//! policy gets, and the epoch ticker that enforces deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::host;
use super::disk_cache::DiskCache;
use super::limits::{LimitsError, RuntimeLimits};
use super::metrics::PolicyMetrics;
use super::state::PolicyState;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The limits are not usable.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// wasmtime refused the configuration (e.g. the pooling allocator could not reserve
    /// its address space).
    #[error("cannot configure the WebAssembly engine: {0}")]
    Config(String),
}

/// Builds a [`PolicyEngine`]; `build` checks the limits before anything is allocated.
#[derive(Default)]
pub struct PolicyEngineBuilder {
    limits: RuntimeLimits,
    metrics: Option<PolicyMetrics>,
    compile_cache: Option<(std::path::PathBuf, u64)>,
}

impl PolicyEngineBuilder {
    /// Uses these limits instead of the defaults.
    pub fn limits(mut self, limits: RuntimeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Records into these metrics (shared with the gateway's registry) instead of a
    /// private set.
    pub fn metrics(mut self, metrics: PolicyMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Keeps compiled components in `dir` (at most `max_bytes`, oldest removed first), so
    /// a restart does not compile them again. Without it they are kept in memory only.
    pub fn compile_cache(mut self, dir: std::path::PathBuf, max_bytes: u64) -> Self {
        self.compile_cache = Some((dir, max_bytes));
        self
    }

    /// Creates the engine, its linker and its epoch ticker thread.
    pub fn build(self) -> Result<PolicyEngine, EngineError> {
        let limits = self.limits;
        limits.validate()?;
        let config_err = |e: wasmtime::Error| EngineError::Config(format!("{e:#}"));

        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasm32-wasip2 component instantiates a handful of core modules (its code
        // plus small shims from componentization) with one memory; componentize-py links
        // about 14 core modules (libpython, libc and shims, each with its own table) and
        // componentize-js a few. 16 core instances and tables per component fit the Python
        // one at full instance count; core instance slots cost nothing until used and a
        // table slot is a reservation of address space, not memory. Per component nothing
        // is capped beyond those totals (wasmtime's per-component limits stay unlimited).
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances.saturating_mul(16))
            .total_tables(limits.max_instances.saturating_mul(16))
            .total_memories(limits.max_instances.saturating_mul(2))
            .max_memory_size(limits.max_memory_bytes);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            // Epochs, not fuel: an epoch check is a load and compare at loop headers and
            // function entries, while fuel counts every instruction (measurably slower).
            // The price is coarser precision: a deadline lands within one tick.
            .epoch_interruption(true)
            // The pooling allocator makes instantiation cheap (pre-reserved slots, memory
            // reset with madvise) and caps the number of live instances.
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(config_err)?;

        let mut linker = Linker::<PolicyState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(config_err)?;
        forbid_blocking(&mut linker).map_err(config_err)?;
        bound_random(&mut linker).map_err(config_err)?;
        host::add_to_linker::<PolicyState, HasSelf<PolicyState>>(&mut linker, |state| state)
            .map_err(config_err)?;

        let disk = self
            .compile_cache
            .filter(|(_, max_bytes)| *max_bytes > 0)
            .map(|(dir, max_bytes)| DiskCache::new(dir, max_bytes, &engine));
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick, TICKER_GRACE_TICKS);
        Ok(PolicyEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                limits,
                metrics: self.metrics.unwrap_or_default(),
                compiled: std::sync::Mutex::new(ComponentCache::default()),
                disk,
                ticker,
            }),
        })
    }
}

/// The WASI version whose `wasi:io/poll` wasmtime-wasi provides; guests importing any
/// 0.2.x version are matched to it.
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces WASI's blocking waits with traps. A guest could otherwise sleep (a monotonic
/// clock pollable, then `pollable.block` or `poll`): the wait happens in host code, where
/// epoch interruption cannot reach it, so the deadline would never fire and the thread
/// would be held for as long as the policy likes. A policy has nothing to wait for.
fn forbid_blocking(linker: &mut Linker<PolicyState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    for name in ["poll", "[method]pollable.block"] {
        poll.func_new(name, move |_store, _ty, _params, _results| {
            Err(wasmtime::format_err!(
                "policies may not block: wasi:io/poll {name} is not available"
            ))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The WASI version whose `wasi:random` wasmtime-wasi provides.
const WASI_RANDOM: &str = "wasi:random/random@0.2.12";
const WASI_RANDOM_INSECURE: &str = "wasi:random/insecure@0.2.12";

/// Replaces WASI's random byte calls with ones held to a per-call and a per-evaluation
/// budget and to the deadline: the bytes are made in host code, where the epoch cannot
/// interrupt, so a policy asking for 24 MiB at a time would otherwise overrun its deadline
/// by seconds. (`get-random-u64` and the insecure seed are constant work and stay.)
fn bound_random(linker: &mut Linker<PolicyState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for (interface, name) in [
        (WASI_RANDOM, "get-random-bytes"),
        (WASI_RANDOM_INSECURE, "get-insecure-random-bytes"),
    ] {
        linker.instance(interface)?.func_wrap(
            name,
            move |mut store: wasmtime::StoreContextMut<'_, PolicyState>, (len,): (u64,)| {
                Ok((store.data_mut().random_bytes(interface, len)?,))
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The shared engine: cheap to clone.
#[derive(Clone)]
pub struct PolicyEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    /// Compiled components by sha256 of their bytes: a settings-only change, or a file
    /// put back, reuses the compilation (≈100 ms) instead of redoing it.
    pub(crate) compiled: std::sync::Mutex<ComponentCache>,
    /// Compiled components on disk, kept across restarts (when configured).
    pub(crate) disk: Option<DiskCache>,
    pub(crate) linker: Linker<PolicyState>,
    pub(crate) limits: RuntimeLimits,
    pub(crate) metrics: PolicyMetrics,
    pub(crate) ticker: EpochTicker,
}

impl PolicyEngine {
    /// A builder with default limits.
    pub fn builder() -> PolicyEngineBuilder {
        PolicyEngineBuilder::default()
    }

    /// The limits in force.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.inner.limits
    }

    /// Epoch ticks since the engine started: the ticker runs only while policy code
    /// does, so this stands still on an idle gateway.
    pub fn epoch_ticks(&self) -> u64 {
        self.inner.ticker.ticks()
    }

    /// The metrics this engine records into.
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.inner.metrics
    }
}

/// The most recently used compiled components, a few per world.
#[derive(Default)]
pub(crate) struct ComponentCache {
    entries: std::collections::VecDeque<(String, wasmtime::component::Component)>,
}

impl ComponentCache {
    /// Components kept: the versions in service plus a few recent ones per world.
    const CAPACITY: usize = 8;

    pub(crate) fn get(&mut self, sha256: &str) -> Option<wasmtime::component::Component> {
        let at = self.entries.iter().position(|(k, _)| k == sha256)?;
        let entry = self.entries.remove(at)?;
        let component = entry.1.clone();
        self.entries.push_front(entry);
        Some(component)
    }

    pub(crate) fn insert(&mut self, sha256: String, component: wasmtime::component::Component) {
        self.entries.retain(|(k, _)| *k != sha256);
        self.entries.push_front((sha256, component));
        self.entries.truncate(Self::CAPACITY);
    }
}

/// Ticks the ticker keeps running after the last evaluation ended before it parks: a
/// steady stream of evaluations (one at least every ~50 ms with the default 1 ms tick)
/// never parks it, so no evaluation pays a wake-up (a `futex` on the serving thread),
/// while an idle gateway's ticker still parks within this many ticks.
pub(crate) const TICKER_GRACE_TICKS: u32 = 50;

/// Advances the engine's epoch every tick on a background thread, while an evaluation (or
/// an instantiation) is running and for a grace period after the last one
/// ([`TICKER_GRACE_TICKS`]): an idle gateway's ticker is parked and costs nothing. Stopped
/// on drop.
pub(crate) struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    stop: AtomicBool,
    /// Evaluations and instantiations under a deadline right now.
    running: AtomicUsize,
    /// Evaluations and instantiations ever started: an evaluation that starts and ends
    /// between two ticks still restarts the grace period.
    started: AtomicU64,
    /// The ticker is parked, or about to: the next evaluation must wake it.
    parked: AtomicBool,
    /// Ticks since start; for tests of the idle state.
    ticks: AtomicU64,
    /// Times an evaluation woke the parked ticker; for tests of the grace period.
    wakeups: AtomicU64,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

/// Held while guest code runs under an epoch deadline; keeps the ticker ticking.
pub(crate) struct Ticking<'a>(&'a TickerShared);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EpochTicker {
    fn start(engine: Engine, tick: std::time::Duration, grace_ticks: u32) -> Self {
        let shared = Arc::new(TickerShared {
            stop: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            thread: std::sync::OnceLock::new(),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                // Ticks in a row with nothing running and nothing started.
                let mut idle = grace_ticks;
                let mut seen = state.started.load(Ordering::SeqCst);
                while !state.stop.load(Ordering::Acquire) {
                    let started = state.started.load(Ordering::SeqCst);
                    if started != seen || state.running.load(Ordering::SeqCst) > 0 {
                        seen = started;
                        idle = 0;
                    } else if idle >= grace_ticks {
                        // Park, unless an evaluation started meanwhile. `parked` is set
                        // before `started` is read again and an evaluation bumps `started`
                        // before it reads `parked` (all SeqCst): one of the two sees the
                        // other, so no wake-up is lost. An unpark that lands before the
                        // park makes the park return at once.
                        state.parked.store(true, Ordering::SeqCst);
                        if state.started.load(Ordering::SeqCst) == seen
                            && !state.stop.load(Ordering::SeqCst)
                        {
                            std::thread::park();
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        continue;
                    } else {
                        idle += 1;
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok();
        match &thread {
            Some(handle) => {
                let _ = shared.thread.set(handle.thread().clone());
            }
            // Without the ticker no deadline would ever fire; a gateway that cannot start
            // a thread is in no state to run anyway, but say so loudly.
            None => tracing::error!(
                "cannot start the policy epoch thread: policy deadlines are not enforced"
            ),
        }
        EpochTicker { shared, thread }
    }

    /// Marks guest code as running under a deadline until the guard is dropped, waking
    /// the ticker if it was parked (within the grace period it is not: no wake-up).
    pub(crate) fn ticking(&self) -> Ticking<'_> {
        self.shared.running.fetch_add(1, Ordering::SeqCst);
        self.shared.started.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst)
            && self.shared.parked.swap(false, Ordering::SeqCst)
            && let Some(thread) = self.shared.thread.get()
        {
            self.shared.wakeups.fetch_add(1, Ordering::Relaxed);
            thread.unpark();
        }
        Ticking(&self.shared)
    }

    /// Epoch ticks so far.
    pub(crate) fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }

    /// Times an evaluation found the ticker parked and woke it.
    #[cfg(test)]
    fn wakeups(&self) -> u64 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }

    /// Whether the ticker is parked (or about to park).
    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Polls `done` until it holds; panics after a generous bound (a stuck ticker).
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < until, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_stream_of_evaluations_within_the_grace_period_wakes_the_ticker_once() {
        // A grace period far longer than the stream: only the first evaluation finds the
        // ticker parked (it starts parked); the others find it ticking.
        let ticker = EpochTicker::start(Engine::default(), Duration::from_millis(1), 1_000_000);
        wait_for("the ticker to park at start", || ticker.is_parked());
        assert_eq!(ticker.ticks(), 0, "a new ticker ticks with nothing running");
        for _ in 0..100 {
            drop(ticker.ticking());
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(
            ticker.wakeups(),
            1,
            "evaluations woke a ticker that was ticking"
        );
        assert!(
            !ticker.is_parked(),
            "the ticker parked within its grace period"
        );
    }

    #[test]
    fn the_ticker_parks_after_its_grace_period_and_the_next_evaluation_wakes_it() {
        let grace = 5;
        let ticker = EpochTicker::start(Engine::default(), Duration::from_millis(1), grace);
        wait_for("the ticker to park at start", || ticker.is_parked());
        let before = ticker.ticks();
        drop(ticker.ticking());
        assert_eq!(ticker.wakeups(), 1);
        // It keeps ticking after the evaluation ended, then parks and stays parked.
        wait_for("ticks after the evaluation", || ticker.ticks() > before);
        wait_for("the ticker to park again", || ticker.is_parked());
        let after = ticker.ticks();
        assert!(
            after - before >= u64::from(grace),
            "parked after {} ticks, before its grace period of {grace}",
            after - before
        );
        // A deadline still fires for the next evaluation: it wakes the ticker.
        let guard = ticker.ticking();
        assert_eq!(ticker.wakeups(), 2, "the parked ticker was not woken");
        wait_for("ticks under the next evaluation", || ticker.ticks() > after);
        drop(guard);
    }
}
