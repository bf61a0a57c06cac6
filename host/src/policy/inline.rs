//! Per-request authorization on the calling thread.
//!
//! `authorize-request` runs on every proxied request. Handing it to an evaluation thread
//! and back ([`super::eval_pool`]) costs two cross-thread wake-ups: ~8 µs of CPU per
//! request and ~45 µs of latency when the node is quiet, several times the evaluation
//! itself (~2.5 µs). So it runs where the request is, on the HTTP worker, as proxy-wasm
//! filters run on Envoy's workers. It is bounded there by the same epoch deadline
//! (`policy.limits.deadline_ms`, 10 ms by default) and memory cap as anywhere, and blocking
//! waits are traps for every policy ([`super::engine`]).
//!
//! One thing cannot run on a runtime's thread: WASI's synchronous streams (a write to
//! stdout or stderr, dropping such a stream) enter a tokio runtime with `block_on`, which
//! panics inside one. A Rust guest reaches them by printing, or by panicking (its panic
//! message goes to stderr before it traps). wasmtime carries a host function's panic out
//! of the guest; it is caught here, the evaluation's instance is dropped with it, the
//! evaluation is done again on an evaluation thread, and that policy version is evaluated
//! there from then on — the operator is told once, in the log.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::CompiledPolicy;

// Not part of the HTTP worker's state (`crate::wire::WorkerState`): the flag says what this
// thread's stack is doing (inside [`evaluate_here`]'s `catch_unwind`), and the one reader is
// the process's panic hook, which runs on the panicking thread with nothing else in hand.
// It is set and cleared around a synchronous call (no `.await` between), so no future can
// move while it is set; it costs one thread-local access on each side of an evaluation.
thread_local! {
    /// Set while an evaluation runs on this thread: its panic is expected and handled, not
    /// a crash to report.
    static EVALUATING: Cell<bool> = const { Cell::new(false) };
}

/// `evaluate` on this thread, unless `policy` has been found to need an evaluation
/// thread; None when it has (then or before): evaluate it there.
pub(crate) fn evaluate_here<R>(policy: &CompiledPolicy, evaluate: impl FnOnce() -> R) -> Option<R> {
    if !policy.evaluates_inline() {
        return None;
    }
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(install_quiet_hook);
    EVALUATING.set(true);
    let result = catch_unwind(AssertUnwindSafe(evaluate));
    EVALUATING.set(false);
    match result {
        Ok(answer) => Some(answer),
        Err(panic) => {
            policy.evaluate_off_thread_from_now();
            tracing::warn!(
                policy = %policy.info().name,
                cause = panic_message(&*panic),
                "the policy used WASI output (stdout or stderr, e.g. a print or a guest panic), \
                 which cannot run on an HTTP worker: its per-request evaluations move to the \
                 evaluation threads (slower) until it is replaced"
            );
            None
        }
    }
}

/// Wraps the process's panic hook so that a panic inside an evaluation on this thread is
/// not printed as a crash (it is handled and logged by [`evaluate_here`]).
fn install_quiet_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !EVALUATING.get() {
            previous(info);
        }
    }));
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}
