//! Keep-alive HTTP/1.1 connections to entrances, on hyper's low-level client.
//!
//! Why not hyper-util's legacy `Client`: per request it builds a connect future (raced
//! against the pool checkout), and checks the connection back in from a task it spawns once
//! the response is done. On the proxy's hot path those are a large share of the work. Here
//! a checkout is a pop from the entrance's idle list, and a connection goes back the moment
//! the response body ends, from the body's own poll.
//!
//! Idle connections are kept per thread: a connection's task runs on the runtime that
//! opened it, so a request on another thread (another HTTP worker) would pay a cross-thread
//! wake-up on every read and write. Each worker reuses its own.
//!
//! A request that never left (the pooled connection turned out closed) is retried on
//! another connection, whatever its method: the app never saw it. Nothing else is retried.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::ProxyBody;

type Sender = http1::SendRequest<ProxyBody>;

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The TCP connect did not finish in time.
    ConnectTimeout,
    /// The TCP connect failed (refused, unreachable, no such host).
    Connect(std::io::Error),
    /// The exchange failed after connecting (reset, bad response, our body limits).
    Exchange(hyper::Error),
}

/// Idle connections per entrance. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// Idle connections by the thread they are used on, then by entrance.
type IdleMap = HashMap<ThreadId, HashMap<Authority, Vec<Idle>>>;

struct Inner {
    idle: Mutex<IdleMap>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Pool {
    /// A pool keeping at most `max_idle_per_host` idle connections per entrance, each for at
    /// most `idle_timeout`. On a Tokio runtime, a reaper drops expired and closed ones (and
    /// the lists of entrances that are gone) every `idle_timeout`.
    pub(crate) fn new(
        max_idle_per_host: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Pool {
        let inner = Arc::new(Inner {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_host,
            idle_timeout,
            connect_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&inner), idle_timeout));
        }
        Pool { inner }
    }

    /// Sends `request` (origin-form URI, `Host` set) to `authority` on an idle connection
    /// or a new one. The response body returns the connection to the pool when it ends.
    pub(crate) async fn send(
        &self,
        authority: &Authority,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        while let Some(mut sender) = self.inner.checkout(authority) {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.attach(authority, sender, response)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection closed while idle. Try another.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
        let mut sender = self.connect(authority).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(SendError::Exchange)?;
        Ok(self.attach(authority, sender, response))
    }

    async fn connect(&self, authority: &Authority) -> Result<Sender, SendError> {
        let stream = connect_tcp(authority, self.inner.connect_timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "entrance connection ended");
            }
        });
        Ok(sender)
    }

    fn attach(
        &self,
        authority: &Authority,
        sender: Sender,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        // An upgraded connection belongs to its tunnel, never to the pool.
        let checkin = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Checkin {
            pool: Arc::downgrade(&self.inner),
            authority: authority.clone(),
            sender,
        });
        response.map(|inner| {
            let mut body = PooledBody { inner, checkin };
            if body.inner.is_end_stream() {
                // No body to wait for (HEAD, 204, 304, `Content-Length: 0`).
                body.check_in();
            }
            body
        })
    }

    /// Idle connections kept for `authority` right now.
    #[cfg(test)]
    pub(crate) fn idle_count(&self, authority: &Authority) -> usize {
        self.inner
            .idle
            .lock()
            .map(|idle| {
                idle.get(&std::thread::current().id())
                    .and_then(|mine| mine.get(authority))
                    .map_or(0, Vec::len)
            })
            .unwrap_or(0)
    }
}

impl Inner {
    /// The most recently used idle connection that is ready for a request. Closed and
    /// expired ones are dropped on the way; one still finishing its last exchange is left.
    fn checkout(&self, authority: &Authority) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle
            .get_mut(&std::thread::current().id())?
            .get_mut(authority)?;
        let now = Instant::now();
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(entry) = list.pop() {
            if entry.sender.is_closed() || now.duration_since(entry.since) > self.idle_timeout {
                continue;
            }
            if entry.sender.is_ready() {
                found = Some(entry.sender);
                break;
            }
            busy.push(entry);
        }
        list.extend(busy.into_iter().rev());
        found
    }

    fn check_in(&self, authority: Authority, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle
            .entry(std::thread::current().id())
            .or_default()
            .entry(authority)
            .or_default();
        if list.len() < self.max_idle_per_host {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn reap(&self) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        idle.retain(|_, mine| {
            mine.retain(|_, list| {
                list.retain(|e| {
                    !e.sender.is_closed() && now.duration_since(e.since) <= self.idle_timeout
                });
                !list.is_empty()
            });
            !mine.is_empty()
        });
    }
}

/// A TCP connection to an entrance, with `TCP_NODELAY` (small writes such as websocket
/// frames and SSE events go out at once), within `timeout`.
pub(crate) async fn connect_tcp(
    authority: &Authority,
    timeout: Duration,
) -> Result<TcpStream, SendError> {
    let port = authority.port_u16().unwrap_or(80);
    // An IPv6 entrance is `[fd00::1]:80`: the address without its brackets, or it would
    // be looked up as a name.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_elapsed| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
    stream.set_nodelay(true).map_err(SendError::Connect)?;
    Ok(stream)
}

/// Drops expired and closed connections until the pool is gone.
async fn reap(pool: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        match pool.upgrade() {
            Some(inner) => inner.reap(),
            None => return,
        }
    }
}

struct Checkin {
    pool: Weak<Inner>,
    authority: Authority,
    sender: Sender,
}

/// An entrance's response body. When it ends, its connection goes back to the pool; when
/// it is dropped before its end (the client went away), the connection is closed, since
/// an HTTP/1.1 connection with a half-read response cannot carry another.
pub struct PooledBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl PooledBody {
    fn check_in(&mut self) {
        if let Some(Checkin {
            pool,
            authority,
            sender,
        }) = self.checkin.take()
            && let Some(pool) = pool.upgrade()
        {
            pool.check_in(authority, sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.check_in(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.check_in(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.checkin = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn get(authority: &Authority) -> Request<ProxyBody> {
        Request::get("/")
            .header(http::header::HOST, authority.as_str())
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .expect("request")
    }

    /// An app answering `n` keep-alive requests per connection with "ok", counting
    /// connections.
    async fn app(per_connection: usize) -> (Authority, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority: Authority = listener
            .local_addr()
            .expect("addr")
            .to_string()
            .parse()
            .expect("authority");
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..per_connection {
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let Ok(n) = stream.read(&mut buf).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            seen.extend_from_slice(&buf[..n]);
                        }
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                    // Then close: the next request on this connection finds it closed.
                });
            }
        });
        (authority, connections)
    }

    #[tokio::test]
    async fn a_finished_response_returns_its_connection_for_the_next_request() {
        let (authority, connections) = app(usize::MAX).await;
        let pool = Pool::new(8, Duration::from_secs(90), Duration::from_secs(2));
        for _ in 0..5 {
            let response = pool.send(&authority, get(&authority)).await.expect("send");
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(body.to_bytes(), "ok");
            assert_eq!(pool.idle_count(&authority), 1);
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_response_dropped_before_its_end_does_not_return_its_connection() {
        let (authority, connections) = app(usize::MAX).await;
        let pool = Pool::new(8, Duration::from_secs(90), Duration::from_secs(2));
        let response = pool.send(&authority, get(&authority)).await.expect("send");
        // Content-Length: 2, nothing read yet.
        drop(response);
        assert_eq!(pool.idle_count(&authority), 0);
        let response = pool.send(&authority, get(&authority)).await.expect("send");
        response.into_body().collect().await.expect("body");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_while_idle_is_replaced_without_an_error() {
        // The app serves one request per connection, then closes it.
        let (authority, connections) = app(1).await;
        let pool = Pool::new(8, Duration::from_secs(90), Duration::from_secs(2));
        for _ in 0..3 {
            let response = pool.send(&authority, get(&authority)).await.expect("send");
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(body.to_bytes(), "ok");
            // Let the close reach the idle connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_per_entrance() {
        let (authority, _) = app(usize::MAX).await;
        let pool = Pool::new(2, Duration::from_secs(90), Duration::from_secs(2));
        // Four responses open at once: four connections.
        let mut open = Vec::new();
        for _ in 0..4 {
            open.push(pool.send(&authority, get(&authority)).await.expect("send"));
        }
        for response in open {
            response.into_body().collect().await.expect("body");
        }
        assert_eq!(pool.idle_count(&authority), 2);
    }

    #[tokio::test]
    async fn an_ipv6_entrance_is_reached_by_its_address() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            // No IPv6 loopback on this machine: nothing to test.
            return;
        };
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nv6")
                .await;
        });
        let authority: Authority = format!("[::1]:{port}").parse().expect("authority");
        let pool = Pool::new(8, Duration::from_secs(90), Duration::from_secs(2));
        let response = pool.send(&authority, get(&authority)).await;
        let body = response
            .expect("connected over IPv6")
            .into_body()
            .collect()
            .await
            .expect("body");
        assert_eq!(body.to_bytes(), "v6");
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let authority: Authority = format!("127.0.0.1:{port}").parse().expect("authority");
        let pool = Pool::new(8, Duration::from_secs(90), Duration::from_secs(2));
        let result = pool.send(&authority, get(&authority)).await;
        assert!(
            matches!(result, Err(SendError::Connect(_))),
            "nothing listens: {:?}",
            result.err()
        );
    }
}
