//! Settlements against a real anvil and the real Market: exactly once across a crash between
//! broadcast and receipt, interval payouts of what was released, a user's cancel racing a
//! settlement, and nothing sent for an order that is over.

mod support;

use std::time::Duration;

use alloy::primitives::U256;
use grid_chain::{ChainClient, OrderId, SettleOutcome};
use grid_policy_sdk::OrderStatus;
use support::*;

/// An order of `amount` over `duration` seconds, locked by the node; returns it and its
/// start (block) time.
async fn active_order(
    client: &ChainClient,
    chain: &Chain,
    duration: u64,
    amount: u64,
) -> (OrderId, u64) {
    let id = OrderId(
        chain
            .create_order(address(PROVIDER_KEY), resources(""), duration, amount)
            .await,
    );
    client.activate(id).await.expect("activate");
    let start = client
        .order(id)
        .await
        .expect("order")
        .start_time
        .expect("started");
    (id, start)
}

/// Starts a settlement with mining paused and waits until its transaction is journaled and
/// in anvil's pool; returns the call and the journaled hash.
async fn settle_until_broadcast(
    client: &ChainClient,
    chain: &Chain,
    id: OrderId,
) -> (
    tokio::task::JoinHandle<grid_chain::Result<grid_chain::Settlement>>,
    alloy::primitives::TxHash,
) {
    chain.automine(false).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.settle(id).await }
    });
    for _ in 0..400 {
        if let Some(entry) = client.settlement_entry(id).expect("journal")
            && pool_pending(chain).await == 1
        {
            return (call, entry.tx_hash);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the settlement was not journaled and broadcast");
}

#[tokio::test]
async fn an_order_is_settled_exactly_once_at_its_end_across_a_crash_between_broadcast_and_receipt()
{
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let client = client_on(&chain, &path);
    let (id, _) = active_order(&client, &chain, 100, 1_000).await;
    chain.advance(200).await;
    let payee = address(PAYEE_KEY);
    let before = chain.balance(payee).await;

    // Broadcast, then the process dies before the receipt: the call is abandoned and the
    // client dropped with the settlement still in anvil's pool.
    let (call, hash) = settle_until_broadcast(&client, &chain, id).await;
    call.abort();
    let _ = call.await;
    drop(client);
    let db = reopen_db(&path).await;
    // While the node is down the settlement is mined: the order completes on chain.
    chain.mine().await;
    chain.automine(true).await;
    assert_eq!(
        client_on_db(&chain, db.clone())
            .order(id)
            .await
            .expect("order")
            .status,
        OrderStatus::Completed
    );

    // After the restart the same settlement is reported (from the journal), not a second
    // one sent, and not mistaken for someone else's.
    let client = client_on_db(&chain, db);
    let settlement = client.settle(id).await.expect("settle after restart");
    assert_eq!(settlement.tx_hash, Some(hash));
    assert_eq!(
        settlement.outcome,
        SettleOutcome::Settled {
            payout: U256::from(1_000),
            total_paid: U256::from(1_000),
            completed: true
        }
    );
    assert!(settlement.fee > U256::ZERO, "the fee is counted");
    // Lock + one settlement: two transactions in all; the payee got the order once.
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 2);
    assert_eq!(chain.balance(payee).await - before, U256::from(1_000));

    // Settling an order that is over sends nothing.
    let again = client.settle(id).await.expect("settle again");
    assert_eq!(
        again.outcome,
        SettleOutcome::Closed {
            status: OrderStatus::Completed
        }
    );
    assert_eq!(again.tx_hash, None);
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 2);
}

#[tokio::test]
async fn a_crash_before_the_broadcast_reached_the_node_resends_the_same_settlement() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let client = client_on(&chain, &path);
    let (id, _) = active_order(&client, &chain, 100, 1_000).await;
    chain.advance(200).await;

    let (call, hash) = settle_until_broadcast(&client, &chain, id).await;
    call.abort();
    let _ = call.await;
    drop(client);
    let db = reopen_db(&path).await;
    // As if the node never got it (or lost it): the journal still has the signed bytes.
    chain
        .rpc("anvil_dropAllTransactions", serde_json::json!([]))
        .await;
    chain.automine(true).await;

    let client = client_on_db(&chain, db);
    let settlement = client.settle(id).await.expect("settle after restart");
    assert_eq!(
        settlement.tx_hash,
        Some(hash),
        "the journaled bytes went out again"
    );
    assert!(matches!(
        settlement.outcome,
        SettleOutcome::Settled {
            completed: true,
            ..
        }
    ));
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 2);
}

#[tokio::test]
async fn interval_settlements_pay_what_was_released() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let (id, start) = active_order(&client, &chain, 1_000, 5_000).await;

    // 40 % of the time: 40 % of the payment is released.
    chain.mine_at(start + 400).await;
    let payment = client.payment(id).await.expect("payment");
    assert_eq!(payment.releasable(), U256::from(2_000));
    assert!(!payment.is_due());
    chain.next_block_at(start + 400 + 1).await;
    let first = client.settle(id).await.expect("first settlement");
    // Mined one second later: 401/1000 of 5000.
    assert_eq!(
        first.outcome,
        SettleOutcome::Settled {
            payout: U256::from(2_005),
            total_paid: U256::from(2_005),
            completed: false
        }
    );
    let payment = client.payment(id).await.expect("payment");
    assert_eq!(payment.paid, U256::from(2_005));
    assert_eq!(payment.releasable(), U256::ZERO);

    chain.mine_at(start + 1_000).await;
    assert!(client.payment(id).await.expect("payment").is_due());
    let last = client.settle(id).await.expect("final settlement");
    assert_eq!(
        last.outcome,
        SettleOutcome::Settled {
            payout: U256::from(2_995),
            total_paid: U256::from(5_000),
            completed: true
        }
    );
    assert_eq!(chain.balance(address(PAYEE_KEY)).await, U256::from(5_000));
    assert!(
        client.settle_fee_estimate(id).await.is_err(),
        "nothing to estimate once over"
    );
}

#[tokio::test]
async fn a_cancel_racing_a_settlement_closes_it_and_nothing_is_retried() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let (id, _) = active_order(&client, &chain, 1_000, 5_000).await;
    chain.advance(100).await;

    // The settlement is simulated (fine), journaled and sent; before it is mined the node
    // loses it (the call is abandoned as in a crash, the pool emptied) and the user's cancel
    // is mined instead.
    let (call, hash) = settle_until_broadcast(&client, &chain, id).await;
    call.abort();
    let _ = call.await;
    chain
        .rpc("anvil_dropAllTransactions", serde_json::json!([]))
        .await;
    chain.automine(true).await;
    chain.cancel(id.0).await;

    // Resumed, the journaled settlement goes out as signed and reverts with NotActive: the
    // cancel won, which is not a failure.
    let settlement = client
        .settle(id)
        .await
        .expect("a lost race is not a failure");
    assert_eq!(
        settlement.outcome,
        SettleOutcome::Closed {
            status: OrderStatus::Cancelled
        }
    );
    assert_eq!(settlement.tx_hash, Some(hash));
    assert!(
        settlement.fee > U256::ZERO,
        "the reverted transaction's fee is counted"
    );
    // The journal forgot it: nothing re-sends it, and a later call sends nothing.
    let nonce = chain.tx_count(address(PROVIDER_KEY)).await;
    assert_eq!(nonce, 2);
    let again = client.settle(id).await.expect("again");
    assert_eq!(again.tx_hash, None);
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, nonce);
}
