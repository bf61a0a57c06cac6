//! grid-cluster: where a user's input meets the provider's cluster.
//!
//! - [`fetch`]: fetches a manifest URL without becoming an SSRF path (the address check
//!   sits in the connector, on the address actually connected to).
//! - [`manifest`]: parses the YAML under tight budgets into typed objects of six allowed
//!   kinds, checks every object against the sandbox rules (naming the object and the field
//!   it refuses), sums resources against the order, and picks or generates the Service the
//!   gateway routes to.
//! - [`sandbox`]: the objects the gateway writes around an order's app (namespace with Pod
//!   Security `restricted`, ResourceQuota, LimitRange, NetworkPolicies).
//! - [`plan`]: from fetched bytes to everything a deploy applies, before the cluster is
//!   touched; [`client`]: the calls to the API server (apply, readiness, teardown, logs).
//! - [`labels`]: the names every object the gateway writes is labelled with.
//!
//! Nothing here knows about HTTP handlers, policies or the chain: the host calls it.

pub mod client;
pub mod config;
pub mod error;
pub mod fetch;
pub mod labels;
pub mod manifest;
pub mod plan;
pub mod sandbox;

pub use client::{ApplyObject, ClusterClient, Condition, Readiness, ReadyOutcome, WorkloadRef};
pub use config::ClusterConfig;
pub use error::ClusterError;
pub use labels::Identity;
