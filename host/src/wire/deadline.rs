//! One deadline per connection state, moved without touching the timer wheel.
//!
//! A `tokio::time::timeout_at` per wait registers a timer in the runtime's wheel when the
//! wait is pending and removes it when the wait ends: twice per proxied request (the
//! client's next head, the app's answer), each a lock of the time driver and a wheel
//! insert and removal. A [`Deadline`] keeps one timer for the connection's life: moving the
//! deadline later only records the new instant; the timer, when it fires at an older
//! instant, is re-armed for the current one and the wait goes on. So a deadline that keeps
//! moving (a kept-alive connection's next head, the next exchange's answer) costs one wheel
//! operation per timeout period instead of two per request, and still ends a wait at the
//! same instant as a fresh timer would.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

/// A deadline with its one timer; see the module docs.
pub struct Deadline {
    at: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new(Instant::now())
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline").field("at", &self.at).finish()
    }
}

impl Deadline {
    /// A deadline at `at` (its timer is made at the first wait).
    pub fn new(at: Instant) -> Self {
        Deadline { at, timer: None }
    }

    /// Moves the deadline to `at`. Later: nothing but the instant changes. Earlier (not
    /// done by the wire path, but kept exact): the timer is re-armed now.
    pub fn set(&mut self, at: Instant) {
        self.at = at;
        if let Some(timer) = &mut self.timer
            && at < timer.deadline()
        {
            timer.as_mut().reset(at);
        }
    }

    /// Ready once the deadline has passed.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        loop {
            ready!(timer.as_mut().poll(cx));
            if timer.deadline() >= at {
                return Poll::Ready(());
            }
            // Fired for an older deadline: wait on for the current one.
            timer.as_mut().reset(at);
        }
    }

    /// `work`'s output, or `None` if the deadline passes first (checked after `work`, as
    /// `tokio::time::timeout_at` does: work that is ready wins).
    pub async fn run<F: Future>(&mut self, work: F) -> Option<F::Output> {
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(output) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            ready!(self.poll_elapsed(cx));
            Poll::Ready(None)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    // Real time, short waits; only "not before" is asserted (a timer never fires early),
    // and "not an hour late" by a generous bound.
    #[tokio::test]
    async fn a_moved_deadline_ends_the_wait_at_its_new_instant() {
        let mut deadline = Deadline::new(Instant::now() + 30 * MS);
        assert_eq!(deadline.run(async { 1 }).await, Some(1));
        // Arms the timer for the first instant.
        assert_eq!(deadline.run(tokio::time::sleep(10 * MS)).await, Some(()));
        // Moved later: the timer fires at the old instant, is re-armed, and the wait ends
        // at the new one.
        let later = Instant::now() + 80 * MS;
        deadline.set(later);
        assert_eq!(deadline.run(std::future::pending::<()>()).await, None);
        assert!(Instant::now() >= later);
        // Armed for an hour by a wait, then moved earlier: ends then, not in an hour.
        deadline.set(Instant::now() + Duration::from_secs(3600));
        assert_eq!(deadline.run(tokio::time::sleep(5 * MS)).await, Some(()));
        let sooner = Instant::now() + 20 * MS;
        deadline.set(sooner);
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            deadline.run(std::future::pending::<()>()),
        )
        .await;
        assert_eq!(waited, Ok(None));
        assert!(Instant::now() >= sooner);
        // Work that is ready when the deadline has passed still wins.
        assert_eq!(deadline.run(async { 2 }).await, Some(2));
    }
}
