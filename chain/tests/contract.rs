//! The Market contract's behaviour, through alloy against a real anvil.

mod support;

use alloy::eips::BlockId;
use alloy::primitives::U256;
use grid_chain::bindings::Market;
use support::*;

const CREATED: u8 = 1;
const ACTIVE: u8 = 2;
const CANCELLED: u8 = 3;
const COMPLETED: u8 = 4;

/// The custom error a call reverts with.
fn custom_error<T: std::fmt::Debug>(
    result: Result<T, alloy::contract::Error>,
) -> Market::MarketErrors {
    let err = result.expect_err("the call should revert");
    err.as_decoded_interface_error::<Market::MarketErrors>()
        .unwrap_or_else(|| panic!("not a Market custom error: {err}"))
}

async fn order(chain: &Chain, id: U256) -> Market::Order {
    chain
        .market(USER_KEY)
        .getOrder(id)
        .call()
        .await
        .expect("getOrder")
}

async fn activated(chain: &Chain, duration: u64, amount: u64) -> (U256, u64) {
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), duration, amount)
        .await;
    let receipt = chain
        .market(PROVIDER_KEY)
        .activate(id)
        .send()
        .await
        .expect("activate")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status());
    (id, order(chain, id).await.startTime)
}

async fn released_at(chain: &Chain, id: U256, timestamp: u64) -> U256 {
    chain.mine_at(timestamp).await;
    let block = chain.block_number().await;
    chain
        .market(USER_KEY)
        .released(id)
        .block(BlockId::number(block))
        .call()
        .await
        .expect("released")
}

#[tokio::test]
async fn create_escrows_payment_and_stores_the_order() {
    let chain = Chain::start().await;
    let user = address(USER_KEY);
    let id = chain
        .create_order(address(PROVIDER_KEY), resources("nvidia-a100"), 3600, 1000)
        .await;
    assert_eq!(id, U256::from(1));
    let o = order(&chain, id).await;
    assert_eq!(o.user, user);
    assert_eq!(o.provider, address(PROVIDER_KEY));
    assert_eq!(o.payee, address(PAYEE_KEY));
    assert_eq!(o.resources.cpuMillis, 2000);
    assert_eq!(o.resources.gpuModel, "nvidia-a100");
    assert_eq!(o.durationSecs, 3600);
    assert_eq!(o.amount, U256::from(1000));
    assert_eq!(o.paid, U256::ZERO);
    assert_eq!(o.startTime, 0);
    assert!(o.createdAt > 0, "createOrder records its block time");
    assert_eq!(o.status, CREATED);
    assert_eq!(
        chain.balance(chain.deployment.market).await,
        U256::from(1000)
    );
    assert_eq!(chain.balance(user).await, U256::from(USER_FUNDS - 1000));

    let unknown = chain.market(USER_KEY).getOrder(U256::from(99)).call().await;
    assert!(matches!(
        custom_error(unknown),
        Market::MarketErrors::OrderNotFound(e) if e.id == U256::from(99)
    ));
}

#[tokio::test]
async fn create_refuses_zero_inputs() {
    let chain = Chain::start().await;
    let market = chain.market(USER_KEY);
    let zero_provider = market
        .createOrder(
            alloy::primitives::Address::ZERO,
            address(PAYEE_KEY),
            resources(""),
            10,
            U256::from(1),
        )
        .call()
        .await;
    assert!(matches!(
        custom_error(zero_provider),
        Market::MarketErrors::ZeroAddress(_)
    ));
    let zero_duration = market
        .createOrder(
            address(PROVIDER_KEY),
            address(PAYEE_KEY),
            resources(""),
            0,
            U256::from(1),
        )
        .call()
        .await;
    assert!(matches!(
        custom_error(zero_duration),
        Market::MarketErrors::ZeroDuration(_)
    ));
}

#[tokio::test]
async fn activate_by_provider_starts_the_order() {
    let chain = Chain::start().await;
    let (id, start) = activated(&chain, 100, 1000).await;
    let o = order(&chain, id).await;
    assert_eq!(o.status, ACTIVE);
    assert!(start > 0);
}

#[tokio::test]
async fn activate_by_a_stranger_reverts_not_provider() {
    let chain = Chain::start().await;
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    let result = chain.market(STRANGER_KEY).activate(id).call().await;
    match custom_error(result) {
        Market::MarketErrors::NotProvider(e) => {
            assert_eq!(e.id, id);
            assert_eq!(e.caller, address(STRANGER_KEY));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(order(&chain, id).await.status, CREATED);
}

#[tokio::test]
async fn activate_twice_reverts_not_created() {
    let chain = Chain::start().await;
    let (id, _) = activated(&chain, 100, 1000).await;
    let result = chain.market(PROVIDER_KEY).activate(id).call().await;
    match custom_error(result) {
        Market::MarketErrors::NotCreated(e) => assert_eq!(e.status, ACTIVE),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn extend_adds_time_and_payment() {
    let chain = Chain::start().await;
    let (id, _) = activated(&chain, 100, 1000).await;
    let before = chain.balance(address(USER_KEY)).await;
    let receipt = chain
        .market(USER_KEY)
        .extend(id, 50, U256::from(500))
        .send()
        .await
        .expect("extend")
        .get_receipt()
        .await
        .expect("receipt");
    let event = receipt
        .decoded_log::<Market::OrderExtended>()
        .expect("OrderExtended");
    assert_eq!((event.durationSecs, event.amount), (150, U256::from(1500)));
    let o = order(&chain, id).await;
    assert_eq!((o.durationSecs, o.amount), (150, U256::from(1500)));
    assert_eq!(
        chain.balance(address(USER_KEY)).await,
        before - U256::from(500)
    );
}

#[tokio::test]
async fn extend_by_a_stranger_reverts_not_user() {
    let chain = Chain::start().await;
    let (id, _) = activated(&chain, 100, 1000).await;
    let result = chain
        .market(STRANGER_KEY)
        .extend(id, 50, U256::from(500))
        .call()
        .await;
    match custom_error(result) {
        Market::MarketErrors::NotUser(e) => assert_eq!(e.caller, address(STRANGER_KEY)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn extend_before_activation_reverts_not_active() {
    let chain = Chain::start().await;
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    let result = chain
        .market(USER_KEY)
        .extend(id, 50, U256::from(1))
        .call()
        .await;
    assert!(matches!(
        custom_error(result),
        Market::MarketErrors::NotActive(e) if e.status == CREATED
    ));
}

#[tokio::test]
async fn release_is_linear_from_start_to_end() {
    let chain = Chain::start().await;
    let (id, start) = activated(&chain, 300, 1000).await;
    assert_eq!(released_at(&chain, id, start + 1).await, U256::from(3)); // 1000*1/300, rounded down
    assert_eq!(released_at(&chain, id, start + 150).await, U256::from(500));
    assert_eq!(released_at(&chain, id, start + 300).await, U256::from(1000));
    assert_eq!(released_at(&chain, id, start + 900).await, U256::from(1000));
}

#[tokio::test]
async fn release_at_the_start_is_zero_and_time_controls_move_it() {
    let chain = Chain::start().await;
    let (id, _) = activated(&chain, 100, 1000).await;
    let at_activation = chain
        .market(USER_KEY)
        .released(id)
        .block(BlockId::latest())
        .call()
        .await
        .expect("released");
    assert_eq!(at_activation, U256::ZERO);
    chain.advance(1000).await;
    let after = chain
        .market(USER_KEY)
        .released(id)
        .block(BlockId::latest())
        .call()
        .await;
    assert_eq!(after.expect("released"), U256::from(1000));
}

#[tokio::test]
async fn cancel_before_activation_refunds_everything() {
    let chain = Chain::start().await;
    let user = address(USER_KEY);
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    chain.cancel(id).await;
    assert_eq!(chain.balance(user).await, U256::from(USER_FUNDS));
    assert_eq!(chain.balance(address(PAYEE_KEY)).await, U256::ZERO);
    assert_eq!(order(&chain, id).await.status, CANCELLED);
}

#[tokio::test]
async fn cancel_while_active_pays_released_and_refunds_the_rest() {
    let chain = Chain::start().await;
    let user = address(USER_KEY);
    let (id, start) = activated(&chain, 100, 1000).await;
    chain.next_block_at(start + 25).await;
    let receipt = chain.cancel(id).await;
    let event = receipt
        .decoded_log::<Market::OrderCancelled>()
        .expect("OrderCancelled");
    assert_eq!(event.paidToPayee, U256::from(250));
    assert_eq!(event.refunded, U256::from(750));
    assert_eq!(chain.balance(address(PAYEE_KEY)).await, U256::from(250));
    assert_eq!(chain.balance(user).await, U256::from(USER_FUNDS - 250));
    assert_eq!(chain.balance(chain.deployment.market).await, U256::ZERO);
    let o = order(&chain, id).await;
    assert_eq!((o.status, o.paid), (CANCELLED, U256::from(250)));
}

#[tokio::test]
async fn cancel_twice_reverts_order_closed() {
    let chain = Chain::start().await;
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    chain.cancel(id).await;
    let result = chain.market(USER_KEY).cancel(id).call().await;
    assert!(matches!(
        custom_error(result),
        Market::MarketErrors::OrderClosed(e) if e.status == CANCELLED
    ));
}

#[tokio::test]
async fn cancel_by_a_stranger_reverts_not_user() {
    let chain = Chain::start().await;
    let id = chain
        .create_order(address(PROVIDER_KEY), resources(""), 100, 1000)
        .await;
    let result = chain.market(STRANGER_KEY).cancel(id).call().await;
    assert!(matches!(
        custom_error(result),
        Market::MarketErrors::NotUser(_)
    ));
}

#[tokio::test]
async fn settle_pays_as_released_and_completes_after_the_duration() {
    let chain = Chain::start().await;
    let payee = address(PAYEE_KEY);
    let (id, start) = activated(&chain, 100, 1000).await;

    // Anyone may settle; the money only goes to the payee.
    chain.next_block_at(start + 40).await;
    let receipt = chain
        .market(STRANGER_KEY)
        .settle(id)
        .send()
        .await
        .expect("settle")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.decoded_log::<Market::OrderCompleted>().is_none());
    assert_eq!(chain.balance(payee).await, U256::from(400));
    assert_eq!(order(&chain, id).await.status, ACTIVE);

    chain.next_block_at(start + 100).await;
    let receipt = chain
        .market(STRANGER_KEY)
        .settle(id)
        .send()
        .await
        .expect("settle")
        .get_receipt()
        .await
        .expect("receipt");
    let settled = receipt
        .decoded_log::<Market::OrderSettled>()
        .expect("OrderSettled");
    assert_eq!(
        (settled.payout, settled.totalPaid),
        (U256::from(600), U256::from(1000))
    );
    assert!(receipt.decoded_log::<Market::OrderCompleted>().is_some());
    assert_eq!(chain.balance(payee).await, U256::from(1000));
    let o = order(&chain, id).await;
    assert_eq!((o.status, o.paid), (COMPLETED, U256::from(1000)));

    let again = chain.market(STRANGER_KEY).settle(id).call().await;
    assert!(matches!(
        custom_error(again),
        Market::MarketErrors::NotActive(e) if e.status == COMPLETED
    ));
    let extend = chain
        .market(USER_KEY)
        .extend(id, 1, U256::from(1))
        .call()
        .await;
    assert!(matches!(
        custom_error(extend),
        Market::MarketErrors::NotActive(_)
    ));
}

#[tokio::test]
async fn extend_after_the_duration_reverts_expired() {
    let chain = Chain::start().await;
    let (id, start) = activated(&chain, 100, 1000).await;
    chain.mine_at(start + 100).await;
    let result = chain
        .market(USER_KEY)
        .extend(id, 10, U256::from(1))
        .call()
        .await;
    assert!(matches!(
        custom_error(result),
        Market::MarketErrors::OrderExpired(_)
    ));
}
