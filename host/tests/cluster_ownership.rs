//! Who owns what in a shared cluster: two gateways (own data directory, own wallet) on one
//! fake API server leave each other's apps alone; a gateway restarted on an older copy of
//! its store re-adopts the apps deployed since while their orders are active on chain.
//! Checked here through the gateway's own API (reconciliation reports, labels, field
//! managers); the same journeys with every part a process, and the ended-order and
//! vanished-app cases, are in `tests/` (crate `grid-node-tests`).

mod apps_support;
mod node_support;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use apps_support::*;
use axum::body::Body;
use axum::http::{Request, header};
use grid_gateway::gateway::Gateway;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use node_support::*;
use serde_json::json;

/// Anvil's sixth dev account: the second node's wallet.
const OTHER_PROVIDER_KEY: &str =
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

/// `POST /_grid/v1/apps` on `gw` as `cookie`.
async fn deploy_on(gw: &Arc<Gateway>, cookie: &str, order: &str, url: &str) -> Reply {
    send(
        gw,
        Request::post("/_grid/v1/apps")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"order_id": order, "manifest_url": url}).to_string(),
            ))
            .unwrap(),
    )
    .await
}

/// `GET /_grid/v1/apps/{order}` on `gw` as `cookie`.
async fn status_on(gw: &Arc<Gateway>, cookie: &str, order: &str) -> Reply {
    send(
        gw,
        Request::get(format!("/_grid/v1/apps/{order}"))
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// A request to the user's app through `gw`.
async fn call_app(gw: &Arc<Gateway>, cookie: &str, path: &str) -> Reply {
    send(
        gw,
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// Deploys a real app to `order` on `gw` and waits until it is available; returns the
/// app's namespace.
async fn deploy_available(
    gw: &Arc<Gateway>,
    files: &Files,
    cookie: &str,
    order: &str,
    name: &'static str,
) -> String {
    let app = start_app(name).await;
    let url = files.put(
        &format!("{name}-{order}.yaml"),
        manifest(app.port(), "500m", "256Mi"),
    );
    let reply = deploy_on(gw, cookie, order, &url).await;
    assert_eq!(reply.status, 202, "{}", reply.json);
    let namespace = reply.json["namespace"].as_str().unwrap().to_owned();
    let mut status = status_on(gw, cookie, order).await;
    for _ in 0..300 {
        if status.json["status"] != "deploying" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = status_on(gw, cookie, order).await;
    }
    assert_eq!(status.json["status"], "available", "{}", status.json);
    namespace
}

async fn namespaces(fake: &grid_fake_cluster::FakeCluster) -> Vec<String> {
    Api::<Namespace>::all(fake.in_memory())
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

async fn labels_of(
    fake: &grid_fake_cluster::FakeCluster,
    namespace: &str,
) -> std::collections::BTreeMap<String, String> {
    Api::<Namespace>::all(fake.in_memory())
        .get(namespace)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default()
}

/// A second node on `node`'s chain and cluster: its own data directory and wallet, an order
/// of the user's addressed to it, accepted, and the user signed in there.
async fn second_node(node: &Node) -> (tempfile::TempDir, Arc<Gateway>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("node.key"), OTHER_PROVIDER_KEY).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("node.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let gw = Node::gateway_in(&node.chain, &node.fake, dir.path(), true).await;
    let order = create_order(
        &node.chain,
        address(OTHER_PROVIDER_KEY),
        address(PAYEE_KEY),
        node_support::chain::resources(""),
        3600,
        PRICE_1H,
    )
    .await;
    let accept = post(&gw, &format!("/_grid/v1/orders/{order}/accept"), json!({})).await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    let cookie = sign_in(&gw, USER_KEY).await;
    (dir, gw, order, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_cluster_delete_nothing_of_each_other() {
    let node = Node::start(true).await;
    let first_ns = deploy_available(&node.gw, &node.files, &node.cookie, &node.order, "a").await;

    // A second node starts on the same cluster: its start deletes nothing of the first's.
    let (_dir, second, second_order, second_cookie) = second_node(&node).await;
    let report = second.apps.lifecycle().reconcile().await.unwrap();
    assert!(report.orphans_deleted.is_empty(), "{report:?}");
    assert!(namespaces(&node.fake).await.contains(&first_ns));
    let first = status_on(&node.gw, &node.cookie, &node.order).await;
    assert_eq!(first.json["status"], "available", "{}", first.json);
    assert_eq!(
        call_app(&node.gw, &node.cookie, "/x").await.json,
        "app a: GET /x"
    );

    // The second deploys its own app; the names of the two nodes' namespaces cannot meet,
    // and each carries its node's identity.
    let second_ns =
        deploy_available(&second, &node.files, &second_cookie, &second_order, "b").await;
    assert_ne!(first_ns, second_ns);
    let prefix = |ns: &str| ns.rsplit_once("-order-").map(|(p, _)| p.to_owned());
    assert_ne!(
        prefix(&first_ns),
        prefix(&second_ns),
        "{first_ns} {second_ns}"
    );
    assert!(first_ns.len() <= 63 && second_ns.len() <= 63);
    let (a, b) = (
        labels_of(&node.fake, &first_ns).await,
        labels_of(&node.fake, &second_ns).await,
    );
    let hex = |a: alloy::primitives::Address| a.to_string().to_lowercase()[2..].to_owned();
    assert_eq!(a.get("grid.dev/node"), Some(&hex(address(PROVIDER_KEY))));
    assert_eq!(
        b.get("grid.dev/node"),
        Some(&hex(address(OTHER_PROVIDER_KEY)))
    );
    for labels in [&a, &b] {
        assert_eq!(labels.get("grid.dev/chain-id"), Some(&CHAIN_ID.to_string()));
        assert_eq!(
            labels.get("grid.dev/market"),
            Some(&hex(node.chain.deployment.market))
        );
    }

    // Each one's reconciliation, again and in either order, keeps the other's app.
    for gw in [&node.gw, &second, &node.gw] {
        let report = gw.apps.lifecycle().reconcile().await.unwrap();
        assert!(report.orphans_deleted.is_empty(), "{report:?}");
    }
    let names = namespaces(&node.fake).await;
    assert!(
        names.contains(&first_ns) && names.contains(&second_ns),
        "{names:?}"
    );
    assert_eq!(
        call_app(&second, &second_cookie, "/y").await.json,
        "app b: GET /y"
    );
    assert_eq!(
        call_app(&node.gw, &node.cookie, "/z").await.json,
        "app a: GET /z"
    );
    // Neither applied with the other's field manager.
    let managers: std::collections::BTreeSet<String> = node
        .fake
        .requests()
        .iter()
        .filter(|(m, _)| m == "PATCH")
        .filter_map(|(_, p)| {
            p.split(['?', '&'])
                .find_map(|q| q.strip_prefix("fieldManager="))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        managers.len(),
        2,
        "one field manager per node: {managers:?}"
    );
    second.stop().await;
}

/// Copies a directory tree (a data directory, as an operator's backup would).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_store_readopts_live_apps_and_removes_them_once_their_order_ends() {
    let node = Node::start(true).await;
    // The backup: the user's order is accepted, nothing is deployed yet.
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&node.dir.path().join("data"), backup.path());

    // Since the backup: the order's app, and a second order (accepted and deployed after
    // the backup, so the restored store knows neither it nor its app).
    let first_ns = deploy_available(&node.gw, &node.files, &node.cookie, &node.order, "a").await;
    let (second_order, second_cookie) = second_user(&node).await;
    let second_ns =
        deploy_available(&node.gw, &node.files, &second_cookie, &second_order, "b").await;

    let Node {
        chain,
        fake,
        gw,
        dir,
        order,
        ..
    } = node;
    gw.stop().await;
    drop(gw);
    let data = dir.path().join("data");
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(backup.path(), &data);
    let gw = Node::gateway_in(&chain, &fake, dir.path(), true).await;
    assert!(gw.store.app(&order).unwrap().is_none(), "the old store");

    let report = gw.apps.lifecycle().reconcile().await.unwrap();
    assert!(report.orphans_deleted.is_empty(), "{report:?}");
    let mut adopted = report.adopted.clone();
    adopted.sort();
    let mut expected = vec![order.clone(), second_order.clone()];
    expected.sort();
    assert_eq!(adopted, expected, "{report:?}");
    let names = namespaces(&fake).await;
    assert!(
        names.contains(&first_ns) && names.contains(&second_ns),
        "{names:?}"
    );

    // Both apps are back: their records, their routes, their orders' capacity.
    let cookie = sign_in(&gw, USER_KEY).await;
    let status = status_on(&gw, &cookie, &order).await;
    assert_eq!(status.json["status"], "available", "{}", status.json);
    assert_eq!(status.json["namespace"], first_ns.as_str());
    assert_eq!(
        call_app(&gw, &cookie, "/again").await.json,
        "app a: GET /again"
    );
    let stranger = sign_in(&gw, STRANGER_KEY).await;
    let status = status_on(&gw, &stranger, &second_order).await;
    assert_eq!(status.json["status"], "available", "{}", status.json);
    assert_eq!(call_app(&gw, &stranger, "/b").await.json, "app b: GET /b");
    let order_path = format!("/_grid/v1/orders/{second_order}");
    assert_eq!(get(&gw, &order_path).await.json["state"], "active");
    // A second reconciliation has nothing left to adopt.
    let again = gw.apps.lifecycle().reconcile().await.unwrap();
    assert!(
        again.adopted.is_empty() && again.orphans_deleted.is_empty(),
        "{again:?}"
    );

    // Once the order is cancelled on chain, its app goes; the other stays.
    gw.start_background();
    chain
        .market(USER_KEY)
        .cancel(order.parse::<U256>().unwrap())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let mut status = status_on(&gw, &cookie, &order).await;
    for _ in 0..200 {
        if status.json["status"] == "deleted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        status = status_on(&gw, &cookie, &order).await;
    }
    assert_eq!(status.json["status"], "deleted", "{}", status.json);
    assert_eq!(status.json["code"], "order_cancelled");
    let names = namespaces(&fake).await;
    assert!(!names.contains(&first_ns), "{names:?}");
    assert!(names.contains(&second_ns), "{names:?}");
    gw.stop().await;
}
