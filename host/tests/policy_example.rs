//! The example pricing policy (`examples/pricing-surge`) deployed the way its README tells
//! an operator to: a gateway serving real HTTP on loopback prices with the reference policy
//! from its policy directory; the example's component and settings are put in place of
//! those files; once the watcher has loaded them the next quote is the example's price.
//! Settings the example refuses are reported and the version in service keeps serving.
//! And the README's `grid-gateway policy run` on its fixtures passes.

mod node_support;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grid_gateway::orders::Hooks;
use grid_gateway::policy::sha256_hex;
use grid_gateway::server::Running;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use node_support::{PRICE_1H, Reply, config};
use serde_json::{Value, json};
use support::{PRICING_LINEAR, PRICING_SURGE, wasm, workspace};

/// Two of the node's 4 cores, 4 of its 8 GiB and 10 of its 100 GiB for a day (the node's
/// capacity is the config's default).
fn day_of_half_the_node() -> Value {
    json!({
        "resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
        "duration_secs": 86_400,
        "payment": "1000000000000",
    })
}

/// The example's price for [`day_of_half_the_node`] under its fixture settings (10 per
/// core-second, 4 per GiB-second of memory, 1 of storage; 5 % off from a day; +20 % on a
/// resource the order takes to 50 % or more):
///
/// ```text
/// cpu      10 × 86400 × 2  = 1728000, −5 % = 1641600; 2 of 4 cores  = 50 %: +20 % = 328320
/// memory    4 × 86400 × 4  = 1382400, −5 % = 1313280; 4 of 8 GiB    = 50 %: +20 % = 262656
/// storage   1 × 86400 × 10 =  864000, −5 % =  820800; 10 of 100 GiB = 10 %: no surge
/// ```
const SURGE_PRICE_DAY: u64 = 1_641_600 + 1_313_280 + 820_800 + 328_320 + 262_656;

fn example_settings() -> String {
    let path = workspace().join("examples/pricing-surge/fixtures/settings.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces `path` by a rename from a file beside it, so the watcher never reads half a
/// component (what the README tells operators to do, too).
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A gateway listening on a loopback port, no chain (an inline quote needs none), its
/// policy directory from `node_support` holding `pricing_wasm` and `pricing_settings`.
async fn serve(root: &Path, pricing_wasm: &str, pricing_settings: &str) -> Running {
    let mut config = config(root, "http://127.0.0.1:9", Default::default());
    config.chain = None;
    config.listen = "127.0.0.1:0".parse().unwrap();
    let policies = config.policy.dir.clone().unwrap();
    install(&policies.join("pricing.wasm"), &wasm(pricing_wasm));
    install(
        &policies.join("pricing.settings.json"),
        pricing_settings.as_bytes(),
    );
    grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap_or_else(|e| panic!("gateway: {e}"))
}

/// One request over a real connection; the answer as `node_support`'s [`Reply`].
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let response = client.request(request).await.expect("the gateway answers");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply {
        status,
        headers,
        json,
    }
}

async fn quote(addr: SocketAddr, body: Value) -> Reply {
    let reply = call(addr, "POST", "/_grid/v1/quote", Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply
}

/// The pricing world's entry of `GET /_grid/v1/node`: `current` and `last_error`.
async fn pricing_status(addr: SocketAddr) -> Value {
    let node = call(addr, "GET", "/_grid/v1/node", None).await;
    assert_eq!(node.status, 200, "{}", node.json);
    node.json["policies"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["world"] == "pricing"))
        .cloned()
        .unwrap_or_else(|| panic!("no pricing policy in {}", node.json))
}

/// Polls the node endpoint until `done` holds of the pricing status; the bound only keeps
/// a broken watcher from hanging the suite (it is not a timing assertion).
async fn wait_for(addr: SocketAddr, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = pricing_status(addr).await;
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; pricing status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when the version in service is exactly this component with these settings.
fn serves(status: &Value, wasm_path: &str, settings: &str) -> bool {
    status["current"]["sha256"] == sha256_hex(&wasm(wasm_path))
        && status["current"]["settings_sha256"] == sha256_hex(settings.as_bytes())
}

#[test]
fn policy_run_passes_on_the_examples_fixtures() {
    let fixtures = workspace().join("examples/pricing-surge/fixtures");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["policy", "run", "--policy", PRICING_SURGE, "--settings"])
        .arg(fixtures.join("settings.json"))
        .arg("--input")
        .arg(&fixtures)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert!(results.len() >= 7, "{results:?}");
    assert!(
        results.iter().all(|r| r["expect_matched"] == true),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_in_the_example_changes_the_next_quote_to_its_price() {
    let dir = tempfile::tempdir().unwrap();
    let linear_settings =
        std::fs::read_to_string(workspace().join("policies/pricing-linear/fixtures/settings.json"))
            .unwrap();
    let running = serve(dir.path(), PRICING_LINEAR, &linear_settings).await;
    let addr = running.addr;
    let policies = dir.path().join("policies");

    // The reference policy from the files on disk: 46 per second, no discount, no surge.
    let status = pricing_status(addr).await;
    assert!(
        serves(&status, PRICING_LINEAR, &linear_settings),
        "{status}"
    );
    assert_eq!(status["current"]["name"], "pricing.wasm");
    let before = quote(addr, day_of_half_the_node()).await;
    assert_eq!(before.json["acceptable"], true, "{}", before.json);
    assert_eq!(before.json["price"], (PRICE_1H * 24).to_string());

    // Settings first, then the component. Each half-swapped state is refused (each policy
    // refuses the other's settings as unknown fields), so the reference policy serves
    // until both files are in place.
    let settings = example_settings();
    install(&policies.join("pricing.settings.json"), settings.as_bytes());
    install(&policies.join("pricing.wasm"), &wasm(PRICING_SURGE));
    let status = wait_for(addr, "the example to be loaded", |s| {
        serves(s, PRICING_SURGE, &settings)
    })
    .await;
    assert_eq!(status["last_error"], Value::Null, "{status}");

    let after = quote(addr, day_of_half_the_node()).await;
    assert_eq!(after.json["acceptable"], true, "{}", after.json);
    assert_eq!(after.json["price"], SURGE_PRICE_DAY.to_string());
    let items: Vec<&str> = after.json["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        ["cpu", "memory", "storage", "surge:cpu", "surge:memory"]
    );

    // The example's headroom: 3.9 of 4 cores is above its 95 %, refused though it fits.
    let mut crowded = day_of_half_the_node();
    crowded["resources"]["cpu"] = json!("3900m");
    let refused = quote(addr, crowded).await;
    assert_eq!(refused.json["acceptable"], false);
    assert_eq!(refused.json["code"], "insufficient_capacity");
    assert!(
        refused.json["reason"]
            .as_str()
            .unwrap()
            .contains("cpu would be 98% in use with this order, above the 95% this node sells"),
        "{}",
        refused.json
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_the_example_refuses_are_reported_and_it_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let settings = example_settings();
    let running = serve(dir.path(), PRICING_SURGE, &settings).await;
    let addr = running.addr;
    assert!(serves(
        &pricing_status(addr).await,
        PRICING_SURGE,
        &settings
    ));
    assert_eq!(
        quote(addr, day_of_half_the_node()).await.json["price"],
        SURGE_PRICE_DAY.to_string()
    );

    // A step above 100 % could never apply: `validate-settings` refuses it, naming it.
    install(
        &dir.path().join("policies/pricing.settings.json"),
        br#"{"surge":[{"utilisation_percent":150,"markup_percent":20}]}"#,
    );
    let status = wait_for(addr, "the reload error", |s| !s["last_error"].is_null()).await;
    assert_eq!(
        status["last_error"]["code"], "settings_rejected",
        "{status}"
    );
    let message = status["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("surge[0].utilisation_percent must be between 1 and 100, not 150"),
        "{message}"
    );
    assert!(serves(&status, PRICING_SURGE, &settings), "{status}");
    assert_eq!(
        quote(addr, day_of_half_the_node()).await.json["price"],
        SURGE_PRICE_DAY.to_string(),
        "the last good settings keep pricing"
    );
    running.shutdown().await.unwrap();
}
