//! What one HTTP worker owns for all its connections.
//!
//! A worker is a single-threaded runtime (`crate::server`): every task of its connections
//! runs on its thread, and what they share lives in one [`WorkerState`], made when the
//! worker starts and handed to each connection (by `Rc`, through
//! [`super::Connections`]). It needs no lock: nothing of it leaves the worker, and no
//! borrow of it is held across an `.await`. Dropping it (when the worker stops) closes
//! the idle connections it kept.

use super::date::DateCache;
use super::idle::IdlePool;

/// One worker's shared state: its idle connections to apps and its `Date` header.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Keep-alive connections to apps, reused by this worker's exchanges.
    pub idle: IdlePool,
    /// The `Date` field added to responses that have none.
    pub date: DateCache,
}

impl WorkerState {
    /// A worker's state before its first connection: no idle connection kept.
    pub fn new() -> Self {
        Self::default()
    }
}
