//! Order ids and reading an order from the Market into the host's `Order` type.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use grid_policy_sdk::{Amount, Order, OrderStatus, Resources};

use crate::bindings::{Market, status};
use crate::rpc::{self, Provider};
use crate::{Error, Result};

/// A Market order id: a u256, written in decimal like `Order::id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(pub U256);

impl FromStr for OrderId {
    type Err = Error;

    /// Plain decimal only (no sign, no `0x`, no spaces): ids arrive in URLs and JSON, and an
    /// id that parses as something other than what it looks like would lock the wrong order.
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<Amount>()
            .map(|a| OrderId(a.as_u256()))
            .map_err(|_| Error::InvalidOrderId { id: s.to_owned() })
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u64> for OrderId {
    fn from(value: u64) -> Self {
        OrderId(U256::from(value))
    }
}

/// Converts an alloy address into the SDK's.
pub fn to_sdk_address(a: Address) -> grid_policy_sdk::Address {
    grid_policy_sdk::Address(a.into_array())
}

/// Converts an SDK address into alloy's.
pub fn from_sdk_address(a: grid_policy_sdk::Address) -> Address {
    Address::from(a.0)
}

/// Where an order's payment stands on chain, in the token's smallest unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The order's status.
    pub status: OrderStatus,
    /// The escrowed total, extensions included.
    pub amount: U256,
    /// Paid to the payee so far (settlements, and a cancellation's payout).
    pub paid: U256,
    /// Released so far (paid or not); what a settlement now would bring the total to.
    pub released: U256,
    /// Unix seconds (block time) the order started, when locked.
    pub start_time: Option<u64>,
    /// Seconds bought, extensions included.
    pub duration_secs: u64,
    /// The latest block's time, at which `released` was read.
    pub block_time: u64,
}

impl Payment {
    /// What a settlement now would pay out.
    pub fn releasable(&self) -> U256 {
        self.released.saturating_sub(self.paid)
    }

    /// True when the order is Active and its full duration has elapsed on chain: a
    /// settlement now completes it.
    pub fn is_due(&self) -> bool {
        self.status == OrderStatus::Active
            && self
                .start_time
                .is_some_and(|t| self.block_time >= t.saturating_add(self.duration_secs))
    }
}

/// Reads an order's payment: `getOrder(id)` and `released(id)` at one block.
pub(crate) async fn read_payment(
    provider: &Provider,
    market: Address,
    id: OrderId,
    timeout: Duration,
) -> Result<Payment> {
    let block = rpc::bounded(
        timeout,
        "eth_getBlockByNumber",
        provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest),
    )
    .await?
    .ok_or_else(|| Error::InvalidResponse {
        reason: "no latest block".into(),
    })?;
    let at = BlockId::number(block.header.number);
    let raw = get_order(provider, market, id, timeout, at).await?;
    let order = map_order(id, raw.clone())?;
    let call = Market::releasedCall { id: id.0 };
    let tx = TransactionRequest::default()
        .to(market)
        .input(Bytes::from(call.abi_encode()).into());
    let out = rpc::bounded(timeout, "eth_call released", provider.call(tx).block(at)).await?;
    let released =
        Market::releasedCall::abi_decode_returns(&out).map_err(|e| Error::InvalidResponse {
            reason: format!("released({id}): {e}"),
        })?;
    Ok(Payment {
        status: order.status,
        amount: raw.amount,
        paid: raw.paid,
        released,
        start_time: order.start_time,
        duration_secs: order.duration_secs,
        block_time: block.header.timestamp,
    })
}

/// Calls `getOrder(id)` at the latest block and maps the result.
pub(crate) async fn read_order(
    provider: &Provider,
    market: Address,
    id: OrderId,
    timeout: Duration,
) -> Result<Order> {
    // Explicitly `latest`: with no block some nodes (anvil) answer from the pending block,
    // where a lock still in the mempool already looks Active.
    let order = get_order(provider, market, id, timeout, BlockId::latest()).await?;
    map_order(id, order)
}

/// `getOrder(id)` at `at`, undecoded beyond the ABI.
async fn get_order(
    provider: &Provider,
    market: Address,
    id: OrderId,
    timeout: Duration,
    at: BlockId,
) -> Result<Market::Order> {
    let call = Market::getOrderCall { id: id.0 };
    let tx = TransactionRequest::default()
        .to(market)
        .input(Bytes::from(call.abi_encode()).into());
    let out = rpc::bounded(timeout, "eth_call getOrder", provider.call(tx).block(at))
        .await
        .map_err(|e| match e {
            // The Market reverts with OrderNotFound for an id no order has.
            Error::Reverted { reason, .. } if reason.starts_with("OrderNotFound") => {
                Error::OrderNotFound { id: id.to_string() }
            }
            other => other,
        })?;
    if out.is_empty() {
        // No code at the address answers an empty success: the config points at no Market.
        return Err(Error::InvalidResponse {
            reason: format!("getOrder returned nothing: is {market} the Market contract?"),
        });
    }
    Market::getOrderCall::abi_decode_returns(&out).map_err(|e| Error::InvalidResponse {
        reason: format!("getOrder({id}): {e}"),
    })
}

/// Maps the contract's order onto the SDK's, field by field. An empty GPU model means
/// "any" (`None`); a zero start time means "not started" (`None`).
pub(crate) fn map_order(id: OrderId, o: Market::Order) -> Result<Order> {
    let status = match o.status {
        status::CREATED => OrderStatus::Created,
        status::ACTIVE => OrderStatus::Active,
        status::CANCELLED => OrderStatus::Cancelled,
        status::COMPLETED => OrderStatus::Completed,
        0 => return Err(Error::OrderNotFound { id: id.to_string() }),
        other => {
            return Err(Error::InvalidResponse {
                reason: format!("order {id} has unknown status {other}"),
            });
        }
    };
    let r = o.resources;
    Ok(Order {
        id: id.to_string(),
        user: to_sdk_address(o.user),
        provider: to_sdk_address(o.provider),
        payee: to_sdk_address(o.payee),
        resources: Resources {
            cpu_millis: r.cpuMillis,
            memory_bytes: r.memoryBytes,
            storage_bytes: r.storageBytes,
            gpus: r.gpus,
            gpu_model: (!r.gpuModel.is_empty()).then_some(r.gpuModel),
        },
        duration_secs: o.durationSecs,
        payment: Amount::from_u256(o.amount),
        start_time: (o.startTime != 0).then_some(o.startTime),
        created_at: o.createdAt,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_plain_decimal() {
        assert_eq!("42".parse::<OrderId>().ok(), Some(OrderId::from(42)));
        for bad in ["", "0x2a", "-1", " 1", "1e3"] {
            assert!(bad.parse::<OrderId>().is_err(), "{bad:?}");
        }
        assert_eq!(OrderId::from(42).to_string(), "42");
    }
}
