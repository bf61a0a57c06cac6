//! The wire fast path of Process: a plain HTTP/1.1 request (no body, or a `Content-Length`
//! body; no upgrade, no `Expect`) is forwarded with its head rewritten as bytes and its body
//! copied through, and the app's response likewise, on keep-alive connections kept per
//! thread. No header map is built and no HTTP library parses the message twice over: this
//! is what brings the gateway's cost per request to nginx's (`host/benches/README.md`).
//!
//! The header rules are the general path's ([`super::headers`], written once for both);
//! what the fast path does not take (upgrades, chunked uploads, HTTP/1.0, HTTP/2, anything
//! malformed) the HTTP layer hands to hyper and [`super::Forwarder::forward`].

mod chunked;
mod date;
mod exchange;
mod idle;

pub use date::write_date;
pub use exchange::{Finished, WireBuffers, WireError, WireRequest, content_length};
pub use idle::{clear as close_idle, sweep as sweep_idle};
