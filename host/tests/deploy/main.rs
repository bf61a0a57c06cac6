//! The files in `deploy/` stay honest: the example config against the config structs, the
//! Kubernetes manifests against the Kubernetes types and against each other.
//! (`scripts/check-deploy.sh` runs `kubectl apply --dry-run=client` on the manifests too.)

mod config_example;
mod manifests;

use std::path::{Path, PathBuf};

/// deploy/config.yaml: the gateway's config and policies as ConfigMaps.
const CONFIG_MAP: &str = "deploy/config.yaml";

/// A file of the repository, from its path relative to the root.
fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The YAML documents of a file, as kubectl reads them (YAML 1.1 octal: `0400` is 256).
fn documents(path: &str) -> Vec<serde_json::Value> {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options.strict_booleans = true;
    let values: Vec<serde_json::Value> =
        serde_saphyr::from_slice_multiple_with_options(read(path).as_bytes(), options)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    values.into_iter().filter(|v| !v.is_null()).collect()
}

/// `gateway.toml` of the `grid-gateway-config` ConfigMap in `deploy/config.yaml`.
fn config_map_toml() -> String {
    documents(CONFIG_MAP)
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "grid-gateway-config")
        .and_then(|d| d["data"]["gateway.toml"].as_str())
        .unwrap_or_else(|| panic!("{CONFIG_MAP} has no grid-gateway-config with gateway.toml"))
        .to_owned()
}
