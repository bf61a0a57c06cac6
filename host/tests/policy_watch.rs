//! The policy watcher's guards: a file over `policy.max_file_bytes` is refused unread (on a
//! gateway serving real HTTP, the refusal shows on the node endpoint and in the metrics,
//! and the last good version keeps answering), and a failure that may pass is retried at
//! growing intervals, not at the rate of file events.

mod node_support;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grid_gateway::orders::Hooks;
use grid_gateway::policy::{
    Isolation, PolicyEngine, PolicySet, RuntimeLimits, WatchConfig, World, reload, spawn_watcher,
};
use node_support::{PRICE_1H, config, http};
use serde_json::{Value, json};
use support::{HOSTILE, PRICING_SURGE, test_limits, wasm};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_out_of_time_is_retried_at_growing_intervals_not_at_event_rate() {
    let dir = tempfile::tempdir().unwrap();
    // A `validate-settings` that loops runs out of its load deadline: a failure that may
    // pass on a less busy machine, so it is retried.
    std::fs::write(dir.path().join("pricing.wasm"), wasm(HOSTILE)).unwrap();
    std::fs::write(
        dir.path().join("pricing.settings.json"),
        r#"{"validate":"loop"}"#,
    )
    .unwrap();
    let limits = RuntimeLimits {
        load_deadline: Duration::from_millis(50),
        ..test_limits(Isolation::default())
    };
    let engine = PolicyEngine::builder().limits(limits).build().unwrap();
    let set = Arc::new(PolicySet::new(engine));
    let attempts = || {
        set.engine()
            .metrics()
            .reloads
            .get_or_create(&grid_gateway::policy::metrics::ReloadLabels {
                world: World::Pricing.name().into(),
                result: "settings_evaluation_failed".into(),
            })
            .get()
    };
    // Polling every 50 ms, and a file in the directory written every 10 ms: without
    // back-off that is a retry every 50 ms or faster.
    let config = WatchConfig {
        debounce: Duration::from_millis(10),
        poll_interval: Duration::from_millis(50),
    };
    // The initial load (as a gateway does before it starts the watcher) fails, and puts the
    // other worlds' built-ins in service, so the watcher's rescans load nothing else.
    reload(&set, Some(dir.path())).await;
    assert_eq!(attempts(), 1);
    let watcher = spawn_watcher(set.clone(), dir.path().to_owned(), config);
    let noise = {
        let path = dir.path().join("notes.txt");
        tokio::spawn(async move {
            for i in 0u64.. {
                std::fs::write(&path, i.to_string()).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // The watcher's first rescan is the first attempt it makes; then watch it for 8 s.
    let started = Instant::now();
    while attempts() == 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no first attempt"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = Instant::now();
    let mut at = vec![Duration::ZERO];
    let mut seen = 2;
    while first.elapsed() < Duration::from_secs(8) {
        let now = attempts();
        if now > seen {
            at.extend(std::iter::repeat_n(first.elapsed(), (now - seen) as usize));
            seen = now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    noise.abort();
    watcher.stop().await;

    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    println!("attempts at {at:?}, gaps {gaps:?}");
    // 1 s, 2 s, 4 s (each plus the ~100 ms a failing load takes and up to a poll
    // interval): four attempts in 8 s, where the poll rate alone would give ~160.
    assert!(
        (3..=4).contains(&at.len()),
        "{} attempts in 8 s: {at:?}",
        at.len()
    );
    assert!(gaps[0] >= Duration::from_millis(900), "{gaps:?}");
    for pair in gaps.windows(2) {
        assert!(
            pair[1].as_secs_f64() >= 1.5 * pair[0].as_secs_f64(),
            "the intervals do not grow: {gaps:?}"
        );
    }
    assert!(set.current(World::Pricing).is_none());
}
