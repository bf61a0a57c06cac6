//! The example pricing policy (`examples/pricing-surge`) hot-swapped into a serving node the
//! way its README tells an operator to: `grid-gateway serve` prices with the reference
//! policy from its policy directory; the example's component and settings are put in place
//! of those files (each by a rename); once the watcher has loaded them the next quote is the
//! example's price. Settings the example refuses are reported and the version in service
//! keeps serving.
//! The gateway is its own process (no chain, no cluster: a quote needs neither); see
//! support/mod.rs.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

/// Two of the node's 4 cores, 4 of its 8 GiB and 10 of its 100 GiB for a day (the node's
/// capacity is the config's default).
fn day_of_half_the_node() -> Value {
    json!({
        "resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
        "duration_secs": 86_400,
        "payment": "1000000000000",
    })
}

/// The reference policy's price for [`day_of_half_the_node`] under its fixture settings
/// (10 per core-second, 4 per GiB-second of memory, 1 of storage): 46 a second.
const LINEAR_PRICE_DAY: u64 = (2 * 10 + 4 * 4 + 10) * 86_400;

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

/// Fast reloads, and a deadline an unoptimised wasmtime on a loaded machine meets: these
/// tests are about the swap, not deadlines.
const POLICY_TOML: &str = "[policy.watch]\ndebounce_ms = 20\npoll_interval_ms = 200\n\
                           [policy.limits]\ndeadline_ms = 250\nload_deadline_ms = 2000\n";

fn fixture(path: &str) -> anyhow::Result<String> {
    let path = workspace().join(path);
    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Replaces `path` by a rename from a file beside it, so the watcher never reads half a
/// component (what the README tells operators to do, too).
fn install(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// `serve` with no chain and no cluster, its policy directory holding `pricing` (a
/// component's stem) and `settings`.
async fn serving(root: &Path, pricing: &str, settings: &str) -> anyhow::Result<Gateway> {
    let mut gateway = Gateway::new(root, "node", None, None, POLICY_TOML)?;
    let policies = gateway.dir.join("policies");
    install(&policies.join("pricing.wasm"), &policy_component(pricing)?)?;
    install(&policies.join("pricing.settings.json"), settings.as_bytes())?;
    gateway.launch().await?;
    Ok(gateway)
}

async fn quote(api: &Api, body: Value) -> anyhow::Result<Value> {
    api.post("/_grid/v1/quote", body).await?.expect(200)
}

/// The pricing world's entry of `GET /_grid/v1/node`: `current` and `last_error`.
async fn pricing_status(api: &Api) -> anyhow::Result<Value> {
    let node = api.poll("/_grid/v1/node").await?.expect(200)?;
    node["policies"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["world"] == "pricing"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no pricing policy in {node}"))
}

/// Polls the node endpoint until `done` holds of the pricing status.
async fn wait_for(api: &Api, what: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let done = &done;
    eventually(what, move || async move {
        let status = pricing_status(api).await.ok()?;
        done(&status).then_some(status)
    })
    .await
}

fn sha256_hex(bytes: &[u8]) -> String {
    alloy::hex::encode(Sha256::digest(bytes))
}

/// True when the version in service is exactly this component with these settings.
fn serves(status: &Value, component: &[u8], settings: &str) -> bool {
    status["current"]["sha256"] == sha256_hex(component)
        && status["current"]["settings_sha256"] == sha256_hex(settings.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_in_the_example_changes_the_next_quote_to_its_price() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let linear_settings = fixture("policies/pricing-linear/fixtures/settings.json")?;
    let gateway = serving(root.path(), "pricing_linear", &linear_settings).await?;
    let api = Api::new(&gateway.url)?;
    let policies = gateway.dir.join("policies");
    let (linear, surge) = (
        policy_component("pricing_linear")?,
        policy_component("pricing_surge")?,
    );

    // The reference policy from the files on disk: 46 per second, no discount, no surge.
    let status = pricing_status(&api).await?;
    assert!(serves(&status, &linear, &linear_settings), "{status}");
    assert_eq!(status["current"]["name"], "pricing.wasm");
    let before = quote(&api, day_of_half_the_node()).await?;
    assert_eq!(before["acceptable"], true, "{before}");
    assert_eq!(before["price"], LINEAR_PRICE_DAY.to_string());

    // Settings first, then the component. Each half-swapped state is refused (each policy
    // refuses the other's settings as unknown fields), so the reference policy serves
    // until both files are in place.
    let settings = fixture("examples/pricing-surge/fixtures/settings.json")?;
    install(&policies.join("pricing.settings.json"), settings.as_bytes())?;
    install(&policies.join("pricing.wasm"), &surge)?;
    let status = wait_for(&api, "the example to be loaded", |s| {
        serves(s, &surge, &settings)
    })
    .await?;
    assert_eq!(status["last_error"], Value::Null, "{status}");

    let after = quote(&api, day_of_half_the_node()).await?;
    assert_eq!(after["acceptable"], true, "{after}");
    assert_eq!(after["price"], SURGE_PRICE_DAY.to_string());
    let items: Vec<&str> = after["breakdown"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| l["item"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        items,
        ["cpu", "memory", "storage", "surge:cpu", "surge:memory"]
    );

    // The example's headroom: 3.9 of 4 cores is above its 95 %, refused though it fits.
    let mut crowded = day_of_half_the_node();
    crowded["resources"]["cpu"] = json!("3900m");
    let refused = quote(&api, crowded).await?;
    assert_eq!(refused["acceptable"], false, "{refused}");
    assert_eq!(refused["code"], "insufficient_capacity", "{refused}");
    assert!(
        refused["reason"].as_str().is_some_and(|r| r
            .contains("cpu would be 98% in use with this order, above the 95% this node sells")),
        "{refused}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_the_example_refuses_are_reported_and_it_keeps_serving() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let settings = fixture("examples/pricing-surge/fixtures/settings.json")?;
    let gateway = serving(root.path(), "pricing_surge", &settings).await?;
    let api = Api::new(&gateway.url)?;
    let surge = policy_component("pricing_surge")?;
    assert!(serves(&pricing_status(&api).await?, &surge, &settings));
    assert_eq!(
        quote(&api, day_of_half_the_node()).await?["price"],
        SURGE_PRICE_DAY.to_string()
    );

    // A step above 100 % could never apply: `validate-settings` refuses it, naming it.
    install(
        &gateway.dir.join("policies/pricing.settings.json"),
        br#"{"surge":[{"utilisation_percent":150,"markup_percent":20}]}"#,
    )?;
    let status = wait_for(&api, "the reload error", |s| !s["last_error"].is_null()).await?;
    assert_eq!(
        status["last_error"]["code"], "settings_rejected",
        "{status}"
    );
    let message = status["last_error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("surge[0].utilisation_percent must be between 1 and 100, not 150"),
        "{message}"
    );
    assert!(serves(&status, &surge, &settings), "{status}");
    assert_eq!(
        quote(&api, day_of_half_the_node()).await?["price"],
        SURGE_PRICE_DAY.to_string(),
        "the last good settings keep pricing"
    );
    Ok(())
}
