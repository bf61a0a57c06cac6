//! Quote (type 0) and accept (type 1) against a real anvil with the real reference
//! policies, through the router.

mod node_support;

use grid_gateway::orders::Hooks;
use node_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_then_accept_locks_the_order_once() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        config(dir.path(), &chain.anvil.url, chain.deployment.market),
        Hooks::default(),
    )
    .await;
    let id = good_order(&chain).await;

    let quote = post(&gw, "/_grid/v1/quote", json!({"order_id": id})).await;
    assert_eq!(quote.status, 200, "{}", quote.json);
    assert_eq!(quote.json["acceptable"], true);
    assert_eq!(quote.json["price"], PRICE_1H.to_string());
    assert_eq!(quote.json["reason"], serde_json::Value::Null);

    let provider = address(PROVIDER_KEY);
    let sent_before = chain.tx_count(provider).await;
    let accept = post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    assert_eq!(accept.json["status"], "active");
    assert_eq!(accept.json["order_id"], id);
    let tx = accept.json["tx_hash"].as_str().unwrap().to_owned();
    assert_eq!(chain_status(&chain, &id).await, ACTIVE, "Active on chain");
    let stored = gw.store.order(&id).unwrap().expect("stored");
    assert_eq!(stored.state, grid_gateway::store::OrderState::Active);

    // Again: same answer, no second transaction.
    let again = post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(again.json["tx_hash"], tx);
    assert_eq!(chain.tx_count(provider).await, sent_before + 1);

    // The node's record of it, for frontends: terms, state, end.
    let record = get(&gw, &format!("/_grid/v1/orders/{id}")).await;
    assert_eq!(record.status, 200, "{}", record.json);
    assert_eq!(record.json["state"], "active");
    assert_eq!(record.json["user"], address(USER_KEY).to_checksum(None));
    assert_eq!(record.json["payment"], PRICE_1H.to_string());
    assert_eq!(record.json["duration_secs"], 3600);
    assert_eq!(record.json["tx_hash"], tx);
    let start = record.json["start_time"]
        .as_u64()
        .expect("locked: has a start");
    assert_eq!(record.json["ends_at"], start + 3600);
    let unknown = get(&gw, "/_grid/v1/orders/999999").await;
    assert_eq!(unknown.status, 404, "{}", unknown.json);
    assert_eq!(unknown.json["error"]["code"], "order_not_accepted");
    let malformed = get(&gw, "/_grid/v1/orders/not-a-number").await;
    assert_eq!(malformed.status, 400, "{}", malformed.json);
    assert_eq!(malformed.json["error"]["code"], "invalid_order_id");

    // The order now holds capacity.
    let node = get(&gw, "/_grid/v1/node").await;
    assert_eq!(node.status, 200);
    assert_eq!(node.json["capacity"]["free"]["cpu_millis"], 4000 - 2000);
    assert_eq!(node.json["wallet"], address(PROVIDER_KEY).to_checksum(None));

    // The greet form reaches the same handlers.
    let greet = get(&gw, &format!("/greet?type=1&input={id}")).await;
    assert_eq!(greet.status, 200, "{}", greet.json);
    assert_eq!(greet.json["tx_hash"], tx);
    let greet = get(&gw, &format!("/greet?type=0&input={id}")).await;
    assert_eq!(greet.status, 200, "{}", greet.json);
    assert_eq!(greet.json["price"], PRICE_1H.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_code() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        config(dir.path(), &chain.anvil.url, chain.deployment.market),
        Hooks::default(),
    )
    .await;
    let me = address(PROVIDER_KEY);
    let payee = address(PAYEE_KEY);
    let accept = |id: String| {
        let gw = gw.clone();
        async move { post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await }
    };

    let other = create_order(
        &chain,
        address(STRANGER_KEY),
        payee,
        chain::resources(""),
        3600,
        PRICE_1H,
    )
    .await;
    accept(other).await.assert_error(403, "not_our_order");

    let wrong_payee = create_order(
        &chain,
        me,
        address(STRANGER_KEY),
        chain::resources(""),
        3600,
        PRICE_1H,
    )
    .await;
    let reply = accept(wrong_payee).await;
    reply.assert_error(403, "payee_rejected");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payee")
    );

    let cheap = create_order(&chain, me, payee, chain::resources(""), 3600, 1000).await;
    let quote = post(&gw, "/_grid/v1/quote", json!({"order_id": cheap})).await;
    assert_eq!(quote.status, 200);
    assert_eq!(quote.json["acceptable"], false);
    assert_eq!(quote.json["code"], "insufficient_payment");
    assert!(quote.json["reason"].is_string());
    accept(cheap.clone())
        .await
        .assert_error(402, "insufficient_payment");
    assert_eq!(chain_status(&chain, &cheap).await, CREATED, "still Created");

    let mut big = chain::resources("");
    big.cpuMillis = 8_000;
    let too_big = create_order(&chain, me, payee, big, 60, 10_000).await;
    accept(too_big)
        .await
        .assert_error(409, "insufficient_capacity");

    accept("999".into())
        .await
        .assert_error(404, "order_not_found");
    accept("abc".into())
        .await
        .assert_error(400, "invalid_order_id");
    post(&gw, "/_grid/v1/quote", json!({"order_id": "999"}))
        .await
        .assert_error(404, "order_not_found");

    // A cancelled order can no longer be accepted.
    let cancelled = good_order(&chain).await;
    chain
        .market(USER_KEY)
        .cancel(cancelled.parse().unwrap())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    accept(cancelled).await.assert_error(409, "order_closed");

    // Malformed bodies are API errors too.
    post(
        &gw,
        "/_grid/v1/quote",
        json!({"order_id": "1", "payment": "3"}),
    )
    .await
    .assert_error(400, "bad_request");
    post(&gw, "/_grid/v1/quote", json!({"bogus": 1}))
        .await
        .assert_error(400, "bad_request");
    post(
        &gw,
        "/_grid/v1/quote",
        json!({"resources": {"cpu": "lots", "memory": "1Gi"}, "duration_secs": 3600, "payment": "1"}),
    )
    .await
    .assert_error(400, "bad_request");
    let huge = "x".repeat(100 << 10);
    post(
        &gw,
        "/_grid/v1/auth/login",
        json!({"message": huge, "signature": "0x"}),
    )
    .await
    .assert_error(413, "payload_too_large");
    get(&gw, "/_grid/v1/nothing")
        .await
        .assert_error(404, "not_found");
    get(&gw, "/greet?type=7")
        .await
        .assert_error(400, "bad_request");
    // None of the refusals took capacity.
    assert_eq!(gw.store.orders().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_store_and_lock_ends_in_one_lock_after_restart() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    let id = good_order(&chain).await;
    let provider = address(PROVIDER_KEY);
    let sent_before = chain.tx_count(provider).await;
    {
        let gw = gateway(
            config.clone(),
            Hooks {
                fail_after_store: true,
            },
        )
        .await;
        post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({}))
            .await
            .assert_error(500, "injected_fault");
        assert_eq!(
            gw.store.order(&id).unwrap().unwrap().state,
            grid_gateway::store::OrderState::Accepted
        );
        assert_eq!(chain_status(&chain, &id).await, CREATED, "not locked yet");
        // Dropped here, as if killed: nothing but the store survives.
    }
    let gw = gateway(config, Hooks::default()).await;
    let accept = post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    assert_eq!(chain_status(&chain, &id).await, ACTIVE);
    let again = post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(again.json["tx_hash"], accept.json["tx_hash"]);
    assert_eq!(
        chain.tx_count(provider).await,
        sent_before + 1,
        "one lock transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_down_is_chain_unavailable_but_inline_quotes_work() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", chain::free_port());
    let mut config = config(
        dir.path(),
        &dead,
        alloy::primitives::Address::repeat_byte(7),
    );
    config.http.chain_timeout_ms = 3_000;
    let gw = gateway(config, Hooks::default()).await;

    post(&gw, "/_grid/v1/orders/1/accept", json!({}))
        .await
        .assert_error(503, "chain_unavailable");
    post(&gw, "/_grid/v1/quote", json!({"order_id": "1"}))
        .await
        .assert_error(503, "chain_unavailable");

    let inline = post(
        &gw,
        "/_grid/v1/quote",
        json!({"resources": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "gpu": 0},
               "duration_secs": 3600, "payment": PRICE_1H.to_string()}),
    )
    .await;
    assert_eq!(inline.status, 200, "{}", inline.json);
    assert_eq!(inline.json["acceptable"], true);
    assert_eq!(inline.json["price"], PRICE_1H.to_string());

    let ready = get(&gw, "/_grid/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["chain"], false);
    assert_eq!(ready.json["policies"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pricing_policy_changes_the_next_quote() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", chain::free_port());
    let config = config(
        dir.path(),
        &dead,
        alloy::primitives::Address::repeat_byte(7),
    );
    let policies = config.policy.dir.clone().unwrap();
    let running = grid_gateway::server::start(
        grid_gateway::config::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        },
        Hooks::default(),
    )
    .await
    .unwrap();
    let gw = running.gateway.clone();
    let body = json!({"resources": {"cpu": "1", "memory": "0"}, "duration_secs": 100, "payment": "1000000"});
    let before = post(&gw, "/_grid/v1/quote", body.clone()).await;
    assert_eq!(before.json["price"], "1000", "{}", before.json);

    std::fs::write(
        policies.join("pricing.settings.json"),
        r#"{"cpu_core_per_second":"25","memory_gib_per_second":"0","storage_gib_per_second":"0","min_duration_secs":1,"max_duration_secs":86400}"#,
    )
    .unwrap();
    // The watcher picks the change up on its own; wait for it without asserting on time.
    let mut price = String::new();
    for _ in 0..600 {
        let reply = post(&gw, "/_grid/v1/quote", body.clone()).await;
        price = reply.json["price"].as_str().unwrap_or_default().to_owned();
        if price != "1000" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(price, "2500");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_cannot_oversell_capacity() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        config(dir.path(), &chain.anvil.url, chain.deployment.market),
        Hooks::default(),
    )
    .await;
    // Two orders of 3 of the node's 4 cores: only one fits.
    let mut three_cores = chain::resources("");
    three_cores.cpuMillis = 3_000;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            create_order(
                &chain,
                address(PROVIDER_KEY),
                address(PAYEE_KEY),
                three_cores.clone(),
                600,
                100_000,
            )
            .await,
        );
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let gw = gw.clone();
            let path = format!("/_grid/v1/orders/{id}/accept");
            tokio::spawn(async move { post(&gw, &path, json!({})).await })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        let reply = t.await.unwrap();
        codes.push(if reply.status == 200 {
            "ok".to_owned()
        } else {
            reply.code().to_owned()
        });
    }
    codes.sort();
    assert_eq!(codes, vec!["insufficient_capacity", "ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_after_a_crash_releases_its_reservation() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    let id = good_order(&chain).await;
    {
        let gw = gateway(
            config.clone(),
            Hooks {
                fail_after_store: true,
            },
        )
        .await;
        post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({}))
            .await
            .assert_error(500, "injected_fault");
    }
    chain
        .market(USER_KEY)
        .cancel(id.parse().unwrap())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let gw = gateway(config, Hooks::default()).await;
    let node = get(&gw, "/_grid/v1/node").await;
    assert_eq!(
        node.json["capacity"]["free"]["cpu_millis"], 2000,
        "reserved"
    );
    post(&gw, &format!("/_grid/v1/orders/{id}/accept"), json!({}))
        .await
        .assert_error(409, "order_closed");
    let node = get(&gw, "/_grid/v1/node").await;
    assert_eq!(
        node.json["capacity"]["free"]["cpu_millis"], 4000,
        "released"
    );
    assert!(gw.store.order(&id).unwrap().is_none());
}
