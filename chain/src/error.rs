//! The crate's one error type.
//!
//! The variants are split by what a caller does about them: [`Error::ChainUnavailable`] is
//! worth retrying later, [`Error::OrderNotFound`] and [`Error::Reverted`] are answers from the
//! chain to show a user, the key errors are operator mistakes to fix in the config.

use std::path::PathBuf;

use alloy::primitives::TxHash;

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to the chain, loading the node key or keeping the journal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC endpoint could not be reached, failed at the transport level (connection
    /// refused, HTTP error status, broken body) or did not answer within the configured
    /// timeout. Retrying later may succeed.
    #[error("chain unavailable: {reason}")]
    ChainUnavailable {
        /// What failed, and how.
        reason: String,
    },

    /// The Market holds no order with this id.
    #[error("order {id} not found on chain")]
    OrderNotFound {
        /// The order id, decimal.
        id: String,
    },

    /// The contract refused: a simulated call or a mined transaction reverted. `reason` starts
    /// with the decoded custom error's name, e.g. `NotProvider(id: 1, caller: 0x…)`.
    #[error("reverted: {reason}")]
    Reverted {
        /// The decoded custom error (or revert string / panic), for people and for matching
        /// with [`Error::revert_name`].
        reason: String,
        /// The mined transaction that reverted; `None` when a simulation reverted and nothing
        /// was sent.
        tx_hash: Option<TxHash>,
    },

    /// The node answered a JSON-RPC error that is neither a transport failure nor a revert
    /// (for example "insufficient funds for gas" or "nonce too low").
    #[error("RPC error: {message}")]
    Rpc {
        /// The node's message.
        message: String,
    },

    /// The node's answer could not be understood (a malformed or unexpected response).
    #[error("unexpected answer from the chain: {reason}")]
    InvalidResponse {
        /// What was wrong with it.
        reason: String,
    },

    /// The RPC endpoint serves another chain than the configured `chain_id`; nothing is signed.
    #[error("RPC endpoint serves chain {actual}, but the config says chain_id = {expected}")]
    ChainIdMismatch {
        /// The configured chain id.
        expected: u64,
        /// What the endpoint reports.
        actual: u64,
    },

    /// The transaction was sent but has not reached the configured confirmations within the
    /// receipt timeout. It stays in the journal: calling `activate` again resumes waiting for it.
    #[error("transaction {tx_hash} is still pending")]
    TxPending {
        /// The journaled transaction.
        tx_hash: TxHash,
    },

    /// An order id is not a decimal u256.
    #[error("{id:?} is not an order id: expected a decimal integer")]
    InvalidOrderId {
        /// What was given.
        id: String,
    },

    /// The chain configuration is unusable (an unparsable URL, no key configured, …).
    #[error("chain config: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },

    /// The key file or keystore could not be read.
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A raw key file is readable by group or others; it must be mode 0600 (or 0400).
    #[error(
        "key file {path} has mode {mode:03o}: it must be readable by its owner only (chmod 600 {path})"
    )]
    KeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A raw key file does not hold a valid secp256k1 private key in hex.
    #[error("key file {path} does not hold a private key: {reason}")]
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// Why not (never the key itself).
        reason: String,
    },

    /// An encrypted JSON keystore could not be decrypted (wrong password, corrupt file).
    #[error("cannot decrypt keystore {path}: {reason}")]
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The keystore password could not be had from its environment variable or file.
    #[error("keystore password: {reason}")]
    Password {
        /// Why.
        reason: String,
    },

    /// The node wallet could not sign a transaction (nothing was sent).
    #[error("cannot sign the transaction: {reason}")]
    Signing {
        /// Why.
        reason: String,
    },

    /// The local store (redb) failed: the journal or the event cursor could not be read or written.
    #[error("chain store: {0}")]
    Store(#[from] redb::Error),

    /// A journal or cursor record in the store could not be decoded.
    #[error("chain store record {key:?} is corrupt: {reason}")]
    CorruptRecord {
        /// The record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },

    /// The signer task has stopped (the runtime is shutting down); nothing was sent.
    #[error("the transaction signer has stopped")]
    SignerStopped,
}

impl Error {
    /// True for errors worth retrying later without changing anything (the chain was not reachable).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::ChainUnavailable { .. })
    }

    /// The custom error's name of a revert (`"NotProvider"`, `"NotCreated"`, …), for mapping
    /// to an API error code; `None` for other errors.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Error::Reverted { reason, .. } => {
                Some(reason.split(['(', ':']).next().unwrap_or(reason).trim())
            }
            _ => None,
        }
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Error::ChainUnavailable {
            reason: reason.into(),
        }
    }
}

/// redb has one error type per operation; they all convert into `redb::Error`.
pub(crate) fn store<E: Into<redb::Error>>(e: E) -> Error {
    Error::Store(e.into())
}
