//! What a policy instance's store holds: an empty WASI context, the memory limiter, and
//! the implementation of the `grid:policy/host` interface (log, settings, now).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types};
use super::limits::RuntimeLimits;
use super::world::World;

/// Per-instance state living in the wasmtime `Store`.
pub struct PolicyState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// Which policy this is, for log lines.
    pub(crate) label: Arc<str>,
    pub(crate) world: World,
    /// The settings text handed to the policy by `host.settings`.
    pub(crate) settings: Arc<str>,
    /// Fixed clock for fixtures (`policy run`); `None` is the real clock.
    pub(crate) now_override: Option<u64>,
    log_lines_left: u32,
    log_lines_dropped: u32,
    log_line_bytes: usize,
    log_lines_per_evaluation: u32,
}

impl PolicyState {
    pub(crate) fn new(
        label: Arc<str>,
        world: World,
        settings: Arc<str>,
        limits: &RuntimeLimits,
    ) -> Self {
        // Nothing is granted: no preopened directories, no environment, no arguments, no
        // network (sockets deny every address by default, name lookup is off), stdin
        // closed and stdout/stderr discarded. Clocks and randomness stay: they are needed
        // by the standard library (hash map seeds) and leak nothing.
        let wasi = WasiCtx::builder()
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        PolicyState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            label,
            world,
            settings,
            now_override: None,
            log_lines_left: limits.log_lines_per_evaluation,
            log_lines_dropped: 0,
            log_line_bytes: limits.log_line_bytes,
            log_lines_per_evaluation: limits.log_lines_per_evaluation,
        }
    }

    /// Resets per-evaluation budgets before a call.
    pub(crate) fn begin_evaluation(&mut self, now_override: Option<u64>) {
        self.now_override = now_override;
        self.log_lines_left = self.log_lines_per_evaluation;
        self.log_lines_dropped = 0;
        self.limiter.denied = false;
    }

    /// Reports log lines dropped by the budget during the last evaluation, and returns
    /// how many.
    pub(crate) fn end_evaluation(&mut self) -> u32 {
        if self.log_lines_dropped > 0 {
            tracing::warn!(
                policy = %self.label,
                world = %self.world,
                dropped = self.log_lines_dropped,
                "policy log lines dropped: over the per-evaluation budget"
            );
        }
        self.log_lines_dropped
    }
}

impl WasiView for PolicyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PolicyState {}

impl host::Host for PolicyState {
    fn log(&mut self, level: host::Level, message: String) {
        if self.log_lines_left == 0 {
            self.log_lines_dropped = self.log_lines_dropped.saturating_add(1);
            return;
        }
        self.log_lines_left -= 1;
        let message = truncate_utf8(&message, self.log_line_bytes);
        let (policy, world) = (&*self.label, self.world.name());
        match level {
            host::Level::Trace => tracing::trace!(target: "policy", policy, world, "{message}"),
            host::Level::Debug => tracing::debug!(target: "policy", policy, world, "{message}"),
            host::Level::Info => tracing::info!(target: "policy", policy, world, "{message}"),
            host::Level::Warn => tracing::warn!(target: "policy", policy, world, "{message}"),
            host::Level::Error => tracing::error!(target: "policy", policy, world, "{message}"),
        }
    }

    fn settings(&mut self) -> String {
        self.settings.to_string()
    }

    fn now(&mut self) -> u64 {
        self.now_override.unwrap_or_else(unix_now)
    }
}

/// Current unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Caps linear memory and tables, and remembers whether it said no, so a failure after a
/// refused growth is reported as a memory overrun rather than a generic trap.
pub(crate) struct MemoryLimiter {
    max_memory: usize,
    pub(crate) denied: bool,
}

/// Table elements one instance may have; Rust guests use a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    fn new(max_memory: usize) -> Self {
        MemoryLimiter {
            max_memory,
            denied: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_memory;
        self.denied |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= MAX_TABLE_ELEMENTS;
        self.denied |= !ok;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8_whole() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
