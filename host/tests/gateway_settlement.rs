//! Getting paid: the gateway settles its orders on a real anvil with the real Market —
//! interval payouts of what was released, a payout below the threshold skipped, the final
//! settlement at the end, an order whose time ran out while the node was down settled at
//! start, and the amounts on the order endpoint and in metrics.

mod node_support;

use std::sync::Arc;

use alloy::primitives::U256;

use grid_gateway::config::Config;
use grid_gateway::gateway::Gateway;
use grid_gateway::orders::Hooks;
use grid_gateway::settlement::{Action, Settler};
use grid_gateway::store::OrderState;
use node_support::*;
use serde_json::json;

/// Accepts a good order on `gw`; returns its id and start (block) time.
async fn accepted(gw: &Arc<Gateway>, chain: &Chain) -> (String, u64) {
    let id = good_order(chain).await;
    let accept = post(gw, &format!("/_grid/v1/orders/{id}/accept"), json!({})).await;
    assert_eq!(accept.status, 200, "{}", accept.json);
    let start = gw
        .store
        .order(&id)
        .unwrap()
        .expect("stored")
        .order
        .start_time
        .expect("locked");
    (id, start)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in metrics:\n{text}"))
}

/// A gateway on a fresh chain settling every `interval_secs`, with one accepted order.
struct Settling {
    chain: Chain,
    _dir: tempfile::TempDir,
    gw: Arc<Gateway>,
    settler: Arc<Settler>,
    id: String,
    start: u64,
}

/// Starts [`Settling`]; `edit` changes the settlement config after the interval is set.
async fn settling(interval_secs: u64, edit: impl FnOnce(&mut Config)) -> Settling {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    config.settlement.interval_secs = interval_secs;
    edit(&mut config);
    let gw = gateway(config, Hooks::default()).await;
    let settler = gw.settler.clone().expect("a chain: a settler");
    let (id, start) = accepted(&gw, &chain).await;
    Settling {
        chain,
        _dir: dir,
        gw,
        settler,
        id,
        start,
    }
}

/// The gateway's metrics page as text.
async fn metrics_text(gw: &Arc<Gateway>) -> String {
    let metrics = get(gw, "/_grid/metrics").await;
    metrics.json.as_str().expect("metrics text").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_then_final_settlement_pay_the_released_amounts_and_show_them() {
    let Settling {
        chain,
        gw,
        settler,
        id,
        start,
        _dir,
    } = settling(600, |c| c.settlement.min_fee_multiple = 0).await;
    let payee = address(PAYEE_KEY);
    let before = chain.balance(payee).await;

    // Not an interval yet: nothing is sent.
    assert_eq!(
        settler.tick().await.unwrap(),
        vec![(id.clone(), Action::NotDue)]
    );

    // 900 s in, the settlement is mined at 901 s: 46 token units per second released.
    chain.mine_at(start + 900).await;
    let released = get(&gw, &format!("/_grid/v1/orders/{id}")).await;
    assert_eq!(released.json["releasable"], (46 * 900).to_string());
    assert_eq!(released.json["paid"], "0");
    chain.next_block_at(start + 901).await;
    let done = settler.tick().await.unwrap();
    let interval = U256::from(46 * 901);
    assert_eq!(
        done,
        vec![(
            id.clone(),
            Action::Settled {
                payout: interval,
                completed: false
            }
        )]
    );
    assert_eq!(chain.balance(payee).await - before, interval);
    let record = get(&gw, &format!("/_grid/v1/orders/{id}")).await;
    assert_eq!(record.status, 200, "{}", record.json);
    assert_eq!(record.json["paid"], (46 * 901).to_string());
    assert_eq!(record.json["releasable"], "0");
    let tx = record.json["last_settlement_tx"]
        .as_str()
        .expect("a settlement transaction")
        .to_owned();
    assert!(tx.starts_with("0x") && tx.len() == 66, "{tx}");

    // Within the next interval: nothing.
    chain.mine_at(start + 1_200).await;
    assert_eq!(
        settler.tick().await.unwrap(),
        vec![(id.clone(), Action::NotDue)]
    );

    // At the end: the rest, and the order completes on chain.
    chain.mine_at(start + 3_600).await;
    let done = settler.tick().await.unwrap();
    let rest = U256::from(PRICE_1H - 46 * 901);
    assert_eq!(
        done,
        vec![(
            id.clone(),
            Action::Settled {
                payout: rest,
                completed: true
            }
        )]
    );
    assert_eq!(chain.balance(payee).await - before, U256::from(PRICE_1H));
    // Settled: it is not looked at again (no second transaction).
    let sent = chain.tx_count(address(PROVIDER_KEY)).await;
    assert_eq!(
        settler.tick().await.unwrap(),
        vec![(id.clone(), Action::NotDue)]
    );
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, sent);

    let record = get(&gw, &format!("/_grid/v1/orders/{id}")).await;
    assert_eq!(record.json["paid"], PRICE_1H.to_string());
    assert_ne!(record.json["last_settlement_tx"], tx.as_str());
    let text = &metrics_text(&gw).await;
    assert_eq!(
        metric(text, "grid_gateway_settlement_payout_token_units_total"),
        PRICE_1H as f64
    );
    assert_eq!(
        metric(text, "grid_gateway_settlements_total{result=\"settled\"}"),
        1.0
    );
    assert_eq!(
        metric(text, "grid_gateway_settlements_total{result=\"completed\"}"),
        1.0
    );
    assert!(metric(text, "grid_gateway_settlement_fees_wei_total") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_below_the_threshold_is_skipped_but_the_end_is_always_settled() {
    // The default fee multiple (10 × a fee in wei) dwarfs this order's token units.
    let Settling {
        chain,
        gw,
        settler,
        id,
        start,
        _dir,
    } = settling(600, |_| {}).await;
    let sent = chain.tx_count(address(PROVIDER_KEY)).await;

    chain.mine_at(start + 900).await;
    let done = settler.tick().await.unwrap();
    assert!(
        matches!(&done[..], [(i, Action::Skipped { releasable, threshold })]
            if *i == id && *releasable < *threshold),
        "{done:?}"
    );
    assert_eq!(
        chain.tx_count(address(PROVIDER_KEY)).await,
        sent,
        "nothing sent"
    );
    // Skipped once per interval, not on every look.
    assert_eq!(
        settler.tick().await.unwrap(),
        vec![(id.clone(), Action::NotDue)]
    );

    chain.mine_at(start + 3_600).await;
    let done = settler.tick().await.unwrap();
    assert!(
        matches!(
            &done[..],
            [(
                _,
                Action::Settled {
                    completed: true,
                    ..
                }
            )]
        ),
        "{done:?}"
    );
    let text = &metrics_text(&gw).await;
    assert_eq!(
        metric(text, "grid_gateway_settlements_total{result=\"skipped\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_ran_out_while_the_node_was_down_is_settled_at_start() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &chain.anvil.url, chain.deployment.market);
    config.settlement.poll_secs = 1;
    let (id, start) = {
        let gw = gateway(config.clone(), Hooks::default()).await;
        accepted(&gw, &chain).await
        // Dropped here: the node is down.
    };
    chain.mine_at(start + 4_000).await;

    let gw = gateway(config, Hooks::default()).await;
    gw.start_background();
    // The first look settles it; the follower sees OrderCompleted and ends it here. Two
    // tasks write the record (the follower the state, the settler its transaction, after
    // the receipt), in either order: wait for both.
    let record = get_until(&gw, &format!("/_grid/v1/orders/{id}"), |r| {
        r["state"] == "completed" && r["last_settlement_tx"].is_string()
    })
    .await;
    assert_eq!(record["paid"], PRICE_1H.to_string());
    assert!(record["last_settlement_tx"].is_string(), "{record}");
    assert_eq!(
        chain.balance(address(PAYEE_KEY)).await,
        U256::from(PRICE_1H)
    );
    assert_eq!(
        gw.store.order(&id).unwrap().unwrap().state,
        OrderState::Completed
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_by_its_user_is_closed_not_failed() {
    // Every part is bound to the end of the test: the gateway and its directory stay up.
    let Settling {
        chain,
        _dir,
        gw: _gw,
        settler,
        id,
        start: _,
    } = settling(600, |_| {}).await;
    chain.cancel(id.parse().unwrap()).await;
    let sent = chain.tx_count(address(PROVIDER_KEY)).await;
    let done = settler.tick().await.unwrap();
    assert_eq!(
        done,
        vec![(
            id.clone(),
            Action::Closed(grid_policy_sdk::OrderStatus::Cancelled)
        )]
    );
    // Recorded as closed: never looked at (nor retried) again.
    assert_eq!(settler.tick().await.unwrap(), vec![(id, Action::NotDue)]);
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, sent);
}
