//! deploy/*.yaml against the Kubernetes 1.32 types (k8s-openapi) and against the gateway's
//! config.
//!
//! `scripts/check-deploy.sh` has kubectl dry-run the manifests, but without schema
//! validation: no API server here serves the OpenAPI schema kubectl validates with. So a
//! misspelt or mistyped field is caught here instead: each object must deserialize into its
//! typed struct, and serializing that back must keep every field the YAML has (k8s-openapi
//! drops fields it does not know).

use std::collections::BTreeMap;
use std::path::Path;

use grid_gateway::config::Config;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CONFIG_MAP, config_map_toml, documents};

const MANIFESTS: [&str; 3] = ["deploy/rbac.yaml", CONFIG_MAP, "deploy/gateway.yaml"];

fn round_trip<K: DeserializeOwned + Serialize>(raw: &Value) -> Result<Value, String> {
    let typed: K = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(typed).expect("a k8s-openapi object serializes"))
}

/// `raw` through its Kubernetes type, or why it does not fit.
fn typed(raw: &Value) -> Result<Value, String> {
    let api_version = raw["apiVersion"].as_str().unwrap_or_default();
    let kind = raw["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(raw),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(raw),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(raw),
        ("v1", "PersistentVolumeClaim") => round_trip::<PersistentVolumeClaim>(raw),
        ("v1", "Service") => round_trip::<Service>(raw),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(raw),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(raw),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(raw)
        }
        _ => Err(format!(
            "{api_version} {kind} is not a kind this test knows: add it to `typed`"
        )),
    }
}

/// Paths of the fields of `raw` that `typed` lost.
fn unknown_fields(raw: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(raw), Value::Object(typed)) => {
            for (key, value) in raw.iter().filter(|(_, v)| !v.is_null()) {
                let here = format!("{path}.{key}");
                match typed.get(key) {
                    None => out.push(here),
                    Some(typed) => unknown_fields(value, typed, &here, out),
                }
            }
        }
        (Value::Array(raw), Value::Array(typed)) => {
            for (i, (raw, typed)) in raw.iter().zip(typed).enumerate() {
                unknown_fields(raw, typed, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_field_is_a_field_of_its_kubernetes_type() {
    let mut problems = Vec::new();
    for file in MANIFESTS {
        for raw in documents(file) {
            let name = format!(
                "{file}: {} {:?}",
                raw["kind"].as_str().unwrap_or("(no kind)"),
                raw["metadata"]["name"].as_str().unwrap_or("(no name)")
            );
            match typed(&raw) {
                Err(e) => problems.push(format!("{name}: {e}")),
                Ok(typed) => {
                    let mut unknown = Vec::new();
                    unknown_fields(&raw, &typed, "", &mut unknown);
                    for field in unknown {
                        problems.push(format!("{name}: {field} is not a field of its kind"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_manifest_file_is_checked() {
    let mut on_disk: Vec<String> = std::fs::read_dir(super::repo_file("deploy"))
        .unwrap()
        .map(|e| format!("deploy/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    on_disk.sort();
    let mut checked = MANIFESTS.map(String::from).to_vec();
    checked.sort();
    assert_eq!(on_disk, checked, "add new manifests to MANIFESTS");
}

fn one<K: DeserializeOwned>(file: &str, kind: &str) -> K {
    let mut matching: Vec<Value> = documents(file)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(matching.len(), 1, "{file}: one {kind} expected");
    serde_json::from_value(matching.remove(0)).unwrap()
}

fn mount_path<'a>(container: &'a Container, volume: &str) -> &'a str {
    container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume)
        .map(|m| m.mount_path.as_str())
        .unwrap_or_else(|| panic!("container {} mounts no {volume}", container.name))
}

/// The gateway's config as the pod reads it (its policy directory is a volume of the pod,
/// so validation, which wants the directory to exist, is not run here).
fn pod_config() -> Config {
    toml::from_str(&config_map_toml()).expect("the ConfigMap's gateway.toml parses")
}

#[test]
fn the_deployment_agrees_with_the_gateways_config() {
    let config = pod_config();
    let deployment: Deployment = one("deploy/gateway.yaml", "Deployment");
    let namespace = deployment.metadata.namespace.as_deref().unwrap();
    let pod = deployment.spec.as_ref().unwrap().template.clone();
    let labels = pod.metadata.unwrap().labels.unwrap_or_default();
    let pod = pod.spec.unwrap();
    let gateway = pod.containers.iter().find(|c| c.name == "gateway").unwrap();

    // The order sandboxes admit ingress from the gateway's pods: they must be these.
    let sandbox = config.cluster.as_ref().unwrap().sandbox.clone();
    assert_eq!(sandbox.gateway_namespace, namespace);
    for (key, value) in &sandbox.gateway_pod_labels {
        assert_eq!(labels.get(key), Some(value), "pod label {key}");
    }

    // The port, the config file, the store, the policies and the wallet are where the
    // config says.
    let port = gateway
        .ports
        .iter()
        .flatten()
        .next()
        .unwrap()
        .container_port;
    assert_eq!(i32::from(config.listen.port()), port);
    let args = gateway.args.clone().unwrap_or_default();
    let config_path = args
        .iter()
        .skip_while(|a| *a != "--config")
        .nth(1)
        .expect("the gateway is started with --config");
    let config_path = Path::new(config_path);
    assert_eq!(
        config_path.parent().unwrap(),
        Path::new(mount_path(gateway, "config"))
    );
    assert_eq!(config_path.file_name().unwrap(), "gateway.toml");
    assert_eq!(
        config.data_dir,
        Path::new(mount_path(gateway, "data")),
        "data_dir is the PersistentVolumeClaim"
    );
    assert_eq!(
        config.policy.dir.as_deref(),
        Some(Path::new(mount_path(gateway, "policies")))
    );
    let key_file = config.chain.as_ref().unwrap().key_file.clone().unwrap();
    assert_eq!(
        key_file.parent().unwrap(),
        Path::new(mount_path(gateway, "wallet"))
    );

    // The init container writes the key file where the gateway reads it.
    let init = pod.init_containers.iter().flatten().next().unwrap();
    let command = init.command.clone().unwrap_or_default();
    assert_eq!(
        command.last().map(Path::new),
        Some(
            Path::new(mount_path(init, "wallet"))
                .join(key_file.file_name().unwrap())
                .as_path()
        )
    );

    // The volumes are the objects of these files.
    let volumes: BTreeMap<String, _> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.clone()))
        .collect();
    let config_maps: Vec<String> = documents(CONFIG_MAP)
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for volume in ["config", "policies"] {
        let name = &volumes[volume].config_map.as_ref().unwrap().name;
        assert!(
            config_maps.contains(name),
            "volume {volume}: ConfigMap {name}"
        );
    }
    let pvc: PersistentVolumeClaim = one("deploy/gateway.yaml", "PersistentVolumeClaim");
    assert_eq!(
        volumes["data"]
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        pvc.metadata.name.unwrap()
    );

    // The Service reaches these pods.
    let service: Service = one("deploy/gateway.yaml", "Service");
    for (key, value) in service.spec.unwrap().selector.unwrap() {
        assert_eq!(labels.get(&key), Some(&value), "Service selector {key}");
    }

    // It runs as the ServiceAccount rbac.yaml binds.
    let account: ServiceAccount = one("deploy/rbac.yaml", "ServiceAccount");
    assert_eq!(pod.service_account_name, account.metadata.name);
    assert_eq!(account.metadata.namespace.as_deref(), Some(namespace));
    let binding: ClusterRoleBinding = one("deploy/rbac.yaml", "ClusterRoleBinding");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
    assert_eq!(subject.namespace.as_deref(), Some(namespace));
}

#[test]
fn every_container_meets_the_restricted_pod_security_standard() {
    // grid-system enforces `restricted`: a container without these is refused at admission.
    let deployment: Deployment = one("deploy/gateway.yaml", "Deployment");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let pod_security = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security
            .seccomp_profile
            .as_ref()
            .map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    for container in pod.init_containers.iter().flatten().chain(&pod.containers) {
        let security = container
            .security_context
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no securityContext", container.name));
        assert_eq!(
            security.allow_privilege_escalation,
            Some(false),
            "{}",
            container.name
        );
        let dropped = security.capabilities.as_ref().and_then(|c| c.drop.clone());
        assert_eq!(dropped, Some(vec!["ALL".to_owned()]), "{}", container.name);
        assert_eq!(
            security.read_only_root_filesystem,
            Some(true),
            "{}",
            container.name
        );
    }
}
