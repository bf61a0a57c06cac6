//! Whole-node tests for grid-gateway: every part of a node runs as its own process (anvil
//! with the Market, the `grid-fake-cluster` API server, one or more `grid-gateway serve`),
//! apps listen on loopback, and the tests act as the user (SIWE sign-in, chain
//! transactions, HTTP calls) and as the operator (kill -9, restart, restore a backup).
//!
//! The tests need the workspace's binaries `grid-gateway` and `grid-fake-cluster`: once
//! per test process they run `cargo build --workspace --tests --bin grid-gateway --bin
//! grid-fake-cluster` (the feature resolution of `cargo test --workspace`, so a no-op inside
//! it) and hard-link the
//! results (and the policy components `host/build.rs` built, `pricing_linear.wasm` and
//! `pricing_surge.wasm`) to a directory of their own, so a target directory shared with
//! other checkouts cannot swap them under the tests. `GRID_NODE_TESTS_BIN_DIR` names a
//! directory of those four, ready, instead. anvil comes from `node_modules` (`npm ci`), or
//! `ANVIL_BIN`.
//!
//! ```text
//! cargo test -p grid-node-tests
//! ```
//!
//! This crate has no library code; the tests share `support/mod.rs`.
