//! Whole-node tests for grid-gateway: every part of a node runs as its own process (anvil
//! with the Market, the `grid-fake-cluster` API server, one or more `grid-gateway serve`),
//! apps listen on loopback, and the tests act as the user (SIWE sign-in, chain
//! transactions, HTTP calls) and as the operator (kill -9, restart, restore a backup).
//!
//! The tests run the workspace's built binaries from the target directory
//! (`target/debug/grid-gateway`, `target/debug/grid-fake-cluster`): `cargo test --workspace`
//! builds them first; for this package alone build them yourself:
//!
//! ```text
//! cargo build -p grid-gateway -p grid-fake-cluster && cargo test -p grid-node-tests
//! ```
//!
//! This crate has no library code; the tests share `support/mod.rs`.
