//! grid-manifest: a user's Kubernetes manifest, parsed under tight budgets, then checked
//! object by object against the sandbox rules. Pure: no I/O, no Kubernetes client, so it
//! is fuzzed on its own (`fuzz/`, target `manifest`). `grid_cluster::manifest` re-exports it
//! and adds `parse`, which runs [`parse_blocking`] on the blocking pool under
//! [`ManifestLimits::parse_timeout_ms`].
//!
//! 1. [`parse_blocking`] turns the YAML into typed [`Object`]s of six allowed kinds
//!    ([`ALLOWED_KINDS`]) under budgets far below serde-saphyr's defaults
//!    ([`ManifestLimits`]), so an alias bomb or a deeply nested document is refused after a
//!    few thousand events. A field the Kubernetes 1.32 API does not have is refused, as the
//!    API server's strict field validation would; what the gateway applies is the typed
//!    object re-serialised, never the user's text.
//! 2. [`check`] forces the order's namespace, turns off service-account tokens, refuses
//!    everything that leaves the sandbox (privileged containers, host namespaces, host
//!    paths and ports, added capabilities, node pinning, priority classes, Services that
//!    open the cluster, ...), sums the resources over replicas against the order, and picks
//!    (or generates) the Service the gateway routes to.
//!
//! Every refusal is a [`ManifestError`] with a stable code and, for a refused field, a
//! message naming the object and the field path:
//! `Deployment "web": spec.template.spec.containers[0].securityContext.privileged is true: ...`.

mod checks;
mod entrance;
mod error;
pub mod labels;
mod object;
mod parse;
mod resources;

use std::time::Duration;

use grid_policy_sdk::Resources;
use serde::{Deserialize, Serialize};

pub use checks::check;
pub use entrance::{Entrance, entrance};
pub use error::{ManifestError, Refusal};
pub use object::{ALLOWED_KINDS, Object};
pub use parse::parse_blocking;

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

/// What [`check`] checks a manifest against: the order's namespace and resources, and the
/// sandbox's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxContext {
    /// The order id (decimal), for the labels of a generated Service.
    pub order_id: String,
    /// The order's namespace (`grid_cluster::labels::Identity::namespace_for`).
    pub namespace: String,
    /// What the order bought.
    pub resources: Resources,
    /// Most pods (replicas summed over workloads): the ResourceQuota's `pods`.
    pub max_pods: u32,
    /// Most PersistentVolumeClaims (objects, StatefulSet claims per replica, ephemeral
    /// volumes per replica): the ResourceQuota's `persistentvolumeclaims`.
    pub max_pvcs: u32,
}

/// A manifest that passed [`check`]: the objects to apply, in the manifest's order (a
/// generated Service last), and where the gateway routes the order's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedManifest {
    /// The objects to apply, each in the order's namespace.
    pub objects: Vec<Object>,
    /// The Service and port the gateway routes to.
    pub entrance: Entrance,
    /// True when the manifest had no Service and the entrance's was generated.
    pub generated_service: bool,
}

#[cfg(test)]
mod fixtures {
    //! The manifests under `manifest/tests/manifests/`: the ones at the top pass; each one
    //! under `refused/` says on its first line `# expect: <code> [<object> <field>]`.

    use std::path::{Path, PathBuf};

    use super::checks::tests::ctx;
    use super::*;

    fn dir(sub: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/manifests")
            .join(sub)
    }

    fn yaml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    }

    fn parse_and_check(bytes: Vec<u8>) -> Result<CheckedManifest, ManifestError> {
        let objects = parse_blocking(&bytes, &ManifestLimits::default())?;
        check(objects, &ctx())
    }

    #[test]
    fn accepted_manifests() {
        let files = yaml_files(&dir(""));
        assert!(files.len() >= 2);
        for file in files {
            let checked = parse_and_check(std::fs::read(&file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for object in &checked.objects {
                assert_eq!(object.namespace(), Some("grid-order-7"));
            }
            assert!(!checked.generated_service, "{}", file.display());
        }
    }

    #[test]
    fn sixty_objects_pass_the_budgets() {
        let bytes = std::fs::read(dir("sixty-objects.yaml")).unwrap();
        let checked = parse_and_check(bytes).unwrap();
        assert_eq!(checked.objects.len(), 60);
        assert_eq!(checked.entrance.url(), "http://app-00.grid-order-7.svc:80");
    }

    #[test]
    fn web_and_db() {
        let bytes = std::fs::read(dir("web-and-db.yaml")).unwrap();
        let objects = parse_blocking(&bytes, &ManifestLimits::default()).unwrap();
        let checked = check(objects, &ctx()).unwrap();
        // The headless db Service is skipped; web's port 80 is the entrance.
        assert_eq!(checked.entrance.url(), "http://web.grid-order-7.svc:80");
        // The database states no resources: it gets what the web replicas leave.
        let db = checked
            .objects
            .iter()
            .find(|o| o.name() == "db" && o.is_workload());
        let json = db.unwrap().to_json();
        let limits = &json["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["cpu"], "2");
        assert_eq!(limits["memory"], "6Gi");
    }

    #[test]
    fn refused_manifests() {
        let files = yaml_files(&dir("refused"));
        assert!(files.len() >= 5);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{}: no `# expect:` line", file.display()));
            let (code, at) = expect.split_once(' ').unwrap_or((expect, ""));
            let e = parse_and_check(text.clone().into_bytes())
                .expect_err(&format!("{} passed", file.display()));
            assert_eq!(e.code(), code, "{}: {e}", file.display());
            if let Some((object, field)) = at.rsplit_once(' ') {
                let refusal = e.refusal().unwrap();
                assert_eq!(refusal.object, object, "{}", file.display());
                assert_eq!(refusal.field, field, "{}", file.display());
            }
        }
    }
}
