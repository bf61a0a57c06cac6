//! Stand-ins for the controllers and admission defaults of a real cluster, run by the API
//! layer after each successful write (see the crate README for the timing):
//!
//! - Namespace: the `kubernetes.io/metadata.name` label, `spec.finalizers`, phase Active;
//!   deletion removes every namespaced object in it at once (a real cluster goes through
//!   the Terminating phase and deletes the contents asynchronously).
//! - Service: type ClusterIP by default, a cluster IP, port protocol and targetPort defaults.
//! - Deployment / StatefulSet: Pods `<name>-<n>` with the template's labels, owned by the
//!   workload, and a status that says available (or not, with `grid.test/never-ready`).
//! - PersistentVolumeClaim: bound at once; ResourceQuota: `status.hard` from the spec.
//! - Pod created directly: Running.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value, json};

use crate::NEVER_READY_ANNOTATION;
use crate::api::{State, namespaced_collections, storage_namespace_path};
use crate::util::{Target, now};

/// Annotation on the Pods the workload stand-in creates: the hash of the template they
/// were made from (a changed template replaces them, like a rollout).
const TEMPLATE_HASH_ANNOTATION: &str = "grid-fake-cluster/template-hash";

/// Runs the stand-ins for a successful write; returns the object the response carries.
pub(crate) async fn after_write(
    state: &Arc<State>,
    method: &Method,
    target: &Target,
    object: Value,
) -> Value {
    if target.subresource.is_some() {
        return object;
    }
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
        return object;
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    let deleting = *method == Method::DELETE;
    match (target.group.as_str(), target.resource.as_str()) {
        ("", "namespaces") if deleting => {
            purge_namespace(state, &name).await;
            let mut object = object;
            mark_terminating(&mut object);
            object
        }
        ("", "namespaces") => {
            let mut after = object.clone();
            namespace_defaults(&mut after);
            persist(state, &storage_namespace_path(&name), &object, after).await
        }
        ("", "services") if !deleting => {
            let mut after = object.clone();
            service_defaults(&mut after, &mut || state.service_ip(true));
            persist(state, &target.storage_object(&name), &object, after).await
        }
        ("apps", "deployments" | "statefulsets") if !deleting => {
            schedule_workload(state, &target.resource, &namespace, &name).await;
            object
        }
        ("", "persistentvolumeclaims") if !deleting => {
            let mut after = object.clone();
            bind_claim(&mut after);
            persist(state, &target.storage_object(&name), &object, after).await
        }
        ("", "resourcequotas") if !deleting => {
            let mut after = object.clone();
            after["status"] = quota_status(&after);
            persist(state, &target.storage_object(&name), &object, after).await
        }
        ("", "pods") if *method == Method::POST && object["status"]["phase"].is_null() => {
            let mut after = object.clone();
            let ip = state.pod_ip().to_string();
            after["status"] = pod_status(&after["spec"], true, &ip);
            persist(state, &target.storage_object(&name), &object, after).await
        }
        _ => object,
    }
}

/// What a dry run returns gets the same defaults a real write would (no IP is used up).
pub(crate) fn defaults_for_dry_run(state: &State, target: &Target, object: &mut Value) {
    match (target.group.as_str(), target.resource.as_str()) {
        ("", "namespaces") => namespace_defaults(object),
        ("", "services") => service_defaults(object, &mut || state.service_ip(false)),
        _ => {}
    }
}

/// Writes `after` over `before`: the object through PUT when anything but the status
/// changed, the status through the status subresource. Returns the object as stored (or
/// `before` when a write failed, e.g. a concurrent update won).
async fn persist(state: &State, path: &str, before: &Value, after: Value) -> Value {
    let mut current = before.clone();
    let without_status = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        v
    };
    if without_status(before) != without_status(&after) {
        let reply = state
            .send(Method::PUT, path, Some("application/json"), Some(&after))
            .await;
        match reply.json() {
            Some(v) if reply.ok() => current = v,
            _ => {
                tracing::debug!(path, status = %reply.status, "stand-in controller: update failed");
                return current;
            }
        }
    }
    if !after["status"].is_null() && current["status"] != after["status"] {
        let reply = state.put_status(path, &after["status"]).await;
        match reply.json() {
            Some(v) if reply.ok() => current = v,
            _ => {
                tracing::debug!(path, status = %reply.status, "stand-in controller: status failed")
            }
        }
    }
    current
}

fn object_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("just made an object")
}

/// The defaults a real API server gives a Namespace.
pub(crate) fn namespace_defaults(ns: &mut Value) {
    let name = ns["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let meta = object_mut(ns, "metadata");
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta.insert("labels".into(), json!({}));
    }
    meta["labels"]["kubernetes.io/metadata.name"] = json!(name);
    let spec = object_mut(ns, "spec");
    spec.entry("finalizers")
        .or_insert_with(|| json!(["kubernetes"]));
    let status = object_mut(ns, "status");
    status.entry("phase").or_insert_with(|| json!("Active"));
}

/// A deleted Namespace as the API server returns it: Terminating.
pub(crate) fn mark_terminating(ns: &mut Value) {
    object_mut(ns, "metadata").insert("deletionTimestamp".into(), json!(now()));
    object_mut(ns, "status").insert("phase".into(), json!("Terminating"));
}

/// The defaults and the cluster IP a real API server gives a Service.
pub(crate) fn service_defaults(svc: &mut Value, allocate: &mut dyn FnMut() -> std::net::IpAddr) {
    let spec = object_mut(svc, "spec");
    let kind = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            let number = port["port"].clone();
            if let Some(p) = port.as_object_mut() {
                p.entry("protocol").or_insert_with(|| json!("TCP"));
                p.entry("targetPort").or_insert(number);
            }
        }
    }
    if kind == "ExternalName" {
        return;
    }
    spec.entry("internalTrafficPolicy")
        .or_insert_with(|| json!("Cluster"));
    let current = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if current.is_empty() {
        let ip = allocate();
        spec.insert("clusterIP".into(), json!(ip.to_string()));
        spec.insert("clusterIPs".into(), json!([ip.to_string()]));
        let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        spec.insert("ipFamilies".into(), json!([family]));
        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
    } else if !spec.contains_key("clusterIPs") {
        spec.insert("clusterIPs".into(), json!([current]));
    }
    if !svc["status"].is_object() {
        svc["status"] = json!({ "loadBalancer": {} });
    }
}

fn bind_claim(pvc: &mut Value) {
    if pvc["status"]["phase"] == "Bound" {
        return;
    }
    let uid = pvc["metadata"]["uid"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    let access_modes = pvc["spec"]["accessModes"].clone();
    let storage = pvc["spec"]["resources"]["requests"]["storage"].clone();
    let spec = object_mut(pvc, "spec");
    spec.entry("volumeName")
        .or_insert_with(|| json!(format!("pvc-{uid}")));
    spec.entry("volumeMode")
        .or_insert_with(|| json!("Filesystem"));
    let mut status = json!({ "phase": "Bound", "accessModes": access_modes });
    if !storage.is_null() {
        status["capacity"] = json!({ "storage": storage });
    }
    pvc["status"] = status;
}

fn quota_status(quota: &Value) -> Value {
    let hard = quota["spec"]["hard"].clone();
    let used: Map<String, Value> = hard
        .as_object()
        .map(|h| h.keys().map(|k| (k.clone(), json!("0"))).collect())
        .unwrap_or_default();
    json!({ "hard": hard, "used": used })
}

/// Deletes every namespaced object in `namespace` (the Namespace itself is already gone).
async fn purge_namespace(state: &State, namespace: &str) {
    let _guard = state.controller.lock().await;
    for collection in namespaced_collections(namespace) {
        let Some(list) = state.get(&collection).await else {
            continue;
        };
        for item in list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(name) = item["metadata"]["name"].as_str() {
                let _ = state
                    .send(Method::DELETE, &format!("{collection}/{name}"), None, None)
                    .await;
            }
        }
    }
}

async fn schedule_workload(state: &Arc<State>, resource: &str, namespace: &str, name: &str) {
    let delay = state.options.controller_delay;
    if delay.is_zero() {
        reconcile_workload(state, resource, namespace, name).await;
        return;
    }
    let (state, resource, namespace, name) = (
        state.clone(),
        resource.to_string(),
        namespace.to_string(),
        name.to_string(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        reconcile_workload(&state, &resource, &namespace, &name).await;
    });
}

fn template_hash(template: &Value, never_ready: bool) -> String {
    let mut h = DefaultHasher::new();
    template.to_string().hash(&mut h);
    never_ready.hash(&mut h);
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// Makes a Deployment's or StatefulSet's Pods and status match its spec.
pub(crate) async fn reconcile_workload(state: &State, resource: &str, namespace: &str, name: &str) {
    let _guard = state.controller.lock().await;
    let path = format!("/apis/apps/v1/namespaces/{namespace}/{resource}/{name}");
    let Some(workload) = state.get(&path).await else {
        return;
    };
    if !workload["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let kind = if resource == "statefulsets" {
        "StatefulSet"
    } else {
        "Deployment"
    };
    let replicas = workload["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let never_ready = workload["metadata"]["annotations"][NEVER_READY_ANNOTATION] == "true";
    let template = workload["spec"]["template"].clone();
    let uid = workload["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let generation = workload["metadata"]["generation"].as_i64().unwrap_or(1);
    let hash = template_hash(&template, never_ready);

    let pods_path = format!("/api/v1/namespaces/{namespace}/pods");
    let pods = state.get(&pods_path).await.unwrap_or_else(|| json!({}));
    let desired: Vec<String> = (0..replicas).map(|i| format!("{name}-{i}")).collect();
    let mut present = HashSet::new();
    for pod in pods["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let owned = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()));
        let Some(pod_name) = pod["metadata"]["name"].as_str() else {
            continue;
        };
        if !owned {
            continue;
        }
        let current = pod["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] == hash.as_str();
        if current && desired.iter().any(|d| d == pod_name) {
            present.insert(pod_name.to_string());
        } else {
            let _ = state
                .send(
                    Method::DELETE,
                    &format!("{pods_path}/{pod_name}"),
                    None,
                    None,
                )
                .await;
        }
    }
    let node = state.options.nodes.first().map(|n| n.name.clone());
    for (index, pod_name) in desired.iter().enumerate() {
        if present.contains(pod_name) {
            continue;
        }
        let ip = state.pod_ip().to_string();
        let pod = pod_for(PodSpec {
            namespace,
            pod_name,
            index,
            kind,
            owner: name,
            uid: &uid,
            template: &template,
            hash: &hash,
            ready: !never_ready,
            node: node.as_deref(),
            ip: &ip,
        });
        let reply = state
            .send(
                Method::POST,
                &pods_path,
                Some("application/json"),
                Some(&pod),
            )
            .await;
        if !reply.ok() {
            tracing::debug!(pod_name, status = %reply.status, "stand-in controller: pod create failed");
        }
    }

    let ready = !never_ready || replicas == 0;
    let revision = format!("{name}-{hash}");
    let status = match (kind, ready) {
        ("Deployment", true) => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "True", "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{name}\" has successfully progressed.")),
            ],
        }),
        ("Deployment", false) => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "unavailableReplicas": replicas,
            "conditions": [
                condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
                condition("Progressing", "True", "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{name}\" is progressing.")),
            ],
        }),
        (_, true) => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }),
        (_, false) => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": 0,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }),
    };
    let reply = state.put_status(&path, &status).await;
    if !reply.ok() {
        tracing::debug!(%path, status = %reply.status, "stand-in controller: status update failed");
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let t = now();
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": t, "lastTransitionTime": t,
    })
}

struct PodSpec<'a> {
    namespace: &'a str,
    pod_name: &'a str,
    index: usize,
    kind: &'a str,
    owner: &'a str,
    uid: &'a str,
    template: &'a Value,
    hash: &'a str,
    ready: bool,
    node: Option<&'a str>,
    ip: &'a str,
}

fn pod_for(p: PodSpec<'_>) -> Value {
    let mut labels = p.template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if p.kind == "StatefulSet" {
        labels.insert(
            "statefulset.kubernetes.io/pod-name".into(),
            json!(p.pod_name),
        );
        labels.insert(
            "apps.kubernetes.io/pod-index".into(),
            json!(p.index.to_string()),
        );
        labels.insert(
            "controller-revision-hash".into(),
            json!(format!("{}-{}", p.owner, p.hash)),
        );
    } else {
        labels.insert("pod-template-hash".into(), json!(p.hash));
    }
    let mut annotations = p.template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(TEMPLATE_HASH_ANNOTATION.into(), json!(p.hash));
    let mut spec = p.template["spec"].clone();
    if !spec.is_object() {
        spec = json!({ "containers": [] });
    }
    if let Some(node) = p.node {
        spec["nodeName"] = json!(node);
    }
    let status = pod_status(&spec, p.ready, p.ip);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.pod_name,
            "namespace": p.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": p.kind, "name": p.owner, "uid": p.uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": status,
    })
}

/// A Pod's status: Running and Ready, or Pending with its containers still being created.
fn pod_status(spec: &Value, ready: bool, ip: &str) -> Value {
    let t = now();
    let containers: Vec<(String, String)> = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|(name, image)| {
            let state = if ready {
                json!({ "running": { "startedAt": t } })
            } else {
                json!({ "waiting": { "reason": "ContainerCreating" } })
            };
            json!({
                "name": name, "image": image,
                "imageID": if ready { format!("fake://{image}") } else { String::new() },
                "containerID": if ready { format!("fake://{name}") } else { String::new() },
                "ready": ready, "started": ready, "restartCount": 0, "state": state,
            })
        })
        .collect();
    let flag = if ready { "True" } else { "False" };
    let cond = |kind: &str, status: &str| {
        let mut c = json!({ "type": kind, "status": status, "lastTransitionTime": t });
        if status == "False" {
            let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
        c
    };
    let mut status = json!({
        "phase": if ready { "Running" } else { "Pending" },
        "hostIP": "127.0.0.1",
        "hostIPs": [{ "ip": "127.0.0.1" }],
        "startTime": t,
        "qosClass": "BestEffort",
        "conditions": [
            cond("PodReadyToStartContainers", flag),
            cond("Initialized", "True"),
            cond("Ready", flag),
            cond("ContainersReady", flag),
            cond("PodScheduled", "True"),
        ],
        "containerStatuses": statuses,
    });
    if ready {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_fill_what_is_missing() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
        service_defaults(&mut svc, &mut || "10.96.0.7".parse().unwrap());
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.96.0.7"]));
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");

        let mut headless = json!({"spec": {"clusterIP": "None"}});
        service_defaults(&mut headless, &mut || unreachable!());
        assert_eq!(headless["spec"]["clusterIP"], "None");

        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        service_defaults(&mut external, &mut || unreachable!());
        assert!(external["spec"]["clusterIP"].is_null());
    }

    #[test]
    fn namespace_defaults_label_and_phase() {
        let mut ns = json!({"metadata": {"name": "grid-order-1", "labels": {"a": "b"}}});
        namespace_defaults(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "grid-order-1"
        );
        assert_eq!(ns["metadata"]["labels"]["a"], "b");
        assert_eq!(ns["status"]["phase"], "Active");
    }
}
