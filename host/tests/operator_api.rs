//! The operator API on a running gateway over real HTTP: operators sign in with SIWE under
//! the operator scope, each endpoint needs its role, tenant and operator tokens never
//! cross over, and the whole policy lifecycle — a v2 pricing policy pushed to a real
//! registry (Debian's docker-registry), set as candidate by reference, shadowed on real
//! quotes, promoted, rolled back.

mod node_support;
mod registry_support;
mod schema_support;

use std::net::SocketAddr;

use alloy::signers::local::PrivateKeySigner;
use axum::http::header;
use grid_gateway::auth::operator::{OperatorWallet, Role};
use grid_gateway::oci::{Credentials, Registry, RegistryOptions, Signer};
use grid_gateway::policy::{World, builtin};
use node_support::*;
use registry_support::TestRegistry;
use serde_json::{Value, json};

/// The operator with both roles.
const WRITER_KEY: &str = USER_KEY;
/// The operator who may only look.
const READER_KEY: &str = PAYEE_KEY;

fn operator_config(root: &std::path::Path) -> grid_gateway::config::Config {
    let mut config = config(root, "http://127.0.0.1:9", alloy::primitives::Address::ZERO);
    config.chain = None;
    config.auth.chain_id = Some(CHAIN_ID);
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.operators.wallet = vec![
        OperatorWallet {
            address: address(WRITER_KEY),
            roles: vec![Role::PolicyRead, Role::PolicyWrite],
        },
        OperatorWallet {
            address: address(READER_KEY),
            roles: vec![Role::PolicyRead],
        },
    ];
    config
}

async fn start(config: grid_gateway::config::Config) -> grid_gateway::server::Running {
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

async fn fresh_nonce(addr: SocketAddr) -> String {
    let reply = http(addr, "GET", "/_grid/v1/auth/nonce", &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["nonce"].as_str().expect("nonce").to_owned()
}

/// A sign-in message of `key`'s wallet, with the operator scope when `operator`.
async fn message(addr: SocketAddr, key: &str, operator: bool) -> String {
    let mut text = Siwe::new(address(key), &fresh_nonce(addr).await).text();
    if operator {
        text.push_str("\nResources:\n- urn:grid:operator");
    }
    text
}

async fn operator_login(addr: SocketAddr, key: &str, operator: bool) -> Reply {
    let text = message(addr, key, operator).await;
    http(
        addr,
        "POST",
        "/_grid/v1/operator/login",
        &[],
        Some(json!({"message": text, "signature": sign(key, &text)})),
    )
    .await
}

/// An operator token of `key`'s wallet.
async fn operator_token(addr: SocketAddr, key: &str) -> String {
    let reply = operator_login(addr, key, true).await;
    answered(&reply, "/_grid/v1/operator/login", "post");
    reply.json["token"].as_str().expect("token").to_owned()
}

/// `method path` with `token` as bearer.
async fn as_op(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let bearer = format!("Bearer {token}");
    http(
        addr,
        method,
        path,
        &[(header::AUTHORIZATION, bearer.as_str())],
        body,
    )
    .await
}

/// Asserts a 200 whose body is the documented answer.
#[track_caller]
fn answered(reply: &Reply, template: &str, method: &str) {
    assert_eq!(reply.status, 200, "{}", reply.json);
    schema_support::assert_documented(template, method, 200, &reply.json);
}

/// Asserts the refusal and that its status is documented with the envelope.
#[track_caller]
fn refused(reply: &Reply, template: &str, method: &str, status: u16, code: &str) {
    reply.assert_error(status, code);
    schema_support::assert_documented(template, method, status, &reply.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_sign_in_with_their_roles_and_tokens_never_cross_over() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut config = operator_config(root.path());
    config.policy.recording.enabled = true;
    let running = start(config).await;
    let addr = running.addr;
    let policies = "/_grid/v1/operator/policies";
    let candidate = "/_grid/v1/operator/policies/pricing/candidate";
    let candidate_t = "/_grid/v1/operator/policies/{world}/candidate";

    // Unauthenticated: 401 in the envelope.
    let reply = http(addr, "GET", policies, &[], None).await;
    refused(&reply, policies, "get", 401, "unauthenticated");

    // A user's sign-in message (no operator scope) is not an operator's.
    let reply = operator_login(addr, WRITER_KEY, false).await;
    refused(
        &reply,
        "/_grid/v1/operator/login",
        "post",
        400,
        "operator_scope_required",
    );
    // A wallet not listed.
    let reply = operator_login(addr, STRANGER_KEY, true).await;
    refused(
        &reply,
        "/_grid/v1/operator/login",
        "post",
        403,
        "not_an_operator",
    );

    // A live tenant session of the same wallet (seeded: tenants need an order to sign
    // in), whose token is refused on the operator API…
    let gw = running.gateway.clone();
    gw.store
        .put_session(&grid_gateway::store::SessionRecord {
            id: "00000000000000000000000000000abc".into(),
            address: grid_policy_sdk::Address(address(WRITER_KEY).0.0),
            expires_at: now() + 3600,
            scopes: None,
            created_at: now(),
            revoked: false,
        })
        .expect("session");
    let tenant_token = gw.auth.seal("00000000000000000000000000000abc");
    let tenant_bearer = format!("Bearer {tenant_token}");
    let reply = http(
        addr,
        "GET",
        "/_grid/v1/auth/session",
        &[(header::AUTHORIZATION, tenant_bearer.as_str())],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "a live tenant token: {}", reply.json);
    let reply = as_op(addr, &tenant_token, "GET", policies, None).await;
    refused(&reply, policies, "get", 401, "invalid_session");
    // …and so is its cookie.
    let cookie = format!("grid_session={tenant_token}");
    let reply = http(
        addr,
        "GET",
        policies,
        &[(header::COOKIE, cookie.as_str())],
        None,
    )
    .await;
    refused(&reply, policies, "get", 401, "unauthenticated");

    // The reader reads, and may not write.
    let reader = operator_token(addr, READER_KEY).await;
    let reply = as_op(addr, &reader, "GET", policies, None).await;
    answered(&reply, policies, "get");
    let reply = as_op(
        addr,
        &reader,
        "PUT",
        candidate,
        Some(json!({"path": "pricing.wasm"})),
    )
    .await;
    refused(&reply, candidate_t, "put", 403, "missing_role");
    let reply = as_op(
        addr,
        &reader,
        "POST",
        "/_grid/v1/operator/policies/pricing/promote",
        None,
    )
    .await;
    refused(
        &reply,
        "/_grid/v1/operator/policies/{world}/promote",
        "post",
        403,
        "missing_role",
    );

    // An operator token is not a tenant session.
    let bearer = format!("Bearer {reader}");
    let reply = http(
        addr,
        "GET",
        "/_grid/v1/auth/session",
        &[(header::AUTHORIZATION, bearer.as_str())],
        None,
    )
    .await;
    reply.assert_error(401, "invalid_session");

    // The writer: candidate files only from under the policy directory.
    let writer = operator_token(addr, WRITER_KEY).await;
    std::fs::write(root.path().join("outside.wasm"), b"\0asm").expect("file");
    for path in [
        "../outside.wasm".to_owned(),
        root.path().join("outside.wasm").display().to_string(),
        "/etc/passwd".to_owned(),
    ] {
        let reply = as_op(addr, &writer, "PUT", candidate, Some(json!({"path": path}))).await;
        refused(
            &reply,
            candidate_t,
            "put",
            400,
            "candidate_path_outside_policy_dir",
        );
    }
    // A link out of the directory is outside too.
    let dir = root.path().join("policies");
    std::os::unix::fs::symlink(root.path().join("outside.wasm"), dir.join("link.wasm"))
        .expect("symlink");
    let reply = as_op(
        addr,
        &writer,
        "PUT",
        candidate,
        Some(json!({"path": "link.wasm"})),
    )
    .await;
    refused(
        &reply,
        candidate_t,
        "put",
        400,
        "candidate_path_outside_policy_dir",
    );
    // Nothing to promote yet; no such version to roll back to.
    let reply = as_op(
        addr,
        &writer,
        "POST",
        "/_grid/v1/operator/policies/pricing/promote",
        None,
    )
    .await;
    refused(
        &reply,
        "/_grid/v1/operator/policies/{world}/promote",
        "post",
        409,
        "policy_no_candidate",
    );
    let reply = as_op(
        addr,
        &writer,
        "POST",
        "/_grid/v1/operator/policies/pricing/rollback",
        Some(json!({"version": "sha256:00"})),
    )
    .await;
    refused(
        &reply,
        "/_grid/v1/operator/policies/{world}/rollback",
        "post",
        404,
        "policy_version_unknown",
    );

    // A candidate file under the directory loads and shadows; clearing removes it.
    std::fs::write(
        dir.join("pricing-v2.wasm"),
        builtin::builtin(World::Pricing).expect("built-in").wasm,
    )
    .expect("wasm");
    let reply = as_op(
        addr,
        &writer,
        "PUT",
        candidate,
        Some(json!({"path": "pricing-v2.wasm"})),
    )
    .await;
    answered(&reply, candidate_t, "put");
    let reply = as_op(
        addr,
        &reader,
        "GET",
        "/_grid/v1/operator/policies/pricing",
        None,
    )
    .await;
    answered(&reply, "/_grid/v1/operator/policies/{world}", "get");
    assert_eq!(
        reply.json["candidate"]["name"], "pricing-v2.wasm",
        "{}",
        reply.json
    );
    let reply = as_op(addr, &writer, "DELETE", candidate, None).await;
    answered(&reply, candidate_t, "delete");
    assert_eq!(reply.json["cleared"]["name"], "pricing-v2.wasm");
    let reply = as_op(
        addr,
        &reader,
        "GET",
        "/_grid/v1/operator/policies/pricing",
        None,
    )
    .await;
    assert!(reply.json["candidate"].is_null(), "{}", reply.json);

    running.shutdown().await.expect("shutdown");
}

/// The price of a day of two cores, 4 GiB and 10 GiB on the quote endpoint.
async fn day_price(addr: SocketAddr) -> String {
    let body = json!({
        "resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
        "duration_secs": 86_400,
        "payment": "1000000000000",
    });
    let reply = http(addr, "POST", "/_grid/v1/quote", &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["price"].as_str().unwrap_or_default().to_owned()
}

fn pricing_settings(cpu_core_per_second: u32) -> Vec<u8> {
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policies/pricing-linear/fixtures/settings.json"),
    )
    .expect("fixture settings");
    let mut settings: Value = serde_json::from_str(&fixture).expect("JSON");
    settings["cpu_core_per_second"] = cpu_core_per_second.to_string().into();
    serde_json::to_vec(&settings).expect("JSON")
}

/// Captures every log line of the process (a global subscriber: the other test of this
/// binary logs into it too, which does not matter for what is asserted).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_loop_publish_shadow_promote_and_roll_back() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("grid_gateway=trace,grid=trace,tower_http=trace,axum=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let registry = TestRegistry::start();
    let client = Registry::new(RegistryOptions {
        plain_http: vec![registry.host.clone()],
        credentials: Credentials::default(),
    });
    let trusted = Signer::new(PrivateKeySigner::random());

    let root = tempfile::tempdir().expect("temp dir");
    let mut config = operator_config(root.path());
    config.policy.oci = grid_gateway::oci::follower::OciConfig {
        plain_http: vec![registry.host.clone()],
        trusted_signers: vec![trusted.address()],
        ..Default::default()
    };
    let running = start(config).await;
    let addr = running.addr;
    // v1 (the policy directory's): 2 cores × 10 + 4 GiB × 4 + 10 GiB × 1 per second.
    let v1_price = (46 * 86_400).to_string();
    let v2_price = (66 * 86_400).to_string();
    assert_eq!(day_price(addr).await, v1_price);

    // v2 published, signed.
    let reference = registry.reference("grid/pricing:v2");
    let wasm = builtin::builtin(World::Pricing)
        .expect("built-in")
        .wasm
        .to_vec();
    let pushed = client
        .push(
            &reference,
            "pricing",
            wasm,
            Some(pricing_settings(20)),
            Some(&trusted),
        )
        .await
        .expect("push");

    // Set as candidate by its reference: verified, then shadowed.
    let writer = operator_token(addr, WRITER_KEY).await;
    let reader = operator_token(addr, READER_KEY).await;
    let reply = as_op(
        addr,
        &writer,
        "PUT",
        "/_grid/v1/operator/policies/pricing/candidate",
        Some(json!({"reference": reference})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["artefact"]["digest"], pushed.digest.as_str());

    // Quotes still show v1's price; the disagreements show both answers.
    assert_eq!(day_price(addr).await, v1_price);
    let disagreements = "/_grid/v1/operator/disagreements?world=pricing&limit=5";
    let mut reply = as_op(addr, &reader, "GET", disagreements, None).await;
    for _ in 0..200 {
        if reply.json["disagreements"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        reply = as_op(addr, &reader, "GET", disagreements, None).await;
    }
    answered(&reply, "/_grid/v1/operator/disagreements", "get");
    let last = &reply.json["disagreements"][0];
    assert_eq!(last["kind"], "price_delta", "{last}");
    let text = last.to_string();
    assert!(
        text.contains(&v1_price) && text.contains(&v2_price),
        "{last}"
    );
    let state = as_op(
        addr,
        &reader,
        "GET",
        "/_grid/v1/operator/policies/pricing",
        None,
    )
    .await;
    assert!(
        state.json["shadow"]["disagreements"]["price_delta"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{}",
        state.json
    );
    let v1 = state.json["current"].clone();

    // Promote: the next quote is v2's.
    let reply = as_op(
        addr,
        &writer,
        "POST",
        "/_grid/v1/operator/policies/pricing/promote",
        None,
    )
    .await;
    answered(
        &reply,
        "/_grid/v1/operator/policies/{world}/promote",
        "post",
    );
    assert_eq!(day_price(addr).await, v2_price);
    let state = as_op(
        addr,
        &reader,
        "GET",
        "/_grid/v1/operator/policies/pricing",
        None,
    )
    .await;
    assert_eq!(
        state.json["current"]["artefact"]["digest"],
        pushed.digest.as_str()
    );
    assert_eq!(state.json["previous"][0]["sha256"], v1["sha256"]);

    // Roll back to v1 (same component, other settings: named by both digests).
    let version = format!(
        "{}:{}",
        v1["sha256"].as_str().expect("sha256"),
        v1["settings_sha256"].as_str().expect("settings sha256")
    );
    let reply = as_op(
        addr,
        &writer,
        "POST",
        "/_grid/v1/operator/policies/pricing/rollback",
        Some(json!({"version": version})),
    )
    .await;
    answered(
        &reply,
        "/_grid/v1/operator/policies/{world}/rollback",
        "post",
    );
    assert_eq!(day_price(addr).await, v1_price);
    running.shutdown().await.expect("shutdown");

    // Every change is logged with the operator's wallet as actor; its token never is.
    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let actor = format!("actor=\"operator:{}\"", address(WRITER_KEY));
    let actor_bare = format!("actor=operator:{}", address(WRITER_KEY));
    for change in [
        "policy candidate set",
        "action=\"promote\"",
        "action=\"rollback\"",
    ] {
        assert!(
            log.lines().any(|l| l.contains(change.trim_matches('"'))
                && (l.contains(&actor) || l.contains(&actor_bare))),
            "no {change} by {actor_bare} in the log:\n{log}"
        );
    }
    assert!(!log.contains(&writer), "the operator token was logged");
}
