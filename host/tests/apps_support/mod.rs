//! A whole node for deploy and Process tests: anvil with the Market, the fake Kubernetes
//! API server over HTTP (Services get 127.0.0.1, so entrances reach apps on loopback), a
//! gateway configured with both, a user with an accepted order and a session, a file
//! server for manifests and a real app to deploy.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grid_cluster::ClusterConfig;
use grid_fake_cluster::{FakeCluster, FakeOptions};
use grid_gateway::gateway::Gateway;
use grid_gateway::orders::Hooks;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::node_support::*;

/// What the file server answers for one path.
#[derive(Clone)]
pub enum Served {
    /// 200 with this body.
    Body(Vec<u8>),
    /// A redirect to this location.
    Redirect(String),
}

/// A loopback HTTP server serving manifests by path.
#[derive(Clone)]
pub struct Files {
    pub base: String,
    files: Arc<Mutex<HashMap<String, Served>>>,
}

impl Files {
    pub async fn start() -> Files {
        let files: Arc<Mutex<HashMap<String, Served>>> = Arc::default();
        let app = axum::Router::new()
            .fallback(serve_file)
            .with_state(files.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Files { base, files }
    }

    /// Serves `body` at `/name`; returns its URL.
    pub fn put(&self, name: &str, body: impl Into<Vec<u8>>) -> String {
        self.files
            .lock()
            .unwrap()
            .insert(format!("/{name}"), Served::Body(body.into()));
        format!("{}/{name}", self.base)
    }

    /// Redirects `/name` to `location`; returns its URL.
    pub fn redirect(&self, name: &str, location: &str) -> String {
        self.files
            .lock()
            .unwrap()
            .insert(format!("/{name}"), Served::Redirect(location.into()));
        format!("{}/{name}", self.base)
    }
}

async fn serve_file(
    State(files): State<Arc<Mutex<HashMap<String, Served>>>>,
    request: Request<Body>,
) -> Response {
    let served = files.lock().unwrap().get(request.uri().path()).cloned();
    match served {
        Some(Served::Body(body)) => (StatusCode::OK, body).into_response(),
        Some(Served::Redirect(to)) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A real app on loopback: answers `app <name>: <method> <path>` and echoes the request
/// headers it received as JSON under `/headers`.
pub async fn start_app(name: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move |request: Request<Body>| async move {
        if request.uri().path() == "/headers" {
            let headers: serde_json::Map<String, Value> = request
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        Value::String(v.to_str().unwrap_or("").to_owned()),
                    )
                })
                .collect();
            return axum::Json(Value::Object(headers)).into_response();
        }
        format!(
            "app {name}: {} {}",
            request.method(),
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        )
        .into_response()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A Deployment + Service manifest whose Service listens on `port` (so the fake's
/// 127.0.0.1 cluster IP plus `port` is the app on loopback).
pub fn manifest(port: u16, cpu: &str, memory: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0
          ports: [{{containerPort: {port}}}]
          resources:
            requests: {{cpu: "{cpu}", memory: "{memory}"}}
            limits: {{cpu: "{cpu}", memory: "{memory}"}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports: [{{port: {port}, targetPort: {port}}}]
"#
    )
}

/// The cluster settings of the test nodes: the fake's kubeconfig, cluster-IP entrances,
/// fast polling, loopback manifests allowed when `allow_loopback`.
pub fn cluster_config(kubeconfig: &Path, allow_loopback: bool) -> ClusterConfig {
    let mut config = ClusterConfig {
        kubeconfig: Some(kubeconfig.to_owned()),
        entrance: grid_cluster::config::EntranceMode::ClusterIp,
        ready_poll_ms: 20,
        ready_timeout_secs: 3,
        capacity_from_nodes: false,
        // Tests run sweeps themselves.
        sweep_interval_secs: 3600,
        api_timeout_ms: 2_000,
        ..ClusterConfig::default()
    };
    if allow_loopback {
        config.fetch.allow_cidrs = vec!["127.0.0.1/32".parse().unwrap()];
    }
    config
}

/// A whole node with a signed-in user who owns an accepted order.
pub struct Node {
    pub chain: Chain,
    pub fake: FakeCluster,
    pub gw: Arc<Gateway>,
    pub dir: tempfile::TempDir,
    pub files: Files,
    /// The user's accepted order.
    pub order: String,
    /// The user's session cookie (`name=value`).
    pub cookie: String,
}

impl Node {
    /// A node; `allow_loopback` lets manifests come from the local file server.
    pub async fn start(allow_loopback: bool) -> Node {
        Node::start_with(allow_loopback, |_| {}).await
    }

    /// [`Node::start`] with a change to the gateway's config.
    pub async fn start_with(
        allow_loopback: bool,
        change: impl FnOnce(&mut grid_gateway::config::Config),
    ) -> Node {
        let chain = Chain::start().await;
        let fake = FakeCluster::start(FakeOptions {
            service_ip: Some([127, 0, 0, 1].into()),
            ..FakeOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let gw = Node::gateway_with(&chain, &fake, dir.path(), allow_loopback, change).await;
        let order = good_order(&chain).await;
        let accept = post(&gw, &format!("/_grid/v1/orders/{order}/accept"), json!({})).await;
        assert_eq!(accept.status, 200, "{}", accept.json);
        let cookie = sign_in(&gw, USER_KEY).await;
        Node {
            chain,
            fake,
            gw,
            dir,
            files: Files::start().await,
            order,
            cookie,
        }
    }

    /// A gateway on this chain and fake with its data in `root`.
    pub async fn gateway_in(
        chain: &Chain,
        fake: &FakeCluster,
        root: &Path,
        allow_loopback: bool,
    ) -> Arc<Gateway> {
        Node::gateway_with(chain, fake, root, allow_loopback, |_| {}).await
    }

    async fn gateway_with(
        chain: &Chain,
        fake: &FakeCluster,
        root: &Path,
        allow_loopback: bool,
        change: impl FnOnce(&mut grid_gateway::config::Config),
    ) -> Arc<Gateway> {
        let kubeconfig = root.join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig).unwrap();
        let mut config = config(root, &chain.anvil.url, chain.deployment.market);
        config.cluster = Some(cluster_config(&kubeconfig, allow_loopback));
        change(&mut config);
        gateway(config, Hooks::default()).await
    }

    /// `POST /_grid/v1/apps` as `cookie`.
    pub async fn deploy_as(&self, cookie: &str, order: &str, url: &str) -> Reply {
        send(
            &self.gw,
            Request::post("/_grid/v1/apps")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"order_id": order, "manifest_url": url}).to_string(),
                ))
                .unwrap(),
        )
        .await
    }

    /// Deploys `body` as the user to their order.
    pub async fn deploy(&self, body: &str) -> Reply {
        let url = self.files.put(&format!("m{}.yaml", rand_suffix()), body);
        self.deploy_as(&self.cookie, &self.order, &url).await
    }

    /// `GET /_grid/v1/apps/{order}` as the user.
    pub async fn app_status(&self) -> Reply {
        self.app_status_as(&self.cookie, &self.order).await
    }

    /// `GET /_grid/v1/apps/{order}` as `cookie`.
    pub async fn app_status_as(&self, cookie: &str, order: &str) -> Reply {
        send(
            &self.gw,
            Request::get(format!("/_grid/v1/apps/{order}"))
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A request as the user.
    pub async fn call(&self, method: &str, path: &str) -> Reply {
        send(
            &self.gw,
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::COOKIE, &self.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Polls the app's status until it is no longer `deploying`.
    pub async fn settled(&self) -> Reply {
        for _ in 0..300 {
            let reply = self.app_status().await;
            if reply.json["status"] != "deploying" {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the deploy did not settle");
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A second user with their own accepted order and session on `node`.
pub async fn second_user(node: &Node) -> (String, String) {
    node.chain.fund(STRANGER_KEY).await;
    let order = node
        .chain
        .create_order_by(
            STRANGER_KEY,
            address(PROVIDER_KEY),
            address(PAYEE_KEY),
            crate::node_support::chain::resources(""),
            3600,
            PRICE_1H,
        )
        .await
        .to_string();
    let accept = post(
        &node.gw,
        &format!("/_grid/v1/orders/{order}/accept"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    (order, sign_in(&node.gw, STRANGER_KEY).await)
}

/// Signs `key` in; returns the session cookie.
pub async fn sign_in(gw: &Arc<Gateway>, key: &str) -> String {
    let message = Siwe::new(address(key), &nonce(gw).await).text();
    let reply = login(gw, key, &message).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.session_cookie()
}
