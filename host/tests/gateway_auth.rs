//! Login (type 2) and sessions: SIWE against the gateway's nonce, the authorization
//! policy's decision, the encrypted cookie and the bearer token, rotation and revocation.

mod node_support;

use std::sync::Arc;

use axum::http::header;
use grid_gateway::gateway::Gateway;
use grid_gateway::orders::Hooks;
use node_support::*;
use serde_json::json;

/// A gateway on anvil where the user owns an accepted (Active) order.
async fn with_active_order(chain: &Chain, root: &std::path::Path) -> Arc<Gateway> {
    let gw = gateway(
        config(root, &chain.anvil.url, chain.deployment.market),
        Hooks::default(),
    )
    .await;
    let id = good_order(chain).await;
    let accept = post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    gw
}

async fn session_with(gw: &Arc<Gateway>, name: header::HeaderName, value: &str) -> Reply {
    get_with(gw, "/_grid/v1/auth/session", name, value).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_cookie_and_token_that_both_authenticate_until_logout() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let user = address(USER_KEY);

    let message = Siwe::new(user, &nonce(&gw).await).text();
    let reply = login(&gw, USER_KEY, &message).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["address"], user.to_string().to_lowercase());
    assert!(reply.json["expires_at"].as_u64().unwrap() > now());
    let token = reply.json["token"].as_str().unwrap().to_owned();
    let cookie = reply.session_cookie();
    // The cookie carries the token, percent-encoded (it is base64).
    let decoded = cookie
        .replace("%2F", "/")
        .replace("%2B", "+")
        .replace("%3D", "=");
    assert_eq!(decoded, format!("grid_session={token}"));
    let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");

    let by_cookie = session_with(&gw, header::COOKIE, &cookie).await;
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.json);
    assert_eq!(by_cookie.json["address"], reply.json["address"]);
    let by_bearer = session_with(&gw, header::AUTHORIZATION, &format!("Bearer {token}")).await;
    assert_eq!(by_bearer.status, 200, "{}", by_bearer.json);

    // The same nonce cannot log in twice.
    login(&gw, USER_KEY, &message)
        .await
        .assert_error(401, "invalid_nonce");

    // Logout ends the session for the cookie and the token alike.
    let logout = send(
        &gw,
        axum::http::Request::post("/_grid/v1/auth/logout")
            .header(header::COOKIE, &cookie)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(logout.status, 200, "{}", logout.json);
    session_with(&gw, header::AUTHORIZATION, &format!("Bearer {token}"))
        .await
        .assert_error(401, "session_revoked");
    get(&gw, "/_grid/v1/auth/session")
        .await
        .assert_error(401, "unauthenticated");

    // The greet form logs in too.
    let message = Siwe::new(user, &nonce(&gw).await).text();
    let sig = sign(USER_KEY, &message);
    let path = format!("/greet?type=2&message={}&sig={sig}", urlencode(&message));
    let greet = get(&gw, &path).await;
    assert_eq!(greet.status, 200, "{}", greet.json);
    assert!(greet.json["token"].is_string());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_failure_has_its_status_and_code() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let user = address(USER_KEY);

    let mut wrong_domain = Siwe::new(user, &nonce(&gw).await);
    wrong_domain.domain = "evil.example".into();
    login(&gw, USER_KEY, &wrong_domain.text())
        .await
        .assert_error(401, "wrong_domain");

    let mut wrong_chain = Siwe::new(user, &nonce(&gw).await);
    wrong_chain.chain_id = 1;
    login(&gw, USER_KEY, &wrong_chain.text())
        .await
        .assert_error(401, "wrong_chain");

    let mut expired = Siwe::new(user, &nonce(&gw).await);
    expired.issued_at = now() - 7200;
    expired.expiration = Some(now() - 3600);
    login(&gw, USER_KEY, &expired.text())
        .await
        .assert_error(401, "message_expired");

    let mut future = Siwe::new(user, &nonce(&gw).await);
    future.issued_at = now() + 3600;
    future.expiration = None;
    login(&gw, USER_KEY, &future.text())
        .await
        .assert_error(401, "message_not_yet_valid");

    login(&gw, USER_KEY, &Siwe::new(user, "neverissued123").text())
        .await
        .assert_error(401, "invalid_nonce");

    // Signed by another key than the message's address.
    let message = Siwe::new(user, &nonce(&gw).await).text();
    post(
        &gw,
        "/_grid/v1/auth/login",
        json!({"message": message, "signature": sign(STRANGER_KEY, &message)}),
    )
    .await
    .assert_error(401, "invalid_signature");
    // The failed attempt did not burn the nonce: the real user can still use it.
    assert_eq!(login(&gw, USER_KEY, &message).await.status, 200);

    post(
        &gw,
        "/_grid/v1/auth/login",
        json!({"message": "hello, let me in", "signature": sign(USER_KEY, "hello, let me in")}),
    )
    .await
    .assert_error(400, "malformed_message");
    let message = Siwe::new(user, &nonce(&gw).await).text();
    post(
        &gw,
        "/_grid/v1/auth/login",
        json!({"message": message, "signature": "0x1234"}),
    )
    .await
    .assert_error(400, "malformed_message");

    // Texts the grammar's parser reads but that are not its message's one rendering: the
    // checked fields would not be the text the wallet showed and signed (a chain id with a
    // sign or leading zeros reads as another spelling of a number). Each is refused, signed
    // by the right key or not, and the nonce stays usable.
    let message = Siwe::new(user, &nonce(&gw).await).text();
    let chain_line = format!("Chain ID: {CHAIN_ID}");
    for respelled in [
        format!("Chain ID: 0{CHAIN_ID}"),
        format!("Chain ID: +{CHAIN_ID}"),
    ] {
        let text = message.replace(&chain_line, &respelled);
        assert_ne!(text, message, "the test's message has {chain_line:?}");
        login(&gw, USER_KEY, &text)
            .await
            .assert_error(400, "malformed_message");
    }
    assert_eq!(login(&gw, USER_KEY, &message).await.status, 200);

    // A valid sign-in from an address with no active order: the policy says no.
    let stranger = address(STRANGER_KEY);
    let message = Siwe::new(stranger, &nonce(&gw).await).text();
    let denied = login(&gw, STRANGER_KEY, &message).await;
    denied.assert_error(403, "session_denied");
    assert!(
        denied.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no active order")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_with_one_nonce_give_one_session() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let message = Siwe::new(address(USER_KEY), &nonce(&gw).await).text();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let gw = gw.clone();
            let message = message.clone();
            tokio::spawn(async move { login(&gw, USER_KEY, &message).await.status.as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 401, 401, 401, 401, 401, 401, 401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_rotated_cookies() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let user = address(USER_KEY);
    let reply = login(&gw, USER_KEY, &Siwe::new(user, &nonce(&gw).await).text()).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let token = reply.json["token"].as_str().unwrap().to_owned();

    // Tampered: one character of the sealed value changed.
    let mut tampered: Vec<char> = token.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    session_with(&gw, header::COOKIE, &format!("grid_session={tampered}"))
        .await
        .assert_error(401, "invalid_session");

    // Sealed with a key the node does not have.
    let session_id = gw.store.orders().unwrap().len().to_string();
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&cookie::Key::generate())
        .add(cookie::Cookie::new("grid_session", session_id));
    let foreign = jar.get("grid_session").unwrap().value().to_owned();
    session_with(&gw, header::COOKIE, &format!("grid_session={foreign}"))
        .await
        .assert_error(401, "invalid_session");

    // A value sealed under another cookie name does not open under ours (name bound).
    let mut jar = cookie::CookieJar::new();
    let key = grid_gateway::auth::KeyRing::load(&gw.config.session, &gw.config.data_dir)
        .unwrap()
        .current;
    jar.private_mut(&key)
        .add(cookie::Cookie::new("other", "whatever"));
    let moved = jar.get("other").unwrap().value().to_owned();
    session_with(&gw, header::COOKIE, &format!("grid_session={moved}"))
        .await
        .assert_error(401, "invalid_session");

    // Expired on the server: a session whose record ended.
    gw.store
        .put_session(&grid_gateway::store::SessionRecord {
            id: "0123456789abcdef".into(),
            address: grid_policy_sdk::Address(user.0.0),
            expires_at: now() - 1,
            scopes: None,
            created_at: now() - 100,
            revoked: false,
        })
        .unwrap();
    let expired = gw.auth.seal("0123456789abcdef");
    session_with(&gw, header::AUTHORIZATION, &format!("Bearer {expired}"))
        .await
        .assert_error(401, "session_expired");

    // Rotation: restart with a new key, the old one listed as previous.
    let old_key = base64_key(&key);
    let mut config = gw.config.clone();
    drop(gw);
    let new_key = base64_key(&cookie::Key::generate());
    config.session.key = Some(new_key.clone());
    config.session.old_keys = vec![old_key];
    let rotated = gateway(config.clone(), Hooks::default()).await;
    let ok = session_with(&rotated, header::AUTHORIZATION, &format!("Bearer {token}")).await;
    assert_eq!(ok.status, 200, "old sessions stay valid: {}", ok.json);
    // New logins are sealed with the new key.
    let fresh = login(
        &rotated,
        USER_KEY,
        &Siwe::new(user, &nonce(&rotated).await).text(),
    )
    .await;
    let fresh_token = fresh.json["token"].as_str().unwrap().to_owned();
    // Once the old key is dropped, its sessions end; the new ones live on.
    config.session.old_keys.clear();
    drop(rotated);
    let later = gateway(config, Hooks::default()).await;
    session_with(&later, header::AUTHORIZATION, &format!("Bearer {token}"))
        .await
        .assert_error(401, "invalid_session");
    let ok = session_with(
        &later,
        header::AUTHORIZATION,
        &format!("Bearer {fresh_token}"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
}

fn base64_key(key: &cookie::Key) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key.master())
}

alloy::sol!(
    #[sol(rpc)]
    TestWallet1271,
    "../contracts/out/TestWallet1271.json"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_wallet_signs_in_through_eip1271() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    // A contract wallet owned by the stranger's key.
    let wallet = TestWallet1271::deploy(chain.wallet_provider(STRANGER_KEY), address(STRANGER_KEY))
        .await
        .expect("deploy the test wallet");
    let wallet = *wallet.address();

    // Signed by the owner: the wallet vouches for it, so the sign-in is verified and the
    // authorization policy decides (the wallet has no order here, so: denied).
    let message = Siwe::new(wallet, &nonce(&gw).await).text();
    let reply = login(&gw, STRANGER_KEY, &message).await;
    reply.assert_error(403, "session_denied");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&wallet.to_string().to_lowercase()),
        "{}",
        reply.json
    );

    // Signed by someone else: the wallet says no.
    let message = Siwe::new(wallet, &nonce(&gw).await).text();
    login(&gw, USER_KEY, &message)
        .await
        .assert_error(401, "invalid_signature");
}

// ---- nonces: sealed, stateless until used, rate limited per client ----

/// A config with no chain (key signatures only; nothing in the background writes the
/// store), listening on a free loopback port.
fn chainless_config(root: &std::path::Path) -> grid_gateway::config::Config {
    let mut config = config(root, "http://127.0.0.1:9", alloy::primitives::Address::ZERO);
    config.chain = None;
    config.auth.chain_id = Some(CHAIN_ID);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config
}

fn sha256_of(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

async fn nonce_over_http(addr: std::net::SocketAddr) -> String {
    let reply = http(addr, "GET", "/_grid/v1/auth/nonce", &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["nonce"].as_str().unwrap().to_owned()
}

async fn login_over_http(addr: std::net::SocketAddr, key: &str, message: &str) -> Reply {
    http(
        addr,
        "POST",
        "/_grid/v1/auth/login",
        &[],
        Some(json!({"message": message, "signature": sign(key, message)})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_nonces_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chainless_config(dir.path());
    config.auth.nonce_rate_per_sec = 0.0;
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let file = running.gateway.config.data_dir.join("gateway.redb");
    let before = sha256_of(&file);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        seen.insert(nonce_over_http(running.addr).await);
    }
    assert_eq!(seen.len(), 300, "every nonce is new");
    assert_eq!(sha256_of(&file), before, "the store file did not change");
    assert_eq!(running.gateway.store.used_nonces().unwrap(), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_tampered_nonces_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chainless_config(dir.path());
    // Expiry is in whole seconds, so a 1 s nonce may live only a moment: 2 s leaves the
    // control logins below at least one whole second.
    config.auth.nonce_ttl_secs = 2;
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let addr = running.addr;
    let stranger = address(STRANGER_KEY);

    // Control: a good nonce gets past the nonce check to the policy (no order: denied).
    let good = nonce_over_http(addr).await;
    let message = Siwe::new(stranger, &good).text();
    login_over_http(addr, STRANGER_KEY, &message)
        .await
        .assert_error(403, "session_denied");

    // One digit of a nonce changed: refused, and the real one stays usable.
    let nonce = nonce_over_http(addr).await;
    let mut chars: Vec<char> = nonce.chars().collect();
    let i = chars.len() - 1;
    chars[i] = if chars[i] == '0' { '1' } else { '0' };
    let tampered: String = chars.into_iter().collect();
    for forged in [tampered.as_str(), "neverissued123"] {
        login_over_http(addr, STRANGER_KEY, &Siwe::new(stranger, forged).text())
            .await
            .assert_error(401, "invalid_nonce");
    }
    login_over_http(addr, STRANGER_KEY, &Siwe::new(stranger, &nonce).text())
        .await
        .assert_error(403, "session_denied");

    // Past its time to live.
    let nonce = nonce_over_http(addr).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    login_over_http(addr, STRANGER_KEY, &Siwe::new(stranger, &nonce).text())
        .await
        .assert_error(401, "invalid_nonce");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_is_single_use_across_a_restart() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let message = Siwe::new(address(USER_KEY), &nonce(&gw).await).text();
    assert_eq!(login(&gw, USER_KEY, &message).await.status, 200);
    let config = gw.config.clone();
    drop(gw);
    let restarted = gateway(config, Hooks::default()).await;
    login(&restarted, USER_KEY, &message)
        .await
        .assert_error(401, "invalid_nonce");
    // A nonce issued before the restart and not used still works after it.
    let config = restarted.config.clone();
    let pending = Siwe::new(address(USER_KEY), &nonce(&restarted).await).text();
    drop(restarted);
    let again = gateway(config, Hooks::default()).await;
    assert_eq!(login(&again, USER_KEY, &pending).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_issuance_is_limited_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chainless_config(dir.path());
    config.auth.nonce_burst = 3;
    config.auth.nonce_rate_per_sec = 0.5;
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    for _ in 0..3 {
        nonce_over_http(running.addr).await;
    }
    let limited = http(running.addr, "GET", "/_grid/v1/auth/nonce", &[], None).await;
    limited.assert_error(429, "rate_limited");
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    // Other endpoints are not limited by it.
    let health = http(running.addr, "GET", "/_grid/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    nonce_over_http(running.addr).await;
    running.shutdown().await.unwrap();
}

// ---- the smaller sign-in items ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_uri_must_be_on_the_domain_or_a_configured_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chainless_config(dir.path());
    config.http.cors_origins = vec!["https://app.market.test".into()];
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let addr = running.addr;
    let stranger = address(STRANGER_KEY);
    for uri in [
        "https://evil.example/",
        "https://gateway.test@evil.example/",
        "https://gateway.test.evil.example/",
        "ftp://gateway.test/",
        "https://app.market.test:8443/",
        "urn:gateway.test",
    ] {
        let mut message = Siwe::new(stranger, &nonce_over_http(addr).await);
        message.uri = uri.into();
        let reply = login_over_http(addr, STRANGER_KEY, &message.text()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "wrong_uri"),
            "{uri}: {}",
            reply.json
        );
    }
    // Accepted URIs reach the policy (no order here: denied).
    for uri in [
        "https://gateway.test/",
        "http://GATEWAY.test/sign-in?x=1",
        "https://app.market.test/login",
    ] {
        let mut message = Siwe::new(stranger, &nonce_over_http(addr).await);
        message.uri = uri.into();
        let reply = login_over_http(addr, STRANGER_KEY, &message.text()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (403, "session_denied"),
            "{uri}: {}",
            reply.json
        );
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_ends_every_session_of_the_wallet_and_no_other() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = with_active_order(&chain, dir.path()).await;
    let user = address(USER_KEY);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let reply = login(&gw, USER_KEY, &Siwe::new(user, &nonce(&gw).await).text()).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        tokens.push(reply.json["token"].as_str().unwrap().to_owned());
    }
    // Another wallet's session.
    gw.store
        .put_session(&grid_gateway::store::SessionRecord {
            id: "00000000000000000000000000000abc".into(),
            address: grid_policy_sdk::Address(address(STRANGER_KEY).0.0),
            expires_at: now() + 3600,
            scopes: None,
            created_at: now(),
            revoked: false,
        })
        .unwrap();
    let other = gw.auth.seal("00000000000000000000000000000abc");

    post(&gw, "/_grid/v1/auth/logout-all", json!({}))
        .await
        .assert_error(401, "unauthenticated");
    let ended = send(
        &gw,
        axum::http::Request::post("/_grid/v1/auth/logout-all")
            .header(header::AUTHORIZATION, format!("Bearer {}", tokens[0]))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ended.status, 200, "{}", ended.json);
    assert_eq!(
        ended.json,
        json!({"address": user.to_string().to_lowercase(), "sessions_ended": 2})
    );
    for token in &tokens {
        session_with(&gw, header::AUTHORIZATION, &format!("Bearer {token}"))
            .await
            .assert_error(401, "session_revoked");
    }
    let ok = session_with(&gw, header::AUTHORIZATION, &format!("Bearer {other}")).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    // Still revoked after a restart.
    let config = gw.config.clone();
    drop(gw);
    let restarted = gateway(config, Hooks::default()).await;
    session_with(
        &restarted,
        header::AUTHORIZATION,
        &format!("Bearer {}", tokens[1]),
    )
    .await
    .assert_error(401, "session_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_trap_answers_a_stable_message_without_the_runtime_detail() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chainless_config(dir.path());
    // A trap, not a deadline: a loaded machine must not turn one into the other.
    config.policy.limits.deadline = std::time::Duration::from_secs(5);
    config.policy.limits.load_deadline = std::time::Duration::from_secs(5);
    let policies = config.policy.dir.clone().unwrap();
    std::fs::copy(env!("GRID_WASM_HOSTILE"), policies.join("pricing.wasm")).unwrap();
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let reply = http(
        running.addr,
        "POST",
        "/_grid/v1/quote",
        &[],
        Some(
            json!({"resources": {"cpu": "1", "memory": "1Gi", "gpu": 1, "gpu_model": "trap"},
                    "duration_secs": 3600, "payment": "1"}),
        ),
    )
    .await;
    reply.assert_error(503, "policy_failed");
    assert_eq!(
        reply.json["error"]["message"],
        "the node's policy failed on this request; the operator's log has the detail"
    );
    running.shutdown().await.unwrap();
}

/// Captures every log line of the process (a global subscriber: this test binary's other
/// tests log into it too, which does not matter for what is asserted).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greet_login_is_never_logged_with_its_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("grid_gateway=trace,tower_http=trace,axum=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = grid_gateway::server::start(config, Hooks::default())
        .await
        .unwrap();
    let addr = running.addr;
    let id = good_order(&chain).await;
    let accept = http(
        addr,
        "POST",
        &format!("/_grid/v1/orders/{id}/accept"),
        &[],
        Some(json!({})),
    )
    .await;
    assert_eq!(accept.status, 200, "{}", accept.json);

    let nonce = nonce_over_http(addr).await;
    let message = Siwe::new(address(USER_KEY), &nonce).text();
    let sig = sign(USER_KEY, &message);
    let path = format!("/greet?type=2&message={}&sig={sig}", urlencode(&message));
    let greet = http(addr, "GET", &path, &[], None).await;
    assert_eq!(greet.status, 200, "{}", greet.json);
    let token = greet.json["token"].as_str().unwrap().to_owned();
    // A refused one too (the error path logs).
    let refused = http(addr, "GET", &path, &[], None).await;
    refused.assert_error(401, "invalid_nonce");
    running.shutdown().await.unwrap();

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("/greet"), "the requests were logged: {log}");
    let sig_hex = sig.trim_start_matches("0x");
    for secret in [sig_hex, token.as_str(), nonce.as_str(), "type=2", "sig="] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}
