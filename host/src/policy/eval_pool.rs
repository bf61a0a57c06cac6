//! The threads policies are evaluated on.
//!
//! An evaluation is synchronous wasm, and WASI's synchronous bindings enter a tokio runtime
//! (`block_on`) for some calls, which is refused on a runtime worker. So quotes, payee
//! checks and session decisions run here, not on a worker; so do per-request decisions of a
//! policy found to use those bindings (the others run on the HTTP worker itself, see
//! [`super::inline`]). Evaluations used to run under `block_in_place`, which on a small
//! runtime hands the whole worker (its other tasks) to another thread and back for every
//! evaluation: measured at ~30 µs per proxied request with one worker, ten times the
//! evaluation itself. A few dedicated threads fed by a queue cost one wake-up each way
//! instead, and a busy worker keeps serving other connections meanwhile.
//!
//! The pool is process-wide (engines come and go in tests; threads should not), started on
//! first use with one thread per CPU (at most 8): evaluations are CPU-bound and short.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Jobs waiting beyond this many are refused rather than queued: a backlog that large means
/// the threads cannot keep up, and waiting longer would only add latency to every request.
const QUEUE: usize = 4096;

/// A queue the threads wait on together: a job wakes one idle thread, and a thread that
/// finds work waiting takes it without sleeping. (A channel's receiver behind a mutex, as
/// before, woke two threads per job under load: the one blocked in the receiver, then the
/// one blocked on the mutex it held — measured as lock contention on every proxied request
/// with the request policy on.)
struct Pool {
    jobs: Mutex<VecDeque<Job>>,
    waiting: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    static STARTED: std::sync::Once = std::sync::Once::new();
    let pool = POOL.get_or_init(|| Pool {
        jobs: Mutex::new(VecDeque::with_capacity(64)),
        waiting: Condvar::new(),
    });
    STARTED.call_once(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        for i in 0..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("policy-eval-{i}"))
                .spawn(move || work(pool));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a policy evaluation thread");
            }
        }
    });
    pool
}

fn work(pool: &Pool) {
    loop {
        let job = {
            let mut jobs = pool.jobs.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match jobs.pop_front() {
                    Some(job) => break job,
                    None => {
                        jobs = pool.waiting.wait(jobs).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        };
        // A panicking evaluation must not take the thread with it; its caller sees its
        // answer channel closed.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Why a job did not run.
#[derive(Debug)]
pub(crate) enum Rejected {
    /// The queue is full.
    Busy,
    /// The job panicked or the pool is gone.
    Lost,
}

/// Runs `f` on a pool thread and waits for it without blocking the caller's thread.
pub(crate) async fn run<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Rejected> {
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    let pool = pool();
    {
        let mut jobs = pool.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= QUEUE {
            return Err(Rejected::Busy);
        }
        jobs.push_back(job);
    }
    pool.waiting.notify_one();
    answer.await.map_err(|_| Rejected::Lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn jobs_run_off_the_worker_and_a_panic_loses_only_its_job() {
        let worker = std::thread::current().id();
        let ran_on = run(|| std::thread::current().id()).await.expect("runs");
        assert_ne!(ran_on, worker);
        assert!(matches!(
            run(|| panic!("policy bug")).await,
            Err::<(), _>(Rejected::Lost)
        ));
        assert_eq!(run(|| 2 + 2).await.expect("still serving"), 4);
    }
}
