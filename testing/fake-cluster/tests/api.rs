//! The fake through a `kube::Client` over real HTTP, as grid-gateway uses it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use grid_fake_cluster::{FakeCluster, FakeNode, FakeOptions, Fault};
use http::Method;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, Node, PersistentVolumeClaim, Pod, ResourceQuota, Secret,
    Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const MANAGER: &str = "grid-gateway";

async fn start() -> FakeCluster {
    FakeCluster::start(FakeOptions::default()).await.unwrap()
}

fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

fn apply() -> PatchParams {
    PatchParams::apply(MANAGER)
}

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    obj(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, "tier": "web" } },
                "spec": { "containers": [{ "name": "main", "image": image }] },
            },
        },
    }))
}

fn namespace(name: &str, labels: Value) -> Namespace {
    obj(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": labels },
    }))
}

async fn make_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.patch(name, &apply(), &Patch::Apply(namespace(name, json!({}))))
        .await
        .unwrap();
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_with_the_field_manager() {
    let cluster = start().await;
    let client = cluster.client();
    make_namespace(&client, "grid-order-1").await;
    let api: Api<Deployment> = Api::namespaced(client, "grid-order-1");

    let created = api
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", "nginx:1", 1)),
        )
        .await
        .unwrap();
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(
        managers,
        vec![(Some(MANAGER.to_string()), Some("Apply".to_string()))]
    );
    let first_rv = created.metadata.resource_version.clone().unwrap();

    let updated = api
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", "nginx:2", 2)),
        )
        .await
        .unwrap();
    assert_ne!(updated.metadata.resource_version.unwrap(), first_rv);
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    let spec = updated.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:2")
    );
    let stored = api.get("web").await.unwrap();
    assert_eq!(
        stored.metadata.managed_fields.unwrap()[0]
            .manager
            .as_deref(),
        Some(MANAGER)
    );

    // The request log shows the field manager on the wire.
    assert!(cluster.requests().iter().any(|(m, p)| *m == Method::PATCH
        && p.contains("/deployments/web")
        && p.contains("fieldManager=grid-gateway")));
}

#[tokio::test]
async fn apply_removes_fields_the_manager_no_longer_applies() {
    let cluster = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let cm = |data: Value| -> ConfigMap {
        obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}),
        )
    };
    api.patch(
        "cfg",
        &apply(),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    // Another manager owns "c".
    api.patch(
        "cfg",
        &PatchParams::apply("someone-else"),
        &Patch::Apply(cm(json!({"c": "3"}))),
    )
    .await
    .unwrap();
    let after = api
        .patch("cfg", &apply(), &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert!(
        !data.contains_key("b"),
        "b was applied by grid-gateway before and is gone now"
    );
    assert_eq!(data.get("c").map(String::as_str), Some("3"));
    let stored = api.get("cfg").await.unwrap().data.unwrap();
    assert!(!stored.contains_key("b"));
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let cluster = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let cm: ConfigMap = obj(json!({"metadata": {"name": "cm"}, "data": {"k": "v1"}}));
    let created = api.create(&PostParams::default(), &cm).await.unwrap();

    let mut first = created.clone();
    first.data = Some([("k".to_string(), "v2".to_string())].into());
    api.replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();

    let mut stale = created;
    stale.data = Some([("k".to_string(), "v3".to_string())].into());
    let err = api
        .replace("cm", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (409, "Conflict".to_string()));

    // Creating it again is a conflict too.
    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert_eq!(api_error(err), (409, "AlreadyExists".to_string()));
}

#[tokio::test]
async fn missing_objects_and_namespaces_are_404() {
    let cluster = start().await;
    let client = cluster.client();
    let err = Api::<Deployment>::default_namespaced(client.clone())
        .get("nothing")
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (404, "NotFound".to_string()));
    let err = Api::<Namespace>::all(client.clone())
        .get("grid-order-404")
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!()
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"grid-order-404\" not found");
    // Writing into a namespace that does not exist is refused, as by a real API server.
    let err = Api::<ConfigMap>::namespaced(client, "grid-order-404")
        .patch(
            "cm",
            &apply(),
            &Patch::Apply(obj::<ConfigMap>(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
            )),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (404, "NotFound".to_string()));
}

#[tokio::test]
async fn dry_run_validates_without_persisting() {
    let cluster = start().await;
    let client = cluster.client();
    make_namespace(&client, "grid-order-2").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "grid-order-2");
    cluster.clear_requests();

    let would_be = api
        .patch(
            "web",
            &apply().dry_run(),
            &Patch::Apply(deployment("web", "nginx:1", 1)),
        )
        .await
        .unwrap();
    assert_eq!(would_be.metadata.name.as_deref(), Some("web"));
    assert!(would_be.metadata.uid.is_some());
    assert_eq!(
        api_error(api.get("web").await.unwrap_err()),
        (404, "NotFound".to_string())
    );
    // No controller ran for the dry run: no pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "grid-order-2");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The real apply, then a dry-run change that is not kept.
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", "nginx:1", 1)),
    )
    .await
    .unwrap();
    let before = api.get("web").await.unwrap();
    let would_be = api
        .patch(
            "web",
            &apply().dry_run(),
            &Patch::Apply(deployment("web", "nginx:9", 3)),
        )
        .await
        .unwrap();
    assert_eq!(would_be.spec.unwrap().replicas, Some(3));
    let after = api.get("web").await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(1));
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // Dry-run create, replace and delete do not persist either.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "grid-order-2");
    let cm: ConfigMap = obj(json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}));
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm).await.unwrap();
    assert!(cms.get_opt("cm").await.unwrap().is_none());
    api.delete(
        "web",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(api.get_opt("web").await.unwrap().is_some());

    // A dry run still validates: a Service name must be a DNS-1035 label.
    let services: Api<Service> = Api::namespaced(client, "grid-order-2");
    let bad: Service =
        obj(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "9web"}}));
    let err = services
        .patch("9web", &apply().dry_run(), &Patch::Apply(bad))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "Invalid".to_string()));

    // The log shows the dry run before the real apply.
    let log = cluster.requests();
    let position = |dry: bool| {
        log.iter()
            .position(|(m, p)| {
                *m == Method::PATCH
                    && p.contains("/deployments/web")
                    && p.contains("dryRun=All") == dry
            })
            .unwrap()
    };
    assert!(position(true) < position(false));
}

#[tokio::test]
async fn deployment_becomes_available_and_gets_a_pod() {
    let cluster = start().await;
    let client = cluster.client();
    make_namespace(&client, "grid-order-3").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "grid-order-3");
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", "nginx:1", 2)),
    )
    .await
    .unwrap();

    let d = api.get("web").await.unwrap();
    let status = d.status.unwrap();
    assert_eq!(status.observed_generation, d.metadata.generation);
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    let available = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "True");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "grid-order-3");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["web-0", "web-1"]);
    let pod = &list.items[0];
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["tier"], "web");
    let pod_status = pod.status.as_ref().unwrap();
    assert_eq!(pod_status.phase.as_deref(), Some("Running"));
    assert!(
        pod_status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );

    // Scaling down removes pods; re-applying keeps the deployment available.
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", "nginx:1", 1)),
    )
    .await
    .unwrap();
    let d = api.get("web").await.unwrap();
    assert_eq!(
        d.status.as_ref().unwrap().observed_generation,
        d.metadata.generation
    );
    assert_eq!(d.status.unwrap().available_replicas, Some(1));
    let names: Vec<_> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names, vec!["web-0"]);

    // Deleting the deployment deletes its pods (owner references).
    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn statefulset_becomes_ready() {
    let cluster = start().await;
    let client = cluster.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let sts: StatefulSet = obj(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": { "name": "db" },
        "spec": {
            "replicas": 1, "serviceName": "db",
            "selector": { "matchLabels": { "app": "db" } },
            "template": {
                "metadata": { "labels": { "app": "db" } },
                "spec": { "containers": [{ "name": "pg", "image": "postgres:16" }] },
            },
        },
    }));
    api.patch("db", &apply(), &Patch::Apply(sts)).await.unwrap();
    let status = api.get("db").await.unwrap().status.unwrap();
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(status.replicas, 1);
    let pod = Api::<Pod>::default_namespaced(client)
        .get("db-0")
        .await
        .unwrap();
    assert_eq!(
        pod.metadata.labels.unwrap()["statefulset.kubernetes.io/pod-name"],
        "db-0"
    );
}

#[tokio::test]
async fn never_ready_stays_unavailable() {
    let cluster = start().await;
    let client = cluster.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let mut d = deployment("slow", "nginx:1", 1);
    d.metadata.annotations =
        Some([("grid.test/never-ready".to_string(), "true".to_string())].into());
    api.patch("slow", &apply(), &Patch::Apply(d)).await.unwrap();

    let status = api.get("slow").await.unwrap().status.unwrap();
    assert_eq!(status.available_replicas.unwrap_or(0), 0);
    assert_eq!(status.ready_replicas.unwrap_or(0), 0);
    assert_eq!(status.unavailable_replicas, Some(1));
    let available = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "False");

    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = pods.get("slow-0").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    // Its container never started, so there are no logs, as on a real cluster.
    let err = pods
        .logs("slow-0", &LogParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 400);
}

#[tokio::test]
async fn services_get_the_configured_ip() {
    let cluster = FakeCluster::start(FakeOptions {
        service_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ..Default::default()
    })
    .await
    .unwrap();
    let api: Api<Service> = Api::default_namespaced(cluster.client());
    let svc: Service = obj(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "port": 8080 }] },
    }));
    let applied = api
        .patch("web", &apply(), &Patch::Apply(svc))
        .await
        .unwrap();
    let spec = applied.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(spec.cluster_ips, Some(vec!["127.0.0.1".to_string()]));
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let stored = api.get("web").await.unwrap().spec.unwrap();
    assert_eq!(stored.cluster_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn services_get_sequential_fake_ips_by_default() {
    let cluster = start().await;
    let api: Api<Service> = Api::default_namespaced(cluster.client());
    let mut ips = Vec::new();
    for name in ["a", "b"] {
        let svc: Service = obj(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
            "spec": { "ports": [{ "port": 80 }] },
        }));
        api.patch(name, &apply(), &Patch::Apply(svc.clone()))
            .await
            .unwrap();
        // Re-applying keeps the IP.
        let again = api.patch(name, &apply(), &Patch::Apply(svc)).await.unwrap();
        ips.push(again.spec.unwrap().cluster_ip.unwrap());
    }
    assert_eq!(ips, vec!["10.96.0.1", "10.96.0.2"]);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let cluster = start().await;
    let client = cluster.client();
    make_namespace(&client, "grid-order-4").await;
    make_namespace(&client, "grid-order-5").await;
    for ns in ["grid-order-4", "grid-order-5"] {
        Api::<Deployment>::namespaced(client.clone(), ns)
            .patch(
                "web",
                &apply(),
                &Patch::Apply(deployment("web", "nginx:1", 1)),
            )
            .await
            .unwrap();
        let cm: ConfigMap =
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}));
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .patch("cfg", &apply(), &Patch::Apply(cm))
            .await
            .unwrap();
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deleted = namespaces
        .delete("grid-order-4", &DeleteParams::default())
        .await
        .unwrap();
    let ns = deleted
        .left()
        .expect("the namespace as it is being deleted");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));

    assert!(namespaces.get_opt("grid-order-4").await.unwrap().is_none());
    for (ns, expected) in [("grid-order-4", 0), ("grid-order-5", 1)] {
        let deployments = Api::<Deployment>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        let cms = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(
            (deployments.items.len(), cms.items.len(), pods.items.len()),
            (expected, expected, expected),
            "{ns}"
        );
    }
}

#[tokio::test]
async fn namespaces_are_listed_by_label() {
    let cluster = start().await;
    let client = cluster.client();
    let api: Api<Namespace> = Api::all(client.clone());
    for (name, managed) in [
        ("grid-order-7", true),
        ("grid-order-8", true),
        ("other", false),
    ] {
        let labels = if managed {
            json!({"app.kubernetes.io/managed-by": "grid-gateway", "grid.dev/order-id": name.trim_start_matches("grid-order-")})
        } else {
            json!({"team": "x"})
        };
        api.patch(name, &apply(), &Patch::Apply(namespace(name, labels)))
            .await
            .unwrap();
    }
    let managed = api
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=grid-gateway"))
        .await
        .unwrap();
    let names: Vec<_> = managed
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["grid-order-7", "grid-order-8"]);
    let ns = &managed.items[0];
    assert_eq!(ns.metadata.namespace, None);
    assert_eq!(ns.status.as_ref().unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        ns.metadata.labels.as_ref().unwrap()["kubernetes.io/metadata.name"],
        "grid-order-7"
    );
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        all.items.len(),
        4 + 3,
        "the four built-in namespaces and ours"
    );

    // Pages.
    let page = api.list(&ListParams::default().limit(5)).await.unwrap();
    assert_eq!(page.items.len(), 5);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = api
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.metadata.continue_.is_none());
}

async fn running_pod(cluster: &FakeCluster) -> Api<Pod> {
    let client = cluster.client();
    make_namespace(&client, "grid-order-9").await;
    Api::<Deployment>::namespaced(client.clone(), "grid-order-9")
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", "nginx:1", 1)),
        )
        .await
        .unwrap();
    Api::namespaced(client, "grid-order-9")
}

#[tokio::test]
async fn logs_honour_tail_lines() {
    let cluster = start().await;
    let pods = running_pod(&cluster).await;
    let all = pods.logs("web-0", &LogParams::default()).await.unwrap();
    assert_eq!(all.lines().count(), 10);
    let tail = pods
        .logs(
            "web-0",
            &LogParams {
                tail_lines: Some(3),
                container: Some("main".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lines: Vec<_> = tail.lines().collect();
    assert_eq!(
        lines,
        vec![
            "fake log line 8 from grid-order-9/web-0",
            "fake log line 9 from grid-order-9/web-0",
            "fake log line 10 from grid-order-9/web-0",
        ]
    );
    let err = pods
        .logs(
            "web-0",
            &LogParams {
                container: Some("sidecar".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 400);
    let err = pods
        .logs("nope-0", &LogParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (404, "NotFound".to_string()));
}

#[tokio::test]
async fn logs_follow_streams_until_dropped() {
    let cluster = start().await;
    let pods = running_pod(&cluster).await;
    let stream = pods
        .log_stream(
            "web-0",
            &LogParams {
                follow: true,
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut lines = Box::pin(stream.lines());
    let first = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, "fake log line 10 from grid-order-9/web-0");
    // The next line is new: it only exists because the stream follows.
    let second = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second, "fake log line 11 from grid-order-9/web-0");
    drop(lines);
    // The server is still fine after the client went away.
    assert_eq!(
        pods.get("web-0").await.unwrap().metadata.name.as_deref(),
        Some("web-0")
    );
}

#[tokio::test]
async fn fail_next_injects_errors_once() {
    let cluster = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let cm: ConfigMap =
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}));
    api.patch("cm", &apply(), &Patch::Apply(cm.clone()))
        .await
        .unwrap();

    cluster.fail_next(Fault::new("/configmaps/cm", 500, "InternalError").method(Method::GET));
    let err = api.get("cm").await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!()
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    assert!(status.message.contains("injected"));
    api.get("cm").await.unwrap();

    cluster.fail_next(Fault {
        method: Some(Method::PATCH),
        path_contains: "configmaps/cm".into(),
        status: 409,
        reason: "Conflict".into(),
        times: 1,
    });
    // A GET does not match the PATCH fault.
    api.get("cm").await.unwrap();
    let err = api
        .patch("cm", &apply(), &Patch::Apply(cm.clone()))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (409, "Conflict".to_string()));
    api.patch("cm", &apply(), &Patch::Apply(cm)).await.unwrap();

    // Faulted requests are in the log too.
    let patches = cluster
        .requests()
        .into_iter()
        .filter(|(m, p)| *m == Method::PATCH && p.contains("configmaps/cm"))
        .count();
    assert_eq!(patches, 3);
}

#[tokio::test]
async fn after_shutdown_the_server_is_unreachable() {
    let cluster = start().await;
    let client = cluster.client();
    let api: Api<Namespace> = Api::all(client);
    api.get("default").await.unwrap();
    let addr = cluster.addr();
    cluster.shutdown().await;
    let err = api.get("default").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "expected a connection error, got {err:?}"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The in-memory client still reads the state.
    Api::<Namespace>::all(cluster.in_memory())
        .get("default")
        .await
        .unwrap();
}

#[tokio::test]
async fn nodes_have_allocatable_capacity() {
    let cluster = FakeCluster::start(FakeOptions {
        nodes: vec![
            FakeNode::named("n1"),
            FakeNode {
                name: "gpu-1".into(),
                cpu: "32".into(),
                memory: "256Gi".into(),
                ephemeral_storage: "2Ti".into(),
                gpu: 4,
                labels: vec![("gpu".into(), "a100".into())],
            },
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let nodes = Api::<Node>::all(cluster.client())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 2);
    let gpu = nodes
        .items
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("gpu-1"))
        .unwrap();
    let allocatable = gpu.status.as_ref().unwrap().allocatable.as_ref().unwrap();
    assert_eq!(allocatable["cpu"].0, "32");
    assert_eq!(allocatable["memory"].0, "256Gi");
    assert_eq!(allocatable["ephemeral-storage"].0, "2Ti");
    assert_eq!(allocatable["nvidia.com/gpu"].0, "4");
    let n1 = nodes
        .items
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("n1"))
        .unwrap();
    let allocatable = n1.status.as_ref().unwrap().allocatable.as_ref().unwrap();
    assert_eq!(allocatable["cpu"].0, "8");
    assert!(!allocatable.contains_key("nvidia.com/gpu"));
}

#[tokio::test]
async fn the_kubeconfig_file_loads_and_works() {
    let cluster = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        cluster.url()
    );
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn every_kind_the_gateway_writes_round_trips() {
    let cluster = start().await;
    let client = cluster.client();
    let ns = "grid-order-10";
    make_namespace(&client, ns).await;

    let quota: ResourceQuota = obj(json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "order"},
        "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"}},
    }));
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), ns)
        .patch("order", &apply(), &Patch::Apply(quota))
        .await
        .unwrap();
    assert_eq!(quota.status.unwrap().hard.unwrap()["requests.cpu"].0, "2");

    let limits: LimitRange = obj(json!({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "order"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]},
    }));
    Api::<LimitRange>::namespaced(client.clone(), ns)
        .patch("order", &apply(), &Patch::Apply(limits))
        .await
        .unwrap();

    let policy: NetworkPolicy = obj(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }));
    Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .patch("deny-all", &apply(), &Patch::Apply(policy))
        .await
        .unwrap();

    let secret: Secret = obj(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"password": "x"}, "type": "Opaque",
    }));
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch("creds", &apply(), &Patch::Apply(secret))
        .await
        .unwrap();

    let pvc: PersistentVolumeClaim = obj(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }));
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .patch("data", &apply(), &Patch::Apply(pvc))
        .await
        .unwrap();
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get("data")
        .await
        .unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));

    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(policies.items.len(), 1);
    assert_eq!(
        Api::<LimitRange>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // The in-memory client sees the same objects and is not in the request log.
    let before = cluster.requests().len();
    let secret = Api::<Secret>::namespaced(cluster.in_memory(), ns)
        .get("creds")
        .await
        .unwrap();
    assert_eq!(secret.metadata.name.as_deref(), Some("creds"));
    assert_eq!(cluster.requests().len(), before);
}

#[tokio::test]
async fn the_api_server_checks_bodies_and_names() {
    let cluster = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    // Name on the URL and in the body differ.
    let cm: ConfigMap =
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}));
    let err = api
        .patch("b", &apply(), &Patch::Apply(cm))
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 400);
    // Not a DNS subdomain.
    let cm: ConfigMap = obj(json!({"metadata": {"name": "Not_Valid"}}));
    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert_eq!(api_error(err), (422, "Invalid".to_string()));
    // generateName.
    let cm: ConfigMap = obj(json!({"metadata": {"generateName": "gen-"}}));
    let made = api.create(&PostParams::default(), &cm).await.unwrap();
    assert!(made.metadata.name.unwrap().starts_with("gen-"));
}

#[tokio::test]
async fn watches_are_refused_and_discovery_answers() {
    let cluster = start().await;
    let client = cluster.client();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let refused = match api.watch(&kube::api::WatchParams::default(), "0").await {
        Err(e) => e,
        Ok(stream) => {
            let mut stream = std::pin::pin!(stream);
            match stream.next().await {
                Some(Err(e)) => e,
                other => panic!("expected the watch to fail, got {other:?}"),
            }
        }
    };
    assert_eq!(api_error(refused).0, 405);

    let groups: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList =
        client.list_api_groups().await.unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "apps"));
    assert!(groups.groups.iter().any(|g| g.name == "networking.k8s.io"));
    let core = client.list_core_api_resources("v1").await.unwrap();
    let ns = core
        .resources
        .iter()
        .find(|r| r.name == "namespaces")
        .unwrap();
    assert!(!ns.namespaced);
    assert!(core.resources.iter().any(|r| r.name == "pods/log"));
    let apps = client.list_api_group_resources("apps/v1").await.unwrap();
    assert!(apps.resources.iter().any(|r| r.name == "deployments"));
}

#[tokio::test]
async fn a_controller_delay_reports_availability_later() {
    let cluster = FakeCluster::start(FakeOptions {
        controller_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .unwrap();
    let api: Api<Deployment> = Api::default_namespaced(cluster.client());
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", "nginx:1", 1)),
    )
    .await
    .unwrap();
    let now = api.get("web").await.unwrap();
    assert!(now.status.is_none(), "not observed yet");
    let mut ready = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let d = api.get("web").await.unwrap();
        if d.status.and_then(|s| s.available_replicas) == Some(1) {
            ready = true;
            break;
        }
    }
    assert!(ready);
}

#[tokio::test]
async fn pods_can_be_found_by_the_workload_selector_across_kinds() {
    // What the gateway does for logs: list pods by the Deployment's selector.
    let cluster = start().await;
    let client = cluster.client();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .patch(
            "api",
            &apply(),
            &Patch::Apply(deployment("api", "app:1", 1)),
        )
        .await
        .unwrap();
    deployments
        .patch(
            "other",
            &apply(),
            &Patch::Apply(deployment("other", "app:1", 1)),
        )
        .await
        .unwrap();
    let d = deployments.get("api").await.unwrap();
    let selector = d.spec.unwrap().selector.match_labels.unwrap();
    let expr: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pods = Api::<Pod>::default_namespaced(client)
        .list(&ListParams::default().labels(&expr.join(",")))
        .await
        .unwrap();
    let names: Vec<_> = pods
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names, vec!["api-0"]);
}

#[tokio::test]
async fn shutdown_ends_a_followed_log_stream() {
    let cluster = start().await;
    let pods = running_pod(&cluster).await;
    let stream = pods
        .log_stream(
            "web-0",
            &LogParams {
                follow: true,
                tail_lines: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut lines = Box::pin(stream.lines());
    let first = lines.next().await.unwrap().unwrap();
    assert_eq!(first, "fake log line 11 from grid-order-9/web-0");
    cluster.shutdown().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match lines.next().await {
                Some(Ok(_)) => continue,
                other => return other.map(|r| r.is_ok()),
            }
        }
    })
    .await
    .expect("the stream ends when the server shuts down");
    assert_ne!(end, Some(true));
}

#[tokio::test]
async fn a_namespace_dry_run_is_not_kept_and_blocks_nothing() {
    let cluster = start().await;
    let client = cluster.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces
        .patch(
            "grid-order-11",
            &apply().dry_run(),
            &Patch::Apply(namespace(
                "grid-order-11",
                json!({"grid.dev/order-id": "11"}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("grid-order-11"));
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert!(namespaces.get_opt("grid-order-11").await.unwrap().is_none());
    // As on a real API server, a dry run of an object in that namespace fails until the
    // namespace really exists.
    let cm: ConfigMap =
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "grid-order-11");
    let err = cms
        .patch("cm", &apply().dry_run(), &Patch::Apply(cm.clone()))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (404, "NotFound".to_string()));
    make_namespace(&client, "grid-order-11").await;
    cms.patch("cm", &apply().dry_run(), &Patch::Apply(cm))
        .await
        .unwrap();
    assert!(cms.get_opt("cm").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let cluster = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let cm: ConfigMap = obj(json!({"metadata": {"name": "cm"}}));
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let err = api
        .delete(
            "cm",
            &DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid: Some("not-the-uid".into()),
                    resource_version: None,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (409, "Conflict".to_string()));
    api.delete(
        "cm",
        &DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: created.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(api.get_opt("cm").await.unwrap().is_none());
}

#[tokio::test]
async fn apply_conflicts_force_pods_and_deletecollection() {
    let cluster = start().await;
    let client = cluster.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = |v: &str| -> ConfigMap {
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared", "labels": {"group": "x"}}, "data": {"k": v}}))
    };
    cms.patch("shared", &apply(), &Patch::Apply(cm("1")))
        .await
        .unwrap();
    // Another manager applying the same field conflicts, unless it forces.
    let other = PatchParams::apply("other");
    let err = cms
        .patch("shared", &other, &Patch::Apply(cm("2")))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (409, "Conflict".to_string()));
    let forced = cms
        .patch("shared", &other.clone().force(), &Patch::Apply(cm("2")))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "2");

    // A Pod created directly runs.
    let pod: Pod = obj(
        json!({"metadata": {"name": "solo", "labels": {"group": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let solo = pods.get("solo").await.unwrap();
    assert_eq!(solo.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        pods.logs("solo", &LogParams::default())
            .await
            .unwrap()
            .lines()
            .count(),
        10
    );

    // deletecollection by label.
    let other_cm: ConfigMap = obj(json!({"metadata": {"name": "keep"}}));
    cms.create(&PostParams::default(), &other_cm).await.unwrap();
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("group=x"),
    )
    .await
    .unwrap();
    let left: Vec<_> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["keep"]);
}
