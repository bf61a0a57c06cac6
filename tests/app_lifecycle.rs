//! An app's life on a serving node after its deploy: an extension and a cancel on chain
//! reach the node (the app torn down, its capacity freed), a restart removes the node's own
//! orphans and restores the entrances, and an app whose namespace is deleted behind the
//! node's back is failed with a stable code and counted.
//! Every part of the node is its own process; see support/mod.rs.

mod support;

use alloy::primitives::U256;
use serde_json::{Value, json};
use support::*;

/// `GET path` of the node's public API, expecting 200.
async fn public(gateway: &Gateway, path: &str) -> anyhow::Result<Value> {
    Api::new(&gateway.url)?.get(path).await?.expect(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_chain_tears_the_app_down_and_frees_the_capacity() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let gateway = Gateway::start(root.path(), "node", NODE_A_KEY, &chain, &cluster).await?;
    let app = App::start("web").await?;
    let order = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;
    let user = signed_in(&gateway, USER_KEY).await?;
    let namespace = deployed(&user, &order, &app).await?;
    let before = public(&gateway, "/_grid/v1/node").await?["capacity"].clone();
    assert_ne!(before["free"], before["total"], "{before}");

    // An extension on chain reaches the node's record of the order (and moves its end).
    let order_path = &format!("/_grid/v1/orders/{}", order.id);
    let old = public(&gateway, order_path).await?;
    order
        .wallet
        .extend(order.id.parse()?, 600, U256::from(1000))
        .await?;
    let (gw, old_ref) = (&gateway, &old);
    let extended = eventually("the extension to reach the node", move || async move {
        let now = public(gw, order_path).await.ok()?;
        (now["duration_secs"] != old_ref["duration_secs"]).then_some(now)
    })
    .await?;
    let old_duration = old["duration_secs"].as_u64().unwrap_or_default();
    assert_eq!(extended["duration_secs"], old_duration + 600, "{extended}");
    assert_eq!(
        extended["ends_at"].as_u64(),
        old["ends_at"].as_u64().map(|end| end + 600),
        "{extended}"
    );

    // The cancel: the app is deleted with the order's code, its namespace goes, the order
    // is cancelled in the node's record and its capacity is free again.
    order.cancel().await?;
    let status = app_status(&user, &order.id, "deleted").await?;
    assert_eq!(status["code"], "order_cancelled", "{status}");
    cluster.namespace_gone(&namespace).await?;
    assert_eq!(public(&gateway, order_path).await?["state"], "cancelled");
    let after = public(&gateway, "/_grid/v1/node").await?["capacity"].clone();
    assert_eq!(
        after["free"], after["total"],
        "the cancelled order's capacity is free"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_orphans_and_restores_entrances() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let mut gateway = Gateway::start(root.path(), "node", NODE_A_KEY, &chain, &cluster).await?;
    let app = App::start("web").await?;
    let order = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;
    let user = signed_in(&gateway, USER_KEY).await?;
    let own = deployed(&user, &order, &app).await?;

    // A namespace the gateway labelled (its identity) for an order it does not know, and
    // the chain does not either.
    let own_object = cluster
        .namespace(&own)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no namespace {own}"))?;
    let mut labels = own_object["metadata"]["labels"].clone();
    labels["grid.dev/order-id"] = json!("999");
    let orphan = match own.rsplit_once("-order-") {
        Some((prefix, _)) => format!("{prefix}-order-999"),
        None => anyhow::bail!("the namespace {own} is not named for its order"),
    };
    cluster
        .create_namespace(json!({"metadata": {"name": orphan, "labels": labels}}))
        .await?;
    // One someone else made, and one of a gateway without this node's identity: both must
    // be left alone.
    cluster
        .create_namespace(json!({"metadata": {"name": "team-a"}}))
        .await?;
    cluster
        .create_namespace(json!({"metadata": {"name": "grid-order-999", "labels": {
            "app.kubernetes.io/managed-by": "grid-gateway", "grid.dev/order-id": "999"}}}))
        .await?;

    gateway.stop().await?;
    gateway.launch().await?;
    let log = gateway.last_log();
    assert!(
        log.contains(&format!("orphans_deleted: [{orphan:?}]")),
        "the restart did not delete exactly the own orphan:\n{log}"
    );
    assert!(log.contains("restored: 1"), "{log}");
    cluster.namespace_gone(&orphan).await?;
    let names = cluster.namespaces().await?;
    for kept in ["team-a", "grid-order-999", own.as_str()] {
        assert!(names.iter().any(|n| n == kept), "{kept} is gone: {names:?}");
    }

    // The app answers through the restarted gateway.
    let user = signed_in(&gateway, USER_KEY).await?;
    assert_eq!(
        call_app(&user, "/again").await?,
        (200, "app web: GET /again".into())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_available_app_whose_namespace_vanishes_is_failed_with_a_code() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let gateway = Gateway::start(root.path(), "node", NODE_A_KEY, &chain, &cluster).await?;
    let app = App::start("a").await?;
    let order = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;
    let user = signed_in(&gateway, USER_KEY).await?;
    let namespace = deployed(&user, &order, &app).await?;
    const VANISHED: &str = "grid_gateway_apps_vanished_total";
    assert_eq!(gateway.metric(VANISHED).await?.as_deref(), Some("0"));

    // Someone deletes the namespace behind the gateway's back; the sweeper notices.
    cluster.delete_namespace(&namespace).await?;
    let status = app_status(&user, &order.id, "failed").await?;
    assert_eq!(status["code"], "app_vanished", "{status}");
    let reply = user.get("/x").await?;
    assert_eq!(
        (reply.status.as_u16(), &reply.json["error"]["code"]),
        (409, &json!("app_not_available")),
        "{}",
        reply.json
    );
    assert_eq!(gateway.metric(VANISHED).await?.as_deref(), Some("1"));

    // Later sweeps count it once: a second app vanishes (noticed by a sweep after the
    // first's), and the count is 2.
    let second = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;
    let second_ns = deployed(&user, &second, &App::start("b").await?).await?;
    cluster.delete_namespace(&second_ns).await?;
    let status = app_status(&user, &second.id, "failed").await?;
    assert_eq!(status["code"], "app_vanished", "{status}");
    assert_eq!(gateway.metric(VANISHED).await?.as_deref(), Some("2"));
    let first = app_status(&user, &order.id, "failed").await?;
    assert_eq!(first["code"], "app_vanished", "{first}");
    Ok(())
}
