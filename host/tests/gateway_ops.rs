//! The node and ops endpoints, CORS, the secure cookie attributes, the OpenAPI document,
//! a real server on loopback, and the `config check` command. `serve` as its own process
//! (start-up, SIGTERM) is in `tests/serve.rs` (crate `grid-node-tests`).

mod node_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, header};
use grid_gateway::orders::Hooks;
use node_support::*;
use serde_json::json;

fn dead_chain_config(root: &std::path::Path) -> grid_gateway::config::Config {
    let dead = format!("http://127.0.0.1:{}", chain::free_port());
    config(root, &dead, alloy::primitives::Address::repeat_byte(7))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_health_metrics_and_openapi() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        config(dir.path(), &chain.anvil.url, chain.deployment.market),
        Hooks::default(),
    )
    .await;

    let health = get(&gw, "/_grid/healthz").await;
    assert_eq!(health.status, 200);
    let ready = get(&gw, "/_grid/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert_eq!(
        ready.json,
        json!({"ready": true, "store": true, "policies": true, "chain": true, "cluster": null})
    );

    let node = get(&gw, "/_grid/v1/node").await;
    assert_eq!(node.status, 200);
    assert_eq!(node.json["chain_id"], CHAIN_ID);
    assert_eq!(
        node.json["market"].as_str().unwrap().to_lowercase(),
        chain.deployment.market.to_string().to_lowercase()
    );
    assert_eq!(node.json["capacity"]["total"]["cpu_millis"], 4000);
    let policies = node.json["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 3);
    assert!(policies.iter().all(|p| p["current"]["sha256"].is_string()));

    // A request is counted by its route template, not its raw path.
    post(&gw, "/_grid/v1/orders/12345/accept", json!({})).await;
    let metrics = get(&gw, "/_grid/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.json.as_str().unwrap();
    assert!(
        text.contains(r#"grid_gateway_http_requests_total{route="/_grid/v1/orders/{id}/accept",method="POST",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("grid_gateway_http_request_duration_seconds_bucket"));
    assert!(
        text.contains(r#"grid_gateway_chain_calls_total{call="order",result="order_not_found"}"#)
    );
    assert!(
        text.contains("grid_policy_"),
        "policy metrics are registered"
    );

    let doc = get(&gw, "/_grid/openapi.json").await;
    assert_eq!(doc.status, 200);
    for path in [
        "/_grid/v1/quote",
        "/_grid/v1/orders/{id}/accept",
        "/_grid/v1/auth/nonce",
        "/_grid/v1/auth/login",
        "/_grid/v1/auth/logout",
        "/greet",
    ] {
        assert!(
            doc.json["paths"][path].is_object(),
            "{path} in the OpenAPI document"
        );
    }
    assert!(doc.json["components"]["schemas"]["QuoteResponse"].is_object());

    // Every response carries a request id.
    assert!(health.headers.contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_configured_origins_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dead_chain_config(dir.path());
    config.http.cors_origins = vec!["https://app.example".into()];
    let gw = gateway(config, Hooks::default()).await;
    let preflight = send(
        &gw,
        Request::options("/_grid/v1/auth/login")
            .header(header::ORIGIN, "https://app.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_eq!(
        preflight.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let other = send(
        &gw,
        Request::get("/_grid/healthz")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        !other
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cookie_has_the_host_prefix_and_same_site_none() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    config.session.secure = true;
    config.session.same_site = grid_gateway::config::SameSite::None;
    let gw = gateway(config, Hooks::default()).await;
    let id = good_order(&chain).await;
    assert_eq!(
        post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({}))
            .await
            .status,
        200
    );
    let message = Siwe::new(address(USER_KEY), &nonce(&gw).await).text();
    let reply = login(&gw, USER_KEY, &message).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set_cookie.starts_with("__Host-grid_session="),
        "{set_cookie}"
    );
    for attribute in ["Secure", "HttpOnly", "SameSite=None", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    let session = get_with(&gw, "/_grid/v1/auth/session", header::COOKIE, cookie).await;
    assert_eq!(session.status, 200, "{}", session.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_real_http_on_loopback_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = grid_gateway::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..dead_chain_config(dir.path())
    };
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let addr = running.addr;
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let body = r#"{"resources":{"cpu":"1","memory":"1Gi"},"duration_secs":60,"payment":"0"}"#;
        write!(
            stream,
            "POST /_grid/v1/quote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""acceptable":false"#), "{response}");
    assert!(
        response.contains(r#""code":"insufficient_payment""#),
        "{response}"
    );
    running.shutdown().await.unwrap();
    assert!(TcpStream::connect(addr).is_err(), "stopped listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_http_workers_serve_keep_alive_connections_and_stop_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = grid_gateway::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..dead_chain_config(dir.path())
    };
    config.http.workers = 3;
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let addr = running.addr;
    // Twelve connections, two requests each on the same connection (keep-alive), then one
    // connection left open and idle: shutdown must not wait for it.
    let idle = tokio::task::spawn_blocking(move || {
        let mut open = Vec::new();
        for _ in 0..12 {
            let mut stream = TcpStream::connect(addr).unwrap();
            for _ in 0..2 {
                write!(stream, "GET /_grid/healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).unwrap();
                let head = String::from_utf8_lossy(&buf[..n]);
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            }
            open.push(stream);
        }
        open.pop().unwrap()
    })
    .await
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), running.shutdown())
        .await
        .expect("shutdown does not wait on idle keep-alive connections")
        .unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "every worker stopped listening"
    );
    drop(idle);
}

#[test]
fn too_many_http_workers_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dead_chain_config(dir.path());
    config.http.workers = 100_000;
    let error = config.validate().unwrap_err();
    assert!(error.to_string().starts_with("http.workers"), "{error}");
}

#[test]
fn a_header_timeout_no_client_could_meet_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dead_chain_config(dir.path());
    config.http.header_read_timeout_ms = 0;
    let error = config.validate().unwrap_err();
    assert!(
        error.to_string().starts_with("http.header_read_timeout_ms"),
        "{error}"
    );
}

fn gateway_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[auth]\ndomain = \"gw.example\"\n").unwrap();
    let out = gateway_bin()
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[auth]\ndomain = \"gw.example\"\n[session]\nsame_site = \"none\"\nsecure = false\n",
    )
    .unwrap();
    let out = gateway_bin()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("session.same_site"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An environment override is checked like the file.
    let out = gateway_bin()
        .args(["config", "check", "--config"])
        .arg(&good)
        .env("GRID_GATEWAY__CAPACITY__MEMORY", "plenty")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("capacity.memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_policy_and_a_missing_chain_are_503_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dead_chain_config(dir.path());
    config.chain = None;
    // The operator's pricing policy traps on this request.
    let policies = config.policy.dir.clone().unwrap();
    std::fs::copy(env!("GRID_WASM_HOSTILE"), policies.join("pricing.wasm")).unwrap();
    let gw = gateway(config, Hooks::default()).await;

    post(
        &gw,
        "/_grid/v1/quote",
        json!({"resources": {"cpu": "1", "memory": "1Gi", "gpu": 1, "gpu_model": "trap"},
               "duration_secs": 3600, "payment": "1"}),
    )
    .await
    .assert_error(503, "policy_failed");

    post(&gw, "/_grid/v1/orders/1/accept", json!({}))
        .await
        .assert_error(503, "chain_not_configured");
    post(&gw, "/_grid/v1/quote", json!({"order_id": "1"}))
        .await
        .assert_error(503, "chain_not_configured");
    // Without a chain, readiness does not wait for one.
    let ready = get(&gw, "/_grid/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert_eq!(ready.json["chain"], serde_json::Value::Null);
}
