//! A user's manifest: parsed under tight budgets, then checked object by object against the
//! sandbox rules.
//!
//! 1. [`parse`] (or [`parse_blocking`]) turns the YAML into typed [`Object`]s of six allowed
//!    kinds ([`ALLOWED_KINDS`]). The YAML parser runs on the blocking pool under a time
//!    bound and budgets far below serde-saphyr's defaults ([`ManifestLimits`]), so an alias
//!    bomb or a deeply nested document is refused after a few thousand events. A field the
//!    Kubernetes 1.32 API does not have is refused, as the API server's strict field
//!    validation would; what the gateway applies is the typed object re-serialised, never
//!    the user's text.
//! 2. [`check`] forces the order's namespace, turns off service-account tokens, refuses
//!    everything that leaves the sandbox (privileged containers, host namespaces, host
//!    paths and ports, added capabilities, node pinning, priority classes, Services that
//!    open the cluster, ...), sums the resources over replicas against the order, and picks
//!    (or generates) the Service the gateway routes to.
//!
//! Every refusal is a [`ManifestError`] with a stable code and, for a refused field, a
//! message naming the object and the field path:
//! `Deployment "web": spec.template.spec.containers[0].securityContext.privileged is true: ...`.

mod error;
mod object;
mod parse;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{ManifestError, Refusal};
pub use object::{ALLOWED_KINDS, Object};
pub use parse::{parse, parse_blocking};

/// Parse limits (`[manifest]` in the gateway's configuration). The defaults let a
/// manifest of 64 ordinary objects through with room to spare and stop an alias bomb or a
/// nesting bomb long before it costs memory or time; serde-saphyr's own defaults (a million
/// replayed events, 250,000 nodes) let a 266-byte bomb expand to almost 1 MB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestLimits {
    /// Largest manifest, in bytes. Default 1 MiB (a 60-object manifest is about 60 KB).
    pub max_bytes: usize,
    /// Most objects (non-empty YAML documents). Default 64.
    pub max_documents: usize,
    /// Deepest nesting of mappings and sequences. Default 32: the deepest fields of a pod
    /// template (node affinity expressions) sit about 12 levels down.
    pub max_depth: usize,
    /// Most YAML nodes (mappings, sequences, scalars), counting the nodes aliases replay.
    /// Default 100,000; an ordinary Deployment has 50 to 300.
    pub max_nodes: usize,
    /// Most parser events, counting replayed ones. Default 250,000.
    pub max_events: usize,
    /// Most anchors (`&name`). Default 1,000.
    pub max_anchors: usize,
    /// Most aliases (`*name`). Default 1,000.
    pub max_aliases: usize,
    /// Most events aliases may replay over the whole stream: the bound that stops an alias
    /// bomb. Default 20,000 (a few hundred objects' worth of shared blocks).
    pub max_alias_replayed_events: usize,
    /// Most bytes of scalar text, counting text aliases replay. Default 4 MiB.
    pub max_scalar_bytes: usize,
    /// Bound on the parse, in milliseconds. Default 2,000. The budgets above bound the
    /// work; this bounds the wait on a loaded machine. A parse that overruns is left to
    /// finish on the blocking pool (the budgets end it), the caller gets
    /// `manifest_parse_timeout`.
    pub parse_timeout_ms: u64,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_bytes: 1 << 20,
            max_documents: 64,
            max_depth: 32,
            max_nodes: 100_000,
            max_events: 250_000,
            max_anchors: 1_000,
            max_aliases: 1_000,
            max_alias_replayed_events: 20_000,
            max_scalar_bytes: 4 << 20,
            parse_timeout_ms: 2_000,
        }
    }
}

impl ManifestLimits {
    /// The bound on a parse.
    pub fn parse_timeout(&self) -> Duration {
        Duration::from_millis(self.parse_timeout_ms.max(1))
    }
}
