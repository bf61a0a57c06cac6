//! Idle keep-alive connections to entrances, kept per thread: each HTTP worker is a
//! single-threaded event loop whose sockets are registered with its own reactor, so a
//! connection is only ever reused on the thread that opened it, without a lock.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// How long an idle connection is kept: under the 2 minutes after which servers commonly
/// drop one themselves.
pub const MAX_IDLE: Duration = Duration::from_secs(90);

struct Idle {
    stream: TcpStream,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<HashMap<String, VecDeque<Idle>>> = RefCell::default();
}

/// The most recently used idle connection to `authority` that is still open, if any.
pub fn take(authority: &str) -> Option<TcpStream> {
    IDLE.with_borrow_mut(|idle| {
        let queue = idle.get_mut(authority)?;
        let now = Instant::now();
        while let Some(Idle { stream, since }) = queue.pop_back() {
            let waited = now.saturating_duration_since(since);
            if waited >= MAX_IDLE || !still_open(&stream) {
                continue;
            }
            return Some(stream);
        }
        None
    })
}

/// Keeps `stream` for the next request to `authority`, unless `max` are kept already.
pub fn give(authority: &str, stream: TcpStream, max: usize) {
    IDLE.with_borrow_mut(|idle| {
        let entry = Idle {
            stream,
            since: Instant::now(),
        };
        match idle.get_mut(authority) {
            Some(queue) if queue.len() < max => queue.push_back(entry),
            Some(_) => {}
            None if max > 0 => {
                idle.insert(authority.to_owned(), VecDeque::from([entry]));
            }
            None => {}
        }
    });
}

/// Drops this thread's connections idle for longer than `MAX_IDLE` (90 s), and the entrances
/// left without any.
pub fn sweep() {
    let now = Instant::now();
    IDLE.with_borrow_mut(|idle| {
        for queue in idle.values_mut() {
            queue.retain(|i| now.saturating_duration_since(i.since) < MAX_IDLE);
        }
        idle.retain(|_, queue| !queue.is_empty());
    });
}

/// Drops every idle connection of this thread (a worker stopping closes them while its
/// reactor still runs).
pub fn clear() {
    IDLE.with_borrow_mut(HashMap::clear);
}

/// False when the app has closed the connection (or sent bytes nobody asked for), as far
/// as the reactor has seen. Free when nothing arrived: tokio answers `WouldBlock` from its
/// readiness flags (cleared by the short read that ended the last response) without a
/// system call. A close the reactor has not seen yet is met by sending an idempotent
/// request again on a new connection.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
