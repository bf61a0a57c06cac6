//! Process through a whole node on a real socket: routing from a session to its app,
//! isolation between users, what reaches the app, the per-request policy and its hot swap.

mod apps_support;
mod node_support;

use std::net::SocketAddr;
use std::time::Duration;

use apps_support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use node_support::*;
use serde_json::Value;

/// Serves the node's router on a loopback port, with the peer address as a real server has.
async fn listen(node: &Node) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = grid_gateway::http::router(node.gw.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (
                self.status,
                self.json()["error"]["code"].as_str().unwrap_or("")
            ),
            (status, code),
            "{}",
            self.text
        );
    }
}

async fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(addr, "GET", path, headers).await
}

async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = client
        .request(builder.body(Full::default()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Asks for a hand-off link at `path` with `headers`; returns its code.
async fn new_handoff_code(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let link = send(addr, "POST", path, headers).await;
    assert_eq!(link.status, 200, "{}", link.text);
    let url = link.json()["url"].as_str().unwrap().to_owned();
    let (_, code) = url.rsplit_once("grid_handoff=").unwrap();
    code.to_owned()
}

/// Deploys an app named `name` to `order` as `cookie` and waits until it is available.
async fn deploy_named(node: &Node, cookie: &str, order: &str, name: &'static str) {
    let app = start_app(name).await;
    let url = node.files.put(
        &format!("{name}.yaml"),
        manifest(app.port(), "500m", "256Mi"),
    );
    let reply = node.deploy_as(cookie, order, &url).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    for _ in 0..300 {
        let status = node.app_status_as(cookie, order).await;
        match status.json["status"].as_str() {
            Some("available") => return,
            Some("deploying") => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("{}", status.json),
        }
    }
    panic!("never available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_reach_their_own_app_only() {
    let node = Node::start_with(true, |config| {
        config.process.apps_domain = Some("apps.test".into());
    })
    .await;
    let addr = listen(&node).await;
    let (order_b, cookie_b) = second_user(&node).await;
    let a = [("cookie", node.cookie.as_str())];
    let b = [("cookie", cookie_b.as_str())];

    // Nobody signed in; signed in with nothing deployed yet.
    request(addr, "/", &[])
        .await
        .assert_error(401, "unauthenticated");
    request(addr, "/", &b)
        .await
        .assert_error(409, "app_not_available");

    deploy_named(&node, &node.cookie, &node.order, "a").await;
    deploy_named(&node, &cookie_b, &order_b, "b").await;
    assert_eq!(request(addr, "/x", &a).await.text, "app a: GET /x");
    assert_eq!(request(addr, "/x", &b).await.text, "app b: GET /x");

    // B names A's order by header, by host, or puts it in the path: never A's app, and the
    // answer does not tell A's order from one that does not exist.
    let host_a = format!("{}.apps.test", node.order);
    let header_a = [
        ("cookie", cookie_b.as_str()),
        ("x-grid-order", node.order.as_str()),
    ];
    request(addr, "/", &header_a)
        .await
        .assert_error(404, "no_app");
    let by_host = [("cookie", cookie_b.as_str()), ("host", host_a.as_str())];
    request(addr, "/", &by_host)
        .await
        .assert_error(404, "no_app");
    let nobody = [("cookie", cookie_b.as_str()), ("x-grid-order", "424242")];
    request(addr, "/", &nobody)
        .await
        .assert_error(404, "no_app");
    let path = format!("/{}/../x", node.order);
    assert!(request(addr, &path, &b).await.text.starts_with("app b:"));

    // A reaches their app by host too, where the whole path space is the app's.
    let own_host = [("cookie", node.cookie.as_str()), ("host", host_a.as_str())];
    assert_eq!(
        request(addr, "/_grid-like/path", &own_host).await.text,
        "app a: GET /_grid-like/path"
    );
    for path in ["/_grid/v1/node", "/greet?type=0"] {
        assert_eq!(
            request(addr, path, &own_host).await.text,
            format!("app a: GET {path}"),
            "on the app's host, {path} is the app's"
        );
    }
    // Elsewhere, gateway paths stay the gateway's.
    request(addr, "/_grid/v1/nothing", &a)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_signs_the_browser_in_on_the_apps_own_host() {
    let node = Node::start_with(true, |config| {
        config.process.apps_domain = Some("apps.test".into());
    })
    .await;
    let addr = listen(&node).await;
    let (order_b, cookie_b) = second_user(&node).await;
    deploy_named(&node, &node.cookie, &node.order, "a").await;
    let handoff_path = format!("/_grid/v1/apps/{}/handoff", node.order);

    // Only the order's user, signed in, gets a link.
    send(addr, "POST", &handoff_path, &[])
        .await
        .assert_error(401, "unauthenticated");
    send(
        addr,
        "POST",
        &handoff_path,
        &[("cookie", cookie_b.as_str())],
    )
    .await
    .assert_error(404, "no_app");

    let a = [("cookie", node.cookie.as_str())];
    let link = send(addr, "POST", &handoff_path, &a).await;
    assert_eq!(link.status, 200, "{}", link.text);
    let url = link.json()["url"].as_str().unwrap().to_owned();
    let prefix = format!(
        "http://{}.apps.test:{}/?grid_handoff=",
        node.order,
        addr.port()
    );
    let code = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));

    // The browser opens it on the app's host, with no cookie of that host yet.
    let app_host = format!("{}.apps.test", node.order);
    let opened = request(
        addr,
        &format!("/?x=1&grid_handoff={code}"),
        &[("host", app_host.as_str())],
    )
    .await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    assert_eq!(opened.headers["location"], "/?x=1", "the code is dropped");
    let set_cookie = opened.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain"), "host-only: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    assert!(cookie.starts_with("grid_session="), "{set_cookie}");

    // With that cookie, the app's host is the app; the code does not work twice.
    let own = [("cookie", cookie), ("host", app_host.as_str())];
    assert_eq!(request(addr, "/?x=1", &own).await.text, "app a: GET /?x=1");
    request(
        addr,
        &format!("/?grid_handoff={code}"),
        &[("host", app_host.as_str())],
    )
    .await
    .assert_error(401, "handoff_invalid");

    // The redirect stays on the app's host, whatever the path looks like.
    let code = new_handoff_code(addr, &handoff_path, &a).await;
    let opened = request(
        addr,
        &format!("//evil.example/x?grid_handoff={code}"),
        &[("host", app_host.as_str())],
    )
    .await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    assert_eq!(opened.headers["location"], "/evil.example/x");

    // A code for A's app does not open B's host.
    let code = new_handoff_code(addr, &handoff_path, &a).await;
    let host_b = format!("{order_b}.apps.test");
    request(
        addr,
        &format!("/?grid_handoff={code}"),
        &[("host", host_b.as_str())],
    )
    .await
    .assert_error(401, "handoff_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_the_store_calls_available_is_served_before_the_route_table_catches_up() {
    let node = Node::start(true).await;
    let addr = listen(&node).await;
    deploy_named(&node, &node.cookie, &node.order, "web").await;
    let a = [("cookie", node.cookie.as_str())];
    // The moment between a deploy recording `available` and rebuilding the route table:
    // the table without the app, the store with it.
    let available = node.gw.store.app(&node.order).unwrap().unwrap();
    node.gw
        .store
        .put_app(&grid_gateway::store::AppRecord {
            status: grid_gateway::store::AppStatus::Deploying,
            ..available.clone()
        })
        .unwrap();
    node.gw.apps.refresh_routes().unwrap();
    request(addr, "/x", &a)
        .await
        .assert_error(409, "app_not_available");
    node.gw.store.put_app(&available).unwrap();
    // A client that polled `available` is served, not told to wait.
    assert_eq!(request(addr, "/x", &a).await.text, "app web: GET /x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_credentials_never_reach_the_app() {
    let node = Node::start(true).await;
    let addr = listen(&node).await;
    deploy_named(&node, &node.cookie, &node.order, "web").await;
    // (This node has no apps domain: no hand-off to an app's own host.)
    send(
        addr,
        "POST",
        &format!("/_grid/v1/apps/{}/handoff", node.order),
        &[("cookie", node.cookie.as_str())],
    )
    .await
    .assert_error(409, "apps_domain_not_configured");

    let cookies = format!("theme=dark; {}; lang=en", node.cookie);
    let seen = request(
        addr,
        "/headers",
        &[
            ("cookie", cookies.as_str()),
            ("x-grid-order", node.order.as_str()),
            ("x-forwarded-for", "6.6.6.6"),
            ("connection", "x-secret"),
            ("x-secret", "hop"),
        ],
    )
    .await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    let seen = seen.json();
    assert_eq!(seen["cookie"], "theme=dark; lang=en");
    assert!(seen.get("x-grid-order").is_none(), "{seen}");
    assert!(seen.get("x-secret").is_none(), "{seen}");
    assert_eq!(
        seen["x-forwarded-for"], "127.0.0.1",
        "not the client's claim"
    );
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert!(
        seen["via"]
            .as_str()
            .is_some_and(|v| v.contains("grid-gateway")),
        "{seen}"
    );

    // Signed in by bearer token: the token is the gateway's and goes no further.
    let message = Siwe::new(address(USER_KEY), &nonce(&node.gw).await).text();
    let token = login(&node.gw, USER_KEY, &message).await.json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    let seen = request(addr, "/headers", &[("authorization", bearer.as_str())])
        .await
        .json();
    assert!(seen.get("authorization").is_none(), "{seen}");
    // Next to a session cookie, an Authorization header is the app's own.
    let seen = request(
        addr,
        "/headers",
        &[
            ("cookie", node.cookie.as_str()),
            ("authorization", "Basic YXBwOmFwcA=="),
        ],
    )
    .await
    .json();
    assert_eq!(seen["authorization"], "Basic YXBwOmFwcA==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_policy_denies_and_a_hot_swap_changes_the_next_request() {
    let node = Node::start(true).await;
    node.gw.watch_policies();
    let addr = listen(&node).await;
    deploy_named(&node, &node.cookie, &node.order, "web").await;
    let a = [("cookie", node.cookie.as_str())];
    let settings = node.dir.path().join("policies/authorization.settings.json");

    std::fs::write(&settings, r#"{"deny_path_prefixes":["/admin"]}"#).unwrap();
    let mut denied = request(addr, "/admin/users", &a).await;
    for _ in 0..100 {
        if denied.status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        denied = request(addr, "/admin/users", &a).await;
    }
    denied.assert_error(403, "request_denied");
    assert!(
        denied.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/admin")
    );
    // Other spellings of the same path are the same path to the policy.
    for spelling in ["//admin/users", "/x/../admin/users", "/%61dmin/users"] {
        request(addr, spelling, &a)
            .await
            .assert_error(403, "request_denied");
    }
    assert_eq!(request(addr, "/public", &a).await.status, 200);
    assert!(node.gw.forwarder.metrics().policy_denials.get() >= 4);

    std::fs::write(&settings, r#"{"deny_path_prefixes":[]}"#).unwrap();
    let mut allowed = request(addr, "/admin/users", &a).await;
    for _ in 0..100 {
        if allowed.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        allowed = request(addr, "/admin/users", &a).await;
    }
    assert_eq!(allowed.text, "app web: GET /admin/users");
    node.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_is_down_is_502() {
    let node = Node::start(true).await;
    let addr = listen(&node).await;
    // The Service points at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reply = node.deploy(&manifest(closed, "500m", "256Mi")).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    assert_eq!(node.settled().await.json["status"], "available");
    request(addr, "/", &[("cookie", node.cookie.as_str())])
        .await
        .assert_error(502, "upstream_unreachable");
    let metrics = get(&node.gw, "/_grid/metrics").await;
    assert!(
        metrics
            .json
            .as_str()
            .unwrap()
            .contains("grid_proxy_requests_total{class=\"5xx\"} 1"),
        "{}",
        metrics.json
    );
}
