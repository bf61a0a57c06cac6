//! A client connection on an HTTP worker.
//!
//! Process requests in plain HTTP/1.1 — no body or a `Content-Length` body, no upgrade,
//! no `Expect`, one `Host` — are read off the socket, admitted
//! (`crate::admission::admit`, as on hyper's path) and forwarded as bytes
//! ([`crate::proxy::Forwarder::forward_wire`], the exchange with the app). At the first
//! request that is anything else (an API call, a hand-off, a websocket, a chunked upload,
//! HTTP/1.0 or HTTP/2, a malformed head) the connection, with what was read of it, is
//! handed to hyper and served there to its end: hyper's router and forwarder answer exactly
//! as they would have from the first byte.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::client_stream::ClientStream;
use super::date::DateCache;
use super::deadline::Deadline;
use super::error::Failure;
use super::head::{HeadWriter, KEPT_BUFFER};
use super::worker::WorkerState;
use super::{Exchange, Finished, WireBuffers, WireRequest};
use crate::admission::{admit, forward_options, handoff_code, view};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::process::ORDER_HEADER;
use crate::proxy::ClientInfo;
use crate::proxy::headers::Headers;
use grid_wire::request::RequestHead;

/// What every connection a worker accepts on one listener shares (the worker's own state
/// included).
pub struct Connections {
    /// The node.
    pub gateway: Arc<Gateway>,
    /// The API, served on `api_runtime`.
    pub api: Router,
    /// Where API requests run (the node's runtime, not the worker's).
    pub api_runtime: tokio::runtime::Handle,
    /// hyper, for connections handed over.
    pub hyper: auto::Builder<TokioExecutor>,
    /// Longest wait for a whole request head, idle keep-alive included.
    pub header_read_timeout: Duration,
    /// The listener's role: TLS, a redirect to HTTPS, HSTS.
    pub listener: Arc<crate::http::Listener>,
    /// The worker's idle app connections and `Date` header, shared by its listeners.
    pub worker: Rc<WorkerState>,
}

/// Serves the connection `stream` from `peer` until it closes, or until `stopping` turns
/// true and the request in flight (if any) is answered.
pub async fn serve(
    connections: Rc<Connections>,
    mut stream: ClientStream,
    peer: SocketAddr,
    stopping: watch::Receiver<bool>,
) {
    let gw = &connections.gateway;
    let mut read: Vec<u8> = Vec::with_capacity(4096);
    let mut buffers = WireBuffers::default();
    // The whole head must arrive by then (a client trickling bytes cannot hold the
    // connection); the wait for the next request on a kept connection counts too. One
    // timer for the connection's life, moved per request without the timer wheel.
    let mut head_deadline =
        Deadline::new(tokio::time::Instant::now() + connections.header_read_timeout);
    // Waited on while the connection is idle; made (and registered with the watch) once
    // for the connection, not once per wait.
    let mut stop_watch = stopping.clone();
    let stop = stopped(&mut stop_watch);
    tokio::pin!(stop);
    loop {
        let (head_len, request) = match grid_wire::request::parse(&read) {
            // A listener that redirects answers through hyper: nothing there is proxied.
            RequestHead::Fast { head_len, request }
                if connections.listener.redirect.is_none() && !for_hyper(gw, &request) =>
            {
                (head_len, request)
            }
            RequestHead::Partial => {
                if read_more(&mut stream, &mut read, stop.as_mut(), &mut head_deadline).await {
                    continue;
                }
                return;
            }
            RequestHead::Ambiguous { is_head } => {
                let error = Error::Proxy(crate::proxy::ProxyError::AmbiguousLength);
                let hsts = connections.listener.hsts.as_ref();
                let dates = &connections.worker.date;
                let _ = write_error(&mut stream, error, true, is_head, hsts, dates).await;
                let _ = stream.shutdown().await;
                return;
            }
            // Malformed, too large, not HTTP/1 at all (the HTTP/2 preface), not for the
            // fast path, or the API's: hyper answers it.
            RequestHead::Fast { .. } | RequestHead::HandOver => break,
        };
        let in_hand = request.body_len().min((read.len() - head_len) as u64) as usize;
        let body_start = &read[head_len..head_len + in_hand];
        // A body not wholly read yet may be half-read when the request fails.
        let body_on_the_wire = request.body_len() > in_hand as u64;
        let client_close = request.close;
        let is_head = request.method == "HEAD";
        let hsts = connections.listener.hsts.as_ref();
        let outcome = admit_and_forward(
            &connections,
            &mut stream,
            request,
            body_start,
            peer,
            &mut buffers,
        )
        .await;
        let keep_alive = match outcome {
            Ok(Finished::KeepAlive) => true,
            Ok(Finished::Close) => false,
            Err(Failure::Aborted(reason)) => {
                tracing::debug!(%peer, %reason, "proxied exchange aborted");
                false
            }
            Err(Failure::Refused(error)) => {
                let close = client_close || body_on_the_wire;
                write_error(
                    &mut stream,
                    error,
                    close,
                    is_head,
                    hsts,
                    &connections.worker.date,
                )
                .await
                .is_ok()
                    && !close
            }
        };
        if !keep_alive || *stopping.borrow() {
            // An orderly end (FIN after the response) before the socket goes.
            let _ = stream.shutdown().await;
            return;
        }
        read.drain(..head_len + in_hand);
        if read.is_empty() && read.capacity() > KEPT_BUFFER {
            // One large head does not make every later wait on this connection hold it.
            read = Vec::with_capacity(4096);
        }
        head_deadline.set(tokio::time::Instant::now() + connections.header_read_timeout);
    }
    hand_over(&connections, stream, read, peer, stopping).await;
}

/// Reads more of a request head into `read`; false when the connection is over (closed,
/// the head not complete by `deadline`, or the server stopping while it was idle).
async fn read_more(
    stream: &mut ClientStream,
    read: &mut Vec<u8>,
    stop: Pin<&mut impl Future<Output = ()>>,
    deadline: &mut Deadline,
) -> bool {
    read.reserve(4096);
    let idle = read.is_empty();
    let more = deadline.run(stream.read_buf(read));
    let result = if idle {
        tokio::select! {
            result = more => result,
            () = stop => return false,
        }
    } else {
        more.await
    };
    matches!(result, Some(Ok(n)) if n > 0)
}

/// Resolves once the server is stopping (never, when the sender is gone without a stop).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether a request the fast path could take is the API's, or a hand-off's: those are
/// served by hyper's router.
fn for_hyper(gw: &Gateway, request: &WireRequest<'_>) -> bool {
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.target, None),
    };
    crate::http::is_api_path(gw, path, request.host)
        || handoff_code(gw, query, request.host).is_some()
}

/// Admits `request` and forwards it on the wire.
async fn admit_and_forward(
    connections: &Connections,
    stream: &mut ClientStream,
    mut request: WireRequest<'_>,
    body_start: &[u8],
    peer: SocketAddr,
    buffers: &mut WireBuffers,
) -> Result<Finished, Failure<Error>> {
    let gw = &*connections.gateway;
    if crate::admission::refuses_body(gw, request.method, request.body_len() > 0) {
        return Err(Error::BodyNotAllowed(request.method.to_owned()).into());
    }
    let (route, credential) = {
        let path = request.target.split('?').next().unwrap_or_default();
        let view = view(gw, request.method, path, request.host, &request.headers);
        admit(gw, &request.headers, &view).await?
    };
    // The header is the gateway's; the app has no use for it.
    request.headers.remove(ORDER_HEADER);
    crate::admission::strip_gateway_bearers(gw, &mut request.headers, credential);
    let client = ClientInfo {
        peer,
        https: stream.is_tls(),
    };
    let options = forward_options(credential);
    let exchange = Exchange {
        client: stream,
        request,
        body_start,
        upstream: &route.entrance,
        client_info: &client,
        options: &options,
        buffers,
        hsts: connections.listener.hsts.as_ref(),
        worker: &connections.worker,
    };
    gw.forwarder
        .forward_wire(exchange)
        .await
        .map_err(Failure::map_refused)
}

/// Answers with `error`'s JSON body, as the API does (to a HEAD request, its headers only).
async fn write_error(
    stream: &mut ClientStream,
    error: Error,
    close: bool,
    is_head: bool,
    hsts: Option<&http::HeaderValue>,
    dates: &DateCache,
) -> io::Result<()> {
    let (parts, body) = error.into_response().into_parts();
    // The error body is in memory: collecting it cannot wait or fail.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    let status = parts.status;
    let mut head = HeadWriter::response(
        &mut out,
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
    );
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH {
            head.field(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(hsts) = hsts {
        head.field(b"strict-transport-security", hsts.as_bytes());
    }
    head.content_length(body.len() as u64).date(dates);
    if close {
        head.close();
    }
    head.finish();
    if !is_head {
        out.extend_from_slice(&body);
    }
    stream.write_all(&out).await
}

/// How an HTTP/2 connection (prior knowledge, h2c) opens.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Serves the rest of the connection with hyper, starting with the bytes already `read`.
async fn hand_over(
    connections: &Connections,
    mut stream: ClientStream,
    read: Vec<u8>,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) {
    let service = crate::http::connection_service(
        connections.gateway.clone(),
        connections.api.clone(),
        connections.api_runtime.clone(),
        peer,
        connections.listener.clone(),
    );
    if read.starts_with(H2_PREFACE) {
        // HTTP/2 has no head deadline: silence is what is timed.
        stream.limit_silence(connections.header_read_timeout);
    }
    let io = TokioIo::new(Rewind {
        prefix: read,
        at: 0,
        inner: stream,
    });
    let connection = connections
        .hyper
        .serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let stop = stopped(&mut stopping);
    tokio::pin!(stop);
    let mut draining = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = &mut stop, if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// A stream that first gives back bytes already read from it.
struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    inner: ClientStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                // Given back whole: free it for the rest of the connection's life.
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
