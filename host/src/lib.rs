//! # grid-gateway
//!
//! The daemon a compute provider runs beside its Kubernetes cluster: it quotes and accepts
//! on-chain orders, signs users in by wallet, deploys their apps and proxies their traffic.
//! Business rules are WebAssembly policies ([`policy`]) swapped at run time.

pub mod cli;
pub mod policy;
pub mod proxy;
