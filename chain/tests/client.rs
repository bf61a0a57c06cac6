//! The chain client against a real anvil: order reads, the lock transaction's idempotency
//! (also across a simulated crash), an unreachable chain, and the event follower.

mod support;

use std::path::Path;
use std::time::Duration;

use alloy::primitives::U256;
use grid_chain::{
    ChainClient, ChainConfig, ChainEvent, Error, MarketEvent, OrderId, Poll, to_sdk_address,
};
use grid_policy_sdk::{Amount, Order, OrderStatus, Resources};
use support::*;
use tokio::sync::mpsc;

#[tokio::test]
async fn reading_an_order_maps_every_field() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let id = chain
        .create_order(
            address(PROVIDER_KEY),
            resources("nvidia-a100"),
            3600,
            12_345,
        )
        .await;

    let order = client.order(OrderId(id)).await.expect("order");
    let created_at = chain
        .market(USER_KEY)
        .getOrder(id)
        .call()
        .await
        .expect("getOrder")
        .createdAt;
    assert!(created_at > 0, "createOrder records its block time");
    let expected = Order {
        id: "1".into(),
        user: to_sdk_address(address(USER_KEY)),
        provider: to_sdk_address(address(PROVIDER_KEY)),
        payee: to_sdk_address(address(PAYEE_KEY)),
        resources: Resources {
            cpu_millis: 2_000,
            memory_bytes: 4 << 30,
            storage_bytes: 10 << 30,
            gpus: 2,
            gpu_model: Some("nvidia-a100".into()),
        },
        duration_secs: 3600,
        payment: Amount::from(12_345u64),
        start_time: None,
        created_at,
        status: OrderStatus::Created,
    };
    assert_eq!(order, expected);

    client.activate(OrderId(id)).await.expect("activate");
    let start = chain
        .market(USER_KEY)
        .getOrder(id)
        .call()
        .await
        .expect("getOrder")
        .startTime;
    let order = client.order(OrderId(id)).await.expect("order");
    assert_eq!(order.status, OrderStatus::Active);
    assert_eq!(order.start_time, Some(start));

    // No GPU model on chain (empty string) is `None`, not `Some("")`.
    let plain = chain
        .create_order(address(PROVIDER_KEY), resources(""), 60, 1)
        .await;
    let order = client.order(OrderId(plain)).await.expect("order");
    assert_eq!(order.resources.gpu_model, None);
    assert_eq!(order.resources.gpus, 0);
    assert_eq!(order.id, "2");

    match client.order(OrderId::from(77)).await {
        Err(Error::OrderNotFound { id }) => assert_eq!(id, "77"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn activating_twice_sends_one_transaction() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let id = node_order(&chain, 100).await;

    let first = client.activate(id).await.expect("first activate");
    assert!(!first.already_active);
    let hash = first.tx_hash.expect("a transaction was sent");
    let second = client.activate(id).await.expect("second activate");
    assert!(second.already_active);
    assert_eq!(second.tx_hash, Some(hash));

    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 1);
    assert_eq!(
        client.order(id).await.expect("order").status,
        OrderStatus::Active
    );
    let entry = client.journal_entry(id).expect("journal").expect("entry");
    assert_eq!((entry.nonce, entry.tx_hash), (0, hash));
    assert_eq!(entry.state, grid_chain::JournalState::Confirmed);
}

#[tokio::test]
async fn concurrent_activations_of_one_order_send_one_transaction() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let a = node_order(&chain, 1).await;
    let b = node_order(&chain, 1).await;

    let (r1, r2, r3) = tokio::join!(client.activate(a), client.activate(a), client.activate(b));
    let (r1, r2, r3) = (r1.expect("a"), r2.expect("a again"), r3.expect("b"));
    assert_eq!(r1.tx_hash, r2.tx_hash);
    assert_ne!(r1.tx_hash, r3.tx_hash);
    // Two orders, two transactions, consecutive nonces from the one signer task.
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 2);
}

#[tokio::test]
async fn a_lock_that_would_revert_is_reported_by_name_and_not_sent() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    // Addressed to another provider: this node may not lock it.
    let id = OrderId(
        chain
            .create_order(address(STRANGER_KEY), resources(""), 60, 1)
            .await,
    );
    let err = client.activate(id).await.expect_err("must revert");
    assert_eq!(err.revert_name(), Some("NotProvider"), "{err}");
    assert!(matches!(err, Error::Reverted { tx_hash: None, .. }));
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 0);

    // Cancelled by its user: no longer Created.
    let id = node_order(&chain, 1).await;
    chain.cancel(id.0).await;
    let err = client.activate(id).await.expect_err("must revert");
    assert_eq!(err.revert_name(), Some("NotCreated"), "{err}");
    assert!(err.to_string().contains("Cancelled"), "{err}");
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 0);
}

/// A 60-second order of `amount` for this node's provider.
async fn node_order(chain: &Chain, amount: u64) -> OrderId {
    OrderId(
        chain
            .create_order(address(PROVIDER_KEY), resources(""), 60, amount)
            .await,
    )
}

/// Pauses mining and starts `activate`; returns the running call and the hash the signer
/// journaled (the transaction is in anvil's pool, not mined).
async fn activate_until_journaled(
    client: &ChainClient,
    chain: &Chain,
    id: OrderId,
) -> (
    tokio::task::JoinHandle<grid_chain::Result<grid_chain::Activation>>,
    alloy::primitives::TxHash,
) {
    chain.automine(false).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.activate(id).await }
    });
    for _ in 0..400 {
        if let Some(entry) = client.journal_entry(id).expect("journal") {
            return (call, entry.tx_hash);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the signer journaled no transaction");
}

/// Starts `activate` with mining paused, waits until the signer journaled its transaction,
/// then "crashes": the call is abandoned and the client dropped. Returns the journaled hash.
async fn crash_after_journaling(
    chain: &Chain,
    path: &Path,
    id: OrderId,
) -> alloy::primitives::TxHash {
    let client = client_on(chain, path);
    let (call, hash) = activate_until_journaled(&client, chain, id).await;
    call.abort();
    let _ = call.await;
    drop(client);
    hash
}

#[tokio::test]
async fn crash_after_broadcast_then_restart_sends_no_second_transaction() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let id = node_order(&chain, 1).await;

    let hash = crash_after_journaling(&chain, &path, id).await;
    let db = reopen_db(&path).await;
    // The transaction reached the node before the crash; now it gets mined.
    assert_eq!(pool_pending(&chain).await, 1);
    chain.mine().await;
    chain.automine(true).await;

    let client = client_on_db(&chain, db);
    let outcome = client.activate(id).await.expect("activate after restart");
    assert!(outcome.already_active);
    assert_eq!(outcome.tx_hash, Some(hash));
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 1);
    assert_eq!(
        client.order(id).await.expect("order").status,
        OrderStatus::Active
    );
}

#[tokio::test]
async fn crash_before_broadcast_then_restart_resends_the_same_transaction() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let id = node_order(&chain, 1).await;

    let hash = crash_after_journaling(&chain, &path, id).await;
    let db = reopen_db(&path).await;
    // As if the process died between the journal write and the broadcast: the node never
    // got the transaction.
    chain
        .rpc("anvil_dropAllTransactions", serde_json::json!([]))
        .await;
    assert_eq!(pool_pending(&chain).await, 0);
    chain.automine(true).await;
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 0);

    let client = client_on_db(&chain, db);
    let outcome = client.activate(id).await.expect("activate after restart");
    // The journaled bytes went out again: same hash, nonce 0, one transaction in all.
    assert!(!outcome.already_active);
    assert_eq!(outcome.tx_hash, Some(hash));
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 1);
    assert_eq!(
        client.order(id).await.expect("order").status,
        OrderStatus::Active
    );

    // The next order's lock takes the next nonce.
    let next = node_order(&chain, 1).await;
    client.activate(next).await.expect("next activate");
    assert_eq!(
        client
            .journal_entry(next)
            .expect("journal")
            .expect("entry")
            .nonce,
        1
    );
}

/// Outer guard only, so a regression fails the test instead of hanging CI; the client's own
/// bound is the configured RPC timeout.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[tokio::test]
async fn unreachable_rpc_is_chain_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port(); // nothing listens here
    let mut cfg = ChainConfig::new(
        format!("http://127.0.0.1:{port}"),
        alloy::primitives::Address::repeat_byte(1),
        31337,
    );
    cfg.retry_attempts = 2;
    cfg.retry_backoff_ms = 10;
    let client = ChainClient::new(cfg, open_db(&dir.path().join("s.redb")), node_wallet())
        .expect("client builds without the chain");
    let read = tokio::time::timeout(HANG_GUARD, client.order(OrderId::from(1)))
        .await
        .expect("bounded");
    assert!(
        matches!(read, Err(Error::ChainUnavailable { .. })),
        "{read:?}"
    );
    let lock = tokio::time::timeout(HANG_GUARD, client.activate(OrderId::from(1)))
        .await
        .expect("bounded");
    assert!(
        matches!(lock, Err(Error::ChainUnavailable { .. })),
        "{lock:?}"
    );
}

#[tokio::test]
async fn an_rpc_that_never_answers_is_chain_unavailable() {
    // Accepts connections and reads requests but never answers: only the timeout ends a call.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ChainConfig::new(
        format!("http://127.0.0.1:{port}"),
        alloy::primitives::Address::repeat_byte(1),
        31337,
    );
    cfg.rpc_timeout_ms = 300;
    cfg.retry_attempts = 2;
    cfg.retry_backoff_ms = 10;
    let client =
        ChainClient::new(cfg, open_db(&dir.path().join("s.redb")), node_wallet()).expect("client");
    let read = tokio::time::timeout(HANG_GUARD, client.order(OrderId::from(1)))
        .await
        .expect("bounded");
    match read {
        Err(Error::ChainUnavailable { reason }) => assert!(reason.contains("getOrder"), "{reason}"),
        other => panic!("{other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn a_wrong_chain_id_is_refused_before_signing() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&chain);
    cfg.chain_id = 1;
    let client =
        ChainClient::new(cfg, open_db(&dir.path().join("s.redb")), node_wallet()).expect("client");
    let id = node_order(&chain, 1).await;
    let err = client.activate(id).await.expect_err("refused");
    assert!(
        matches!(
            err,
            Error::ChainIdMismatch {
                expected: 1,
                actual: 31337
            }
        ),
        "{err}"
    );
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 0);
}

/// Polls until caught up and returns what arrived.
async fn drain(
    follower: &mut grid_chain::EventFollower,
    rx: &mut mpsc::Receiver<ChainEvent>,
) -> Vec<ChainEvent> {
    loop {
        match follower.poll_once().await.expect("poll") {
            Poll::CaughtUp => break,
            Poll::Scanned { .. } => {}
            Poll::ReceiverClosed => panic!("receiver closed"),
        }
    }
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

fn kinds(events: &[ChainEvent]) -> Vec<(u64, &'static str)> {
    events
        .iter()
        .map(|e| {
            let id = e.order_id.0.to::<u64>();
            let kind = match e.event {
                MarketEvent::Created { .. } => "created",
                MarketEvent::Activated { .. } => "activated",
                MarketEvent::Extended { .. } => "extended",
                MarketEvent::Cancelled { .. } => "cancelled",
                MarketEvent::Settled { .. } => "settled",
                MarketEvent::Completed => "completed",
            };
            (id, kind)
        })
        .collect()
}

#[tokio::test]
async fn follower_delivers_each_event_once_across_restarts() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;

    let (tx, mut rx) = mpsc::channel(64);
    let db = open_db(&path);
    let client = client_on_db(&chain, db.clone());
    let mut follower = client.follower(tx).expect("follower");
    let first = drain(&mut follower, &mut rx).await;
    assert_eq!(kinds(&first), vec![(1, "created")]);
    match &first[0].event {
        MarketEvent::Created {
            user,
            amount,
            duration_secs,
            ..
        } => {
            assert_eq!(*user, to_sdk_address(address(USER_KEY)));
            assert_eq!((*amount, *duration_secs), (Amount::from(1000u64), 100));
        }
        other => panic!("{other:?}"),
    }

    client.activate(OrderId(id)).await.expect("activate");
    chain
        .market(USER_KEY)
        .extend(id, 50, U256::from(500))
        .send()
        .await
        .expect("extend")
        .get_receipt()
        .await
        .expect("receipt");
    // Restart: everything dropped, the database file opened afresh.
    drop((follower, client, db, rx));
    let db = reopen_db(&path).await;
    let (tx, mut rx) = mpsc::channel(64);
    let client = client_on_db(&chain, db);
    let mut follower = client.follower(tx).expect("follower");
    let second = drain(&mut follower, &mut rx).await;
    assert_eq!(kinds(&second), vec![(1, "activated"), (1, "extended")]);

    chain.cancel(id).await;
    let third = drain(&mut follower, &mut rx).await;
    assert_eq!(kinds(&third), vec![(1, "cancelled")]);
    assert!(drain(&mut follower, &mut rx).await.is_empty());
}

#[tokio::test]
async fn follower_stopped_mid_block_resumes_after_the_last_delivered_event() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    // Settling at the end emits Settled and Completed from one transaction, in one block.
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    chain
        .market(PROVIDER_KEY)
        .activate(id)
        .send()
        .await
        .expect("activate")
        .get_receipt()
        .await
        .expect("receipt");
    chain.advance(200).await;
    chain
        .market(USER_KEY)
        .settle(id)
        .send()
        .await
        .expect("settle")
        .get_receipt()
        .await
        .expect("receipt");
    let all = vec![
        (1, "created"),
        (1, "activated"),
        (1, "settled"),
        (1, "completed"),
    ];

    // A channel of one: the follower blocks on its second send until the test reads.
    let db = open_db(&path);
    let (tx, mut rx) = mpsc::channel(1);
    let client = client_on_db(&chain, db.clone());
    let follower = client.follower(tx).expect("follower");
    let task = tokio::spawn(follower.run());
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(rx.recv().await.expect("event"));
    }
    // Stop it wherever it is (maybe blocked sending the fourth), then keep what was handed
    // over: an event in the channel counts as delivered.
    task.abort();
    let _ = task.await;
    while let Ok(ev) = rx.try_recv() {
        got.push(ev);
    }
    drop((client, db, rx));

    let db = reopen_db(&path).await;
    let (tx, mut rx) = mpsc::channel(64);
    let client = client_on_db(&chain, db);
    let mut follower = client.follower(tx).expect("follower");
    got.extend(drain(&mut follower, &mut rx).await);
    assert_eq!(kinds(&got), all);
    let settled = got
        .iter()
        .find(|e| matches!(e.event, MarketEvent::Settled { .. }));
    let completed = got.iter().find(|e| e.event == MarketEvent::Completed);
    let (settled, completed) = (settled.expect("settled"), completed.expect("completed"));
    assert_eq!(settled.block_number, completed.block_number);
    assert_eq!(settled.tx_hash, completed.tx_hash);
}

#[tokio::test]
async fn follower_waits_for_confirmations() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&chain);
    cfg.confirmations = 3;
    let client =
        ChainClient::new(cfg, open_db(&dir.path().join("s.redb")), node_wallet()).expect("client");
    let (tx, mut rx) = mpsc::channel(64);
    let mut follower = client.follower(tx).expect("follower");
    drain(&mut follower, &mut rx).await; // deployment history: nothing of interest

    chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    assert!(
        drain(&mut follower, &mut rx).await.is_empty(),
        "1 confirmation of 3"
    );
    chain.mine().await;
    assert!(
        drain(&mut follower, &mut rx).await.is_empty(),
        "2 confirmations of 3"
    );
    chain.mine().await;
    assert_eq!(
        kinds(&drain(&mut follower, &mut rx).await),
        vec![(1, "created")]
    );
}

#[tokio::test]
async fn a_lock_that_reverts_after_simulation_is_reported_with_its_custom_error() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_on(&chain, &dir.path().join("s.redb"));
    let id = node_order(&chain, 1).await;

    // Mining paused: the lock is simulated (fine: the order is Created), journaled and sent…
    let (call, hash) = activate_until_journaled(&client, &chain, id).await;
    // …then the user's cancel, paying a far higher tip, is mined ahead of it in the same block.
    let _pending = chain
        .market(USER_KEY)
        .cancel(id.0)
        .max_priority_fee_per_gas(100_000_000_000)
        .max_fee_per_gas(200_000_000_000)
        .send()
        .await
        .expect("cancel");
    chain.mine().await;
    chain.automine(true).await;

    let err = call.await.expect("task").expect_err("the lock reverted");
    match &err {
        Error::Reverted { reason, tx_hash } => {
            assert_eq!(*tx_hash, Some(hash));
            assert!(reason.starts_with("NotCreated("), "{reason}");
            assert!(reason.contains("Cancelled"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The failed lock was a real transaction; the journal forgets it so nothing re-sends it.
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 1);
    assert_eq!(client.journal_entry(id).expect("journal"), None);
}

#[tokio::test]
async fn a_stuck_lock_is_replaced_at_the_same_nonce_and_only_one_is_mined() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&chain);
    cfg.replace_after_secs = 1;
    let client =
        ChainClient::new(cfg, open_db(&dir.path().join("s.redb")), node_wallet()).expect("client");
    let id = node_order(&chain, 1).await;

    // Nothing gets mined, so the lock looks stuck to the waiting client.
    chain.automine(false).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.activate(id).await }
    });
    let mut replacement = None;
    for _ in 0..800 {
        if let Some(entry) = client.journal_entry(id).expect("journal")
            && !entry.replaced.is_empty()
        {
            replacement = Some(entry);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if replacement.is_none() && call.is_finished() {
        panic!("activate ended before replacing: {:?}", call.await);
    }
    let replacement = replacement.expect("the stuck lock was replaced");
    assert_eq!(replacement.nonce, 0);
    assert_eq!(replacement.replaced.len(), 1);
    assert_ne!(replacement.replaced[0], replacement.tx_hash);

    chain.mine().await;
    chain.automine(true).await;
    let outcome = call.await.expect("task").expect("activate");
    // One of the two (the node keeps the better-paying one) is the lock; one transaction in all.
    assert!(
        replacement
            .hashes()
            .contains(&outcome.tx_hash.expect("hash"))
    );
    assert_eq!(chain.tx_count(address(PROVIDER_KEY)).await, 1);
    assert_eq!(
        client.order(id).await.expect("order").status,
        OrderStatus::Active
    );
    let entry = client.journal_entry(id).expect("journal").expect("entry");
    assert_eq!(entry.state, grid_chain::JournalState::Confirmed);
    assert_eq!(Some(entry.tx_hash), outcome.tx_hash);
}
