//! Two gateways (own data_dir, own wallet: anvil accounts 2 and 5) on one fake cluster,
//! each with a deployed app: restarting either (kill -9, then start) deletes nothing of the
//! other's, and both apps still answer through their own gateways.
//! Every part of the node is its own process; see support/mod.rs.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_either_of_two_gateways_on_one_cluster_deletes_nothing_of_the_other()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let chain = Chain::start(root.path()).await?;
    let cluster = FakeCluster::start(root.path()).await?;
    let mut a = Gateway::start(root.path(), "a", NODE_A_KEY, &chain, &cluster).await?;
    let mut b = Gateway::start(root.path(), "b", NODE_B_KEY, &chain, &cluster).await?;
    let (app_a, app_b) = (App::start("a").await?, App::start("b").await?);

    let order_a = order_accepted(&a, &chain.rpc, USER_KEY).await?;
    let order_b = order_accepted(&b, &chain.rpc, USER_KEY).await?;
    let user_a = signed_in(&a, USER_KEY).await?;
    let user_b = signed_in(&b, USER_KEY).await?;
    let ns_a = deployed(&user_a, &order_a, &app_a).await?;
    let ns_b = deployed(&user_b, &order_b, &app_b).await?;
    assert_ne!(ns_a, ns_b, "two gateways' namespaces must not meet");

    // Both apps, each through its own gateway, before and after each restart.
    let both_answer = async |when: &str| -> anyhow::Result<()> {
        let namespaces = cluster.namespaces().await?;
        for ns in [&ns_a, &ns_b] {
            assert!(
                namespaces.contains(ns),
                "{when}: namespace {ns} is gone: {namespaces:?}"
            );
        }
        for (user, order, name) in [(&user_a, &order_a, "a"), (&user_b, &order_b, "b")] {
            let app = user
                .get(&format!("/_grid/v1/apps/{}", order.id))
                .await?
                .expect(200)?;
            assert_eq!(app["status"], "available", "{when}: app {name}: {app}");
            let (status, body) = call_app(user, "/hello").await?;
            assert_eq!(
                (status, body.as_str()),
                (200, format!("app {name}: GET /hello").as_str()),
                "{when}: app {name} through gateway {name}"
            );
        }
        Ok(())
    };
    both_answer("both deployed").await?;

    a.restart().await?;
    both_answer("after gateway a restarted").await?;
    b.restart().await?;
    both_answer("after gateway b restarted").await?;

    // Reconciliation ran on each start (launch waits for it) and deleted nothing.
    for gateway in [&a, &b] {
        let logs = gateway.logs();
        assert!(
            !logs.contains("orphans_deleted: [\""),
            "gateway {} deleted namespaces as orphans:\n{logs}",
            gateway.name
        );
    }
    Ok(())
}
