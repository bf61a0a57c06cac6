//! Policies through a real OCI registry (Debian's docker-registry on loopback): push, pull
//! by tag and by digest, with and without authentication, and the signature checks that
//! refuse unsigned, tampered and wrongly signed artefacts with their codes.

mod node_support;
mod registry_support;
mod schema_support;

use alloy::signers::local::PrivateKeySigner;
use grid_gateway::oci::{
    Credentials, OciError, Registry, RegistryOptions, Signer, TrustedSigners, parse_reference,
};
use grid_gateway::policy::{PolicyEngine, PolicySource, World, builtin};
use registry_support::*;

const MAX: u64 = 64 << 20;

fn registry_client(registry: &TestRegistry) -> Registry {
    Registry::new(RegistryOptions {
        plain_http: vec![registry.host.clone()],
        credentials: if registry.authenticated {
            Credentials::basic(&registry.host, USER, PASSWORD)
        } else {
            Credentials::default()
        },
    })
}

fn pricing_wasm() -> Vec<u8> {
    builtin::builtin(World::Pricing)
        .expect("built-in pricing policy")
        .wasm
        .to_vec()
}

fn code<T: std::fmt::Debug>(result: Result<T, OciError>) -> &'static str {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn push_then_pull_by_tag_and_by_digest_gives_the_same_bytes() {
    let registry = TestRegistry::start();
    let client = registry_client(&registry);
    let reference = registry.reference("grid/pricing:v1");
    let settings = br#"{"cpu_milli_per_second":"7"}"#.to_vec();
    let pushed = client
        .push(
            &reference,
            "pricing",
            pricing_wasm(),
            Some(settings.clone()),
            None,
        )
        .await
        .expect("push");
    assert!(pushed.digest.starts_with("sha256:"));

    let by_tag = client
        .pull(&reference, &TrustedSigners::default(), MAX)
        .await
        .expect("pull by tag");
    assert_eq!(by_tag.digest, pushed.digest);
    assert_eq!(by_tag.wasm, pricing_wasm());
    assert_eq!(by_tag.settings.as_bytes(), settings.as_slice());
    assert_eq!(by_tag.world.as_deref(), Some("pricing"));

    let pinned = format!("{}/grid/pricing@{}", registry.host, pushed.digest);
    let by_digest = client
        .pull(&pinned, &TrustedSigners::default(), MAX)
        .await
        .expect("pull by digest");
    assert_eq!(by_digest.digest, pushed.digest);
    assert_eq!(by_digest.wasm, by_tag.wasm);
    assert_eq!(client.resolve(&reference).await, Ok(pushed.digest.clone()));

    // A layer larger than the cap is refused before it is downloaded.
    assert_eq!(
        code(
            client
                .pull(&reference, &TrustedSigners::default(), 16)
                .await
        ),
        "policy_file_too_large"
    );
    // A digest nobody pushed.
    let missing = format!("{}/grid/pricing@sha256:{}", registry.host, "0".repeat(64));
    assert_eq!(
        code(client.pull(&missing, &TrustedSigners::default(), MAX).await),
        "policy_not_found"
    );
}

#[tokio::test]
async fn an_authenticated_registry_needs_the_credentials() {
    let registry = TestRegistry::start_with_auth();
    let client = registry_client(&registry);
    let reference = registry.reference("grid/pricing:v1");
    let pushed = client
        .push(&reference, "pricing", pricing_wasm(), None, None)
        .await
        .expect("push with credentials");
    let pulled = client
        .pull(&reference, &TrustedSigners::default(), MAX)
        .await
        .expect("pull with credentials");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.settings, "");

    let anonymous = Registry::new(RegistryOptions {
        plain_http: vec![registry.host.clone()],
        credentials: Credentials::default(),
    });
    assert_eq!(
        code(
            anonymous
                .pull(&reference, &TrustedSigners::default(), MAX)
                .await
        ),
        "registry_unauthorized"
    );
    let wrong = Registry::new(RegistryOptions {
        plain_http: vec![registry.host.clone()],
        credentials: Credentials::basic(&registry.host, USER, "not-the-password"),
    });
    assert_eq!(
        code(
            wrong
                .pull(&reference, &TrustedSigners::default(), MAX)
                .await
        ),
        "registry_unauthorized"
    );
}

#[tokio::test]
async fn a_signed_artefact_verifies_and_loads() {
    let registry = TestRegistry::start_with_auth();
    let client = registry_client(&registry);
    let signer = Signer::new(PrivateKeySigner::random());
    let trust = TrustedSigners::new(vec![signer.address()]);
    let reference = registry.reference("grid/pricing:v1");
    let pushed = client
        .push(&reference, "pricing", pricing_wasm(), None, Some(&signer))
        .await
        .expect("push signed");
    assert_eq!(
        pushed.signer.as_deref(),
        Some(signer.address().to_checksum(None).as_str())
    );
    let pulled = client
        .pull(&reference, &trust, MAX)
        .await
        .expect("verified");
    assert_eq!(pulled.signer, pushed.signer);
    let engine = PolicyEngine::builder().build().expect("engine");
    let policy = engine
        .load(
            World::Pricing,
            "pricing",
            PolicySource::Builtin,
            &pulled.wasm,
            &pulled.settings,
        )
        .expect("the pulled component loads");
    assert_eq!(policy.world(), World::Pricing);
}

#[tokio::test]
async fn unsigned_wrongly_signed_and_moved_signatures_are_refused_with_their_codes() {
    let registry = TestRegistry::start();
    let client = registry_client(&registry);
    let trusted = Signer::new(PrivateKeySigner::random());
    let stranger = Signer::new(PrivateKeySigner::random());
    let trust = TrustedSigners::new(vec![trusted.address()]);

    let unsigned = registry.reference("grid/pricing:unsigned");
    client
        .push(&unsigned, "pricing", pricing_wasm(), None, None)
        .await
        .expect("push");
    assert_eq!(
        code(client.pull(&unsigned, &trust, MAX).await),
        "policy_unsigned"
    );

    let foreign = registry.reference("grid/pricing:foreign");
    client
        .push(
            &foreign,
            "pricing",
            pricing_wasm(),
            Some(b"{}".to_vec()),
            Some(&stranger),
        )
        .await
        .expect("push");
    assert_eq!(
        code(client.pull(&foreign, &trust, MAX).await),
        "policy_signer_untrusted"
    );

    // A trusted signature of another artefact, copied next to this one.
    let signed = registry.reference("grid/pricing:signed");
    let good = client
        .push(&signed, "pricing", pricing_wasm(), None, Some(&trusted))
        .await
        .expect("push");
    let other = registry.reference("grid/pricing:other");
    let other_pushed = client
        .push(
            &other,
            "pricing",
            pricing_wasm(),
            Some(b"{ }".to_vec()),
            None,
        )
        .await
        .expect("push");
    let mut moved = trusted.sign(&good.digest);
    moved.digest = other_pushed.digest.clone();
    client
        .push_signature_doc(&parse_reference(&other).expect("reference"), &moved)
        .await
        .expect("push forged signature");
    assert_eq!(
        code(client.pull(&other, &trust, MAX).await),
        "policy_signature_invalid"
    );
    // The genuine one still verifies.
    client.pull(&signed, &trust, MAX).await.expect("verified");
}

#[tokio::test]
async fn a_byte_changed_in_the_registry_is_a_digest_mismatch() {
    let registry = TestRegistry::start();
    let client = registry_client(&registry);
    let signer = Signer::new(PrivateKeySigner::random());
    let trust = TrustedSigners::new(vec![signer.address()]);

    // One byte of the component layer, on the registry's disk.
    let layer_ref = registry.reference("grid/pricing:layer");
    let wasm = pricing_wasm();
    client
        .push(&layer_ref, "pricing", wasm.clone(), None, Some(&signer))
        .await
        .expect("push");
    let layer = registry.blob_path(&grid_gateway::oci::digest_of(&wasm));
    let mut bytes = std::fs::read(&layer).expect("layer on disk");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer, bytes).expect("tamper");
    assert_eq!(
        code(client.pull(&layer_ref, &trust, MAX).await),
        "policy_digest_mismatch"
    );

    // One byte of the manifest (the world annotation), on the registry's disk.
    let manifest_ref = registry.reference("grid/authz:manifest");
    let pushed = client
        .push(
            &manifest_ref,
            "authorization",
            b"not even wasm".to_vec(),
            None,
            Some(&signer),
        )
        .await
        .expect("push");
    let manifest = registry.blob_path(&pushed.digest);
    let text = std::fs::read_to_string(&manifest).expect("manifest on disk");
    assert!(text.contains("authorization"));
    std::fs::write(&manifest, text.replace("authorization", "authorizatioN")).expect("tamper");
    assert_eq!(
        code(client.pull(&manifest_ref, &trust, MAX).await),
        "policy_digest_mismatch"
    );
    let pinned = format!("{}/grid/authz@{}", registry.host, pushed.digest);
    assert_eq!(
        code(client.pull(&pinned, &trust, MAX).await),
        "policy_digest_mismatch"
    );
}

/// The pricing world's entry of `GET /_grid/v1/node`.
async fn pricing_status(addr: std::net::SocketAddr) -> serde_json::Value {
    let node = node_support::http(addr, "GET", "/_grid/v1/node", &[], None).await;
    assert_eq!(node.status, 200, "{}", node.json);
    // Artefact, digest, signer and refusal codes as the document says.
    schema_support::assert_documented("/_grid/v1/node", "get", 200, &node.json);
    node.json["policies"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["world"] == "pricing"))
        .cloned()
        .unwrap_or_else(|| panic!("no pricing policy in {}", node.json))
}

/// The price of a day of two cores, 4 GiB and 10 GiB, as the node quotes it.
async fn day_price(addr: std::net::SocketAddr) -> String {
    let body = serde_json::json!({
        "resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
        "duration_secs": 86_400,
        "payment": "1000000000000",
    });
    let reply = node_support::http(addr, "POST", "/_grid/v1/quote", &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["price"].as_str().unwrap_or_default().to_owned()
}

/// Polls the node until `done` holds for the pricing status (the follower polls every
/// second); panics with the last status after a generous bound.
async fn pricing_until(
    addr: std::net::SocketAddr,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..600 {
        let status = pricing_status(addr).await;
        if done(&status) {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never reached: {}", pricing_status(addr).await);
}

/// Pushes the built-in pricing policy with `settings` under `reference`, signed by `signer`.
async fn push_pricing(
    client: &Registry,
    reference: &str,
    settings: Vec<u8>,
    signer: Option<&Signer>,
) -> grid_gateway::oci::Pushed {
    client
        .push(reference, "pricing", pricing_wasm(), Some(settings), signer)
        .await
        .unwrap_or_else(|e| panic!("push to {reference}: {e}"))
}

/// The follower refused what the tag points at now with `code`, and the version with
/// `digest` keeps pricing (a day at `price`).
async fn refused_and_still_serving(
    addr: std::net::SocketAddr,
    code: &str,
    digest: &str,
    price: &str,
) {
    let status = pricing_until(addr, |s| s["last_error"]["code"] == code).await;
    assert_eq!(status["current"]["artefact"]["digest"], digest, "{status}");
    assert_eq!(day_price(addr).await, price);
}

fn pricing_settings(cpu_core_per_second: u32) -> Vec<u8> {
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policies/pricing-linear/fixtures/settings.json"),
    )
    .expect("fixture settings");
    let mut settings: serde_json::Value = serde_json::from_str(&fixture).expect("JSON");
    settings["cpu_core_per_second"] = cpu_core_per_second.to_string().into();
    serde_json::to_vec(&settings).expect("JSON")
}

async fn start_node(config: grid_gateway::config::Config) -> grid_gateway::server::Running {
    // The previous node's store may still be closing (see node_support::gateway).
    for _ in 0..200 {
        match grid_gateway::server::start(config.clone(), Default::default()).await {
            Ok(running) => return running,
            Err(e) if e.to_string().contains("store") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("gateway: {e}"),
        }
    }
    panic!("the store stayed locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follows_a_tag_keeps_the_last_good_version_and_starts_offline_from_its_cache() {
    let registry = TestRegistry::start_with_auth();
    let client = registry_client(&registry);
    let trusted = Signer::new(PrivateKeySigner::random());
    let stranger = Signer::new(PrivateKeySigner::random());
    let reference = registry.reference("grid/pricing:stable");
    let v1 = push_pricing(&client, &reference, pricing_settings(10), Some(&trusted)).await;

    let root = tempfile::tempdir().expect("temp dir");
    let credentials = root.path().join("registry-auth.json");
    std::fs::write(
        &credentials,
        serde_json::json!({"auths": {registry.host.clone(): {"username": USER, "password": PASSWORD}}})
            .to_string(),
    )
    .expect("credentials file");
    let mut config = node_support::config(root.path(), "http://127.0.0.1:9", Default::default());
    config.chain = None;
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.policy.oci = grid_gateway::oci::follower::OciConfig {
        pricing: Some(reference.clone()),
        poll_interval: std::time::Duration::from_secs(1),
        plain_http: vec![registry.host.clone()],
        credentials_file: Some(credentials),
        trusted_signers: vec![trusted.address()],
        ..Default::default()
    };
    config.validate().expect("valid config");

    let running = start_node(config.clone()).await;
    let addr = running.addr;
    let status = pricing_status(addr).await;
    assert_eq!(status["current"]["source"]["kind"], "oci", "{status}");
    assert_eq!(
        status["current"]["artefact"]["digest"],
        v1.digest.as_str(),
        "{status}"
    );
    assert_eq!(
        status["current"]["artefact"]["signer"],
        trusted.address().to_checksum(None).as_str()
    );
    // 2 cores × 10 + 4 GiB × 4 + 10 GiB × 1 per second.
    assert_eq!(day_price(addr).await, (46 * 86_400).to_string());

    // A new signed push under the tag is picked up.
    let v2 = push_pricing(&client, &reference, pricing_settings(20), Some(&trusted)).await;
    // Reported, not asserted (speed belongs in benches): push to serving, tag polled
    // every second.
    let pushed_at = std::time::Instant::now();
    pricing_until(addr, |s| {
        s["current"]["artefact"]["digest"] == v2.digest.as_str()
    })
    .await;
    eprintln!("push to serving: {} ms", pushed_at.elapsed().as_millis());
    assert_eq!(day_price(addr).await, (66 * 86_400).to_string());

    // Unsigned, then signed by a stranger: refused with their codes, v2 keeps pricing.
    let v2_price = (66 * 86_400).to_string();
    push_pricing(&client, &reference, pricing_settings(30), None).await;
    refused_and_still_serving(addr, "policy_unsigned", &v2.digest, &v2_price).await;
    push_pricing(&client, &reference, pricing_settings(40), Some(&stranger)).await;
    refused_and_still_serving(addr, "policy_signer_untrusted", &v2.digest, &v2_price).await;

    // Signed, then one byte of its settings layer changed on the registry's disk before
    // the tag points at it: a digest mismatch, v2 keeps pricing.
    let staging = registry.reference("grid/pricing:staging");
    let tampered_settings = pricing_settings(50);
    push_pricing(&client, &staging, tampered_settings.clone(), Some(&trusted)).await;
    let layer = registry.blob_path(&grid_gateway::oci::digest_of(&tampered_settings));
    let mut bytes = std::fs::read(&layer).expect("layer on disk");
    bytes[0] ^= 1;
    std::fs::write(&layer, bytes).expect("tamper");
    // The same artefact under the followed tag.
    push_pricing(&client, &reference, tampered_settings, Some(&trusted)).await;
    refused_and_still_serving(addr, "policy_digest_mismatch", &v2.digest, &v2_price).await;
    running.shutdown().await.expect("shutdown");

    // The registry gone: the node starts from its cache, on v2.
    drop(registry);
    let running = start_node(config).await;
    let status = pricing_status(running.addr).await;
    assert_eq!(
        status["current"]["artefact"]["digest"],
        v2.digest.as_str(),
        "{status}"
    );
    assert_eq!(
        status["last_error"]["code"], "registry_unavailable",
        "{status}"
    );
    assert_eq!(day_price(running.addr).await, (66 * 86_400).to_string());
    running.shutdown().await.expect("shutdown");
}

/// Runs the real binary.
fn gateway_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(args)
        .output()
        .expect("run grid-gateway")
}

fn cli_json(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn the_cli_pushes_signs_and_pulls_through_an_authenticated_registry() {
    let registry = TestRegistry::start_with_auth();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("pricing.wasm"), pricing_wasm()).expect("write");
    std::fs::write(path("settings.json"), pricing_settings(10)).expect("write");
    let publisher = PrivateKeySigner::random();
    let cosigner = PrivateKeySigner::random();
    for (name, key) in [("publisher.key", &publisher), ("cosigner.key", &cosigner)] {
        std::fs::write(path(name), format!("0x{}\n", hex::encode(key.to_bytes()))).expect("key");
    }
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        path("auth.json"),
        serde_json::json!({"auths": {registry.host.clone(): {"auth": auth}}}).to_string(),
    )
    .expect("credentials");
    let reference = registry.reference("grid/pricing:v1");
    let registry_flags = ["--plain-http", "--credentials", &path("auth.json")];

    let wasm_file = path("pricing.wasm");
    let settings_file = path("settings.json");
    let publisher_key = path("publisher.key");
    let mut push = vec![
        "policy",
        "push",
        &reference,
        "--world",
        "pricing",
        "--policy",
        &wasm_file,
        "--settings",
        &settings_file,
        "--sign-key",
        &publisher_key,
    ];
    push.extend(registry_flags);
    let pushed = cli_json(&gateway_cli(&push));
    let publisher_address = publisher.address().to_checksum(None);
    assert_eq!(pushed["signer"], publisher_address.as_str());
    let digest = pushed["digest"].as_str().expect("digest").to_owned();

    let out = dir.path().join("policies");
    std::fs::create_dir(&out).expect("out dir");
    let out_arg = out.display().to_string();
    let pinned = format!("{}/grid/pricing@{digest}", registry.host);
    let pull = |signer: &str| {
        let mut args = vec![
            "policy",
            "pull",
            &pinned,
            "--world",
            "pricing",
            "--out",
            &out_arg,
            "--trusted-signer",
            signer,
        ];
        args.extend(registry_flags);
        gateway_cli(&args)
    };
    let pulled = cli_json(&pull(&publisher_address));
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(
        std::fs::read(out.join("pricing.wasm")).expect("wasm"),
        pricing_wasm()
    );
    assert_eq!(
        std::fs::read(out.join("pricing.settings.json")).expect("settings"),
        pricing_settings(10)
    );

    // Not trusted yet: refused with its code, and nothing is written.
    std::fs::remove_file(out.join("pricing.wasm")).expect("remove");
    let cosigner_address = cosigner.address().to_checksum(None);
    let refused = pull(&cosigner_address);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("policy_signer_untrusted"), "{stderr}");
    assert!(!out.join("pricing.wasm").exists());

    // `policy sign` signs it again, as the co-signer (one signature per digest): accepted now.
    let cosigner_key = path("cosigner.key");
    let mut sign = vec!["policy", "sign", &pinned, "--sign-key", &cosigner_key];
    sign.extend(registry_flags);
    let signed = cli_json(&gateway_cli(&sign));
    assert_eq!(signed["signer"], cosigner_address.as_str());
    assert_eq!(
        cli_json(&pull(&cosigner_address))["digest"],
        digest.as_str()
    );
}

#[tokio::test]
async fn with_require_signatures_local_policy_files_are_refused_as_unsigned() {
    use grid_gateway::policy::{PolicySet, ReloadOutcome, reload};
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pricing.wasm"), pricing_wasm()).expect("write");
    let engine = || PolicyEngine::builder().build().expect("engine");

    let strict = std::sync::Arc::new(PolicySet::new(engine()).with_require_signatures(true));
    let outcomes = reload(&strict, Some(dir.path())).await;
    let of = |outcomes: &[(World, ReloadOutcome)]| {
        outcomes
            .iter()
            .find(|(w, _)| *w == World::Pricing)
            .map(|(_, o)| o.clone())
    };
    assert!(
        matches!(of(&outcomes), Some(ReloadOutcome::Failed(_))),
        "{outcomes:?}"
    );
    let status = strict.status();
    let pricing = status
        .iter()
        .find(|s| s.world == World::Pricing)
        .expect("pricing status");
    assert!(
        pricing.current.is_none(),
        "the unsigned file does not serve"
    );
    assert_eq!(
        pricing.last_error.as_ref().map(|e| e.code),
        Some("policy_unsigned")
    );
    // A world without files runs its built-in policy (part of the binary).
    assert!(strict.current(World::Payee).is_some());
    // Refused once: the unchanged file is not looked at again.
    let again = reload(&strict, Some(dir.path())).await;
    assert_eq!(of(&again), Some(ReloadOutcome::Unchanged));

    let lenient = std::sync::Arc::new(PolicySet::new(engine()));
    reload(&lenient, Some(dir.path())).await;
    let pricing = lenient.current(World::Pricing).expect("the file serves");
    assert_eq!(
        pricing.info().source,
        PolicySource::File(dir.path().join("pricing.wasm"))
    );
}
