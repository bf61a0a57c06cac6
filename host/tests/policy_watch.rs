//! The policy watcher's guards: a file over `policy.max_file_bytes` is refused unread (on a
//! gateway serving real HTTP, the refusal shows on the node endpoint and in the metrics,
//! and the last good version keeps answering).

mod node_support;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use grid_gateway::orders::Hooks;
use node_support::{PRICE_1H, config, http};
use serde_json::{Value, json};
use support::{PRICING_SURGE, wasm};

/// Replaces `path` by a rename from a file beside it, as operators are told to.
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The pricing world's entry of `GET /_grid/v1/node`.
async fn pricing_status(addr: SocketAddr) -> Value {
    let node = http(addr, "GET", "/_grid/v1/node", &[], None).await;
    assert_eq!(node.status, 200, "{}", node.json);
    node.json["policies"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["world"] == "pricing"))
        .cloned()
        .unwrap_or_else(|| panic!("no pricing policy in {}", node.json))
}

/// The price of a day of two cores, 4 GiB and 10 GiB, as the node quotes it.
async fn day_price(addr: SocketAddr) -> Value {
    let body = json!({
        "resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
        "duration_secs": 86_400,
        "payment": "1000000000000",
    });
    let reply = http(addr, "POST", "/_grid/v1/quote", &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["acceptable"], true, "{}", reply.json);
    reply.json["price"].clone()
}

/// The value of `grid_policy_reloads_total{world="pricing",result="<result>"}` on the
/// node's metrics endpoint (0 when the series does not exist yet).
async fn pricing_reloads(addr: SocketAddr, result: &str) -> u64 {
    let reply = http(addr, "GET", "/_grid/metrics", &[], None).await;
    assert_eq!(reply.status, 200);
    let text = reply.json.as_str().unwrap_or_default().to_owned();
    let series = format!(r#"grid_policy_reloads_total{{world="pricing",result="{result}"}} "#);
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_over_the_size_cap_is_refused_and_the_last_good_version_serves() {
    let root = tempfile::tempdir().unwrap();
    let mut config = config(root.path(), "http://127.0.0.1:9", Default::default());
    config.chain = None;
    config.listen = "127.0.0.1:0".parse().unwrap();
    // Above the settings files (a few hundred bytes), below any real component (~200 KB).
    config.policy.max_file_bytes = 64 << 10;
    let policies = config.policy.dir.clone().unwrap();
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap_or_else(|e| panic!("gateway: {e}"));
    let addr = running.addr;

    // The built-in reference policy with the fixture settings: 46 per second.
    let before = pricing_status(addr).await;
    assert_eq!(before["current"]["source"]["kind"], "builtin", "{before}");
    assert_eq!(before["last_error"], Value::Null, "{before}");
    assert_eq!(day_price(addr).await, (PRICE_1H * 24).to_string());

    let component = wasm(PRICING_SURGE);
    assert!(component.len() > 64 << 10);
    let path = policies.join("pricing.wasm");
    install(&path, &component);
    let started = Instant::now();
    let status = loop {
        let status = pricing_status(addr).await;
        if !status["last_error"].is_null() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload error: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status["last_error"]["code"], "policy_file_too_large",
        "{status}"
    );
    let message = status["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{} has {} bytes, more than policy.max_file_bytes (65536)",
            path.display(),
            component.len()
        )),
        "{message}"
    );
    assert_eq!(status["current"], before["current"], "{status}");
    assert_eq!(
        day_price(addr).await,
        (PRICE_1H * 24).to_string(),
        "the last good version keeps pricing"
    );

    // Refused once: the unchanged file is not looked at again on later polls (200 ms).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(pricing_reloads(addr, "policy_file_too_large").await, 1);
    assert_eq!(
        pricing_status(addr).await["last_error"]["code"],
        "policy_file_too_large"
    );
    running.shutdown().await.unwrap();
}
