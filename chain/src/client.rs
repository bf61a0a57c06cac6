//! [`ChainClient`]: what the host calls to read orders, lock them, and follow their events.

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, TxHash, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionReceipt;
use grid_policy_sdk::Order;
use redb::Database;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::bindings::Market;
use crate::follower::{ChainEvent, EventFollower};
use crate::journal::{Action, Journal, JournalEntry};
use crate::keys::NodeWallet;
use crate::order::{OrderId, Payment, read_order, read_payment};
use crate::rpc::{self, Provider};
use crate::signer::{SignerHandle, SignerTask, Submission, call_request};
use crate::{ChainConfig, Error, Result};

/// The outcome of a successful [`ChainClient::activate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// The order.
    pub order_id: OrderId,
    /// The lock transaction, when this node sent it (it is unknown when the order was locked
    /// with this wallet by another tool).
    pub tx_hash: Option<TxHash>,
    /// True when the order was already Active with this node as provider before this call,
    /// so no transaction was sent by it.
    pub already_active: bool,
}

/// The outcome of a successful [`ChainClient::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The order.
    pub order_id: OrderId,
    /// What happened.
    pub outcome: SettleOutcome,
    /// The settlement transaction this call sent or resumed; `None` when nothing was sent.
    pub tx_hash: Option<TxHash>,
    /// What the transaction cost in the chain's native unit (gas used × effective gas price);
    /// zero when nothing was mined.
    pub fee: U256,
}

/// How a settlement ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// `settle(id)` was mined: `payout` went to the payee, who has had `total_paid` in all;
    /// `completed` when it ended the order.
    Settled {
        /// Paid by this transaction.
        payout: U256,
        /// Paid to the payee in all.
        total_paid: U256,
        /// The order is Completed.
        completed: bool,
    },
    /// The order is no longer Active (the user cancelled it, or someone else settled it to
    /// completion): there is nothing to settle, which is not a failure. When our transaction
    /// was mined and reverted because of that race, `tx_hash` and `fee` say so.
    Closed {
        /// Cancelled or Completed.
        status: grid_policy_sdk::OrderStatus,
    },
}

/// The chain client: order reads, the lock transaction, and the event follower's factory.
///
/// Cheap to clone; all clones share one signer task, which stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct ChainClient {
    config: Arc<ChainConfig>,
    provider: Provider,
    wallet: Address,
    journal: Journal,
    db: Arc<Database>,
    signer: SignerHandle,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("rpc_url", &self.config.rpc_url)
            .field("market", &self.config.market)
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

impl ChainClient {
    /// Builds the client and starts its signer task on the current tokio runtime (so call it
    /// from inside one). Makes no RPC call: a node may start while its chain endpoint is down.
    ///
    /// `db` is the host's shared redb database; this crate uses only tables named `chain_*`.
    pub fn new(config: ChainConfig, db: Arc<Database>, wallet: NodeWallet) -> Result<Self> {
        let provider = rpc::connect(&config.rpc_url, config.rpc_timeout())?;
        let journal = Journal::open(db.clone())?;
        let address = wallet.address();
        let signer = SignerHandle::spawn(SignerTask {
            provider: provider.clone(),
            wallet: EthereumWallet::from(wallet.signer().clone()),
            from: address,
            market: config.market,
            chain_id: config.chain_id,
            timeout: config.rpc_timeout(),
            journal: journal.clone(),
            replace_after: config.replace_after(),
            next_nonce: None,
            chain_checked: false,
        });
        Ok(ChainClient {
            config: Arc::new(config),
            provider,
            wallet: address,
            journal,
            db,
            signer,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The node wallet's address: the provider address orders must name.
    pub fn wallet_address(&self) -> Address {
        self.wallet
    }

    /// Reads an order at the latest block. Retries while the chain is unreachable.
    ///
    /// Errors: [`Error::OrderNotFound`] for an id no order has, [`Error::ChainUnavailable`]
    /// once the retries are spent.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.retry(|| {
            read_order(
                &self.provider,
                self.config.market,
                id,
                self.config.rpc_timeout(),
            )
        })
        .await
    }

    /// Locks the order for this node (`Market.activate`), once.
    ///
    /// Idempotent: an order already Active with this wallet as provider is success with
    /// `already_active` and no new transaction, also when a previous call (or process) died
    /// after sending; a journaled transaction is sent again byte for byte rather than signed
    /// anew. A lock that would revert is caught by simulation and reported as
    /// [`Error::Reverted`] with the custom error's name, costing nothing. Returns once the
    /// transaction has the configured confirmations, or [`Error::TxPending`] after
    /// `receipt_timeout_secs` (call again to keep waiting). Retries with backoff only while the
    /// chain is unreachable.
    pub async fn activate(&self, id: OrderId) -> Result<Activation> {
        self.retry(|| self.activate_once(id)).await
    }

    async fn activate_once(&self, id: OrderId) -> Result<Activation> {
        let deadline = Instant::now() + self.config.receipt_timeout();
        loop {
            match self.signer.submit(id, Action::Activate).await? {
                Submission::AlreadyActive { tx_hash } => {
                    if let Some(hash) = tx_hash {
                        // Our journaled lock may have been mined just now: let it reach the
                        // configured depth, as a fresh one would, before calling it done.
                        let Some((_, receipt)) = self.wait_confirmed(&[hash], deadline).await?
                        else {
                            return Err(Error::TxPending { tx_hash: hash });
                        };
                        if receipt.status() {
                            self.journal.mark_confirmed(id, Action::Activate, hash)?;
                        }
                    }
                    return Ok(Activation {
                        order_id: id,
                        tx_hash,
                        already_active: true,
                    });
                }
                Submission::Closed { status } => {
                    return Err(Error::InvalidResponse {
                        reason: format!(
                            "the signer answered a lock of {id} as a settlement ({status})"
                        ),
                    });
                }
                Submission::Sent { hashes } => {
                    // Wait in rounds of `replace_after`: after each, submitting again lets the
                    // signer replace a transaction stuck on low fees.
                    let round_end = match self.config.replace_after() {
                        Some(after) => deadline.min(Instant::now() + after),
                        None => deadline,
                    };
                    match self.wait_confirmed(&hashes, round_end).await? {
                        Some((hash, receipt)) => return self.finish(id, hash, receipt).await,
                        None if Instant::now() < deadline => continue,
                        None => {
                            return Err(Error::TxPending {
                                tx_hash: hashes.first().copied().unwrap_or_default(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Turns the lock's confirmed receipt into the outcome.
    async fn finish(
        &self,
        id: OrderId,
        tx_hash: TxHash,
        receipt: TransactionReceipt,
    ) -> Result<Activation> {
        if receipt.status() {
            self.journal.mark_confirmed(id, Action::Activate, tx_hash)?;
            return Ok(Activation {
                order_id: id,
                tx_hash: Some(tx_hash),
                already_active: false,
            });
        }
        // Mined but reverted (the state changed after our simulation). Forget it so a later
        // call simulates afresh, and say why it failed.
        self.journal.remove_if(id, Action::Activate, tx_hash)?;
        let reason = self
            .replay_revert(id, Action::Activate, receipt.block_number)
            .await;
        Err(Error::Reverted {
            reason,
            tx_hash: Some(tx_hash),
        })
    }

    /// EIP-1271: true when the contract at `wallet` says `signature` is its signature of
    /// `hash`. False for an address without code. Retries while the chain is unreachable.
    pub async fn is_valid_signature(
        &self,
        wallet: Address,
        hash: alloy::primitives::B256,
        signature: Bytes,
    ) -> Result<bool> {
        self.retry(|| {
            crate::eip1271::is_valid_signature(
                &self.provider,
                wallet,
                hash,
                signature.clone(),
                self.config.rpc_timeout(),
            )
        })
        .await
    }

    /// The journal's record of the order's lock transaction, if this node sent one.
    pub fn journal_entry(&self, id: OrderId) -> Result<Option<JournalEntry>> {
        self.journal.get(id, Action::Activate)
    }

    /// The journal's record of the order's latest settlement transaction, if this node sent
    /// one (pending or confirmed).
    pub fn settlement_entry(&self, id: OrderId) -> Result<Option<JournalEntry>> {
        self.journal.get(id, Action::Settle)
    }

    /// Where the order's payment stands (paid, released, and whether its time is up on
    /// chain), read at the latest block. One attempt: the caller backs off.
    pub async fn payment(&self, id: OrderId) -> Result<Payment> {
        read_payment(
            &self.provider,
            self.config.market,
            id,
            self.config.rpc_timeout(),
        )
        .await
    }

    /// What a `settle(id)` would cost now, in the native unit: its gas estimate (with the
    /// signer's 20 % margin) times the current fee cap. An upper bound of what is paid.
    pub async fn settle_fee_estimate(&self, id: OrderId) -> Result<U256> {
        let timeout = self.config.rpc_timeout();
        let request = call_request(self.wallet, self.config.market, id, Action::Settle);
        let gas = rpc::bounded(
            timeout,
            "eth_estimateGas",
            self.provider.estimate_gas(request),
        )
        .await?;
        let fees = rpc::bounded(
            timeout,
            "fee estimation",
            self.provider.estimate_eip1559_fees(),
        )
        .await?;
        Ok(U256::from(gas.saturating_add(gas / 5)) * U256::from(fees.max_fee_per_gas))
    }

    /// Pays the payee what the order has released (`Market.settle`), through the signer and
    /// its journal, once per call and never twice for one intent: a settlement journaled by
    /// an earlier call (or process, before a crash) is resumed — its bytes re-sent or its
    /// receipt read — rather than a new one signed.
    ///
    /// An order that is no longer Active (cancelled, or completed by someone else), before
    /// sending or as the reason our transaction reverted, is [`SettleOutcome::Closed`]: a
    /// success. Other reverts are [`Error::Reverted`] and are not retried here; transport
    /// errors are [`Error::ChainUnavailable`] (the caller backs off); a transaction not
    /// confirmed within `receipt_timeout_secs` is [`Error::TxPending`] (call again to resume).
    pub async fn settle(&self, id: OrderId) -> Result<Settlement> {
        let deadline = Instant::now() + self.config.receipt_timeout();
        let hashes = match self.signer.submit(id, Action::Settle).await {
            Ok(Submission::Sent { hashes }) => hashes,
            Ok(Submission::Closed { status }) => return Ok(closed(id, status, None, U256::ZERO)),
            Ok(Submission::AlreadyActive { .. }) => {
                return Err(Error::InvalidResponse {
                    reason: format!("the signer answered a settlement of {id} as a lock"),
                });
            }
            // The simulation reverted: a cancel or another settlement got there first?
            Err(e @ Error::Reverted { tx_hash: None, .. }) => {
                return match self.order(id).await {
                    Ok(o) if o.status != grid_policy_sdk::OrderStatus::Active => {
                        Ok(closed(id, o.status, None, U256::ZERO))
                    }
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let Some((hash, receipt)) = self.wait_confirmed(&hashes, deadline).await? else {
            return Err(Error::TxPending {
                tx_hash: hashes.first().copied().unwrap_or_default(),
            });
        };
        let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
        if receipt.status() {
            self.journal.mark_confirmed(id, Action::Settle, hash)?;
            let settled = receipt
                .inner
                .logs()
                .iter()
                .filter(|log| log.address() == self.config.market)
                .find_map(|log| log.log_decode::<Market::OrderSettled>().ok())
                .map(|log| log.inner.data);
            let Some(settled) = settled else {
                return Err(Error::InvalidResponse {
                    reason: format!("settlement {hash} of order {id} has no OrderSettled event"),
                });
            };
            let completed = receipt
                .inner
                .logs()
                .iter()
                .any(|log| log.log_decode::<Market::OrderCompleted>().is_ok());
            return Ok(Settlement {
                order_id: id,
                outcome: SettleOutcome::Settled {
                    payout: settled.payout,
                    total_paid: settled.totalPaid,
                    completed,
                },
                tx_hash: Some(hash),
                fee,
            });
        }
        // Mined but reverted. The journal forgets it (it will never be mined again); the
        // order says whether that was a lost race (success) or something to look at.
        self.journal.remove_if(id, Action::Settle, hash)?;
        match self.order(id).await {
            Ok(o) if o.status != grid_policy_sdk::OrderStatus::Active => {
                Ok(closed(id, o.status, Some(hash), fee))
            }
            _ => {
                let reason = self
                    .replay_revert(id, Action::Settle, receipt.block_number)
                    .await;
                Err(Error::Reverted {
                    reason,
                    tx_hash: Some(hash),
                })
            }
        }
    }

    /// An event follower for this client's Market, delivering to `sender`. Run it with
    /// [`EventFollower::run`] on a task of its own.
    pub fn follower(&self, sender: mpsc::Sender<ChainEvent>) -> Result<EventFollower> {
        EventFollower::new(&self.config, self.db.clone(), sender)
    }

    /// Polls the receipts of `hashes` (transactions at one nonce: at most one gets mined)
    /// until one has the configured confirmations, or `until` passes (`None`). A receipt that
    /// disappears (reorg) is simply waited for again.
    async fn wait_confirmed(
        &self,
        hashes: &[TxHash],
        until: Instant,
    ) -> Result<Option<(TxHash, TransactionReceipt)>> {
        let timeout = self.config.rpc_timeout();
        loop {
            for hash in hashes {
                let receipt = rpc::bounded(
                    timeout,
                    "eth_getTransactionReceipt",
                    self.provider.get_transaction_receipt(*hash),
                )
                .await?;
                let Some(receipt) = receipt else { continue };
                let Some(mined_in) = receipt.block_number else {
                    continue;
                };
                let head =
                    rpc::bounded(timeout, "eth_blockNumber", self.provider.get_block_number())
                        .await?;
                if head.saturating_sub(mined_in) + 1 >= self.config.confirmations() {
                    return Ok(Some((*hash, receipt)));
                }
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            tokio::time::sleep(self.config.poll_interval().min(Duration::from_secs(5))).await;
        }
    }

    /// Receipts carry no revert data, so the call is replayed to recover the custom error.
    /// It is replayed on the state *after* its block: what made a simulated-fine lock revert
    /// is a transaction mined before it (often in the same block), whose effect shows there.
    async fn replay_revert(&self, id: OrderId, action: Action, block: Option<u64>) -> String {
        let request = call_request(self.wallet, self.config.market, id, action);
        let at = block.map(BlockId::number).unwrap_or_else(BlockId::latest);
        match rpc::bounded(
            self.config.rpc_timeout(),
            "eth_call replay",
            self.provider.call(request).block(at),
        )
        .await
        {
            Err(Error::Reverted { reason, .. }) => reason,
            _ => "the transaction reverted; replaying it did not reproduce the reason".into(),
        }
    }

    async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        rpc::retry(
            self.config.retry_attempts,
            Duration::from_millis(self.config.retry_backoff_ms),
            op,
        )
        .await
    }
}

fn closed(
    id: OrderId,
    status: grid_policy_sdk::OrderStatus,
    tx_hash: Option<TxHash>,
    fee: U256,
) -> Settlement {
    Settlement {
        order_id: id,
        outcome: SettleOutcome::Closed { status },
        tx_hash,
        fee,
    }
}
