//! The gateway's calls to the Kubernetes API server, through kube-rs: server-side apply
//! (dry run first), workload readiness, Service addresses, namespaces the gateway owns,
//! node capacity and pod logs.
//!
//! Every call is bounded by the client's operation timeout except log streams, which live
//! as long as the user reads them. Readiness is polled rather than watched: a poll every
//! second per deploying app is nothing for an API server, survives a dropped watch without
//! any re-list logic, and works the same against the test fake.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt};
use grid_policy_sdk::Resources;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams,
};
use kube::{Client, Resource};
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};
use crate::labels::{GATEWAY_KEY, Identity, NODE_KEY, ORDER_ID_KEY};

/// One object ready for server-side apply: its API resource, scope, name and body.
#[derive(Clone, Debug)]
pub struct ApplyObject {
    resource: ApiResource,
    namespaced: bool,
    name: String,
    body: serde_json::Value,
}

impl ApplyObject {
    /// Wraps a typed object. Its `apiVersion` and `kind` are set from the type (server-side
    /// apply requires them in the body).
    pub fn new<K>(object: &K) -> Result<Self>
    where
        K: Resource<DynamicType = ()> + Serialize,
        K::Scope: Scope,
    {
        let resource = ApiResource::erase::<K>(&());
        let name = object.meta().name.clone().unwrap_or_default();
        let encode = |reason: String| ClusterError::Encode {
            kind: resource.kind.clone(),
            name: name.clone(),
            reason,
        };
        let mut body = serde_json::to_value(object).map_err(|e| encode(e.to_string()))?;
        let map = body
            .as_object_mut()
            .ok_or_else(|| encode("not a JSON object".into()))?;
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
        // Server-side apply refuses a body carrying managed fields or a resource version
        // the client did not mean to pin.
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
        }
        let namespaced = <K::Scope as Scope>::NAMESPACED;
        Ok(ApplyObject {
            resource,
            namespaced,
            name,
            body,
        })
    }

    /// Adds labels to the object (over any of the same key the body had).
    pub fn with_labels(self, labels: &[(&str, &str)]) -> Self {
        self.with_metadata_entries("labels", labels)
    }

    /// Adds annotations to the object (over any of the same key the body had).
    pub fn with_annotations(self, annotations: &[(&str, &str)]) -> Self {
        self.with_metadata_entries("annotations", annotations)
    }

    /// Sets `entries` in the string map `metadata.<field>`, creating it (or replacing a
    /// value that is not a map) as needed.
    fn with_metadata_entries(mut self, field: &str, entries: &[(&str, &str)]) -> Self {
        if let Some(meta) = self.body.as_object_mut().and_then(|m| {
            m.entry("metadata")
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
        }) {
            let map = meta.entry(field).or_insert_with(|| serde_json::json!({}));
            if !map.is_object() {
                *map = serde_json::json!({});
            }
            if let Some(map) = map.as_object_mut() {
                for (key, value) in entries {
                    map.insert((*key).to_owned(), (*value).into());
                }
            }
        }
        self
    }

    /// `Kind/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name)
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The body sent to the API server.
    pub fn body(&self) -> &serde_json::Value {
        &self.body
    }
}

/// Whether a resource scope puts objects in a namespace.
pub trait Scope {
    /// True for namespaced resources.
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// A workload the gateway waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// A Kubernetes condition as an app's status reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The object, `Kind/name`.
    pub object: String,
    /// The condition type, e.g. `Available`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Its reason, if any.
    pub reason: Option<String>,
    /// Its message, if any.
    pub message: Option<String>,
}

/// Where a workload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadState {
    /// All wanted replicas are up to date and available.
    pub ready: bool,
    /// Set when the workload cannot become ready without a change (its progress deadline
    /// passed, or a replica could not be created, e.g. refused by the quota).
    pub failed: Option<String>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
}

/// A namespace the gateway created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedNamespace {
    /// Its name.
    pub name: String,
    /// The order it belongs to (its label).
    pub order_id: Option<String>,
    /// Its annotations (the entrance, pod selector and manifest URL of its app).
    pub annotations: BTreeMap<String, String>,
}

/// The API server client of one gateway: everything it writes carries its [`Identity`],
/// and everything it lists is selected by it.
#[derive(Clone)]
pub struct ClusterClient {
    client: Client,
    timeout: Duration,
    identity: std::sync::Arc<Identity>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("timeout", &self.timeout)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Connects from a kubeconfig file, or, without one, the way kubectl does: `KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster service account.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        timeout: Duration,
        identity: Identity,
    ) -> Result<Self> {
        // kube-rs builds its TLS config from rustls' process-wide provider, and a process
        // that links more than one (ring here, aws-lc-rs through another crate) has none
        // by default. Install ring unless the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        config.connect_timeout = Some(timeout);
        // Log streams with follow=true are idle between lines; a read timeout would cut
        // them. Every other call is bounded by `timeout` around the call instead.
        config.read_timeout = None;
        let client = Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(ClusterClient::from_client(client, timeout, identity))
    }

    /// Wraps a built client (tests).
    pub fn from_client(client: Client, timeout: Duration, identity: Identity) -> Self {
        ClusterClient {
            client,
            timeout,
            identity: std::sync::Arc::new(identity),
        }
    }

    /// The gateway's identity: its labels, namespace names and field manager.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ClusterError::Timeout(self.timeout))?
    }

    fn dynamic(&self, object: &ApplyObject, namespace: &str) -> Api<DynamicObject> {
        if object.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &object.resource)
        } else {
            Api::all_with(self.client.clone(), &object.resource)
        }
    }

    /// Server-side applies `objects` in order (namespaced ones into `namespace`), with the
    /// gateway's own field manager ([`Identity::field_manager`]) and `force`: inside its
    /// own namespace the gateway owns these objects outright, so a field someone changed by
    /// hand is taken back rather than turned into a conflict. `namespace` must not exist
    /// yet or carry this gateway's identity: another gateway's namespace is never forced
    /// ([`ClusterError::NotOwned`]). With `dry_run`, the API server validates and admits
    /// each object but stores nothing.
    pub async fn apply(
        &self,
        namespace: &str,
        objects: &[ApplyObject],
        dry_run: bool,
    ) -> Result<()> {
        self.check_owned(namespace, false).await?;
        let mut params = PatchParams::apply(&self.identity.field_manager()).force();
        params.dry_run = dry_run;
        for object in objects {
            let api = self.dynamic(object, namespace);
            self.bounded(async {
                api.patch(&object.name, &params, &Patch::Apply(&object.body))
                    .await
                    .map(drop)
                    .map_err(|e| ClusterError::from_kube(object.kind(), &object.name, e))
            })
            .await?;
        }
        Ok(())
    }

    /// Refuses a namespace that exists and is not this gateway's. With `legacy`, one
    /// without any gateway identity (written by a gateway before identities) passes too:
    /// the store's record of it is what makes it this gateway's.
    async fn check_owned(&self, namespace: &str, legacy: bool) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let found = self
            .bounded(async {
                api.get_opt(namespace)
                    .await
                    .map_err(|e| ClusterError::from_kube("Namespace", namespace, e))
            })
            .await?;
        let Some(found) = found else {
            return Ok(());
        };
        let labels = found.metadata.labels.as_ref();
        let unlabelled =
            labels.is_none_or(|l| !l.contains_key(GATEWAY_KEY) && !l.contains_key(NODE_KEY));
        if self.identity.owns(labels) || (legacy && unlabelled) {
            Ok(())
        } else {
            Err(ClusterError::NotOwned {
                namespace: namespace.to_owned(),
            })
        }
    }

    /// Deletes the gateway's objects of the app kinds in `namespace` that are not in
    /// `keep`: re-deploying replaces the app, so what the new manifest no longer has goes.
    /// Only objects labelled with this gateway's identity are considered, so what
    /// Kubernetes itself puts in a namespace (`kube-root-ca.crt`) stays. Returns what was
    /// deleted.
    pub async fn prune(&self, namespace: &str, keep: &[ApplyObject]) -> Result<Vec<String>> {
        let selector = self.identity.selector();
        let mut deleted = Vec::new();
        for resource in app_resources() {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &resource);
            let list = self
                .bounded(async {
                    api.list(&ListParams::default().labels(&selector))
                        .await
                        .map_err(|e| ClusterError::from_kube(&resource.kind, "*", e))
                })
                .await?;
            for object in list.items {
                let Some(name) = object.metadata.name else {
                    continue;
                };
                let kept = keep
                    .iter()
                    .any(|k| k.resource.kind == resource.kind && k.name == name);
                if kept {
                    continue;
                }
                self.bounded(async {
                    match api.delete(&name, &DeleteParams::background()).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                        Err(e) => Err(ClusterError::from_kube(&resource.kind, &name, e)),
                    }
                })
                .await?;
                deleted.push(format!("{}/{name}", resource.kind));
            }
        }
        Ok(deleted)
    }

    /// Deletes one of the gateway's namespaces and with it everything in it. `Ok(false)`
    /// when it was not there; [`ClusterError::NotOwned`] when it carries another gateway's
    /// identity.
    pub async fn delete_namespace(&self, name: &str) -> Result<bool> {
        self.check_owned(name, true).await?;
        let api: Api<Namespace> = Api::all(self.client.clone());
        self.bounded(async {
            match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
                Err(e) => Err(ClusterError::from_kube("Namespace", name, e)),
            }
        })
        .await
    }

    /// Whether the app in `namespace` is still there: the namespace exists, is this
    /// gateway's, and holds at least one of its Deployments or StatefulSets.
    pub async fn app_present(&self, namespace: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let found = self
            .bounded(async {
                api.get_opt(namespace)
                    .await
                    .map_err(|e| ClusterError::from_kube("Namespace", namespace, e))
            })
            .await?;
        if !found.is_some_and(|ns| {
            ns.metadata.deletion_timestamp.is_none()
                && self.identity.owns(ns.metadata.labels.as_ref())
        }) {
            return Ok(false);
        }
        let selector = self.identity.selector();
        for resource in [
            ApiResource::erase::<Deployment>(&()),
            ApiResource::erase::<StatefulSet>(&()),
        ] {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &resource);
            let list = self
                .bounded(async {
                    api.list(&ListParams::default().labels(&selector).limit(1))
                        .await
                        .map_err(|e| ClusterError::from_kube(&resource.kind, "*", e))
                })
                .await?;
            if !list.items.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a namespace exists (terminating ones count as existing).
    pub async fn namespace_exists(&self, name: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        self.bounded(async {
            api.get_opt(name)
                .await
                .map(|n| n.is_some())
                .map_err(|e| ClusterError::from_kube("Namespace", name, e))
        })
        .await
    }

    /// The namespaces this gateway created: selected by its identity's labels (and checked
    /// again here), so another gateway's namespaces and anything else in the cluster are
    /// never listed for reconciliation or deletion.
    pub async fn managed_namespaces(&self) -> Result<Vec<ManagedNamespace>> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&self.identity.selector());
        let list = self
            .bounded(async {
                api.list(&params)
                    .await
                    .map_err(|e| ClusterError::from_kube("Namespace", "*", e))
            })
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter(|ns| self.identity.owns(ns.metadata.labels.as_ref()))
            .filter_map(|ns| {
                let order_id = ns
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ORDER_ID_KEY).cloned());
                let annotations = ns.metadata.annotations.unwrap_or_default();
                ns.metadata.name.map(|name| ManagedNamespace {
                    name,
                    order_id,
                    annotations,
                })
            })
            .collect())
    }

    /// Where a Deployment or StatefulSet is. A missing workload is an error (404).
    pub async fn workload_state(
        &self,
        namespace: &str,
        workload: &WorkloadRef,
    ) -> Result<WorkloadState> {
        let object = format!("{}/{}", workload.kind, workload.name);
        match workload.kind.as_str() {
            "StatefulSet" => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                let set = self
                    .bounded(async {
                        api.get(&workload.name)
                            .await
                            .map_err(|e| ClusterError::from_kube("StatefulSet", &workload.name, e))
                    })
                    .await?;
                Ok(statefulset_state(&object, &set))
            }
            _ => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                let deployment = self
                    .bounded(async {
                        api.get(&workload.name)
                            .await
                            .map_err(|e| ClusterError::from_kube("Deployment", &workload.name, e))
                    })
                    .await?;
                Ok(deployment_state(&object, &deployment))
            }
        }
    }

    /// Polls `workloads` until all are ready, one has failed, or `deadline` passes. Returns
    /// the last conditions seen and, if not ready, why.
    pub async fn wait_ready(
        &self,
        namespace: &str,
        workloads: &[WorkloadRef],
        deadline: Duration,
        poll: Duration,
    ) -> Result<Readiness> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let mut conditions = Vec::new();
            let mut all_ready = true;
            for workload in workloads {
                let state = self.workload_state(namespace, workload).await?;
                conditions.extend(state.conditions);
                if let Some(reason) = state.failed {
                    return Ok(Readiness {
                        outcome: ReadyOutcome::Failed(reason),
                        conditions,
                    });
                }
                all_ready &= state.ready;
            }
            if all_ready {
                return Ok(Readiness {
                    outcome: ReadyOutcome::Ready,
                    conditions,
                });
            }
            if tokio::time::Instant::now() + poll > until {
                return Ok(Readiness {
                    outcome: ReadyOutcome::DeadlinePassed(deadline),
                    conditions,
                });
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// A Service's cluster IP, once assigned.
    pub async fn service_cluster_ip(&self, namespace: &str, name: &str) -> Result<Option<String>> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let service = self
            .bounded(async {
                api.get(name)
                    .await
                    .map_err(|e| ClusterError::from_kube("Service", name, e))
            })
            .await?;
        Ok(service
            .spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None"))
    }

    /// The capacity the cluster's nodes offer: the sum of `status.allocatable` over nodes
    /// that are Ready and schedulable. The GPU model is the `nvidia.com/gpu.product` label
    /// of the first GPU node that has one.
    pub async fn node_capacity(&self) -> Result<Resources> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = self
            .bounded(async {
                api.list(&ListParams::default())
                    .await
                    .map_err(|e| ClusterError::from_kube("Node", "*", e))
            })
            .await?;
        Ok(sum_allocatable(nodes.items.iter()))
    }

    /// The log of the first pod matching `selector` in `namespace`, as a byte stream of
    /// lines. `None` when no pod matches yet.
    pub async fn logs(
        &self,
        namespace: &str,
        selector: &str,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> Result<Option<impl Stream<Item = std::io::Result<Bytes>> + Send + use<>>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pods = self
            .bounded(async {
                api.list(&ListParams::default().labels(selector))
                    .await
                    .map_err(|e| ClusterError::from_kube("Pod", selector, e))
            })
            .await?;
        let Some(name) = pods.items.into_iter().find_map(|p| p.metadata.name) else {
            return Ok(None);
        };
        let params = LogParams {
            follow,
            tail_lines,
            ..LogParams::default()
        };
        let reader = self
            .bounded(async {
                api.log_stream(&name, &params)
                    .await
                    .map_err(|e| ClusterError::from_kube("Pod", &name, e))
            })
            .await?;
        Ok(Some(
            reader
                .lines()
                .map_ok(|mut line| {
                    line.push('\n');
                    Bytes::from(line)
                })
                .boxed(),
        ))
    }
}

/// The kinds a user's manifest may hold (see `manifest::ALLOWED_KINDS`).
fn app_resources() -> [ApiResource; 6] {
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
    [
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<PersistentVolumeClaim>(&()),
    ]
}

/// What waiting for the workloads came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Ready, failed, or out of time.
    pub outcome: ReadyOutcome,
    /// The conditions last seen.
    pub conditions: Vec<Condition>,
}

/// How waiting ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadyOutcome {
    /// Every workload is available.
    Ready,
    /// A workload cannot become ready (why).
    Failed(String),
    /// The deadline passed first.
    DeadlinePassed(Duration),
}

fn condition(
    object: &str,
    type_: &str,
    status: &str,
    reason: Option<&String>,
    message: Option<&String>,
) -> Condition {
    Condition {
        object: object.to_owned(),
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.cloned(),
        message: message.cloned(),
    }
}

fn deployment_state(object: &str, deployment: &Deployment) -> WorkloadState {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let conditions: Vec<Condition> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            condition(
                object,
                &c.type_,
                &c.status,
                c.reason.as_ref(),
                c.message.as_ref(),
            )
        })
        .collect();
    let failed = conditions.iter().find_map(|c| {
        let stuck = (c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            || (c.type_ == "ReplicaFailure" && c.status == "True");
        stuck.then(|| {
            format!(
                "{object}: {} ({})",
                c.message.clone().unwrap_or_default(),
                c.reason.clone().unwrap_or_default()
            )
        })
    });
    let observed = observed(deployment.metadata.generation, status.observed_generation);
    let ready = observed
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.available_replicas.unwrap_or(0) >= wanted;
    WorkloadState {
        ready,
        failed,
        conditions,
    }
}

fn statefulset_state(object: &str, set: &StatefulSet) -> WorkloadState {
    let wanted = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = set.status.clone().unwrap_or_default();
    let conditions = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            condition(
                object,
                &c.type_,
                &c.status,
                c.reason.as_ref(),
                c.message.as_ref(),
            )
        })
        .collect();
    let observed = observed(set.metadata.generation, status.observed_generation);
    WorkloadState {
        ready: observed && status.ready_replicas.unwrap_or(0) >= wanted,
        failed: None,
        conditions,
    }
}

/// True when the controller has seen the object's latest spec (its status is about it).
fn observed(generation: Option<i64>, observed_generation: Option<i64>) -> bool {
    match (generation, observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn sum_allocatable<'a>(nodes: impl Iterator<Item = &'a Node>) -> Resources {
    use grid_policy_sdk::quantity::{parse_bytes, parse_cpu_millis};
    let mut total = Resources {
        cpu_millis: 0,
        memory_bytes: 0,
        storage_bytes: 0,
        gpus: 0,
        gpu_model: None,
    };
    for node in nodes {
        if !node_schedulable(node) {
            continue;
        }
        let empty = BTreeMap::new();
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .unwrap_or(&empty);
        let get = |key: &str| allocatable.get(key).map(|q| q.0.as_str());
        // A quantity the node reports in a form we cannot read counts as zero: better to
        // sell less than to fail the whole sum because of one odd node.
        total.cpu_millis += get("cpu")
            .and_then(|q| parse_cpu_millis(q).ok())
            .unwrap_or(0);
        total.memory_bytes += get("memory").and_then(|q| parse_bytes(q).ok()).unwrap_or(0);
        total.storage_bytes += get("ephemeral-storage")
            .and_then(|q| parse_bytes(q).ok())
            .unwrap_or(0);
        let gpus = get("nvidia.com/gpu")
            .and_then(|q| q.parse::<u32>().ok())
            .unwrap_or(0);
        total.gpus += gpus;
        if gpus > 0 && total.gpu_model.is_none() {
            total.gpu_model = node
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("nvidia.com/gpu.product"))
                .map(|m| m.to_ascii_lowercase());
        }
    }
    total
}

fn node_schedulable(node: &Node) -> bool {
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return false;
    }
    // A node without a Ready condition (the test fake, a node still joining) is counted:
    // only an explicit NotReady removes it.
    !node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status != "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn deployment(
        replicas: i32,
        available: i32,
        conditions: Vec<DeploymentCondition>,
    ) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                available_replicas: Some(available),
                updated_replicas: Some(available),
                conditions: Some(conditions),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_deployment_is_ready_when_all_replicas_are_available() {
        assert!(deployment_state("Deployment/web", &deployment(2, 2, vec![])).ready);
        assert!(!deployment_state("Deployment/web", &deployment(2, 1, vec![])).ready);
    }

    #[test]
    fn a_deployment_refused_by_the_quota_has_failed() {
        let quota = DeploymentCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("exceeded quota: grid-order".into()),
            ..Default::default()
        };
        let state = deployment_state("Deployment/web", &deployment(1, 0, vec![quota]));
        assert!(!state.ready);
        let reason = state.failed.expect("failed");
        assert!(reason.contains("exceeded quota"), "{reason}");
        assert_eq!(state.conditions[0].type_, "ReplicaFailure");
    }

    #[test]
    fn a_deployment_not_yet_observed_is_not_ready() {
        let mut d = deployment(1, 1, vec![]);
        d.metadata.generation = Some(2);
        if let Some(s) = d.status.as_mut() {
            s.observed_generation = Some(1);
        }
        assert!(!deployment_state("Deployment/web", &d).ready);
    }

    fn node(cpu: &str, memory: &str, gpus: &str, ready: bool, cordoned: bool) -> Node {
        let allocatable = [
            ("cpu", cpu),
            ("memory", memory),
            ("ephemeral-storage", "100Gi"),
            ("nvidia.com/gpu", gpus),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
        .collect();
        Node {
            spec: Some(NodeSpec {
                unschedulable: Some(cordoned),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(allocatable),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn capacity_sums_ready_schedulable_nodes_only() {
        let nodes = [
            node("7500m", "30Gi", "1", true, false),
            node("4", "16Gi", "0", true, false),
            node("64", "256Gi", "8", false, false),
            node("64", "256Gi", "8", true, true),
        ];
        let total = sum_allocatable(nodes.iter());
        assert_eq!(total.cpu_millis, 11_500);
        assert_eq!(total.memory_bytes, 46 << 30);
        assert_eq!(total.storage_bytes, 200 << 30);
        assert_eq!(total.gpus, 1);
    }

    #[test]
    fn apply_objects_carry_type_and_scope() {
        let mut ns = Namespace::default();
        ns.metadata.name = Some("grid-order-7".into());
        let object = ApplyObject::new(&ns).expect("encodes");
        assert!(!object.namespaced);
        assert_eq!(object.body["kind"], "Namespace");
        assert_eq!(object.body["apiVersion"], "v1");
        let mut svc = Service::default();
        svc.metadata.name = Some("web".into());
        let object = ApplyObject::new(&svc).expect("encodes");
        assert!(object.namespaced);
        assert_eq!(object.describe(), "Service/web");
    }
}
