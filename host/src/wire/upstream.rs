//! One exchange on the wire fast path: the request head rewritten and sent with its body,
//! then the app's response head rewritten and sent back with its body, both streamed in
//! pieces of at most [`READ_CHUNK`] bytes, never buffered whole.

use std::time::Instant;

use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client_stream::ClientStream;
use super::date::DateCache;
use super::deadline::Deadline;
use super::error::WireError;
use super::head::{HeadWriter, KEPT_BUFFER, MAX_HEAD, READ_CHUNK};
use super::worker::WorkerState;
use crate::proxy::headers::{self, HeaderList, Headers, Origin};
use crate::proxy::{ClientInfo, ForwardOptions, Forwarder, ProxyError, Upstream};
use grid_wire::chunked::ChunkedError;
use grid_wire::request::WireRequest;
use grid_wire::response::{self, Framing, ResponseError, ResponsePart};

/// One exchange in flight: the client's connection, the admitted request, where it goes
/// and how, and the connection's buffers.
pub struct Exchange<'a, 'b> {
    /// The client's connection: the rest of the request body is read from it, the response
    /// written to it.
    pub client: &'a mut ClientStream,
    /// The request, admitted.
    pub request: WireRequest<'b>,
    /// The start of its body, already read with the head.
    pub body_start: &'b [u8],
    /// The app's entrance.
    pub upstream: &'a Upstream,
    /// Who sent it (for the forwarding headers).
    pub client_info: &'a ClientInfo,
    /// What is stripped on the way.
    pub options: &'a ForwardOptions,
    /// The client connection's buffers.
    pub buffers: &'a mut WireBuffers,
    /// `Strict-Transport-Security` for the response, unless the app sent its own.
    pub hsts: Option<&'a http::HeaderValue>,
    /// The worker's idle app connections and `Date` header.
    pub worker: &'a WorkerState,
}

/// How an exchange ended for the client's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Ready for the client's next request.
    KeepAlive,
    /// The response was close-delimited, or the client asked: close the connection.
    Close,
}

/// The buffers of one client connection, reused from one exchange to the next.
#[derive(Debug, Default)]
pub struct WireBuffers {
    /// Heads being written (the request's, then the response's).
    out: Vec<u8>,
    /// What is read from the app (and the client's body on its way).
    read: Vec<u8>,
    /// When the app's answer (its response head) is due, for the exchange in flight.
    answer: Deadline,
}

impl WireBuffers {
    /// Frees what a large exchange grew the buffers to ([`KEPT_BUFFER`]).
    fn trim(&mut self) {
        for buffer in [&mut self.out, &mut self.read] {
            if buffer.capacity() > KEPT_BUFFER {
                *buffer = Vec::new();
            }
        }
    }
}

/// One attempt on one app connection.
enum Attempt {
    /// The connection turned out closed before any answer: a reused one may have been
    /// closed by the app while idle.
    Closed,
    /// Anything else.
    Failed(WireError),
}

impl From<ProxyError> for Attempt {
    fn from(error: ProxyError) -> Self {
        Attempt::Failed(WireError::Refused(error))
    }
}

impl From<ChunkedError> for WireError {
    fn from(error: ChunkedError) -> Self {
        WireError::Aborted(format!("the app's response: {error}"))
    }
}

/// What the response head said, once it has been rewritten for the client.
struct ResponseHead {
    status: u16,
    head_len: usize,
    framing: Framing,
    /// The app's connection can serve another request after this body.
    reusable: bool,
    /// The client's connection closes after this response.
    close: bool,
    /// App `Set-Cookie`s of the gateway's session cookie left out.
    cookies_dropped: usize,
}

/// Counts a request being forwarded until its response head arrives.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Forwarder {
    /// Forwards the exchange's request (whose body begins with `body_start`, the rest still
    /// on `client`) to `upstream` and streams the app's response to `client`. Records the
    /// status class (the error's on failure) as [`Forwarder::forward`] does.
    pub async fn forward_wire(
        &self,
        mut exchange: Exchange<'_, '_>,
    ) -> Result<Finished, WireError> {
        self.metrics().served_by(crate::proxy::ServedBy::Wire);
        let result = self.exchange(&mut exchange).await;
        exchange.buffers.trim();
        if let Err(WireError::Refused(error)) = &result {
            self.metrics().count(error.status());
        }
        result
    }

    async fn exchange(&self, ex: &mut Exchange<'_, '_>) -> Result<Finished, WireError> {
        let config = self.config();
        let limit = config.max_request_body_bytes;
        if limit > 0 && ex.request.body_len() > limit {
            return Err(ProxyError::BodyTooLarge { limit }.into());
        }
        self.write_request_head(ex);
        ex.buffers.out.extend_from_slice(ex.body_start);
        let unread_body = ex
            .request
            .body_len()
            .saturating_sub(ex.body_start.len() as u64);
        // Sent again on a new connection if a reused one turns out closed: only what is
        // safe to repeat and still wholly in hand.
        let resendable = unread_body == 0 && idempotent(ex.request.method);
        let upstream = ex.upstream;
        let authority = upstream.authority().as_str();

        let started = Instant::now();
        let in_flight = InFlight::new(&self.metrics().in_flight);
        // The app's answer is due by then: the connection's one answer timer, moved.
        ex.buffers
            .answer
            .set(tokio::time::Instant::now() + config.response_header_timeout);
        // One resend at most, and on a new connection: a request the app dies of must not
        // take down every kept connection in turn.
        let mut resent = false;
        let attempt = loop {
            let idle = if resent {
                None
            } else {
                ex.worker.idle.take(authority)
            };
            let (mut app, reused) = match idle {
                Some(app) => (app, true),
                None => {
                    match crate::proxy::connect_tcp(upstream.authority(), config.connect_timeout)
                        .await
                    {
                        Ok(app) => (app, false),
                        Err(e) => break Err(WireError::Refused(self.classify(e))),
                    }
                }
            };
            let attempt = self.attempt(&mut app, ex, unread_body).await;
            match attempt {
                Ok(head) => break Ok((app, head)),
                Err(Attempt::Closed) if reused && resendable && !resent => resent = true,
                Err(Attempt::Closed) => {
                    break Err(WireError::Refused(ProxyError::UpstreamBadResponse(
                        "the app closed the connection before answering".into(),
                    )));
                }
                Err(Attempt::Failed(error)) => break Err(error),
            }
        };
        drop(in_flight);
        self.metrics()
            .upstream_duration
            .observe(started.elapsed().as_secs_f64());
        let (mut app, head) = attempt?;
        self.metrics().count(
            http::StatusCode::from_u16(head.status).unwrap_or(http::StatusCode::BAD_GATEWAY),
        );

        let ResponseHead {
            head_len,
            mut framing,
            mut reusable,
            close,
            cookies_dropped,
            ..
        } = head;
        if cookies_dropped > 0 {
            self.metrics()
                .app_cookies_dropped
                .inc_by(cookies_dropped as u64);
        }
        let WireBuffers { out, read, .. } = &mut *ex.buffers;
        let client = &mut *ex.client;
        let rest = &read[head_len..];
        let taken = framing.take(rest)?;
        // Bytes after the message: the app is out of step with its connection.
        reusable &= taken == rest.len();
        out.extend_from_slice(&rest[..taken]);
        client
            .write_all(out)
            .await
            .map_err(|e| WireError::Aborted(format!("writing to the client: {e}")))?;
        while !framing.is_done() {
            read.clear();
            read.reserve(READ_CHUNK);
            let n = match tokio::time::timeout(config.body_idle_timeout, app.read_buf(read)).await {
                Err(_elapsed) => {
                    return Err(WireError::Aborted(format!(
                        "the app's body paused for over {:?}",
                        config.body_idle_timeout
                    )));
                }
                Ok(Err(e)) => return Err(WireError::Aborted(format!("reading the app: {e}"))),
                Ok(Ok(0)) if matches!(framing, Framing::UntilClose) => break,
                Ok(Ok(0)) => {
                    return Err(WireError::Aborted(
                        "the app closed the connection in the middle of its body".into(),
                    ));
                }
                Ok(Ok(n)) => n,
            };
            let taken = framing.take(&read[..n])?;
            reusable &= taken == n;
            client
                .write_all(&read[..taken])
                .await
                .map_err(|e| WireError::Aborted(format!("writing to the client: {e}")))?;
        }
        if reusable {
            ex.worker
                .idle
                .give(authority, app, config.pool_max_idle_per_host);
        }
        Ok(if close {
            Finished::Close
        } else {
            Finished::KeepAlive
        })
    }

    /// Writes the exchange's request head, rewritten for its upstream, into its `out`.
    fn write_request_head(&self, ex: &mut Exchange<'_, '_>) {
        let config = self.config();
        let info = ex.client_info;
        let origin = Origin {
            peer: info.peer.ip(),
            proto: if info.https { "https" } else { "http" },
            host: ex.request.host,
            trusted: config.trusted_proxies.contains(&info.peer.ip()),
            forwarded_header: config.forwarded_header,
        };
        request_head(
            &mut ex.buffers.out,
            &mut ex.request,
            ex.upstream.authority().as_str(),
            ex.options,
            &origin,
        );
    }

    /// Sends the request in the exchange's `out` and the `unread_body` bytes of its body
    /// still on the client's connection on `app`, then reads the response head into `read`
    /// and writes its rewrite for the client into `out`, all by its `answer` deadline.
    async fn attempt(
        &self,
        app: &mut TcpStream,
        ex: &mut Exchange<'_, '_>,
        unread_body: u64,
    ) -> Result<ResponseHead, Attempt> {
        let WireBuffers { out, read, answer } = &mut *ex.buffers;
        let client = &mut *ex.client;
        let is_head = ex.request.method == "HEAD";
        let client_close = ex.request.close;
        let hsts = ex.hsts;
        let dates = &ex.worker.date;
        // An app that stops reading must not hold the exchange: its writes have the same
        // clocks as its answers.
        match answer.run(app.write_all(out)).await {
            None => return Err(ProxyError::UpstreamTimeout.into()),
            Some(Err(_)) => return Err(Attempt::Closed),
            Some(Ok(())) => {}
        }
        let early = self.send_body(app, read, client, unread_body).await?;
        read.clear();
        loop {
            if read.len() >= MAX_HEAD {
                return Err(ProxyError::UpstreamBadResponse(format!(
                    "response head over {MAX_HEAD} bytes"
                ))
                .into());
            }
            read.reserve(4096);
            let n = match answer.run(app.read_buf(read)).await {
                None => return Err(ProxyError::UpstreamTimeout.into()),
                // Closed or reset before a byte of the answer.
                Some(Ok(0)) | Some(Err(_)) if read.is_empty() => return Err(Attempt::Closed),
                Some(Ok(0)) => {
                    return Err(ProxyError::UpstreamBadResponse(
                        "closed in the middle of its response head".into(),
                    )
                    .into());
                }
                Some(Err(e)) => {
                    return Err(ProxyError::UpstreamBadResponse(e.to_string()).into());
                }
                Some(Ok(n)) => n,
            };
            debug_assert!(n > 0);
            if let Some(mut head) =
                rewrite_response_head(read, out, is_head, client_close || early, hsts, dates)?
            {
                // The app answered before the body was all sent: the rest of it is still on
                // the client's connection and half of it maybe in the app's.
                head.reusable &= !early;
                return Ok(head);
            }
        }
    }

    /// Streams the `unread_body` bytes still on `client` to `app`, each read and write
    /// within the body idle timeout. Stops early, returning true, when the app starts
    /// answering before it has the whole body (a 413 or 401 of its own): that answer is
    /// what the client gets, as from any proxy.
    async fn send_body(
        &self,
        app: &mut TcpStream,
        read: &mut Vec<u8>,
        client: &mut ClientStream,
        mut unread_body: u64,
    ) -> Result<bool, Attempt> {
        let idle_timeout = self.config().body_idle_timeout;
        let (mut app_reader, mut app_writer) = app.split();
        let mut probe = [0u8; 1];
        while unread_body > 0 {
            read.clear();
            let want = unread_body.min(READ_CHUNK as u64);
            // At most READ_CHUNK.
            read.reserve(want as usize);
            // `take`: never read past this body into the client's next request.
            let mut limited = (&mut *client).take(want);
            let chunk = tokio::time::timeout(idle_timeout, limited.read_buf(read));
            let n = tokio::select! {
                biased;
                _ = app_reader.peek(&mut probe) => return Ok(true),
                got = chunk => match got {
                    Err(_elapsed) => return Err(ProxyError::ClientBodyTimeout.into()),
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        return Err(Attempt::Failed(WireError::Aborted(
                            "the client stopped sending its body".into(),
                        )));
                    }
                    Ok(Ok(n)) => n,
                },
            };
            unread_body -= n as u64;
            let sent = tokio::time::timeout(idle_timeout, app_writer.write_all(&read[..n]));
            tokio::select! {
                biased;
                _ = app_reader.peek(&mut probe) => return Ok(true),
                sent = sent => match sent {
                    Err(_elapsed) => return Err(ProxyError::UpstreamTimeout.into()),
                    Ok(Err(e)) => {
                        return Err(ProxyError::UpstreamBadResponse(format!(
                            "sending the body: {e}"
                        ))
                        .into());
                    }
                    Ok(Ok(())) => {}
                },
            }
        }
        Ok(false)
    }
}

/// Writes `request`'s head, rewritten for the app at `authority`, into `out`: the
/// hop-by-hop headers, the gateway's credentials and what only the gateway may say about
/// the request's origin removed, the forwarding headers and `Via` added.
fn request_head(
    out: &mut Vec<u8>,
    request: &mut WireRequest<'_>,
    authority: &str,
    options: &ForwardOptions,
    origin: &Origin<'_>,
) {
    let h = &mut request.headers;
    headers::remove_hop_by_hop(h);
    headers::strip_cookies(h, options.strip_cookies);
    if origin.trusted {
        // A trusted proxy's forwarding headers are extended: the general rewrite.
        if options.strip_authorization {
            headers::strip_authorization(h);
        }
        headers::set_forwarding(h, origin);
        headers::add_via(h, http::Version::HTTP_11);
        // Host and the body's length are written here, from what was parsed: never a
        // client's spelling of them that the app could read differently.
        h.remove("host");
        h.remove("content-length");
        let mut head = HeadWriter::request(out, request.method, request.target);
        head.field(b"host", authority.as_bytes());
        if let Some(length) = request.content_length {
            head.content_length(length);
        }
        head.fields(h);
        head.finish();
        return;
    }
    // Anyone else (the common case): the same fields in the same order as above, but what
    // is dropped goes in one pass and what the gateway sets is written straight into the
    // head, not added to the list as small strings first.
    let via = headers::take_via(h, http::Version::HTTP_11);
    let strip_authorization = options.strip_authorization;
    h.remove_names(|name| {
        headers::forwarding_replaced(name)
            || name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("content-length")
            || (strip_authorization && name.eq_ignore_ascii_case("authorization"))
    });
    let mut head = HeadWriter::request(out, request.method, request.target);
    head.field(b"host", authority.as_bytes());
    if let Some(length) = request.content_length {
        head.content_length(length);
    }
    head.fields(h);
    head.field_with(b"x-forwarded-for", |out| write_ip(out, origin.peer));
    head.field(b"x-forwarded-proto", origin.proto.as_bytes());
    if let Some(host) = origin
        .host
        .filter(|h| http::HeaderValue::from_str(h).is_ok())
    {
        head.field(b"x-forwarded-host", host.as_bytes());
    }
    if origin.forwarded_header {
        // Rare (`proxy.forwarded_header`): the general rewrite's value.
        let mut list = HeaderList::with_capacity(1);
        headers::set_forwarding(&mut list, origin);
        for (name, value) in list.iter() {
            if name == "forwarded" {
                head.field(b"forwarded", value);
            }
        }
    }
    head.field(b"via", via.as_bytes());
    head.finish();
}

/// Writes `ip` as `Display` does, an IPv4 address without the formatter.
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                super::head::write_decimal(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Methods whose repetition does no harm (RFC 9110 §9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// Parses the response head at the start of `read`; when complete, writes its rewrite for
/// the client into `out`. Interim responses (`100 Continue`, `103 Early Hints`) are
/// dropped from `read`: the fast path never forwards `Expect`.
fn rewrite_response_head(
    read: &mut Vec<u8>,
    out: &mut Vec<u8>,
    is_head: bool,
    client_close: bool,
    hsts: Option<&http::HeaderValue>,
    dates: &DateCache,
) -> Result<Option<ResponseHead>, ProxyError> {
    let head = loop {
        match response::parse(read, is_head).map_err(bad_response)? {
            ResponsePart::Partial => return Ok(None),
            ResponsePart::Interim { head_len } => {
                read.drain(..head_len);
            }
            ResponsePart::Final(head) => break head,
        }
    };
    let grid_wire::response::ResponseHead {
        status,
        version,
        reason,
        head_len,
        fields: mut list,
        framing,
        both_lengths,
    } = head;
    let bodiless = is_head || status == 204 || status == 304;
    // The app's codings pass on with its bytes (`gzip, chunked` stays that).
    let codings = matches!(framing, Framing::Chunked(_)).then(|| {
        list.values("transfer-encoding")
            .collect::<Vec<_>>()
            .join(", ")
    });
    let connection = headers::remove_hop_by_hop(&mut list);
    let cookies_dropped = headers::drop_gateway_set_cookies(&mut list);
    let reusable = version == 1
        && !both_lengths
        && !matches!(framing, Framing::UntilClose)
        && !connection.iter().any(|t| t == "close");
    let close = client_close || matches!(framing, Framing::UntilClose);
    if !bodiless {
        // The framing is written below from what was parsed, never the app's spelling
        // (`5, 5`, two headers, or one next to a transfer coding).
        list.remove("content-length");
    }
    let version = if version == 0 {
        http::Version::HTTP_10
    } else {
        http::Version::HTTP_11
    };
    // Written after the others, as `add_via` would have left it: last.
    let via = headers::take_via(&mut list, version);
    // httparse reads exactly three digits.
    let mut writer = HeadWriter::response(out, status, reason);
    writer.fields(&list).field(b"via", via.as_bytes());
    match (&framing, codings) {
        (Framing::Length(length), _) if !bodiless => {
            writer.content_length(*length);
        }
        (Framing::Chunked(_), Some(codings)) => {
            writer.field(b"transfer-encoding", codings.as_bytes());
        }
        _ => {}
    }
    if close {
        writer.close();
    }
    if !list.contains("date") {
        writer.date(dates);
    }
    if let Some(hsts) = hsts
        && !list.contains("strict-transport-security")
    {
        writer.field(b"strict-transport-security", hsts.as_bytes());
    }
    writer.finish();
    Ok(Some(ResponseHead {
        status,
        head_len,
        framing,
        reusable,
        close,
        cookies_dropped,
    }))
}

/// An app's response head refused: a 502.
fn bad_response(error: ResponseError) -> ProxyError {
    ProxyError::UpstreamBadResponse(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request head the general rewrite (the trusted-proxy branch's steps, with the
    /// peer untrusted) writes.
    fn general_head(
        request: &mut WireRequest<'_>,
        options: &ForwardOptions,
        origin: &Origin<'_>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let h = &mut request.headers;
        headers::remove_hop_by_hop(h);
        headers::strip_cookies(h, options.strip_cookies);
        if options.strip_authorization {
            headers::strip_authorization(h);
        }
        headers::set_forwarding(h, origin);
        headers::add_via(h, http::Version::HTTP_11);
        h.remove("host");
        h.remove("content-length");
        let mut head = HeadWriter::request(&mut out, request.method, request.target);
        head.field(b"host", b"app:8080");
        if let Some(length) = request.content_length {
            head.content_length(length);
        }
        head.fields(h);
        head.finish();
        out
    }

    fn request<'b>(fields: &[(&'b str, &'b [u8])]) -> WireRequest<'b> {
        let mut headers = HeaderList::with_capacity(fields.len());
        for (name, value) in fields {
            headers.push(name, value);
        }
        WireRequest {
            method: "POST",
            target: "/a?b",
            headers,
            host: Some("shop.example:8443"),
            content_length: Some(12),
            close: false,
        }
    }

    #[test]
    fn the_direct_request_head_is_the_general_rewrites() {
        let fields: &[(&str, &[u8])] = &[
            ("Host", b"shop.example:8443"),
            ("X-Forwarded-For", b"6.6.6.6"),
            ("x-forwarded-proto", b"https"),
            ("X-Forwarded-Host", b"evil.example"),
            ("X_Forwarded_For", b"7.7.7.7"),
            ("Forwarded", b"for=6.6.6.6"),
            ("X-Real-IP", b"6.6.6.6"),
            ("X-Original-URL", b"/admin"),
            ("Connection", b"keep-alive, x-secret"),
            ("X-Secret", b"1"),
            ("Keep-Alive", b"timeout=5"),
            ("Authorization", b"Bearer abc"),
            ("Cookie", b"a=1; grid_session=x; b=2"),
            ("Via", b"1.0 cdn"),
            ("Content-Length", b"12"),
            ("Accept", b"*/*"),
        ];
        let peers = ["10.1.2.3".parse().unwrap(), "::1".parse().unwrap()];
        for (peer, strip_authorization, forwarded_header, via) in [
            (peers[0], true, false, true),
            (peers[0], false, true, true),
            (peers[1], true, true, false),
            (peers[1], false, false, false),
        ] {
            let fields: Vec<_> = fields
                .iter()
                .filter(|(name, _)| via || *name != "Via")
                .copied()
                .collect();
            let options = ForwardOptions {
                strip_cookies: &["grid_session"],
                strip_authorization,
            };
            let origin = Origin {
                peer,
                proto: "http",
                host: Some("shop.example:8443"),
                trusted: false,
                forwarded_header,
            };
            let expected = general_head(&mut request(&fields), &options, &origin);
            let mut out = b"left over".to_vec();
            request_head(
                &mut out,
                &mut request(&fields),
                "app:8080",
                &options,
                &origin,
            );
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "peer {peer}, strip_authorization {strip_authorization}, forwarded {forwarded_header}"
            );
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains(&format!("x-forwarded-for: {peer}\r\n")),
                "{text}"
            );
            assert!(
                !text.contains("6.6.6.6") && !text.contains("x-secret") && !text.contains("/admin"),
                "{text}"
            );
        }
    }

    #[test]
    fn decimals_and_addresses_are_written_as_display_does() {
        for n in [0u64, 7, 10, 255, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            crate::wire::head::write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for ip in ["0.0.0.0", "127.0.0.1", "255.10.0.99", "::1", "fe80::1:2"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }
}
