//! A client's connection as both request paths hold it: the TCP stream (or the TLS
//! session over it) with the deadlines no connection may live without, and its place
//! under `http.max_connections`. Both paths read and write plain HTTP through it, whichever
//! listener it came from.
//!
//! - **Send progress** (`http.send_timeout_ms`): a write toward the client that stays
//!   pending (the client accepts no bytes) for that long fails with `TimedOut`; the path
//!   writing it gives up the exchange, so the connection, its task and the app's
//!   connection are released. A slow reader that takes bytes now and then is not cut.
//! - **Silence** (HTTP/2 only, `http.header_read_timeout_ms`): a read that gets no byte
//!   for that long fails with `TimedOut`. HTTP/1 heads have their own deadline; an HTTP/2
//!   connection has no head, so a client sending the preface and then nothing is cut here.
//!   While it has requests open the server pings it (hyper's keep-alive), so a live client
//!   always answers something within the deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// One of the `http.max_connections` places, given back when dropped.
pub struct Slot(Gauge);

impl Slot {
    /// Takes a place when fewer than `max` connections are open (0: no cap); `open` counts
    /// every worker's connections.
    pub fn take(open: &Gauge, max: usize) -> Option<Slot> {
        let before = open.inc();
        if max > 0 && usize::try_from(before).unwrap_or(0) >= max {
            open.dec();
            return None;
        }
        Some(Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The transport under a [`ClientStream`].
enum Inner {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Inner {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Inner {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client connection with its deadlines; see the module docs.
pub struct ClientStream {
    inner: Inner,
    send_timeout: Duration,
    /// Armed while a write is pending.
    send_deadline: Option<Pin<Box<Sleep>>>,
    send_armed: bool,
    /// Longest silence, when enforced (HTTP/2), and its clock.
    silence: Option<(Duration, Pin<Box<Sleep>>)>,
    _slot: Option<Slot>,
}

impl ClientStream {
    /// `inner`, whose writes must make progress within `send_timeout`.
    pub fn new(inner: TcpStream, send_timeout: Duration, slot: Option<Slot>) -> Self {
        Self::with_inner(Inner::Plain(inner), send_timeout, slot)
    }

    /// A TLS session (its handshake done), whose writes must make progress within
    /// `send_timeout`.
    pub fn tls(
        inner: tokio_rustls::server::TlsStream<TcpStream>,
        send_timeout: Duration,
        slot: Option<Slot>,
    ) -> Self {
        Self::with_inner(Inner::Tls(Box::new(inner)), send_timeout, slot)
    }

    /// Whether the client reached the gateway over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The ALPN protocol the TLS handshake settled on.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.inner {
            Inner::Tls(s) => s.get_ref().1.alpn_protocol(),
            Inner::Plain(_) => None,
        }
    }

    fn with_inner(inner: Inner, send_timeout: Duration, slot: Option<Slot>) -> Self {
        ClientStream {
            inner,
            send_timeout,
            send_deadline: None,
            send_armed: false,
            silence: None,
            _slot: slot,
        }
    }

    /// From now on, a read that gets nothing for `limit` fails.
    pub fn limit_silence(&mut self, limit: Duration) {
        self.silence = Some((limit, Box::pin(tokio::time::sleep(limit))));
    }

    fn timed_out(what: &str, limit: Duration) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client {what} for {limit:?}"),
        )
    }

    /// Passes on a write's outcome; a pending one fails once it has waited `send_timeout`.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.send_armed = false;
            return polled;
        }
        let deadline = Instant::now() + self.send_timeout;
        let sleep = self
            .send_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.send_armed {
            sleep.as_mut().reset(deadline);
            self.send_armed = true;
        }
        ready!(sleep.as_mut().poll(cx));
        self.send_armed = false;
        Poll::Ready(Err(Self::timed_out("accepted no bytes", self.send_timeout)))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some((limit, clock)) = &mut this.silence else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                clock.as_mut().reset(Instant::now() + *limit);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                ready!(clock.as_mut().poll(cx));
                Poll::Ready(Err(Self::timed_out("sent nothing", *limit)))
            }
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, polled)
    }
}
