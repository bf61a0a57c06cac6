//! The signer task: the one place that signs and broadcasts, and the only owner of the node
//! wallet's nonce.
//!
//! Why a task with a channel rather than alloy's nonce filler: the cached nonce manager keeps
//! its count in the provider, so it drifts after a reorg, a failed broadcast or a transaction
//! sent through a cloned provider, and then every later transaction is stuck or rejected. Here
//! requests are handled one at a time, the next nonce lives in the task, and any error forgets
//! it so the next request re-reads it from the chain (and from the journal, see
//! [`SignerTask::next_nonce`]).
//!
//! The task only submits: it returns once the transaction is journaled and broadcast. Waiting
//! for the receipt happens in the caller, so one slow confirmation does not hold up the locks
//! of other orders.

use std::time::Duration;

use alloy::eips::{BlockId, Encodable2718};
use alloy::network::{EthereumWallet, NetworkWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, TxHash};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use grid_policy_sdk::OrderStatus;
use tokio::sync::{mpsc, oneshot};

use crate::bindings::Market;
use crate::journal::{Action, Journal, JournalEntry, JournalState};
use crate::order::{OrderId, read_order, to_sdk_address};
use crate::rpc::{self, Provider};
use crate::{Error, Result};

/// What the task did with a lock or settlement request.
#[derive(Debug)]
pub(crate) enum Submission {
    /// Settlement only: the order is no longer Active (cancelled, or completed by someone
    /// else) and no settlement of ours is pending: nothing was sent.
    Closed { status: OrderStatus },
    /// The order is already Active with this node as provider: nothing was sent. `tx_hash` is
    /// the journaled lock transaction when this node sent it.
    AlreadyActive { tx_hash: Option<TxHash> },
    /// The lock transaction (new, re-sent or replaced) is out. `hashes` are every transaction
    /// at its nonce, the newest first: whichever is mined is the lock.
    Sent { hashes: Vec<TxHash> },
}

struct Request {
    id: OrderId,
    action: Action,
    reply: oneshot::Sender<Result<Submission>>,
}

/// The handle callers hold; cheap to clone. Dropping every handle stops the task.
#[derive(Clone)]
pub(crate) struct SignerHandle {
    tx: mpsc::Sender<Request>,
}

impl SignerHandle {
    /// Starts the task on the current tokio runtime.
    pub(crate) fn spawn(task: SignerTask) -> Self {
        // Lock requests are rare; a small queue is plenty and bounds memory if the chain stalls.
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(task.run(rx));
        SignerHandle { tx }
    }

    /// Asks the task to lock or settle `id`. If the caller stops waiting, the task still
    /// finishes the submission: the journal then has it for the next call.
    pub(crate) async fn submit(&self, id: OrderId, action: Action) -> Result<Submission> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { id, action, reply })
            .await
            .map_err(|_| Error::SignerStopped)?;
        answer.await.map_err(|_| Error::SignerStopped)?
    }
}

/// The task's state.
pub(crate) struct SignerTask {
    pub(crate) provider: Provider,
    pub(crate) wallet: EthereumWallet,
    pub(crate) from: Address,
    pub(crate) market: Address,
    pub(crate) chain_id: u64,
    pub(crate) timeout: Duration,
    pub(crate) journal: Journal,
    /// A journaled transaction still unmined after this long is replaced at its nonce with
    /// higher fees; `None` never replaces (it is only sent again).
    pub(crate) replace_after: Option<Duration>,
    /// The next nonce to use; `None` means "ask the chain".
    pub(crate) next_nonce: Option<u64>,
    /// Whether the endpoint's chain id was checked against the config.
    pub(crate) chain_checked: bool,
}

impl SignerTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(Request { id, action, reply }) = rx.recv().await {
            let out = match action {
                Action::Activate => self.submit(id).await,
                Action::Settle => self.submit_settle(id).await,
            };
            if let Err(e) = &out {
                tracing::debug!(order = %id, action = action.as_str(), error = %e, "submission failed; nonce will be re-read");
                self.next_nonce = None;
            }
            // A caller that gave up is fine: the journal holds whatever was sent.
            let _ = reply.send(out);
        }
    }

    async fn submit(&mut self, id: OrderId) -> Result<Submission> {
        let order = read_order(&self.provider, self.market, id, self.timeout).await?;
        let journaled = self
            .journal
            .get(id, Action::Activate)?
            .filter(|e| e.from == self.from);
        if order.status == OrderStatus::Active && order.provider == to_sdk_address(self.from) {
            let tx_hash = match journaled {
                Some(e) if e.state == JournalState::Confirmed => Some(e.tx_hash),
                Some(e) => self.mined_among(&e.hashes()).await?,
                None => None,
            };
            return Ok(Submission::AlreadyActive { tx_hash });
        }

        if let Some(entry) = journaled
            && let Some(resent) = self.resume(id, &entry).await?
        {
            return Ok(resent);
        }

        self.send_new(id, Action::Activate).await
    }

    /// A settlement. The journal is looked at before the order: a settlement of ours that
    /// is pending or was mined (even one that completed the order, before a crash) is
    /// resumed or reported, never doubled. Only with none pending is the order read: not
    /// Active means there is nothing to settle (`Closed`), otherwise a new `settle(id)`.
    async fn submit_settle(&mut self, id: OrderId) -> Result<Submission> {
        let pending = self
            .journal
            .get(id, Action::Settle)?
            .filter(|e| e.from == self.from && e.state == JournalState::Sent);
        if let Some(entry) = pending
            && let Some(resent) = self.resume(id, &entry).await?
        {
            return Ok(resent);
        }
        let order = read_order(&self.provider, self.market, id, self.timeout).await?;
        if order.status != OrderStatus::Active {
            return Ok(Submission::Closed {
                status: order.status,
            });
        }
        self.send_new(id, Action::Settle).await
    }

    /// Picks up a journaled transaction: if one of its transactions is mined, the caller
    /// waits on it; if its nonce is still free, the same signed bytes go out again (or, once
    /// pending longer than `replace_after`, a replacement with higher fees at the same nonce).
    /// `None` when its nonce was taken by another transaction, so it can never be mined and a
    /// new one is needed.
    async fn resume(&mut self, id: OrderId, entry: &JournalEntry) -> Result<Option<Submission>> {
        // Nonce before receipts: if ours is mined between the reads, a receipt shows it,
        // rather than the nonce looking taken by someone else.
        let mined = self.mined_nonce().await?;
        if let Some(hash) = self.mined_among(&entry.hashes()).await? {
            return Ok(Some(Submission::Sent { hashes: vec![hash] }));
        }
        if mined <= entry.nonce {
            let stale = self
                .replace_after
                .is_some_and(|after| unix_now().saturating_sub(entry.signed_at) >= after.as_secs());
            if stale {
                return self.replace(id, entry).await.map(Some);
            }
            tracing::info!(order = %id, action = entry.action.as_str(), tx = %entry.tx_hash, nonce = entry.nonce, "re-sending a journaled transaction");
            self.broadcast(&entry.raw_tx).await?;
            return Ok(Some(Submission::Sent {
                hashes: entry.hashes(),
            }));
        }
        tracing::warn!(order = %id, action = entry.action.as_str(), tx = %entry.tx_hash, nonce = entry.nonce, "journaled transaction was superseded at its nonce; signing a new one");
        self.journal.remove_if(id, entry.action, entry.tx_hash)?;
        Ok(None)
    }

    /// The first of `hashes` that has a receipt.
    async fn mined_among(&self, hashes: &[TxHash]) -> Result<Option<TxHash>> {
        for hash in hashes {
            let receipt = rpc::bounded(
                self.timeout,
                "eth_getTransactionReceipt",
                self.provider.get_transaction_receipt(*hash),
            )
            .await?;
            if receipt.is_some() {
                return Ok(Some(*hash));
            }
        }
        Ok(None)
    }

    /// Signs the same call at the same nonce with fees at least 12.5 % higher (nodes want
    /// 10 % more to accept a replacement), journals it, then broadcasts it. If the node still
    /// refuses it, the journal goes back to the previous transaction, which is sent again.
    async fn replace(&mut self, id: OrderId, entry: &JournalEntry) -> Result<Submission> {
        let fees = rpc::bounded(
            self.timeout,
            "fee estimation",
            self.provider.estimate_eip1559_fees(),
        )
        .await?;
        let bump = |old: u128| old.saturating_add(old / 8).saturating_add(1);
        let tip = fees
            .max_priority_fee_per_gas
            .max(bump(entry.max_priority_fee_per_gas));
        let cap = fees
            .max_fee_per_gas
            .max(bump(entry.max_fee_per_gas))
            .max(tip);
        let (raw, tx_hash) = self
            .sign(id, entry.action, entry.nonce, entry.gas_limit, cap, tip)
            .await?;
        let replacement = JournalEntry {
            tx_hash,
            raw_tx: raw.clone(),
            max_fee_per_gas: cap,
            max_priority_fee_per_gas: tip,
            signed_at: unix_now(),
            replaced: entry.hashes(),
            ..entry.clone()
        };
        self.journal.put(&replacement)?;
        tracing::info!(order = %id, old = %entry.tx_hash, new = %tx_hash, nonce = entry.nonce, "replacing a stuck transaction with higher fees");
        match self.broadcast(&raw).await {
            Ok(()) => Ok(Submission::Sent {
                hashes: replacement.hashes(),
            }),
            Err(e) if e.is_unavailable() => Err(e),
            Err(e) => {
                tracing::warn!(order = %id, error = %e, "replacement refused; keeping the previous transaction");
                self.journal.put(entry)?;
                self.broadcast(&entry.raw_tx).await?;
                Ok(Submission::Sent {
                    hashes: entry.hashes(),
                })
            }
        }
    }

    /// Simulates, signs, journals, then broadcasts a new `activate(id)` or `settle(id)`.
    async fn send_new(&mut self, id: OrderId, action: Action) -> Result<Submission> {
        // eth_call first: a call that would revert (not our order, no longer Created or
        // Active) is reported with its custom error and costs no gas and no nonce.
        rpc::bounded(
            self.timeout,
            "eth_call",
            self.provider
                .call(self.request(id, action))
                .block(BlockId::latest()),
        )
        .await?;

        self.check_chain().await?;
        let nonce = self.next_nonce().await?;
        let gas = rpc::bounded(
            self.timeout,
            "eth_estimateGas",
            self.provider.estimate_gas(self.request(id, action)),
        )
        .await?;
        // A margin over the estimate: state can shift between estimate and inclusion.
        let gas_limit = gas.saturating_add(gas / 5);
        let fees = rpc::bounded(
            self.timeout,
            "fee estimation",
            self.provider.estimate_eip1559_fees(),
        )
        .await?;
        let (raw, tx_hash) = self
            .sign(
                id,
                action,
                nonce,
                gas_limit,
                fees.max_fee_per_gas,
                fees.max_priority_fee_per_gas,
            )
            .await?;

        // Journal first, broadcast second: a crash in between leaves signed bytes that the
        // next attempt sends again, never a second transaction for the same order.
        self.journal.put(&JournalEntry {
            order_id: id.to_string(),
            action,
            from: self.from,
            nonce,
            tx_hash,
            raw_tx: raw.clone(),
            state: JournalState::Sent,
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            signed_at: unix_now(),
            replaced: Vec::new(),
        })?;
        self.next_nonce = Some(nonce + 1);

        match self.broadcast(&raw).await {
            Ok(()) => Ok(Submission::Sent {
                hashes: vec![tx_hash],
            }),
            // Maybe it arrived, maybe not: the journal keeps it and a retry sends it again.
            Err(e) if e.is_unavailable() => Err(e),
            // The node refused it outright (funds, nonce): nothing is pending, forget it.
            Err(e) => {
                self.journal.remove_if(id, action, tx_hash)?;
                Err(e)
            }
        }
    }

    fn request(&self, id: OrderId, action: Action) -> TransactionRequest {
        call_request(self.from, self.market, id, action)
    }

    /// Signs `activate(id)` or `settle(id)` as an EIP-1559 transaction; returns its bytes
    /// and hash.
    async fn sign(
        &self,
        id: OrderId,
        action: Action,
        nonce: u64,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    ) -> Result<(Bytes, TxHash)> {
        let request = self
            .request(id, action)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas_limit)
            .with_max_fee_per_gas(max_fee_per_gas)
            .with_max_priority_fee_per_gas(max_priority_fee_per_gas);
        let envelope =
            NetworkWallet::<alloy::network::Ethereum>::sign_request(&self.wallet, request)
                .await
                .map_err(|e| Error::Signing {
                    reason: e.to_string(),
                })?;
        Ok((Bytes::from(envelope.encoded_2718()), *envelope.tx_hash()))
    }

    /// The nonce for a new transaction. When not known, it is read from the chain, and every
    /// journaled transaction not yet mined is sent again first: its nonce is already taken,
    /// and if the node lost it (crash before broadcast, mempool eviction) it would be a gap
    /// that stalls every later transaction.
    async fn next_nonce(&mut self) -> Result<u64> {
        if let Some(n) = self.next_nonce {
            return Ok(n);
        }
        let pending = rpc::bounded(
            self.timeout,
            "eth_getTransactionCount",
            self.provider.get_transaction_count(self.from).pending(),
        )
        .await?;
        let mined = self.mined_nonce().await?;
        let mut next = pending;
        for entry in self.journal.unconfirmed(self.from)? {
            if entry.nonce < mined {
                continue;
            }
            match self.broadcast(&entry.raw_tx).await {
                Ok(()) => next = next.max(entry.nonce + 1),
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::warn!(order = %entry.order_id, error = %e, "journaled transaction refused on re-send")
                }
            }
        }
        self.next_nonce = Some(next);
        Ok(next)
    }

    /// The count of the wallet's transactions in mined blocks.
    async fn mined_nonce(&self) -> Result<u64> {
        rpc::bounded(
            self.timeout,
            "eth_getTransactionCount",
            self.provider.get_transaction_count(self.from).latest(),
        )
        .await
    }

    /// Sends signed bytes; a node that already has them is success.
    async fn broadcast(&self, raw: &Bytes) -> Result<()> {
        match rpc::bounded(
            self.timeout,
            "eth_sendRawTransaction",
            self.provider.send_raw_transaction(raw),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(Error::Rpc { message }) if is_already_known(&message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Refuses to sign for an endpoint of another chain than the configured one.
    async fn check_chain(&mut self) -> Result<()> {
        if self.chain_checked {
            return Ok(());
        }
        let actual =
            rpc::bounded(self.timeout, "eth_chainId", self.provider.get_chain_id()).await?;
        if actual != self.chain_id {
            return Err(Error::ChainIdMismatch {
                expected: self.chain_id,
                actual,
            });
        }
        self.chain_checked = true;
        Ok(())
    }
}

/// The unsigned call `action(id)` from `from` to the Market.
pub(crate) fn call_request(
    from: Address,
    market: Address,
    id: OrderId,
    action: Action,
) -> TransactionRequest {
    let input = match action {
        Action::Activate => Market::activateCall { id: id.0 }.abi_encode(),
        Action::Settle => Market::settleCall { id: id.0 }.abi_encode(),
    };
    TransactionRequest::default()
        .from(from)
        .to(market)
        .input(Bytes::from(input).into())
}

/// Nodes word "I have this transaction already" differently.
fn is_already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "already known",
        "already imported",
        "known transaction",
        "already exists",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
