//! Deploy against a whole node: anvil for the chain, the fake Kubernetes API server over
//! HTTP, manifests from a loopback file server, a real app behind the entrance. Each
//! refusal a user can reach is checked by status and code.

mod apps_support;
mod node_support;

use apps_support::*;
use grid_fake_cluster::{FakeOptions, Fault};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use node_support::*;

/// Deploys the standard app (its Service on the port of a real app) and waits for it.
async fn deploy_app(node: &Node) -> std::net::SocketAddr {
    let app = start_app("web").await;
    let reply = node.deploy(&manifest(app.port(), "500m", "256Mi")).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    let settled = node.settled().await;
    assert_eq!(settled.json["status"], "available", "{}", settled.json);
    app
}

fn namespace(node: &Node) -> String {
    node.gw.apps.namespace_of(&node.order).unwrap()
}

async fn namespace_exists(node: &Node) -> bool {
    let api: Api<Namespace> = Api::all(node.fake.in_memory());
    api.get_opt(&namespace(node)).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_lands_in_the_orders_sandbox_and_its_app_answers_through_the_gateway() {
    let node = Node::start(true).await;
    let app = start_app("web").await;
    let reply = node.deploy(&manifest(app.port(), "500m", "256Mi")).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    assert_eq!(reply.json["status"], "deploying");
    assert_eq!(reply.json["namespace"], namespace(&node));

    let status = node.settled().await;
    assert_eq!(status.json["status"], "available", "{}", status.json);
    assert!(
        status.json["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "{}",
        status.json
    );

    // The sandbox, as the API server holds it.
    let client = node.fake.in_memory();
    let ns = namespace(&node);
    let namespace: Namespace = Api::all(client.clone()).get(&ns).await.unwrap();
    let labels = namespace.metadata.labels.unwrap();
    assert_eq!(labels["grid.dev/order-id"], node.order);
    assert_eq!(
        labels["grid.dev/user"],
        address(USER_KEY).to_string().to_lowercase()
    );
    assert_eq!(labels["app.kubernetes.io/managed-by"], "grid-gateway");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &ns)
        .list(&Default::default())
        .await
        .unwrap();
    let hard = quotas.items[0]
        .spec
        .as_ref()
        .unwrap()
        .hard
        .as_ref()
        .unwrap();
    assert_eq!(
        hard["requests.cpu"].0, "2000m",
        "the order's 2 cores: {hard:?}"
    );
    assert!(
        !Api::<LimitRange>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let deployment: Deployment = Api::namespaced(client.clone(), &ns)
        .get("web")
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));

    // Server-side apply with one field manager, each object dry-run before it was stored.
    let requests = node.fake.requests();
    let applies: Vec<&String> = requests
        .iter()
        .filter(|(m, p)| m == "PATCH" && p.contains("/deployments/web"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(applies.len(), 2, "{applies:?}");
    assert!(applies[0].contains("dryRun=All"), "{applies:?}");
    assert!(!applies[1].contains("dryRun"), "{applies:?}");
    assert!(
        applies
            .iter()
            .all(|p| p.contains("fieldManager=grid-gateway"))
    );

    // The entrance is recorded, and the app answers through the gateway.
    let record = node.gw.store.app(&node.order).unwrap().unwrap();
    assert_eq!(
        record.entrance.as_deref(),
        Some(format!("http://127.0.0.1:{}", app.port()).as_str())
    );
    let reply = node.call("GET", "/hello?x=1").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json, "app web: GET /hello?x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_urls_to_private_addresses_are_refused_by_default() {
    let node = Node::start(false).await;
    for url in [
        "http://127.0.0.1:9/app.yaml",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/app.yaml",
    ] {
        let reply = node.deploy_as(&node.cookie, &node.order, url).await;
        reply.assert_error(422, "manifest_address_refused");
    }
    let reply = node
        .deploy_as(&node.cookie, &node.order, "file:///etc/passwd")
        .await;
    reply.assert_error(422, "manifest_url_scheme");
    assert!(
        node.gw.store.app(&node.order).unwrap().is_none(),
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_private_address_and_an_oversized_manifest_are_refused() {
    let node = Node::start(true).await;
    let url = node
        .files
        .redirect("moved.yaml", "http://169.254.169.254/latest/meta-data/");
    let reply = node.deploy_as(&node.cookie, &node.order, &url).await;
    reply.assert_error(422, "manifest_address_refused");

    let big = format!("# {}\n", "x".repeat(2 << 20));
    let reply = node.deploy(&big).await;
    reply.assert_error(422, "manifest_too_large");
}

const PRIVILEGED: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{containerPort: 80}]
          securityContext: {privileged: true}
"#;

const HOST_PATH: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      volumes: [{name: root, hostPath: {path: /}}]
      containers:
        - name: web
          image: nginx
          ports: [{containerPort: 80}]
"#;

const HOST_NETWORK: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      containers:
        - name: web
          image: nginx
          ports: [{containerPort: 80}]
"#;

const NODE_PORT: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80}]
"#;

const CLUSTER_ROLE: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: takeover}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
"#;

const ROLE: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: ["secrets"], verbs: ["get"]}]
"#;

/// A billion-laughs document: a few hundred bytes that expand exponentially.
fn alias_bomb() -> String {
    let mut yaml = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_that_escape_the_sandbox_are_refused_with_their_own_code() {
    let node = Node::start(true).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("alias bomb", alias_bomb(), "manifest_budget_exceeded"),
        (
            "invalid yaml",
            "kind: [unclosed\n".into(),
            "manifest_invalid_yaml",
        ),
        (
            "cluster role",
            CLUSTER_ROLE.into(),
            "manifest_cluster_scoped",
        ),
        ("role", ROLE.into(), "manifest_kind_not_allowed"),
        ("privileged", PRIVILEGED.into(), "manifest_privileged"),
        ("hostPath", HOST_PATH.into(), "manifest_host_path"),
        (
            "hostNetwork",
            HOST_NETWORK.into(),
            "manifest_host_namespace",
        ),
        ("NodePort", NODE_PORT.into(), "manifest_service_type"),
        (
            "above the order",
            manifest(8080, "3", "256Mi"),
            "manifest_resources_exceeded",
        ),
    ];
    for (name, body, code) in cases {
        let reply = node.deploy(&body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, code),
            "{name}: {}",
            reply.json
        );
    }
    assert!(
        !namespace_exists(&node).await,
        "nothing reached the cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_orders_user_deploys_and_only_to_orders_accepted_here() {
    let node = Node::start(true).await;
    let url = node.files.put("app.yaml", manifest(8080, "500m", "256Mi"));

    // Another user with their own order here cannot deploy to this one.
    let (_, stranger) = second_user(&node).await;
    node.deploy_as(&stranger, &node.order, &url)
        .await
        .assert_error(403, "not_order_owner");
    let status = send(
        &node.gw,
        axum::http::Request::get(format!("/_grid/v1/apps/{}", node.order))
            .header("cookie", &stranger)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        status.status == 403 || status.status == 404,
        "{}",
        status.json
    );

    // An order created on chain but never accepted by this node.
    let unaccepted = good_order(&node.chain).await;
    node.deploy_as(&node.cookie, &unaccepted, &url)
        .await
        .assert_error(404, "order_not_accepted");

    // No session at all.
    let reply = send(
        &node.gw,
        axum::http::Request::post("/_grid/v1/apps")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                serde_json::json!({"order_id": node.order, "manifest_url": url}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    reply.assert_error(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_tears_the_app_down_and_its_route_goes() {
    let node = Node::start(true).await;
    deploy_app(&node).await;
    assert!(namespace_exists(&node).await);

    let reply = node
        .call("DELETE", &format!("/_grid/v1/apps/{}", node.order))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["status"], "deleted");
    assert_eq!(reply.json["code"], "deleted_by_user");
    assert!(!namespace_exists(&node).await);
    node.call("GET", "/hello")
        .await
        .assert_error(409, "app_not_available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_order_loses_its_app_at_the_next_sweep() {
    let node = Node::start(true).await;
    deploy_app(&node).await;
    // The order's time runs out: move its start back by its whole duration.
    let mut order = node.gw.store.order(&node.order).unwrap().unwrap();
    let started = order.order.start_time.unwrap();
    order.order.start_time = Some(started - order.order.duration_secs - 1);
    node.gw.store.put_order(&order).unwrap();

    let torn = node.gw.apps.lifecycle().sweep().await.unwrap();
    assert_eq!(torn, vec![node.order.clone()]);
    let status = node.app_status().await;
    assert_eq!(status.json["status"], "deleted");
    assert_eq!(status.json["code"], "order_expired");
    assert!(!namespace_exists(&node).await);
}

/// Deploys with `fault` injected and checks the deploy fails cleanly with `code`.
async fn fails_cleanly(node: &Node, code: &str) {
    let reply = node.deploy(&manifest(8080, "500m", "256Mi")).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    let status = node.settled().await;
    assert_eq!(status.json["status"], "failed", "{}", status.json);
    assert_eq!(status.json["code"], code, "{}", status.json);
    assert!(
        status.json["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        !namespace_exists(node).await,
        "nothing half-applied is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_end_in_a_clean_failure_with_a_reason() {
    let node = Node::start(true).await;
    node.fake
        .fail_next(Fault::new("/deployments/web", 409, "Conflict").method(http::Method::PATCH));
    fails_cleanly(&node, "cluster_conflict").await;
    node.fake
        .fail_next(Fault::new("/services/web", 500, "InternalError").method(http::Method::PATCH));
    fails_cleanly(&node, "cluster_server_error").await;

    // A workload that never becomes available fails at the deadline.
    let never = manifest(8080, "500m", "256Mi").replacen(
        "metadata:\n  name: web\n",
        "metadata:\n  name: web\n  annotations: {grid.test/never-ready: \"true\"}\n",
        1,
    );
    let reply = node.deploy(&never).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    let status = node.settled().await;
    assert_eq!(status.json["code"], "app_not_ready", "{}", status.json);
    assert!(!namespace_exists(&node).await);

    // The API server goes away.
    node.fake.shutdown().await;
    let reply = node.deploy(&manifest(8080, "500m", "256Mi")).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    let status = node.settled().await;
    assert_eq!(status.json["status"], "failed", "{}", status.json);
    assert_eq!(
        status.json["code"], "cluster_unreachable",
        "{}",
        status.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_the_app_are_served_with_tail() {
    let node = Node::start(true).await;
    deploy_app(&node).await;
    let reply = node
        .call("GET", &format!("/_grid/v1/apps/{}/logs?tail=3", node.order))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let text = reply.json.as_str().unwrap().to_owned();
    assert_eq!(text.lines().count(), 3, "{text}");
    node.call("GET", "/_grid/v1/apps/12345/logs")
        .await
        .assert_error(404, "app_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_deploys_are_503() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        config(dir.path(), &chain.anvil.url, chain.deployment.market),
        grid_gateway::orders::Hooks::default(),
    )
    .await;
    let order = good_order(&chain).await;
    post(
        &gw,
        &format!("/_grid/v1/orders/{order}/accept"),
        serde_json::json!({}),
    )
    .await;
    let cookie = sign_in(&gw, USER_KEY).await;
    let reply = send(
        &gw,
        axum::http::Request::post("/_grid/v1/apps")
            .header("cookie", cookie)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                serde_json::json!({"order_id": order, "manifest_url": "https://example.com/a.yaml"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    reply.assert_error(503, "cluster_not_configured");
    let _ = FakeOptions::default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_replaces_the_app_and_drops_what_the_new_manifest_left_out() {
    let node = Node::start(true).await;
    let first = start_app("first").await;
    let with_config = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{a: b}}\n",
        manifest(first.port(), "500m", "256Mi")
    );
    assert_eq!(node.deploy(&with_config).await.status, 202);
    assert_eq!(node.settled().await.json["status"], "available");
    assert_eq!(node.call("GET", "/").await.json, "app first: GET /");

    let second = start_app("second").await;
    assert_eq!(
        node.deploy(&manifest(second.port(), "500m", "256Mi"))
            .await
            .status,
        202
    );
    assert_eq!(node.settled().await.json["status"], "available");
    assert_eq!(node.call("GET", "/").await.json, "app second: GET /");
    let config_maps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
        node.fake.in_memory(),
        &namespace(&node),
    );
    assert!(
        config_maps.get_opt("settings").await.unwrap().is_none(),
        "pruned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_comes_from_the_clusters_nodes() {
    let node = Node::start_with(true, |config| {
        config.cluster.as_mut().unwrap().capacity_from_nodes = true;
    })
    .await;
    let status = get(&node.gw, "/_grid/v1/node").await;
    // The fake's one node: 8 CPUs, 32 GiB, 500 GiB (the config says 4 / 8 GiB / 100 GiB).
    assert_eq!(
        status.json["capacity"]["total"]["cpu_millis"], 8000,
        "{}",
        status.json
    );
    assert_eq!(
        status.json["capacity"]["total"]["memory_bytes"],
        32u64 << 30
    );
    assert_eq!(
        status.json["capacity"]["free"]["cpu_millis"], 6000,
        "the order holds 2 cores"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_policy_can_veto_a_deploy() {
    let node = Node::start_with(true, |config| {
        let dir = config.policy.dir.clone().unwrap();
        std::fs::write(
            dir.join("authorization.settings.json"),
            r#"{"deny_path_prefixes":["/_grid/v1/apps"]}"#,
        )
        .unwrap();
    })
    .await;
    let reply = node.deploy(&manifest(8080, "500m", "256Mi")).await;
    reply.assert_error(403, "request_denied");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/_grid/v1/apps")
    );
    assert!(node.gw.store.app(&node.order).unwrap().is_none());
}
