//! The pure half of the gateway's HTTP/1.1 wire fast path (`host/src/wire/`): what is parsed
//! and decided about the bytes, with no I/O and bounded allocation (at most [`MAX_HEADERS`]
//! fields per head, read from at most [`MAX_HEAD`] bytes), so that it can be fuzzed alone
//! (`fuzz/`, `scripts/fuzz.sh`) without instrumenting the whole gateway.
//!
//! - [`request`]: a client's request head, and whether the fast path takes it, refuses it
//!   (both `Transfer-Encoding` and `Content-Length`) or hands it to hyper.
//! - [`response`]: an app's response head and how its body is framed (RFC 9112 §6.3).
//! - [`chunked`]: where a chunked body ends (RFC 9112 §7.1).
//! - [`fields`]: header fields as rewritten (a `HeaderMap` or a [`fields::HeaderList`]).
//! - [`limits`]: the limits heads are read under, and the one `Content-Length` parser.

pub mod chunked;
pub mod fields;
pub mod limits;
pub mod request;
pub mod response;

pub use limits::{KEPT_BUFFER, MAX_HEAD, MAX_HEADERS, READ_CHUNK, content_length};
