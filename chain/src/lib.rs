//! grid-gateway's chain client.
//!
//! - [`ChainClient::order`] reads an order from the Market into the SDK's [`Order`], the same
//!   type the policies see;
//! - [`ChainClient::activate`] locks an order for this node with one transaction, however
//!   often it is called and across restarts (see `signer` and `journal` for how);
//! - [`EventFollower`] hands the Market's events to the host over a channel, each once, from
//!   a cursor that survives restarts;
//! - [`ChainClient::settle`] pays the payee what an order has released, once per intent
//!   across crashes (the same journal as the lock); [`ChainClient::payment`] reads where an
//!   order's payment stands;
//! - [`ChainClient::is_valid_signature`] asks a contract wallet about a signature (EIP-1271);
//! - [`deploy_dev`] puts the test token and the Market on a dev chain.
//!
//! Modules, one concern each: `bindings` (the `sol!` types from the committed artifacts),
//! `rpc` (timeouts, error sorting, revert decoding, retries), `order` (ids and the order read),
//! `keys` (the node wallet), `journal` (signed transactions before broadcast), `signer` (the
//! task owning the nonce), `client` (the facade), `follower` (events), `dev` (deploy helper).
//!
//! State lives in the host's redb database, in tables prefixed `chain_`.
//!
//! [`Order`]: grid_policy_sdk::Order

#![warn(missing_docs)]

pub mod bindings;
mod client;
mod config;
mod dev;
mod eip1271;
mod error;
mod follower;
mod journal;
mod keys;
mod order;
mod rpc;
mod signer;

pub use alloy::primitives::{Address, TxHash, U256};
pub use client::{Activation, ChainClient, SettleOutcome, Settlement};
pub use config::ChainConfig;
pub use dev::{ANVIL_DEV_KEY, DevDeployment, deploy_dev, render_config};
pub use eip1271::MAGIC_VALUE as EIP1271_MAGIC_VALUE;
pub use error::{Error, Result};
pub use follower::{ChainEvent, EventFollower, MarketEvent, Poll};
pub use journal::{Action, JournalEntry, JournalState};
pub use keys::{KeySource, NodeWallet, PasswordSource};
pub use order::{OrderId, Payment, from_sdk_address, to_sdk_address};
