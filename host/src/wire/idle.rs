//! Idle keep-alive connections to entrances, kept per HTTP worker ([`super::WorkerState`]):
//! each worker is a single-threaded event loop whose sockets are registered with its own
//! reactor, so a connection is only ever reused by the worker that opened it, without a
//! lock.

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

/// One worker's idle connections to apps, by entrance authority (`host:port`).
///
/// Not `Sync`: it is shared (by reference) only by the connections of the worker that owns
/// it. No borrow of it is held across an `.await`.
#[derive(Default)]
pub struct IdlePool {
    idle: RefCell<HashMap<String, VecDeque<Idle>>>,
}

impl std::fmt::Debug for IdlePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdlePool")
            .field("connections", &self.len())
            .finish()
    }
}

impl IdlePool {
    /// The most recently used idle connection to `authority` that is still open, if any.
    pub fn take(&self, authority: &str) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
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
    }

    /// Keeps `stream` for the next request to `authority`, unless `max` are kept already.
    pub fn give(&self, authority: &str, stream: TcpStream, max: usize) {
        let mut idle = self.idle.borrow_mut();
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
    }

    /// Drops the connections idle for longer than `MAX_IDLE` (90 s), and the entrances
    /// left without any.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        for queue in idle.values_mut() {
            queue.retain(|i| now.saturating_duration_since(i.since) < MAX_IDLE);
        }
        idle.retain(|_, queue| !queue.is_empty());
    }

    /// Drops every idle connection (a worker stopping closes them while its reactor still
    /// runs).
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }

    /// How many connections are kept, over all entrances.
    pub fn len(&self) -> usize {
        self.idle.borrow().values().map(VecDeque::len).sum()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A connected pair on loopback: the gateway's end, the app's end.
    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let addr = listener.local_addr().expect("bound");
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (ours.expect("connected"), theirs.expect("accepted").0)
    }

    #[tokio::test]
    async fn a_kept_connection_is_given_back_to_its_entrance_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let pool = IdlePool::default();
        let (ours, _theirs) = pair(&listener).await;
        let local = ours.local_addr().expect("local address");
        pool.give("app:80", ours, 4);
        assert_eq!(pool.len(), 1);
        assert!(pool.take("other:80").is_none());
        let taken = pool.take("app:80").expect("the kept connection");
        assert_eq!(taken.local_addr().expect("local address"), local);
        assert!(pool.is_empty());
        assert!(pool.take("app:80").is_none());
    }

    #[tokio::test]
    async fn no_more_than_max_are_kept_per_entrance() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let pool = IdlePool::default();
        let mut apps = Vec::new();
        for _ in 0..3 {
            let (ours, theirs) = pair(&listener).await;
            apps.push(theirs);
            pool.give("app:80", ours, 2);
        }
        assert_eq!(pool.len(), 2);
        let (ours, _theirs) = pair(&listener).await;
        pool.give("none:80", ours, 0);
        assert_eq!(pool.len(), 2, "max 0 keeps nothing");
        pool.clear();
        assert!(pool.is_empty());
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_or_wrote_on_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let pool = IdlePool::default();
        let (closed, theirs) = pair(&listener).await;
        drop(theirs);
        closed.readable().await.expect("the close seen");
        pool.give("app:80", closed, 4);
        let (chatty, mut theirs) = pair(&listener).await;
        theirs
            .write_all(b"HTTP/1.1 200 OK\r\n")
            .await
            .expect("written");
        chatty.readable().await.expect("the bytes seen");
        pool.give("app:80", chatty, 4);
        assert!(pool.take("app:80").is_none());
        assert!(pool.is_empty());
    }
}
