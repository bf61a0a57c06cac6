//! A gateway killed (kill -9) and started on an older copy of its data_dir, copied before
//! the deploy, re-adopts the live app: it still answers after the restart, and once the
//! order is cancelled on chain the app is torn down.
//! Every part of the node is its own process; see support/mod.rs.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restored_from_an_older_data_dir_re_adopts_the_live_app() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let mut gateway = Gateway::start(root.path(), "node", NODE_A_KEY, &chain, &cluster).await?;
    let app = App::start("hello").await?;
    let order = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;

    // The backup: the order accepted, no app yet (taken with the gateway down, as an
    // operator's copy of a stopped node would be).
    gateway.kill9();
    let backup = root.path().join("backup");
    copy_dir(&gateway.data_dir(), &backup)?;
    gateway.launch().await?;

    let user = signed_in(&gateway, USER_KEY).await?;
    let namespace = deployed(&user, &order, &app).await?;
    assert_eq!(
        call_app(&user, "/hello").await?,
        (200, "app hello: GET /hello".into())
    );

    // A crash, and the older store put back.
    gateway.kill9();
    std::fs::remove_dir_all(gateway.data_dir())?;
    copy_dir(&backup, &gateway.data_dir())?;
    gateway.launch().await?;

    assert!(
        cluster.namespaces().await?.contains(&namespace),
        "the restored gateway deleted the live app's namespace {namespace}"
    );
    // The session was made after the backup: sign in again.
    let user = signed_in(&gateway, USER_KEY).await?;
    let app_now = app_status(&user, &order.id, "available").await?;
    assert_eq!(app_now["namespace"], namespace.as_str(), "{app_now}");
    assert_eq!(
        call_app(&user, "/hello").await?,
        (200, "app hello: GET /hello".into()),
        "the re-adopted app answers through the gateway"
    );

    // The order ends on chain: the re-adopted app is torn down like any other.
    order.cancel().await?;
    app_status(&user, &order.id, "deleted").await?;
    let ns = &namespace;
    let cluster = &cluster;
    eventually("the namespace to be deleted", move || async move {
        let namespaces = cluster.namespaces().await.ok()?;
        (!namespaces.contains(ns)).then_some(())
    })
    .await?;
    let (status, _) = call_app(&user, "/hello").await?;
    assert!(
        (400..500).contains(&status),
        "the app still answers after the cancel: {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_namespace_of_an_order_that_ended_while_down_is_removed_at_start()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let mut gateway = Gateway::start(root.path(), "node", NODE_A_KEY, &chain, &cluster).await?;
    let app = App::start("hello").await?;
    let order = order_accepted(&gateway, &chain.rpc, USER_KEY).await?;
    // The backup: the order accepted, no app yet.
    gateway.kill9();
    let backup = root.path().join("backup");
    copy_dir(&gateway.data_dir(), &backup)?;
    gateway.launch().await?;
    let user = signed_in(&gateway, USER_KEY).await?;
    let namespace = deployed(&user, &order, &app).await?;

    // The node goes down, the order ends on chain meanwhile, the node comes back on its
    // backup (which knows neither the app nor the cancel).
    gateway.kill9();
    order.cancel().await?;
    std::fs::remove_dir_all(gateway.data_dir())?;
    copy_dir(&backup, &gateway.data_dir())?;
    gateway.launch().await?;

    let log = gateway.last_log();
    assert!(
        log.contains(&format!("orphans_deleted: [{namespace:?}]")),
        "the ended order's namespace was not deleted at start:\n{log}"
    );
    assert!(log.contains("adopted: []"), "{log}");
    cluster.namespace_gone(&namespace).await?;
    Ok(())
}
