//! The HTTP/1.1 wire fast path of Process, both halves in one place (shaped like pingora's
//! `protocols/http/v1/`): a plain HTTP/1.1 request (no body, or a `Content-Length` body; no
//! upgrade, no `Expect`) is read off the client's connection, admitted, and forwarded with
//! its head rewritten as bytes and its body copied through, and the app's response likewise,
//! on keep-alive connections kept per worker ([`WorkerState`]). No header map is built and no HTTP library
//! parses the message twice over: this is what brings the gateway's cost per request to
//! nginx's (`host/benches/README.md`).
//!
//! - [`server`]: a client's connection on an HTTP worker — reads request heads, takes what
//!   the fast path can, answers refusals, and hands the rest of the connection to hyper.
//! - [`client_stream`]: the client's connection with its send and silence deadlines, as both
//!   request paths hold it.
//! - `upstream`: one exchange with the app — the request sent, the response streamed back.
//! - [`head`]: the limits heads are read under, and the one writer of every head sent.
//! - [`error`]: how an exchange fails, on either side.
//! - [`worker`]: what one HTTP worker owns for its connections ([`WorkerState`]): the idle
//!   connections to apps (`idle`) and the `Date` header (`date`).
//! - `deadline`: a connection's deadlines without a timer per wait.
//!
//! What is parsed and decided about the bytes — request and response heads, the chunked
//! scanner, the body framing — is the `grid-wire` crate (`wire/`), pure and fuzzed on its
//! own (`fuzz/`); this module is its I/O.
//!
//! The header rules are the general path's ([`crate::proxy::headers`], written once for
//! both); what the fast path does not take (upgrades, chunked uploads, HTTP/1.0, HTTP/2,
//! anything malformed) goes to hyper, [`crate::http::connection_service`] and
//! [`crate::proxy::Forwarder::forward`].

pub mod client_stream;
pub mod date;
mod deadline;
pub mod error;
pub mod head;
pub mod idle;
pub mod server;
mod upstream;
pub mod worker;

pub use error::{Failure, WireError};
pub use grid_wire::request::WireRequest;
pub use head::content_length;
pub use server::{Connections, serve};
pub use upstream::{Exchange, Finished, WireBuffers};
pub use worker::WorkerState;
