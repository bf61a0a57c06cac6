//! The transaction journal: for each order being locked or settled, the nonce and the signed
//! raw transaction, written (and committed to disk) *before* the transaction is broadcast.
//!
//! After a crash or a transport error the same signed bytes are sent again instead of a new
//! transaction being signed, so one order never gets two lock transactions (nor two
//! settlements for one intent), and a nonce taken by a journaled transaction is never handed
//! to another one.
//!
//! One entry per order and action: the lock under the order id, the latest settlement under
//! `settle/<id>`. A confirmed settlement entry is history (the last settlement transaction);
//! the next settlement of the same order overwrites it.

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, TxHash};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::store;
use crate::order::OrderId;
use crate::{Error, Result};

/// Key: the order id in decimal (the lock), `settle/<id>` (the latest settlement). Value: a JSON [`JournalEntry`]. JSON rather than a packed
/// format because an operator may need to read it when something went wrong.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("chain_journal");

/// Where a journaled transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalState {
    /// Signed and recorded; maybe broadcast, not yet seen confirmed.
    Sent,
    /// Mined successfully with the configured confirmations. Kept so a repeated `activate`
    /// answers with the same transaction hash.
    Confirmed,
}

/// What a journaled transaction calls on the Market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `activate(id)`: the lock.
    #[default]
    Activate,
    /// `settle(id)`: pays the payee what has been released.
    Settle,
}

impl Action {
    /// The Market function's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Activate => "activate",
            Action::Settle => "settle",
        }
    }

    fn key(self, order_id: &str) -> String {
        match self {
            Action::Activate => order_id.to_owned(),
            Action::Settle => format!("settle/{order_id}"),
        }
    }
}

/// One order's lock or settlement transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The order it locks or settles.
    pub order_id: String,
    /// What it calls. Entries written before settlements existed are locks.
    #[serde(default)]
    pub action: Action,
    /// The node wallet that signed it.
    pub from: Address,
    /// Its nonce.
    pub nonce: u64,
    /// Its hash.
    pub tx_hash: TxHash,
    /// The signed EIP-2718 bytes, exactly as broadcast; emptied once confirmed.
    pub raw_tx: Bytes,
    /// Where it is.
    pub state: JournalState,
    /// Its gas limit, reused by a replacement.
    #[serde(default)]
    pub gas_limit: u64,
    /// Its EIP-1559 fee cap, so a replacement can outbid it.
    #[serde(default)]
    pub max_fee_per_gas: u128,
    /// Its EIP-1559 tip cap, so a replacement can outbid it.
    #[serde(default)]
    pub max_priority_fee_per_gas: u128,
    /// Unix seconds when it was signed, to tell when it has been pending too long.
    #[serde(default)]
    pub signed_at: u64,
    /// Earlier transactions at the same nonce that this one replaced (fee bump). Any one of
    /// them may be the one that gets mined, so all are watched.
    #[serde(default)]
    pub replaced: Vec<TxHash>,
}

impl JournalEntry {
    fn key(&self) -> String {
        self.action.key(&self.order_id)
    }

    /// Every transaction this entry stands for: the current one first, then those it replaced.
    pub fn hashes(&self) -> Vec<TxHash> {
        std::iter::once(self.tx_hash)
            .chain(self.replaced.iter().copied())
            .collect()
    }
}

/// The journal table in the host's shared redb database.
#[derive(Clone)]
pub(crate) struct Journal {
    db: Arc<Database>,
}

impl Journal {
    /// Opens the table, creating it on first use.
    pub(crate) fn open(db: Arc<Database>) -> Result<Self> {
        let tx = db.begin_write().map_err(store)?;
        tx.open_table(TABLE).map_err(store)?;
        tx.commit().map_err(store)?;
        Ok(Journal { db })
    }

    pub(crate) fn get(&self, id: OrderId, action: Action) -> Result<Option<JournalEntry>> {
        let key = action.key(&id.to_string());
        let tx = self.db.begin_read().map_err(store)?;
        let table = tx.open_table(TABLE).map_err(store)?;
        match table.get(key.as_str()).map_err(store)? {
            Some(value) => decode(&key, value.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Records (or overwrites) an entry and commits durably before returning.
    pub(crate) fn put(&self, entry: &JournalEntry) -> Result<()> {
        let key = entry.key();
        let bytes = serde_json::to_vec(entry).map_err(|e| Error::CorruptRecord {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let tx = self.db.begin_write().map_err(store)?;
        {
            let mut table = tx.open_table(TABLE).map_err(store)?;
            table
                .insert(key.as_str(), bytes.as_slice())
                .map_err(store)?;
        }
        tx.commit().map_err(store)
    }

    /// Removes the order's entry if `tx_hash` is one of its transactions (an entry signed
    /// later for the same order is left alone).
    pub(crate) fn remove_if(&self, id: OrderId, action: Action, tx_hash: TxHash) -> Result<()> {
        let key = action.key(&id.to_string());
        let tx = self.db.begin_write().map_err(store)?;
        {
            let mut table = tx.open_table(TABLE).map_err(store)?;
            let current = match table.get(key.as_str()).map_err(store)? {
                Some(v) => Some(decode(&key, v.value())?),
                None => None,
            };
            if current.is_some_and(|e| e.hashes().contains(&tx_hash)) {
                table.remove(key.as_str()).map_err(store)?;
            }
        }
        tx.commit().map_err(store)
    }

    /// Marks the order's entry confirmed with `tx_hash` (one of its transactions) as the one
    /// mined. The signed bytes are dropped: nothing will send them again.
    pub(crate) fn mark_confirmed(
        &self,
        id: OrderId,
        action: Action,
        tx_hash: TxHash,
    ) -> Result<()> {
        if let Some(mut entry) = self.get(id, action)?
            && entry.hashes().contains(&tx_hash)
            && entry.state != JournalState::Confirmed
        {
            let others = entry.hashes().into_iter().filter(|h| *h != tx_hash);
            entry.replaced = others.collect();
            entry.tx_hash = tx_hash;
            entry.raw_tx = Bytes::new();
            entry.state = JournalState::Confirmed;
            self.put(&entry)?;
        }
        Ok(())
    }

    /// Entries of `from` not yet confirmed: the transactions that may still need broadcasting.
    pub(crate) fn unconfirmed(&self, from: Address) -> Result<Vec<JournalEntry>> {
        let tx = self.db.begin_read().map_err(store)?;
        let table = tx.open_table(TABLE).map_err(store)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(store)? {
            let (key, value) = row.map_err(store)?;
            let entry = decode(key.value(), value.value())?;
            if entry.from == from && entry.state == JournalState::Sent {
                out.push(entry);
            }
        }
        out.sort_by_key(|e| e.nonce);
        Ok(out)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<JournalEntry> {
    serde_json::from_slice(bytes).map_err(|e| Error::CorruptRecord {
        key: format!("chain_journal/{key}"),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, nonce: u64, hash: u8) -> JournalEntry {
        JournalEntry {
            order_id: id.to_string(),
            action: Action::Activate,
            from: Address::repeat_byte(1),
            nonce,
            tx_hash: TxHash::repeat_byte(hash),
            raw_tx: Bytes::from_static(b"\x02raw"),
            state: JournalState::Sent,
            gas_limit: 60_000,
            max_fee_per_gas: 2,
            max_priority_fee_per_gas: 1,
            signed_at: 1,
            replaced: Vec::new(),
        }
    }

    #[test]
    fn entries_survive_reopening_and_removal_checks_the_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let db = Arc::new(Database::create(&path).expect("db"));
            let j = Journal::open(db).expect("open");
            j.put(&entry(1, 0, 0xaa)).expect("put");
            j.put(&entry(2, 1, 0xbb)).expect("put");
        }
        let db = Arc::new(Database::create(&path).expect("db"));
        let j = Journal::open(db).expect("open");
        assert_eq!(
            j.get(OrderId::from(1), Action::Activate).expect("get"),
            Some(entry(1, 0, 0xaa))
        );
        j.remove_if(
            OrderId::from(1),
            Action::Activate,
            TxHash::repeat_byte(0xcc),
        )
        .expect("remove");
        assert!(
            j.get(OrderId::from(1), Action::Activate)
                .expect("get")
                .is_some()
        );
        j.mark_confirmed(
            OrderId::from(2),
            Action::Activate,
            TxHash::repeat_byte(0xbb),
        )
        .expect("confirm");
        let open = j.unconfirmed(Address::repeat_byte(1)).expect("list");
        assert_eq!(open, vec![entry(1, 0, 0xaa)]);
        j.remove_if(
            OrderId::from(1),
            Action::Activate,
            TxHash::repeat_byte(0xaa),
        )
        .expect("remove");
        assert_eq!(
            j.get(OrderId::from(1), Action::Activate).expect("get"),
            None
        );
    }

    #[test]
    fn a_replaced_transaction_can_be_the_one_confirmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Database::create(dir.path().join("s.redb")).expect("db"));
        let j = Journal::open(db).expect("open");
        let mut e = entry(3, 5, 0xbb);
        e.replaced = vec![TxHash::repeat_byte(0xaa)];
        j.put(&e).expect("put");
        // The older one was mined after all.
        j.mark_confirmed(
            OrderId::from(3),
            Action::Activate,
            TxHash::repeat_byte(0xaa),
        )
        .expect("confirm");
        let got = j
            .get(OrderId::from(3), Action::Activate)
            .expect("get")
            .expect("entry");
        assert_eq!(got.state, JournalState::Confirmed);
        assert_eq!(got.tx_hash, TxHash::repeat_byte(0xaa));
        assert_eq!(got.replaced, vec![TxHash::repeat_byte(0xbb)]);
        assert!(got.raw_tx.is_empty());
    }

    #[test]
    fn a_settlement_and_the_lock_of_one_order_are_two_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Database::create(dir.path().join("s.redb")).expect("db"));
        let j = Journal::open(db).expect("open");
        j.put(&entry(4, 0, 0xaa)).expect("put lock");
        let mut settle = entry(4, 1, 0xbb);
        settle.action = Action::Settle;
        j.put(&settle).expect("put settle");
        assert_eq!(
            j.get(OrderId::from(4), Action::Activate)
                .expect("get")
                .map(|e| e.tx_hash),
            Some(TxHash::repeat_byte(0xaa))
        );
        assert_eq!(
            j.get(OrderId::from(4), Action::Settle).expect("get"),
            Some(settle.clone())
        );
        // Both still unsent count for the nonce bookkeeping.
        assert_eq!(
            j.unconfirmed(Address::repeat_byte(1)).expect("list").len(),
            2
        );
    }
}
