//! # grid-gateway
//!
//! The daemon a compute provider runs beside its Kubernetes cluster: it quotes and accepts
//! on-chain orders, signs users in by wallet, deploys their apps and proxies their traffic.
//! Business rules are WebAssembly policies ([`policy`]) swapped at run time.
//!
//! Layout: [`config`] (TOML + env), [`gateway`] (the assembled node), the services
//! [`orders`] (quote, accept) and [`auth`] (SIWE, sessions) over [`store`] (redb),
//! [`capacity`] and the chain client (grid-chain), and [`http`] (axum) on top; Process
//! ([`process`]: which app a request goes to) forwards through [`proxy`] (the forwarding
//! core, and hyper's path) or [`wire`] (the HTTP/1.1 fast path: client connections,
//! heads, the exchange with the app); [`tls`] terminates HTTPS (certificates by SNI, from
//! files); [`server`] runs it.

pub(crate) mod admission;
pub mod apps;
pub mod auth;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod handoff;
pub mod http;
pub mod metrics;
pub mod oci;
pub mod orders;
pub mod policy;
pub mod process;
pub mod proxy;
pub mod server;
pub mod settlement;
pub mod store;
pub mod tls;
pub mod wire;

pub use error::{Error, Result};
