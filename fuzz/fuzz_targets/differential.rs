//! The wire fast path against hyper: the same bytes go to grid-wire's request parse and
//! framing decision and to hyper's HTTP/1 server (over an in-memory duplex, a service that
//! records the first request). Whatever the fast path takes, hyper must take too, as the
//! same request: method, target, header list, framing (`Content-Length`) and body.
//!
//! Where they differ by design, the gateway's documented rule is asserted instead:
//! - `RequestHead::HandOver`: the fast path does not take it (HTTP/1.0, a chunked upload,
//!   two `Host`s or `Content-Length`s, an odd target, ...) and the gateway gives the
//!   connection to hyper: hyper's answer is the gateway's, nothing to compare.
//! - `RequestHead::Ambiguous`: both `Transfer-Encoding` and `Content-Length` — refused with
//!   400 `ambiguous_length` where hyper would read the chunks (RFC 9112 §6.3 allows either).
//! - `RequestHead::Partial`: not a whole head, so hyper must not have seen a request either.
#![no_main]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use grid_wire::request::{self, RequestHead};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The first request hyper's service was given.
#[derive(Debug)]
struct Seen {
    method: String,
    target: String,
    version: http::Version,
    /// Lower-case name → values in order.
    headers: BTreeMap<String, Vec<Vec<u8>>>,
    /// The body, or None when it could not be read whole (the bytes ran out).
    body: Option<Bytes>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Serves `data` (then end of input) with hyper; the first request it parsed, if any.
fn hyper_reads(data: &[u8]) -> Option<Seen> {
    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let record = seen.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.ok().map(|b| b.to_bytes());
            let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
            for (name, value) in &parts.headers {
                headers
                    .entry(name.as_str().to_owned())
                    .or_default()
                    .push(value.as_bytes().to_vec());
            }
            let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
            if record.is_none() {
                *record = Some(Seen {
                    method: parts.method.as_str().to_owned(),
                    target: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    version: parts.version,
                    headers,
                    body,
                });
            }
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    runtime().block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.half_close(true).header_read_timeout(None);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let send = async {
            let _ = to_server.write_all(data).await;
            let _ = to_server.shutdown().await;
        };
        let mut answers = Vec::new();
        let _ = tokio::join!(connection, send, from_server.read_to_end(&mut answers));
    });
    seen.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fuzz_target!(|data: &[u8]| {
    let hyper = hyper_reads(data);
    match request::parse(data) {
        RequestHead::Fast { head_len, request } => {
            let Some(seen) = hyper else {
                panic!(
                    "the fast path takes a request hyper refuses: {:?}",
                    String::from_utf8_lossy(data)
                );
            };
            assert_eq!(seen.method, request.method);
            assert_eq!(seen.target, request.target);
            assert_eq!(seen.version, http::Version::HTTP_11);
            let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
            for (name, value) in request.headers.iter() {
                headers
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(value.to_vec());
            }
            assert_eq!(seen.headers, headers);
            // The framing: hyper reads the body by the same Content-Length.
            let length = usize::try_from(request.body_len()).unwrap_or(usize::MAX);
            let rest = &data[head_len..];
            if rest.len() >= length {
                assert_eq!(seen.body.as_deref(), Some(&rest[..length]));
            } else {
                assert_eq!(seen.body, None, "a body longer than the bytes sent");
            }
        }
        RequestHead::Partial => {
            assert!(
                hyper.is_none(),
                "hyper read a request from an incomplete head: {hyper:?}"
            );
        }
        RequestHead::Ambiguous { .. } | RequestHead::HandOver => {}
    }
});
