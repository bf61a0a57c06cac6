//! Quote (greet type 0) and accept (greet type 1): the order side of the gateway.
//!
//! The service reads orders through grid-chain, asks the pricing and payee policies, measures
//! capacity against the store, stores what it accepts and only then sends the lock. Nothing
//! here knows about HTTP.

use std::sync::Arc;
use std::time::Duration;

use grid_chain::{ChainClient, OrderId, to_sdk_address};
use grid_policy_sdk::{
    Address, Amount, Decision, NodeInfo, Order, OrderStatus, PriceLine, Quote, QuoteRequest,
    RefusalKind, Resources,
};
use serde::Serialize;

use crate::capacity::{Capacity, CapacitySnapshot};
use crate::error::{Error, Result};
use crate::metrics::GatewayMetrics;
use crate::policy::{PolicySet, unix_now};
use crate::store::{OrderRecord, OrderState, Store};

/// Test hooks: faults injected at points a real crash could hit. All off by default;
/// nothing in the config turns them on.
#[derive(Clone, Debug, Default)]
#[doc(hidden)]
pub struct Hooks {
    /// Fail an accept right after the order is stored, before the lock is sent, as if the
    /// process had been killed there.
    pub fail_after_store: bool,
}

/// What a quote is for.
#[derive(Clone, Debug)]
pub enum QuoteInput {
    /// An order on chain, by id.
    Order(String),
    /// A spec given inline.
    Inline {
        /// Capacity asked for.
        resources: Resources,
        /// For how long.
        duration_secs: u64,
        /// The payment offered.
        payment: Amount,
    },
}

/// A quote's answer.
#[derive(Clone, Debug, Serialize)]
pub struct QuoteOutcome {
    /// True when the node would take it at this payment.
    pub acceptable: bool,
    /// The price (decimal u256).
    pub price: String,
    /// Why not, when not acceptable.
    pub reason: Option<String>,
    /// The error code an accept would fail with, when not acceptable.
    pub code: Option<&'static str>,
    /// How the price is made up.
    pub breakdown: Vec<PriceLine>,
}

/// An accepted order.
#[derive(Clone, Debug, Serialize)]
pub struct AcceptOutcome {
    /// The order.
    pub order_id: String,
    /// Always `active`.
    pub status: &'static str,
    /// The lock transaction, when known.
    pub tx_hash: Option<String>,
}

/// Bounds on chain-backed work.
#[derive(Clone, Copy, Debug)]
pub struct OrderTimeouts {
    /// Reading an order.
    pub read: Duration,
    /// A whole accept, including the lock's confirmation.
    pub accept: Duration,
}

/// Quotes and accepts.
pub struct OrderService {
    chain: Option<ChainClient>,
    policies: Arc<PolicySet>,
    capacity: Capacity,
    store: Store,
    metrics: GatewayMetrics,
    timeouts: OrderTimeouts,
    chain_id: u64,
    /// Serialises the check-and-reserve part of accepts, so two accepts cannot both see
    /// the same free capacity.
    reserve: tokio::sync::Mutex<()>,
    hooks: Hooks,
}

impl OrderService {
    /// The service. `chain` is `None` on a node without `[chain]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Option<ChainClient>,
        policies: Arc<PolicySet>,
        capacity: Capacity,
        store: Store,
        metrics: GatewayMetrics,
        timeouts: OrderTimeouts,
        chain_id: u64,
        hooks: Hooks,
    ) -> Self {
        OrderService {
            chain,
            policies,
            capacity,
            store,
            metrics,
            timeouts,
            chain_id,
            reserve: tokio::sync::Mutex::new(()),
            hooks,
        }
    }

    /// The chain client, if configured.
    pub fn chain(&self) -> Option<&ChainClient> {
        self.chain.as_ref()
    }

    /// The node wallet (the zero address without a chain).
    pub fn wallet(&self) -> Address {
        self.chain
            .as_ref()
            .map(|c| to_sdk_address(c.wallet_address()))
            .unwrap_or(Address::ZERO)
    }

    /// The capacity measurer.
    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    fn node_info(&self, snapshot: CapacitySnapshot) -> NodeInfo {
        NodeInfo {
            wallet: self.wallet(),
            chain_id: self.chain_id,
            total: snapshot.total,
            free: snapshot.free,
        }
    }

    /// Quotes an order or an inline spec.
    pub async fn quote(&self, input: QuoteInput) -> Result<QuoteOutcome> {
        let now = unix_now();
        let request = match input {
            QuoteInput::Order(id) => {
                let order = self.read_order(&id).await?;
                request_for(order)
            }
            QuoteInput::Inline {
                resources,
                duration_secs,
                payment,
            } => QuoteRequest {
                resources,
                duration_secs,
                payment,
                order: None,
            },
        };
        // An order already accepted here must not compete with itself for capacity.
        let except = request.order.as_ref().map(|o| o.id.clone());
        let snapshot = self.capacity.snapshot(now, except.as_deref())?;
        let quote = self.price(request, snapshot).await?;
        let refusal = refusal_error(&quote);
        Ok(QuoteOutcome {
            acceptable: refusal.is_none(),
            price: quote.price.to_string(),
            reason: refusal.as_ref().map(|e| e.to_string()),
            code: refusal.as_ref().map(Error::code),
            breakdown: quote.breakdown,
        })
    }

    /// What this node recorded of an order it accepted: its terms as last seen on chain
    /// (extensions included), where it is, and when it ends. Everything in it is public on
    /// chain, so no session is needed to read it.
    pub fn accepted_order(&self, id: &str) -> Result<OrderRecord> {
        let order_id = parse_order_id(id)?;
        let key = order_id.to_string();
        self.store.order(&key)?.ok_or(Error::OrderNotAccepted(key))
    }

    /// An accepted order's pay: live from the chain (within the read timeout), else what
    /// the settler recorded.
    pub async fn pay(&self, id: &str) -> Result<crate::settlement::PayView> {
        let order_id = parse_order_id(id)?;
        crate::settlement::pay_view(
            self.chain.as_ref(),
            &self.store,
            order_id,
            self.timeouts.read,
        )
        .await
    }

    /// Accepts an order: checks, stores, locks. Idempotent.
    pub async fn accept(&self, id: &str) -> Result<AcceptOutcome> {
        let chain = self.chain.as_ref().ok_or(Error::ChainNotConfigured)?;
        let order_id = parse_order_id(id)?;
        let key = order_id.to_string();
        if let Some(record) = self.store.order(&key)?
            && record.state == OrderState::Active
        {
            return Ok(accepted(&key, record.tx_hash));
        }
        tokio::time::timeout(
            self.timeouts.accept,
            self.accept_inner(chain, order_id, &key),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::ChainUnavailable(format!(
                "the accept did not finish within {:?}; accept again to resume",
                self.timeouts.accept
            )))
        })
    }

    async fn accept_inner(
        &self,
        chain: &ChainClient,
        order_id: OrderId,
        key: &str,
    ) -> Result<AcceptOutcome> {
        let order = self.read_order(key).await?;
        let wallet = self.wallet();
        if order.provider != wallet {
            return Err(Error::NotOurOrder {
                id: key.to_owned(),
                provider: order.provider.to_string(),
                wallet: wallet.to_string(),
            });
        }
        let stored = self.store.order(key)?;
        match order.status {
            OrderStatus::Cancelled | OrderStatus::Completed => {
                if stored.is_some() {
                    self.store.remove_order(key)?;
                }
                return Err(Error::OrderClosed {
                    id: key.to_owned(),
                    status: order.status.to_string(),
                });
            }
            // Already locked with our wallet (a lock that landed before a crash, or by
            // another tool): record it and report success; `activate` sends nothing.
            OrderStatus::Active => {}
            // Stored but not locked: we decided already (and reserved the capacity); a
            // crash or timeout came between the store and the lock. Only the lock is left.
            OrderStatus::Created if stored.is_some() => {}
            OrderStatus::Created => self.check_and_reserve(order.clone()).await?,
        }
        if stored.is_none() && order.status == OrderStatus::Active {
            self.store
                .put_order(&record(order.clone(), OrderState::Accepted, None))?;
        }
        if self.hooks.fail_after_store {
            return Err(Error::Injected("after store, before lock"));
        }
        let activation = match chain.activate(order_id).await {
            Ok(a) => {
                self.metrics.chain_call("activate", "ok");
                a
            }
            Err(e) => {
                let error = Error::from_chain(e);
                self.metrics.chain_call("activate", error.code());
                if matches!(error, Error::LockReverted(_)) {
                    // The Market refused: the order changed under us (cancelled, taken).
                    // Release the reservation so the capacity is free again.
                    self.store.remove_order(key)?;
                }
                return Err(error);
            }
        };
        let tx_hash = activation
            .tx_hash
            .map(|h| h.to_string())
            .or_else(|| stored.as_ref().and_then(|r| r.tx_hash.clone()));
        // Re-read for the start time the lock set, so capacity and sessions use the real
        // end of the order; fall back to the order as read before.
        let locked = match self.read_order(key).await {
            Ok(o) => o,
            Err(_) => Order {
                status: OrderStatus::Active,
                start_time: order.start_time.or(Some(unix_now())),
                ..order
            },
        };
        self.store
            .put_order(&record(locked, OrderState::Active, tx_hash.clone()))?;
        tracing::info!(order_id = %key, tx_hash = tx_hash.as_deref().unwrap_or("unknown"), "order accepted and locked");
        Ok(accepted(key, tx_hash))
    }

    /// Payee policy, then price and capacity at the order's payment; stores the order as
    /// accepted (reserving its capacity) when all pass.
    async fn check_and_reserve(&self, order: Order) -> Result<()> {
        let _guard = self.reserve.lock().await;
        let now = unix_now();
        let snapshot = self.capacity.snapshot(now, Some(&order.id))?;
        let node = self.node_info(snapshot.clone());
        if let Decision::Deny { reason } = self
            .policies
            .check_payee(order.clone(), node.clone())
            .await?
        {
            return Err(Error::PayeeRejected(reason));
        }
        let quote = self
            .price(request_for(order.clone()), snapshot.clone())
            .await?;
        if let Some(error) = refusal_error(&quote) {
            return Err(error);
        }
        // The host's own check: a pricing policy that forgets capacity must not make the
        // node oversell.
        if let Some(shortfall) = order.resources.first_shortfall(&snapshot.free) {
            return Err(Error::InsufficientCapacity(format!(
                "not enough free capacity: {shortfall}"
            )));
        }
        self.store
            .put_order(&record(order, OrderState::Accepted, None))?;
        Ok(())
    }

    async fn price(&self, request: QuoteRequest, snapshot: CapacitySnapshot) -> Result<Quote> {
        Ok(self
            .policies
            .quote(request, self.node_info(snapshot))
            .await?)
    }

    async fn read_order(&self, id: &str) -> Result<Order> {
        let chain = self.chain.as_ref().ok_or(Error::ChainNotConfigured)?;
        let order_id = parse_order_id(id)?;
        let result = tokio::time::timeout(self.timeouts.read, chain.order(order_id)).await;
        let outcome = match result {
            Ok(Ok(order)) => Ok(order),
            Ok(Err(e)) => Err(Error::from_chain(e)),
            Err(_) => Err(Error::ChainUnavailable(format!(
                "no answer within {:?}",
                self.timeouts.read
            ))),
        };
        self.metrics.chain_call(
            "order",
            match &outcome {
                Ok(_) => "ok",
                Err(e) => e.code(),
            },
        );
        outcome
    }
}

fn request_for(order: Order) -> QuoteRequest {
    QuoteRequest {
        resources: order.resources.clone(),
        duration_secs: order.duration_secs,
        payment: order.payment,
        order: Some(order),
    }
}

fn record(order: Order, state: OrderState, tx_hash: Option<String>) -> OrderRecord {
    OrderRecord {
        order,
        state,
        tx_hash,
        accepted_at: unix_now(),
    }
}

fn accepted(id: &str, tx_hash: Option<String>) -> AcceptOutcome {
    AcceptOutcome {
        order_id: id.to_owned(),
        status: "active",
        tx_hash,
    }
}

/// The error a refused quote stands for.
fn refusal_error(quote: &Quote) -> Option<Error> {
    let refusal = quote.refusal.as_ref()?;
    let reason = refusal.reason.clone();
    Some(match refusal.kind {
        RefusalKind::InsufficientPayment => Error::InsufficientPayment(reason),
        RefusalKind::InsufficientCapacity => Error::InsufficientCapacity(reason),
        RefusalKind::DurationOutOfRange => Error::DurationOutOfRange(reason),
        RefusalKind::UnsupportedResource => Error::UnsupportedResource(reason),
        RefusalKind::Other => Error::QuoteRefused(reason),
    })
}

/// Parses an order id as it arrives in a URL, a JSON body, a query or a header: plain
/// decimal, the one rule every endpoint uses (`grid_chain::OrderId`'s). `03` is order 3.
pub fn parse_order_id(raw: &str) -> Result<OrderId> {
    raw.parse()
        .map_err(|_| Error::InvalidOrderId(raw.to_owned()))
}

/// The canonical spelling of an order id (decimal, no leading zeros): the key under which
/// the store, the route table and the cluster know it, so `03` and `3` name one order
/// everywhere.
pub fn canonical_order_id(raw: &str) -> Result<String> {
    parse_order_id(raw).map(|id| id.to_string())
}
