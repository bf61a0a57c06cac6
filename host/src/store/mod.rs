//! The gateway's embedded store: one redb file in the data directory, shared with
//! grid-chain (whose tables are `chain_*`; ours are `gw_*`).
//!
//! Every write is its own transaction committed with redb's default (immediate)
//! durability before the caller answers, so nothing acknowledged is lost by a kill -9.
//! Values are JSON: an operator debugging a node can read them.

mod records;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use records::{
    AppCondition, AppRecord, AppStatus, OrderRecord, OrderState, SessionRecord, SettlementRecord,
};

/// Accepted orders. Key: the order id in decimal.
const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("gw_orders");
/// Login nonces already used, kept until they expire so none is used twice (a restart
/// included). Key: the nonce; value: its expiry (unix seconds). Issued nonces are sealed
/// values (`auth::nonce`) and are not stored.
const USED_NONCES: TableDefinition<&str, u64> = TableDefinition::new("gw_used_nonces");
/// Where earlier versions kept every issued nonce; dropped at open.
const ISSUED_NONCES_OLD: TableDefinition<&str, u64> = TableDefinition::new("gw_nonces");
/// Sessions. Key: the session id (hex).
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("gw_sessions");
/// Apps. Key: the order id in decimal.
const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("gw_apps");
/// Settlements of accepted orders (what was paid, the last transaction). Key: the order id
/// in decimal. Apart from `gw_orders` so the settler and the chain-event handler never
/// overwrite each other's writes.
const SETTLEMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("gw_settlements");

/// What the store can fail on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, a corrupt file, the file locked by another process).
    #[error(transparent)]
    Db(#[from] redb::Error),
    /// A record does not decode (written by an incompatible version, or corrupted).
    #[error("record {key:?} in {table} is corrupt: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

/// Results of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// Sessions read on every proxied request are served from memory. All session writes go
    /// through this store (the cache is updated in the same call, after the commit), so it
    /// never disagrees with the table; a revoked session is refused at once.
    sessions: Arc<std::sync::RwLock<std::collections::HashMap<String, SessionRecord>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) `<data_dir>/gateway.redb`. redb refuses to open a file twice, so
    /// the host opens it once and hands [`Store::database`] to grid-chain.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let db = Database::create(data_dir.join("gateway.redb")).map_err(db)?;
        Store::from_database(Arc::new(db))
    }

    /// Uses an open database, creating our tables if they are missing.
    pub fn from_database(database: Arc<Database>) -> Result<Store> {
        let tx = database.begin_write().map_err(db)?;
        tx.open_table(ORDERS).map_err(db)?;
        tx.open_table(USED_NONCES).map_err(db)?;
        tx.delete_table(ISSUED_NONCES_OLD).map_err(db)?;
        tx.open_table(SESSIONS).map_err(db)?;
        tx.open_table(APPS).map_err(db)?;
        tx.open_table(SETTLEMENTS).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Store {
            db: database,
            sessions: Arc::default(),
        })
    }

    /// The shared database (for grid-chain).
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// True when a read transaction can be opened (for readiness).
    pub fn is_healthy(&self) -> bool {
        self.db
            .begin_read()
            .map(|tx| tx.open_table(ORDERS).is_ok())
            .unwrap_or(false)
    }

    // ---- orders ----

    /// Writes (inserts or replaces) an order record, committed before returning.
    pub fn put_order(&self, record: &OrderRecord) -> Result<()> {
        let value = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            table: "gw_orders",
            key: record.order.id.clone(),
            reason: e.to_string(),
        })?;
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(ORDERS).map_err(db)?;
            table
                .insert(record.order.id.as_str(), value.as_slice())
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Forgets an order (its lock was refused by the Market), committed before returning.
    pub fn remove_order(&self, id: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(ORDERS).map_err(db)?;
            table.remove(id).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// The record of one order, if it was accepted here.
    pub fn order(&self, id: &str) -> Result<Option<OrderRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(ORDERS).map_err(db)?;
        match table.get(id).map_err(db)? {
            Some(v) => decode("gw_orders", id, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every order accepted here.
    pub fn orders(&self) -> Result<Vec<OrderRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(ORDERS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            out.push(decode("gw_orders", k.value(), v.value())?);
        }
        Ok(out)
    }

    // ---- settlements ----

    /// Writes (inserts or replaces) an order's settlement record, committed before returning.
    pub fn put_settlement(&self, record: &SettlementRecord) -> Result<()> {
        let value = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            table: "gw_settlements",
            key: record.order_id.clone(),
            reason: e.to_string(),
        })?;
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(SETTLEMENTS).map_err(db)?;
            table
                .insert(record.order_id.as_str(), value.as_slice())
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// The settlement record of one order, once the settler has looked at it.
    pub fn settlement(&self, id: &str) -> Result<Option<SettlementRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(SETTLEMENTS).map_err(db)?;
        match table.get(id).map_err(db)? {
            Some(v) => decode("gw_settlements", id, v.value()).map(Some),
            None => Ok(None),
        }
    }

    // ---- nonces ----

    /// Uses a nonce valid until `expires_at`: true the first time, false once it was used.
    /// Check and record are one write transaction, and redb serialises write transactions,
    /// so of two concurrent logins with one nonce exactly one sees it unused. Used nonces
    /// that expired by `now` are dropped on the way: they can no longer be presented.
    pub fn consume_nonce(&self, nonce: &str, expires_at: u64, now: u64) -> Result<bool> {
        let tx = self.db.begin_write().map_err(db)?;
        let fresh = {
            let mut table = tx.open_table(USED_NONCES).map_err(db)?;
            if table.get(nonce).map_err(db)?.is_some() {
                false
            } else {
                table.retain(|_, expiry| expiry > now).map_err(db)?;
                table.insert(nonce, expires_at).map_err(db)?;
                true
            }
        };
        if fresh {
            tx.commit().map_err(db)?;
        } else {
            tx.abort().map_err(db)?;
        }
        Ok(fresh)
    }

    /// How many used nonces are kept (for tests and metrics).
    pub fn used_nonces(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(USED_NONCES).map_err(db)?;
        table.len().map_err(db)
    }

    // ---- sessions ----

    /// Writes a session record, committed before returning, and drops sessions that ended
    /// before `record` was created (a revoked one is kept until then, so a stolen copy is
    /// refused as revoked rather than unknown), so the table does not grow without bound.
    pub fn put_session(&self, record: &SessionRecord) -> Result<()> {
        let value = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            table: "gw_sessions",
            key: record.id.clone(),
            reason: e.to_string(),
        })?;
        let now = record.created_at;
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(SESSIONS).map_err(db)?;
            // A record that does not decode is kept for an operator to look at.
            table
                .retain(|_, v| {
                    serde_json::from_slice::<SessionRecord>(v).map_or(true, |s| s.expires_at > now)
                })
                .map_err(db)?;
            table
                .insert(record.id.as_str(), value.as_slice())
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        let mut cache = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, s| s.expires_at > now);
        cache.insert(record.id.clone(), record.clone());
        Ok(())
    }

    /// One session, if it exists.
    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        if let Some(hit) = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(Some(hit.clone()));
        }
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(SESSIONS).map_err(db)?;
        let found: Option<SessionRecord> = match table.get(id).map_err(db)? {
            Some(v) => Some(decode("gw_sessions", id, v.value())?),
            None => None,
        };
        if let Some(record) = &found {
            // Only if absent: a write that committed meanwhile has put a newer record there.
            self.sessions
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(id.to_owned())
                .or_insert_with(|| record.clone());
        }
        Ok(found)
    }

    /// Marks a session revoked (kept until it would have expired, so a stolen copy of
    /// the cookie is refused as revoked rather than unknown). False when there is none.
    pub fn revoke_session(&self, id: &str) -> Result<bool> {
        let mut revoked = None;
        let tx = self.db.begin_write().map_err(db)?;
        let found = {
            let mut table = tx.open_table(SESSIONS).map_err(db)?;
            let current = match table.get(id).map_err(db)? {
                Some(v) => Some(decode::<SessionRecord>("gw_sessions", id, v.value())?),
                None => None,
            };
            match current {
                Some(mut record) => {
                    record.revoked = true;
                    revoked = Some(record.clone());
                    let value = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
                        table: "gw_sessions",
                        key: id.to_owned(),
                        reason: e.to_string(),
                    })?;
                    table.insert(id, value.as_slice()).map_err(db)?;
                    true
                }
                None => false,
            }
        };
        tx.commit().map_err(db)?;
        if let Some(record) = revoked {
            self.sessions
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_owned(), record);
        }
        Ok(found)
    }

    /// Marks every live session of `address` revoked, in one write transaction; returns
    /// how many were. Records that do not decode are left alone.
    pub fn revoke_sessions_of(&self, address: &grid_policy_sdk::Address, now: u64) -> Result<u64> {
        let tx = self.db.begin_write().map_err(db)?;
        let mut revoked = Vec::new();
        {
            let mut table = tx.open_table(SESSIONS).map_err(db)?;
            for entry in table.iter().map_err(db)? {
                let (_, v) = entry.map_err(db)?;
                if let Ok(record) = serde_json::from_slice::<SessionRecord>(v.value())
                    && record.address == *address
                    && !record.revoked
                    && record.expires_at > now
                {
                    revoked.push(record);
                }
            }
            for record in &mut revoked {
                record.revoked = true;
                let value = encode("gw_sessions", &record.id, record)?;
                table
                    .insert(record.id.as_str(), value.as_slice())
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        let mut cache = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        for record in &revoked {
            cache.insert(record.id.clone(), record.clone());
        }
        Ok(revoked.len() as u64)
    }
}

impl Store {
    // ---- apps ----

    /// Writes an app record, committed before returning.
    pub fn put_app(&self, record: &AppRecord) -> Result<()> {
        let value = encode("gw_apps", &record.order_id, record)?;
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(APPS).map_err(db)?;
            table
                .insert(record.order_id.as_str(), value.as_slice())
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Changes an app record in one write transaction: `change` sees the current record
    /// (if any) and returns the new one, or `None` to leave it as it is. Returns what was
    /// written. Read and write are one transaction, and redb serialises writers, so two
    /// concurrent changes (a deploy finishing while a teardown starts) cannot interleave.
    pub fn update_app(
        &self,
        order_id: &str,
        change: impl FnOnce(Option<AppRecord>) -> Option<AppRecord>,
    ) -> Result<Option<AppRecord>> {
        let tx = self.db.begin_write().map_err(db)?;
        let written = {
            let mut table = tx.open_table(APPS).map_err(db)?;
            let current = match table.get(order_id).map_err(db)? {
                Some(v) => Some(decode::<AppRecord>("gw_apps", order_id, v.value())?),
                None => None,
            };
            match change(current) {
                Some(next) => {
                    let value = encode("gw_apps", order_id, &next)?;
                    table.insert(order_id, value.as_slice()).map_err(db)?;
                    Some(next)
                }
                None => None,
            }
        };
        tx.commit().map_err(db)?;
        Ok(written)
    }

    /// The app of an order, if one was ever deployed.
    pub fn app(&self, order_id: &str) -> Result<Option<AppRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(APPS).map_err(db)?;
        match table.get(order_id).map_err(db)? {
            Some(v) => decode("gw_apps", order_id, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every app record.
    pub fn apps(&self) -> Result<Vec<AppRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(APPS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            out.push(decode("gw_apps", k.value(), v.value())?);
        }
        Ok(out)
    }
}

fn encode<T: serde::Serialize>(table: &'static str, key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
