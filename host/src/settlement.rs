//! Getting paid: the node settles its accepted orders on chain by itself.
//!
//! The Market releases an order's payment to the payee linearly over its duration, but only
//! `settle(id)` moves it. The [`Settler`] looks at every order the store holds as active,
//! every `settlement.poll_secs`, and reads where its payment stands on chain (block time, not
//! the node's clock: the contract decides with block time):
//!
//! - **at the end** (the full duration has elapsed on chain) it settles, whatever the
//!   amount: that completes the order, whose `OrderCompleted` event then tears its app down
//!   as any ended order. At start the first look does this for orders whose time ran out
//!   while the node was down;
//! - **during a long order**, once `settlement.interval_secs` of chain time have passed since
//!   its last settlement (or check), it settles what has been released if that is worth it:
//!   at least `settlement.min_payout` and at least `settlement.min_fee_multiple` times the
//!   estimated fee of the transaction. A smaller payout is skipped until the next interval;
//! - **never bleeds**: settlements go through the chain client's signer and journal, so a
//!   crash between broadcast and receipt resumes the same transaction rather than sending a
//!   second; an order cancelled or completed by someone else is closed, not failed; a
//!   transport error or a pending transaction backs off per order (doubling from
//!   `backoff_initial_ms` up to `backoff_max_ms`); a revert with the order still active is
//!   recorded and waits the longest back-off before the order is read again.
//!
//! What was paid and the last settlement are kept in the store (`gw_settlements`) and shown
//! on `GET /_grid/v1/orders/{id}`; payouts, fees and results are counted in metrics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use grid_chain::{ChainClient, OrderId, Payment, SettleOutcome, U256};
use grid_policy_sdk::{Amount, OrderStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::store::{OrderState, SettlementRecord, Store};

/// `[settlement]`: when the node settles its orders, and when it is not worth it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// Settle at all. Default true; off, the node is paid only when someone else settles.
    pub enabled: bool,
    /// How often the settler looks at the active orders, in seconds. Default 60.
    pub poll_secs: u64,
    /// Chain time between two settlements of a running order, in seconds. Default 86400
    /// (daily). 0 settles only at the end of each order.
    pub interval_secs: u64,
    /// Smallest payout an interval settlement is sent for, in the token's smallest unit
    /// (decimal). Default 0. The final settlement is always sent.
    pub min_payout: Amount,
    /// An interval settlement is sent only if its payout is at least this many times the
    /// transaction's estimated fee (the token taken at par with the chain's native unit;
    /// see the README for other tokens). Default 10; 0 turns the check off.
    pub min_fee_multiple: u64,
    /// First back-off after a transport error or a pending transaction, per order, in ms.
    /// Default 5000; doubled on each failure in a row.
    pub backoff_initial_ms: u64,
    /// Longest back-off, in ms; also what a revert waits before the order is read again.
    /// Default 600000 (10 min).
    pub backoff_max_ms: u64,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        SettlementConfig {
            enabled: true,
            poll_secs: 60,
            interval_secs: 86_400,
            min_payout: Amount::ZERO,
            min_fee_multiple: 10,
            backoff_initial_ms: 5_000,
            backoff_max_ms: 600_000,
        }
    }
}

impl SettlementConfig {
    /// The settler's period.
    pub fn poll(&self) -> Duration {
        Duration::from_secs(self.poll_secs.max(1))
    }

    /// Checks the settings; `Err` names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.backoff_initial_ms == 0 {
            return Err(("settlement.backoff_initial_ms", "must be above 0".into()));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err((
                "settlement.backoff_max_ms",
                "must be at least backoff_initial_ms".into(),
            ));
        }
        Ok(())
    }
}

/// Labels of a settlement attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `settled` (interval payout), `completed` (the final one), `closed` (cancelled or
    /// settled by someone else), `skipped` (below the threshold), `pending` (not mined in
    /// time; resumed later), `unavailable` (transport), `reverted`, `failed`.
    pub result: String,
}

/// The settler's metrics.
#[derive(Clone, Default)]
pub struct SettlementMetrics {
    /// Settlement attempts by result.
    pub settlements: Family<ResultLabels, Counter>,
    /// Token paid to the payee by this node's settlements, in the token's smallest unit.
    pub payout: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Fees spent on settlement transactions (mined ones, reverted included), in wei.
    pub fees: Counter<f64, std::sync::atomic::AtomicU64>,
}

impl SettlementMetrics {
    /// Registers under the `grid_gateway` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_gateway");
        sub.register(
            "settlements",
            "Settlement attempts by result",
            self.settlements.clone(),
        );
        sub.register(
            "settlement_payout_token_units",
            "Token paid to payees by this node's settlements (smallest unit)",
            self.payout.clone(),
        );
        sub.register(
            "settlement_fees_wei",
            "Fees spent on settlement transactions (wei)",
            self.fees.clone(),
        );
    }

    fn count(&self, result: &str) {
        self.settlements
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

fn as_f64(v: U256) -> f64 {
    // Counters are floats; amounts beyond 2^53 lose precision there, never in the store.
    v.to_string().parse().unwrap_or(f64::MAX)
}

/// What one look at one order did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Settled: `payout` went to the payee; `completed` when that ended the order.
    Settled {
        /// Paid now.
        payout: U256,
        /// The order is over.
        completed: bool,
    },
    /// Nothing to settle: the order is over on chain (cancelled, or settled by someone else).
    Closed(OrderStatus),
    /// The payout now is below the threshold.
    Skipped {
        /// What a settlement would have paid.
        releasable: U256,
        /// What it had to reach.
        threshold: U256,
    },
    /// Not due: neither at its end nor an interval since the last settlement.
    NotDue,
    /// Waiting out a back-off.
    BackingOff,
    /// Failed (`pending`, `unavailable`, `reverted`, `failed`); backed off.
    Failed(&'static str),
}

struct Backoff {
    failures: u32,
    until: Instant,
}

/// Settles the node's orders; see the module doc.
pub struct Settler {
    chain: ChainClient,
    store: Store,
    config: SettlementConfig,
    metrics: SettlementMetrics,
    backoff: Mutex<HashMap<String, Backoff>>,
}

impl Settler {
    /// A settler over the store's active orders.
    pub fn new(
        chain: ChainClient,
        store: Store,
        config: SettlementConfig,
        metrics: SettlementMetrics,
    ) -> Self {
        Settler {
            chain,
            store,
            config,
            metrics,
            backoff: Mutex::default(),
        }
    }

    /// One look at every order the store holds as active. Returns what it did per order.
    pub async fn tick(&self) -> crate::Result<Vec<(String, Action)>> {
        let mut done = Vec::new();
        for record in self.store.orders()? {
            if record.state != OrderState::Active {
                continue;
            }
            let id = record.order.id.clone();
            let action = self.look(&id).await?;
            if action != Action::NotDue {
                tracing::debug!(order = %id, ?action, "settlement");
            }
            done.push((id, action));
        }
        Ok(done)
    }

    /// Looks at one order; settles it if due.
    async fn look(&self, id: &str) -> crate::Result<Action> {
        let mut record = self
            .store
            .settlement(id)?
            .unwrap_or_else(|| SettlementRecord {
                order_id: id.to_owned(),
                paid: "0".into(),
                ..SettlementRecord::default()
            });
        if record.closed {
            return Ok(Action::NotDue);
        }
        if self.backing_off(id) {
            return Ok(Action::BackingOff);
        }
        let order_id: OrderId = crate::orders::parse_order_id(id)?;
        let payment = match self.chain.payment(order_id).await {
            Ok(p) => p,
            Err(e) => return self.failed(&mut record, "unavailable", e.to_string(), false),
        };
        record.paid = payment.paid.to_string();
        if payment.status != OrderStatus::Active {
            // Over on chain without a settlement of ours pending (the chain client resumes
            // one before looking at the order, so ours would have been reported there).
            return self.settle(&mut record, order_id, &payment).await;
        }
        if !payment.is_due() {
            let since = record.last_checked_at.or(payment.start_time).unwrap_or(0);
            let interval_up = self.config.interval_secs > 0
                && payment.block_time >= since.saturating_add(self.config.interval_secs);
            if !interval_up {
                return Ok(Action::NotDue);
            }
            let releasable = payment.releasable();
            let threshold = match self.threshold(order_id).await {
                Ok(t) => t,
                Err(e) => return self.failed(&mut record, "unavailable", e.to_string(), false),
            };
            if releasable.is_zero() || releasable < threshold {
                record.last_checked_at = Some(payment.block_time);
                self.store.put_settlement(&record)?;
                self.metrics.count("skipped");
                tracing::info!(order = %id, %releasable, %threshold, "interval settlement skipped: payout below the threshold");
                return Ok(Action::Skipped {
                    releasable,
                    threshold,
                });
            }
        }
        self.settle(&mut record, order_id, &payment).await
    }

    /// What an interval payout must reach: `min_payout`, and `min_fee_multiple` × the fee.
    async fn threshold(&self, id: OrderId) -> grid_chain::Result<U256> {
        let floor = self.config.min_payout.as_u256();
        if self.config.min_fee_multiple == 0 {
            return Ok(floor);
        }
        let fee = self.chain.settle_fee_estimate(id).await?;
        Ok(floor.max(fee.saturating_mul(U256::from(self.config.min_fee_multiple))))
    }

    async fn settle(
        &self,
        record: &mut SettlementRecord,
        id: OrderId,
        payment: &Payment,
    ) -> crate::Result<Action> {
        let key = record.order_id.clone();
        let settlement = match self.chain.settle(id).await {
            Ok(s) => s,
            Err(e) => {
                let (result, longest) = match &e {
                    grid_chain::Error::TxPending { .. } => ("pending", false),
                    e if e.is_unavailable() => ("unavailable", false),
                    grid_chain::Error::Reverted { .. } => ("reverted", true),
                    _ => ("failed", true),
                };
                return self.failed(record, result, e.to_string(), longest);
            }
        };
        self.backoff_lock().remove(&key);
        self.metrics.fees.inc_by(as_f64(settlement.fee));
        if let Some(tx) = settlement.tx_hash {
            record.last_tx = Some(tx.to_string());
        }
        record.last_error = None;
        let action = match settlement.outcome {
            SettleOutcome::Settled {
                payout,
                total_paid,
                completed,
            } => {
                record.paid = total_paid.to_string();
                record.settlements += 1;
                record.last_checked_at = Some(payment.block_time);
                record.closed = completed;
                self.metrics
                    .count(if completed { "completed" } else { "settled" });
                self.metrics.payout.inc_by(as_f64(payout));
                tracing::info!(order = %key, %payout, %total_paid, completed, fee = %settlement.fee, "order settled");
                Action::Settled { payout, completed }
            }
            SettleOutcome::Closed { status } => {
                record.closed = true;
                self.metrics.count("closed");
                tracing::info!(order = %key, %status, "nothing to settle: the order is over on chain");
                Action::Closed(status)
            }
        };
        self.store.put_settlement(record)?;
        Ok(action)
    }

    fn failed(
        &self,
        record: &mut SettlementRecord,
        result: &'static str,
        error: String,
        longest: bool,
    ) -> crate::Result<Action> {
        self.metrics.count(result);
        let initial = Duration::from_millis(self.config.backoff_initial_ms.max(1));
        let max = Duration::from_millis(self.config.backoff_max_ms).max(initial);
        let mut backoff = self.backoff_lock();
        let entry = backoff.entry(record.order_id.clone()).or_insert(Backoff {
            failures: 0,
            until: Instant::now(),
        });
        entry.failures = entry.failures.saturating_add(1);
        let wait = if longest {
            max
        } else {
            initial
                .saturating_mul(1u32 << (entry.failures - 1).min(20))
                .min(max)
        };
        entry.until = Instant::now() + wait;
        drop(backoff);
        tracing::warn!(order = %record.order_id, result, %error, ?wait, "settlement failed; backing off");
        record.last_error = Some(format!("{result}: {error}"));
        self.store.put_settlement(record)?;
        Ok(Action::Failed(result))
    }

    fn backing_off(&self, id: &str) -> bool {
        self.backoff_lock()
            .get(id)
            .is_some_and(|b| Instant::now() < b.until)
    }

    fn backoff_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Backoff>> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at the orders now (at start: orders whose time ran out while the node was
    /// down), then every `poll_secs`, until aborted.
    pub async fn run(self: std::sync::Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.poll());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "settlement pass failed");
            }
        }
    }
}

/// An order's pay as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayView {
    /// Paid to the payee so far (decimal), from the chain, or the store when it cannot be read.
    pub paid: Option<String>,
    /// What a settlement now would pay (decimal); `None` when the chain cannot be read.
    pub releasable: Option<String>,
    /// The last settlement transaction this node got mined.
    pub last_settlement_tx: Option<String>,
}

/// Reads an order's pay: live from the chain within `timeout`, else what the store recorded.
pub async fn pay_view(
    chain: Option<&ChainClient>,
    store: &Store,
    id: OrderId,
    timeout: Duration,
) -> crate::Result<PayView> {
    let key = id.to_string();
    let record = store.settlement(&key)?;
    let mut view = PayView {
        paid: record.as_ref().map(|r| r.paid.clone()),
        releasable: None,
        last_settlement_tx: record.and_then(|r| r.last_tx),
    };
    if let Some(chain) = chain
        && let Ok(Ok(payment)) = tokio::time::timeout(timeout, chain.payment(id)).await
    {
        view.paid = Some(payment.paid.to_string());
        view.releasable = Some(payment.releasable().to_string());
    }
    Ok(view)
}
