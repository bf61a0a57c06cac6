//! A client's request head: any bytes are sorted without a panic, and what the fast path
//! takes keeps its promises (origin-form plain target, one valid Host, at most one
//! Content-Length that is the body's length, no Transfer-Encoding, Expect or upgrade).
#![no_main]

use grid_wire::fields::Headers;
use grid_wire::request::{self, RequestHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match request::parse(data) {
        RequestHead::Fast { head_len, request } => {
            assert!(head_len <= data.len());
            assert!(data[..head_len].ends_with(b"\n"));
            assert!(request.target.starts_with('/'));
            assert!(!request.target.contains(['#', ' ', '\\']));
            assert_ne!(request.method, "CONNECT");
            let host = request.host.expect("a fast request has its Host");
            assert!(request::valid_host(host.as_bytes()));
            let count = |name: &str| {
                request
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .count()
            };
            assert_eq!(count("host"), 1);
            assert!(count("content-length") <= 1);
            assert_eq!(
                count("content-length") == 1,
                request.content_length.is_some()
            );
            for name in ["transfer-encoding", "expect", "upgrade", "http2-settings"] {
                assert!(!request.headers.contains(name), "{name}");
            }
            if let Some(length) = request.content_length {
                let value = request
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v);
                assert_eq!(value.and_then(grid_wire::content_length), Some(length));
            }
        }
        RequestHead::Partial => assert!(data.len() < grid_wire::MAX_HEAD),
        RequestHead::Ambiguous { .. } => {
            let lower = data.to_ascii_lowercase();
            let has = |name: &[u8]| lower.windows(name.len()).any(|w| w == name);
            assert!(has(b"transfer-encoding") && has(b"content-length"));
        }
        RequestHead::HandOver => {}
    }
});
