//! A client's request head on the wire fast path: parsed once (httparse, at most
//! [`MAX_HEADERS`] fields, at most [`MAX_HEAD`] bytes) and sorted into what the fast path
//! takes, what it refuses, and what it hands to hyper.

use crate::fields::HeaderList;
use crate::limits::{MAX_HEAD, MAX_HEADERS, content_length};

/// A request the fast path can take off the wire: plain HTTP/1.1 in origin form, one valid
/// `Host`, no body or one `Content-Length` body, no upgrade, no `Expect`.
#[derive(Debug)]
pub struct WireRequest<'b> {
    /// The method as sent.
    pub method: &'b str,
    /// The origin-form target (`/path?query`).
    pub target: &'b str,
    /// The headers as sent (the gateway's own, such as `X-Grid-Order`, removed by the
    /// gateway before forwarding).
    pub headers: HeaderList<'b>,
    /// The `Host` header.
    pub host: Option<&'b str>,
    /// The `Content-Length` sent, if any (then the body's length; none: no body).
    pub content_length: Option<u64>,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

impl WireRequest<'_> {
    /// The body's length (0 without a body).
    pub fn body_len(&self) -> u64 {
        self.content_length.unwrap_or(0)
    }
}

/// What the start of a client's connection holds.
#[derive(Debug)]
pub enum RequestHead<'b> {
    /// Not a whole head yet, and under [`MAX_HEAD`]: read more.
    Partial,
    /// A request the fast path takes; its body starts at `head_len`.
    Fast {
        /// Length of the head, its empty line included.
        head_len: usize,
        /// The request.
        request: WireRequest<'b>,
    },
    /// Both `Transfer-Encoding` and `Content-Length`: hyper would drop the `Content-Length`
    /// and read the chunks (RFC 9112 §6.3 allows that or a refusal), the raw material of
    /// request smuggling, which this gateway refuses outright (400 `ambiguous_length`) and
    /// closes.
    Ambiguous {
        /// The request is a `HEAD` (the refusal has no body).
        is_head: bool,
    },
    /// Anything else — malformed, too large, HTTP/1.0, HTTP/2's preface, an upgrade, a
    /// chunked upload, `Expect`, an absolute target — goes to hyper, which answers it.
    HandOver,
}

/// Sorts the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> RequestHead<'_> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut fields);
    match head.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => match fast_request(&head) {
            Some(request) => RequestHead::Fast { head_len, request },
            None if ambiguous_length(&head) => RequestHead::Ambiguous {
                is_head: head.method == Some("HEAD"),
            },
            None => RequestHead::HandOver,
        },
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => RequestHead::Partial,
        _ => RequestHead::HandOver,
    }
}

/// The request, when the fast path takes it: plain HTTP/1.1 whose body length is one
/// `Content-Length` (or none).
fn fast_request<'b>(head: &httparse::Request<'_, 'b>) -> Option<WireRequest<'b>> {
    if head.version != Some(1) {
        return None;
    }
    let (method, target) = (head.method?, head.path?);
    if method == "CONNECT" || !target.starts_with('/') || !plain_target(target) {
        return None;
    }
    let mut headers = HeaderList::with_capacity(head.headers.len() + 6);
    let (mut host, mut length, mut close) = (None, None, false);
    for field in head.headers.iter() {
        let name = field.name;
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        if is("host") {
            if host.is_some() || !valid_host(field.value) {
                return None;
            }
            host = Some(std::str::from_utf8(field.value).ok()?);
        } else if is("content-length") {
            if length.is_some() {
                return None;
            }
            length = Some(content_length(field.value)?);
        } else if is("transfer-encoding") || is("expect") || is("upgrade") || is("http2-settings") {
            return None;
        } else if is("connection") {
            for token in std::str::from_utf8(field.value).ok()?.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("upgrade") {
                    return None;
                }
                close |= token.eq_ignore_ascii_case("close");
            }
        }
        headers.push(name, field.value);
    }
    let host = host?;
    Some(WireRequest {
        method,
        target,
        headers,
        host: Some(host),
        content_length: length,
        close,
    })
}

/// Whether `head` carries both `Transfer-Encoding` and `Content-Length`.
fn ambiguous_length(head: &httparse::Request<'_, '_>) -> bool {
    let has = |wanted: &str| {
        head.headers
            .iter()
            .any(|field| field.name.eq_ignore_ascii_case(wanted))
    };
    has("transfer-encoding") && has("content-length")
}

/// Whether `target` is made only of what RFC 3986 allows in a path and a query. Anything
/// else httparse lets through — a fragment's `#`, quotes, braces, backslashes, non-ASCII —
/// goes to hyper, which refuses it or parses it as the router does: here the policy and
/// the app could read such a path differently (`/admin#/../public` is `/public` to a
/// normaliser and `/admin` to most app servers).
fn plain_target(target: &str) -> bool {
    target
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// Whether a `Host` field value is `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2)
/// or empty: the bytes of a reg-name, an IPv4 address or an IP literal and a port, never a
/// userinfo, path, query, fragment or whitespace.
pub fn valid_host(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(raw: &[u8]) -> WireRequest<'_> {
        match parse(raw) {
            RequestHead::Fast { request, .. } => request,
            other => panic!("not taken: {other:?}"),
        }
    }

    #[test]
    fn a_plain_request_is_taken_with_its_length() {
        let raw =
            b"POST /a?b HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
        let RequestHead::Fast { head_len, request } = parse(raw) else {
            panic!("not taken");
        };
        assert_eq!(head_len, raw.len() - 2);
        assert_eq!((request.method, request.target), ("POST", "/a?b"));
        assert_eq!(
            (request.host, request.content_length),
            (Some("h:1"), Some(2))
        );
        assert!(request.close);
        assert_eq!(request.headers.iter().count(), 3);
        assert_eq!(fast(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n").body_len(), 0);
    }

    #[test]
    fn what_the_fast_path_does_not_take_goes_to_hyper() {
        for raw in [
            &b"GET / HTTP/1.0\r\nhost: h\r\n\r\n"[..],
            b"GET http://h/ HTTP/1.1\r\nhost: h\r\n\r\n",
            b"GET /a#b HTTP/1.1\r\nhost: h\r\n\r\n",
            b"CONNECT /h:1 HTTP/1.1\r\nhost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\nhost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h/x\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\ncontent-length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\nconnection: Upgrade\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nx a: b\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), RequestHead::HandOver),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn both_lengths_are_refused_wherever_the_head_goes() {
        for raw in [
            &b"POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n"[..],
            b"HEAD /api HTTP/1.0\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(parse(raw), RequestHead::Ambiguous { .. }));
        }
    }

    #[test]
    fn a_head_is_partial_until_its_limit() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nho"),
            RequestHead::Partial
        ));
        let mut big = b"GET / HTTP/1.1\r\nx: ".to_vec();
        big.resize(MAX_HEAD, b'a');
        assert!(matches!(parse(&big), RequestHead::HandOver));
    }
}
