//! The in-memory store: a kube-fake-client instance, and how Namespaces live in it.
//!
//! kube-fake-client's router reads `/api/v1/namespaces/...` as "a namespaced resource in
//! namespace ..." and cannot address Namespace objects at all. So Namespaces are stored as
//! a private custom kind (`grid-fake.internal/v1`, plural `fakenamespaces`) inside a
//! reserved namespace `_cluster`, and the API layer translates paths and bodies both ways.
//! Nothing outside this crate ever sees the storage form.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, ResourceQuota, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_fake_client::ClientBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FakeOptions;

/// Group/version of the storage form of a Namespace.
pub(crate) const NS_STORAGE_API_VERSION: &str = "grid-fake.internal/v1";
pub(crate) const NS_STORAGE_GROUP: &str = "grid-fake.internal";
pub(crate) const NS_STORAGE_PLURAL: &str = "fakenamespaces";
/// The reserved namespace that holds the storage form of every Namespace.
pub(crate) const NS_STORAGE_NAMESPACE: &str = "_cluster";

/// The storage form of a Namespace, only so kube-fake-client's registry knows the kind.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct StoredNamespace {
    metadata: ObjectMeta,
}

impl kube::Resource for StoredNamespace {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Namespace".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        NS_STORAGE_GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        NS_STORAGE_PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The builder every store (the real one, and the scratch copies dry runs use) starts from.
pub(crate) fn builder() -> ClientBuilder {
    ClientBuilder::new()
        .with_resource::<StoredNamespace>()
        .with_status_subresource::<Deployment>()
        .with_status_subresource::<StatefulSet>()
        .with_status_subresource::<Service>()
        .with_status_subresource::<Pod>()
        .with_status_subresource::<PersistentVolumeClaim>()
        .with_status_subresource::<ResourceQuota>()
        .with_status_subresource::<Node>()
}

/// The storage form of a Namespace named `name` with the defaults a real API server adds.
pub(crate) fn seed_namespace(name: &str) -> Value {
    json!({
        "apiVersion": NS_STORAGE_API_VERSION,
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "namespace": NS_STORAGE_NAMESPACE,
            "labels": { "kubernetes.io/metadata.name": name },
        },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    })
}

fn node(node: &crate::FakeNode) -> Value {
    let mut resources = serde_json::Map::new();
    resources.insert("cpu".into(), json!(node.cpu));
    resources.insert("memory".into(), json!(node.memory));
    resources.insert("ephemeral-storage".into(), json!(node.ephemeral_storage));
    resources.insert("pods".into(), json!("110"));
    if node.gpu > 0 {
        resources.insert("nvidia.com/gpu".into(), json!(node.gpu.to_string()));
    }
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(node.name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    for (k, v) in &node.labels {
        labels.insert(k.clone(), json!(v));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": node.name, "labels": labels },
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "grid-fake-cluster: a stand-in node, nothing runs here",
            }],
            "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }],
            "nodeInfo": {
                "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "fake://0",
                "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.32.0-grid-fake",
                "machineID": "", "operatingSystem": "linux", "osImage": "grid-fake-cluster",
                "systemUUID": "",
            },
        },
    })
}

/// The store with the namespaces every cluster has and the configured nodes.
pub(crate) async fn build_store(
    options: &FakeOptions,
) -> Result<kube::Client, kube_fake_client::Error> {
    let mut seeds: Vec<Value> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .into_iter()
        .map(seed_namespace)
        .collect();
    seeds.extend(options.nodes.iter().map(node));
    builder().with_runtime_objects(seeds).build().await
}
