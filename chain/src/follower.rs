//! The event follower: polls the Market's logs from a cursor kept in redb, only as far as
//! blocks with the configured confirmations, and hands each event to the host over a tokio
//! channel.
//!
//! Delivery contract:
//! - the cursor advances only after `Sender::send` succeeded, one event at a time, and is
//!   committed with no `.await` between the send and the commit, so stopping the follower's
//!   task (or the process) never skips an event and never re-sends one that was handed over.
//!   The one window left is a crash *during* the commit's fsync, after the send: that event
//!   is delivered again after a restart. Each event carries (block, tx hash, log index) as
//!   a unique key for consumers that must be strictly idempotent;
//! - "handed over" means "in the channel": events the host had received but not yet acted on
//!   when it died are not delivered again. The host's reconciler should therefore read the
//!   state of its orders at start-up rather than rely on the event stream alone;
//! - confirmations guard against shallow reorgs only; a reorg deeper than them is not undone.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, TxHash};
use alloy::providers::Provider as _;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEventInterface;
use grid_policy_sdk::Amount;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::bindings::Market;
use crate::error::store;
use crate::order::{OrderId, to_sdk_address};
use crate::rpc::{self, Provider};
use crate::{ChainConfig, Error, Result};

/// Key: `<market address>@<chain id>`, so pointing the node at a new Market starts afresh.
/// Value: a JSON [`Cursor`].
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("chain_cursor");

/// What happened to an order, as the Market's event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarketEvent {
    /// A user opened an order (`OrderCreated`).
    Created {
        /// Who pays.
        user: grid_policy_sdk::Address,
        /// The node it is addressed to.
        provider: grid_policy_sdk::Address,
        /// Who is paid.
        payee: grid_policy_sdk::Address,
        /// Escrowed payment.
        amount: Amount,
        /// Bought duration, seconds.
        duration_secs: u64,
    },
    /// The provider locked it (`OrderActivated`).
    Activated {
        /// The provider that locked it.
        provider: grid_policy_sdk::Address,
        /// Its start, unix seconds.
        start_time: u64,
    },
    /// The user bought more time (`OrderExtended`).
    Extended {
        /// Seconds added.
        extra_secs: u64,
        /// Payment added.
        extra_amount: Amount,
        /// The order's new total duration.
        duration_secs: u64,
        /// The order's new total payment.
        amount: Amount,
    },
    /// The user cancelled it (`OrderCancelled`): free its capacity, tear its app down.
    Cancelled {
        /// Released payment paid to the payee at cancellation.
        paid_to_payee: Amount,
        /// Refunded to the user.
        refunded: Amount,
    },
    /// Released payment was paid out (`OrderSettled`).
    Settled {
        /// Paid now.
        payout: Amount,
        /// Paid so far in total.
        total_paid: Amount,
    },
    /// Its full duration elapsed and it was settled (`OrderCompleted`): free its capacity.
    Completed,
}

/// One Market event with where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// The order it is about.
    pub order_id: OrderId,
    /// What happened.
    pub event: MarketEvent,
    /// The block it is in.
    pub block_number: u64,
    /// The transaction that emitted it.
    pub tx_hash: TxHash,
    /// Its index in the block; with the block number, a unique key for the event.
    pub log_index: u64,
}

/// The outcome of one [`EventFollower::poll_once`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Blocks up to `through_block` were scanned and `delivered` events sent.
    Scanned {
        /// The last block scanned.
        through_block: u64,
        /// Events handed over in this step.
        delivered: usize,
    },
    /// No new confirmed block yet.
    CaughtUp,
    /// The receiving end of the channel is gone; nothing more can be delivered.
    ReceiverClosed,
}

/// Where the follower is: the next block to scan and, within it, the last event already
/// delivered (a restart in the middle of a block resumes after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    next_block: u64,
    delivered: Option<(u64, u64)>,
}

/// Follows the Market's events. Build it with [`crate::ChainClient::follower`].
pub struct EventFollower {
    provider: Provider,
    market: Address,
    db: Arc<Database>,
    key: String,
    start_block: u64,
    confirmations: u64,
    range: u64,
    timeout: Duration,
    poll_interval: Duration,
    backoff: Duration,
    sender: mpsc::Sender<ChainEvent>,
}

impl EventFollower {
    /// A follower for `config.market`, with its cursor in `db`.
    pub fn new(
        config: &ChainConfig,
        db: Arc<Database>,
        sender: mpsc::Sender<ChainEvent>,
    ) -> Result<Self> {
        let tx = db.begin_write().map_err(store)?;
        tx.open_table(TABLE).map_err(store)?;
        tx.commit().map_err(store)?;
        Ok(EventFollower {
            provider: rpc::connect(&config.rpc_url, config.rpc_timeout())?,
            market: config.market,
            db,
            key: format!("{:#x}@{}", config.market, config.chain_id),
            start_block: config.start_block,
            confirmations: config.confirmations(),
            range: config.log_block_range.max(1),
            timeout: config.rpc_timeout(),
            poll_interval: config.poll_interval(),
            backoff: Duration::from_millis(config.retry_backoff_ms.max(1)),
            sender,
        })
    }

    /// Follows until the receiver is dropped (`Ok`) or the store fails (`Err`). Any chain
    /// trouble (unreachable, an RPC error such as a provider's log-range cap, an odd answer)
    /// is logged and retried with backoff (up to 30 s): the follower must outlive a bad
    /// minute at the RPC provider.
    pub async fn run(mut self) -> Result<()> {
        let mut backoff = self.backoff;
        loop {
            match self.poll_once().await {
                Ok(Poll::ReceiverClosed) => return Ok(()),
                Ok(Poll::CaughtUp) => {
                    backoff = self.backoff;
                    tokio::time::sleep(self.poll_interval).await;
                }
                // More blocks may be waiting: go on without sleeping.
                Ok(Poll::Scanned { .. }) => backoff = self.backoff,
                Err(e @ (Error::Store(_) | Error::CorruptRecord { .. })) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "event follower: chain error, backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Scans the next range of confirmed blocks and delivers its events.
    pub async fn poll_once(&mut self) -> Result<Poll> {
        let mut cursor = self.load()?.unwrap_or(Cursor {
            next_block: self.start_block,
            delivered: None,
        });
        let head = rpc::bounded(
            self.timeout,
            "eth_blockNumber",
            self.provider.get_block_number(),
        )
        .await?;
        // The newest block with enough confirmations (its own block counts as one).
        let Some(safe) = (head + 1).checked_sub(self.confirmations) else {
            return Ok(Poll::CaughtUp);
        };
        if cursor.next_block > safe {
            return Ok(Poll::CaughtUp);
        }
        let to = safe.min(cursor.next_block.saturating_add(self.range - 1));
        let filter = Filter::new()
            .address(self.market)
            .from_block(cursor.next_block)
            .to_block(to);
        let mut logs =
            rpc::bounded(self.timeout, "eth_getLogs", self.provider.get_logs(&filter)).await?;
        logs.sort_by_key(|l| (l.block_number, l.log_index));

        let mut delivered = 0;
        for log in logs {
            if log.removed {
                continue;
            }
            let (Some(block), Some(index)) = (log.block_number, log.log_index) else {
                return Err(Error::InvalidResponse {
                    reason: "eth_getLogs returned a log without block number or index".into(),
                });
            };
            if cursor.delivered.is_some_and(|done| (block, index) <= done) {
                continue;
            }
            let Some(event) = decode(&log, block, index) else {
                continue;
            };
            if self.sender.send(event).await.is_err() {
                return Ok(Poll::ReceiverClosed);
            }
            // No await between the send above and this commit (see the module docs).
            cursor = Cursor {
                next_block: block,
                delivered: Some((block, index)),
            };
            self.save(cursor)?;
            delivered += 1;
        }
        self.save(Cursor {
            next_block: to + 1,
            delivered: None,
        })?;
        Ok(Poll::Scanned {
            through_block: to,
            delivered,
        })
    }

    fn load(&self) -> Result<Option<Cursor>> {
        let tx = self.db.begin_read().map_err(store)?;
        let table = tx.open_table(TABLE).map_err(store)?;
        let Some(value) = table.get(self.key.as_str()).map_err(store)? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| Error::CorruptRecord {
                key: format!("chain_cursor/{}", self.key),
                reason: e.to_string(),
            })
    }

    fn save(&self, cursor: Cursor) -> Result<()> {
        let bytes = serde_json::to_vec(&cursor).map_err(|e| Error::CorruptRecord {
            key: format!("chain_cursor/{}", self.key),
            reason: e.to_string(),
        })?;
        let tx = self.db.begin_write().map_err(store)?;
        {
            let mut table = tx.open_table(TABLE).map_err(store)?;
            table
                .insert(self.key.as_str(), bytes.as_slice())
                .map_err(store)?;
        }
        tx.commit().map_err(store)
    }
}

/// Decodes a Market log; `None` (logged) for one this version does not know, so a newer
/// contract's extra events do not stop the follower.
fn decode(log: &Log, block_number: u64, log_index: u64) -> Option<ChainEvent> {
    use Market::MarketEvents as E;
    let decoded = match E::decode_log(&log.inner) {
        Ok(d) => d.data,
        Err(e) => {
            tracing::warn!(block_number, log_index, error = %e, "skipping a Market log this version cannot decode");
            return None;
        }
    };
    let amount = Amount::from_u256;
    let (id, event) = match decoded {
        E::OrderCreated(e) => (
            e.id,
            MarketEvent::Created {
                user: to_sdk_address(e.user),
                provider: to_sdk_address(e.provider),
                payee: to_sdk_address(e.payee),
                amount: amount(e.amount),
                duration_secs: e.durationSecs,
            },
        ),
        E::OrderActivated(e) => (
            e.id,
            MarketEvent::Activated {
                provider: to_sdk_address(e.provider),
                start_time: e.startTime,
            },
        ),
        E::OrderExtended(e) => (
            e.id,
            MarketEvent::Extended {
                extra_secs: e.extraSecs,
                extra_amount: amount(e.extraAmount),
                duration_secs: e.durationSecs,
                amount: amount(e.amount),
            },
        ),
        E::OrderCancelled(e) => (
            e.id,
            MarketEvent::Cancelled {
                paid_to_payee: amount(e.paidToPayee),
                refunded: amount(e.refunded),
            },
        ),
        E::OrderSettled(e) => (
            e.id,
            MarketEvent::Settled {
                payout: amount(e.payout),
                total_paid: amount(e.totalPaid),
            },
        ),
        E::OrderCompleted(e) => (e.id, MarketEvent::Completed),
    };
    Some(ChainEvent {
        order_id: OrderId(id),
        event,
        block_number,
        tx_hash: log.transaction_hash.unwrap_or_default(),
        log_index,
    })
}
