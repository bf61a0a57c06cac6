//! What a policy instance's store holds: an empty WASI context, the memory limiter, and
//! the implementation of the `grid:policy/host` interface (log, settings, now).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types};
use super::limits::{RANDOM_BYTES_PER_CALL, RuntimeLimits};
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
    /// When the evaluation in progress must end; host calls that do work check it, since
    /// epoch interruption only reaches guest code.
    pub(crate) deadline_at: Option<Instant>,
    /// `wasi:random` bytes the evaluation in progress may still draw.
    pub(crate) random_bytes_left: u64,
    random_bytes_per_evaluation: u64,
    /// The policy's log: `host.log` lines and stdout/stderr lines, under one budget.
    output: PolicyOutput,
    /// The instant WASI's clocks show, set when an evaluation begins.
    clock: FrozenClock,
}

impl PolicyState {
    pub(crate) fn new(
        label: Arc<str>,
        world: World,
        settings: Arc<str>,
        limits: &RuntimeLimits,
        memory_bytes: usize,
    ) -> Self {
        // Nothing is granted: no preopened directories, no environment, no arguments, no
        // network (sockets are refused at load, see `policy::imports`; here they would
        // deny every address and name lookup is off), stdin closed and stdout/stderr
        // discarded. Clocks are frozen per evaluation and randomness is bounded: they are
        // needed by language runtimes (hash map seeds) and leak nothing.
        //
        // stdout and stderr go to the policy log line by line (a sink that answers at once:
        // wasmtime's default goes through an async adapter, a round trip per write), held
        // to OUTPUT_BYTES_PER_EVALUATION, after which the streams report closed.
        let output = PolicyOutput::new(label.clone(), world, limits);
        let clock = FrozenClock::default();
        clock.set(None);
        let wasi = WasiCtx::builder()
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .stdout(output.stream(Stream::Stdout))
            .stderr(output.stream(Stream::Stderr))
            .build();
        PolicyState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            label,
            world,
            settings,
            now_override: None,
            deadline_at: None,
            output,
            clock,
            random_bytes_left: limits.random_bytes_per_evaluation,
            random_bytes_per_evaluation: limits.random_bytes_per_evaluation,
        }
    }

    /// Resets per-evaluation budgets before a call that may run for `budget`.
    pub(crate) fn begin_evaluation(&mut self, now_override: Option<u64>, budget: Duration) {
        self.now_override = now_override;
        self.clock.set(now_override);
        self.deadline_at = Instant::now().checked_add(budget);
        self.random_bytes_left = self.random_bytes_per_evaluation;
        self.output.reset();
        self.limiter.denied = false;
    }

    /// Fails with the epoch interrupt's trap (reported as the deadline) once the
    /// evaluation in progress is past its deadline.
    pub(crate) fn check_deadline(&self) -> wasmtime::Result<()> {
        match self.deadline_at {
            Some(at) if Instant::now() >= at => Err(wasmtime::Trap::Interrupt.into()),
            _ => Ok(()),
        }
    }

    /// `len` random bytes for `wasi:random`, within the per-call and per-evaluation
    /// budgets and the deadline; a request over a budget traps.
    pub(crate) fn random_bytes(&mut self, interface: &str, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.check_deadline()?;
        if len > RANDOM_BYTES_PER_CALL {
            return Err(wasmtime::format_err!(
                "{interface}: {len} bytes asked in one call, more than the {RANDOM_BYTES_PER_CALL} allowed"
            ));
        }
        if len > self.random_bytes_left {
            return Err(wasmtime::format_err!(
                "{interface}: more than {} bytes asked in one evaluation",
                self.random_bytes_per_evaluation
            ));
        }
        self.random_bytes_left -= len;
        // Bounded by RANDOM_BYTES_PER_CALL above, so the cast cannot truncate.
        let mut bytes = vec![0u8; len as usize];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Ok(bytes)
    }

    /// Reports log lines dropped by the budget during the last evaluation, and returns
    /// how many.
    pub(crate) fn end_evaluation(&mut self) -> u32 {
        let dropped = self.output.finish();
        if dropped > 0 {
            tracing::warn!(
                policy = %self.label,
                world = %self.world,
                dropped,
                "policy log lines dropped: over the per-evaluation budget"
            );
        }
        dropped
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
        self.output.log(level, None, &message);
    }

    fn settings(&mut self) -> String {
        self.settings.to_string()
    }

    fn now(&mut self) -> u64 {
        self.now_override.unwrap_or_else(unix_now)
    }
}

/// Bytes a policy may write to stdout and stderr together in one evaluation. Their lines
/// go to the policy log (see [`PolicyOutput`]); the budget also bounds the
/// host work a write loop can cause.
pub const OUTPUT_BYTES_PER_EVALUATION: usize = 64 << 10;

/// Largest write accepted at once: what wasmtime's own pipes allow.
const OUTPUT_BYTES_PER_WRITE: usize = 4096;

/// The policy log of one instance: `host.log` lines and the lines a policy writes to
/// stdout or stderr (language runtimes print there: `console.log`, `print`, a panic
/// message), all under one per-evaluation budget of lines (`log_lines_per_evaluation`,
/// each cut to `log_line_bytes`), and stdout/stderr also under OUTPUT_BYTES_PER_EVALUATION
/// bytes, after which those streams report closed. stdout lines log at info, stderr lines
/// at warn, with `stream` naming which; a line left without its newline is logged when the
/// evaluation ends.
#[derive(Clone)]
struct PolicyOutput(Arc<OutputShared>);

struct OutputShared {
    label: Arc<str>,
    world: World,
    line_bytes: usize,
    lines_per_evaluation: u32,
    bytes_left: std::sync::atomic::AtomicUsize,
    lines: std::sync::Mutex<OutputLines>,
}

#[derive(Default)]
struct OutputLines {
    left: u32,
    dropped: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Which of the policy's output streams a write came from.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl PolicyOutput {
    fn new(label: Arc<str>, world: World, limits: &RuntimeLimits) -> Self {
        PolicyOutput(Arc::new(OutputShared {
            label,
            world,
            line_bytes: limits.log_line_bytes,
            lines_per_evaluation: limits.log_lines_per_evaluation,
            bytes_left: std::sync::atomic::AtomicUsize::new(OUTPUT_BYTES_PER_EVALUATION),
            lines: std::sync::Mutex::new(OutputLines {
                left: limits.log_lines_per_evaluation,
                ..OutputLines::default()
            }),
        }))
    }

    fn stream(&self, stream: Stream) -> OutputStreamOf {
        OutputStreamOf {
            output: self.clone(),
            stream,
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, OutputLines> {
        // A panic while holding it leaves only counters and buffers: still usable.
        self.0.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reset(&self) {
        self.0.bytes_left.store(
            OUTPUT_BYTES_PER_EVALUATION,
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut lines = self.lines();
        lines.left = self.0.lines_per_evaluation;
        lines.dropped = 0;
        lines.stdout.clear();
        lines.stderr.clear();
    }

    /// Logs the unfinished stdout/stderr lines and returns how many lines the budget
    /// dropped during the evaluation.
    fn finish(&self) -> u32 {
        let mut lines = self.lines();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(match stream {
                Stream::Stdout => &mut lines.stdout,
                Stream::Stderr => &mut lines.stderr,
            });
            if !rest.is_empty() {
                self.emit(&mut lines, stream_level(stream), Some(stream), &rest);
            }
        }
        lines.dropped
    }

    /// One `host.log` line.
    fn log(&self, level: host::Level, stream: Option<Stream>, message: &str) {
        let mut lines = self.lines();
        self.emit(&mut lines, level, stream, message.as_bytes());
    }

    /// Takes `bytes` written to `stream` and logs each line it completes.
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut lines = self.lines();
        let mut pending = std::mem::take(match stream {
            Stream::Stdout => &mut lines.stdout,
            Stream::Stderr => &mut lines.stderr,
        });
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(end) => {
                    pending.extend_from_slice(end);
                    self.emit(&mut lines, stream_level(stream), Some(stream), &pending);
                    pending.clear();
                }
                // Keep no more than a line's worth of an unfinished line.
                None => {
                    let room = self.0.line_bytes.saturating_sub(pending.len());
                    pending.extend_from_slice(&piece[..piece.len().min(room)]);
                }
            }
        }
        *match stream {
            Stream::Stdout => &mut lines.stdout,
            Stream::Stderr => &mut lines.stderr,
        } = pending;
    }

    fn emit(
        &self,
        lines: &mut OutputLines,
        level: host::Level,
        stream: Option<Stream>,
        message: &[u8],
    ) {
        if lines.left == 0 {
            lines.dropped = lines.dropped.saturating_add(1);
            return;
        }
        lines.left -= 1;
        let message = String::from_utf8_lossy(message);
        let message = truncate_utf8(message.trim_end_matches('\r'), self.0.line_bytes);
        let (policy, world) = (&*self.0.label, self.0.world.name());
        let stream = stream.map(Stream::name);
        match level {
            host::Level::Trace => {
                tracing::trace!(target: "policy", policy, world, stream, "{message}")
            }
            host::Level::Debug => {
                tracing::debug!(target: "policy", policy, world, stream, "{message}")
            }
            host::Level::Info => {
                tracing::info!(target: "policy", policy, world, stream, "{message}")
            }
            host::Level::Warn => {
                tracing::warn!(target: "policy", policy, world, stream, "{message}")
            }
            host::Level::Error => {
                tracing::error!(target: "policy", policy, world, stream, "{message}")
            }
        }
    }
}

fn stream_level(stream: Stream) -> host::Level {
    match stream {
        Stream::Stdout => host::Level::Info,
        Stream::Stderr => host::Level::Warn,
    }
}

/// stdout or stderr of one instance, as WASI sees it.
#[derive(Clone)]
struct OutputStreamOf {
    output: PolicyOutput,
    stream: Stream,
}

impl OutputStreamOf {
    fn bytes_left(&self) -> usize {
        self.output
            .0
            .bytes_left
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputStreamOf {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputStreamOf {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 uses this, and the linker provides WASIp2 only.
        Box::new(tokio::io::sink())
    }
}

impl OutputStream for OutputStreamOf {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let left = self.bytes_left();
        if bytes.len() > left.min(OUTPUT_BYTES_PER_WRITE) {
            return Err(StreamError::Closed);
        }
        self.output
            .0
            .bytes_left
            .store(left - bytes.len(), std::sync::atomic::Ordering::Relaxed);
        self.output.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match self.bytes_left() {
            0 => Err(StreamError::Closed),
            left => Ok(left.min(OUTPUT_BYTES_PER_WRITE)),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputStreamOf {
    async fn ready(&mut self) {}
}

/// What `wasi:clocks` shows a policy: the host's now, read once when an evaluation begins
/// (or an instance is created) and frozen until the next one. A policy that reads the
/// clocks in a loop sees the same instant, so clock reads cost no host work worth
/// bounding and an evaluation's answer cannot depend on how long it ran. The wall clock
/// is the fixture's `now` when `policy run` fixes one (whole seconds); the monotonic
/// clock counts nanoseconds since the gateway process started and never goes back.
#[derive(Clone, Default)]
struct FrozenClock(Arc<FrozenInstant>);

#[derive(Default)]
struct FrozenInstant {
    wall_nanos: std::sync::atomic::AtomicU64,
    monotonic_nanos: std::sync::atomic::AtomicU64,
}

/// Origin of the monotonic clock policies see.
static MONOTONIC_ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl FrozenClock {
    fn set(&self, now_override: Option<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        let wall = match now_override {
            Some(secs) => Duration::from_secs(secs),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        };
        let origin = *MONOTONIC_ORIGIN.get_or_init(Instant::now);
        let saturate = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.wall_nanos.store(saturate(wall), Relaxed);
        self.0
            .monotonic_nanos
            .fetch_max(saturate(origin.elapsed()), Relaxed);
    }
}

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.wall_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
            .monotonic_nanos
            .load(std::sync::atomic::Ordering::Relaxed)
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
