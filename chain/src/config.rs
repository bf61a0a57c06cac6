//! Chain settings, as the `[chain]` table of the gateway's TOML config.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::keys::{KeySource, PasswordSource};
use crate::{Error, Result};

/// How to reach the chain and the Market, and how patient to be.
///
/// Every default is chosen for a public L1/L2 endpoint; a dev chain works with them too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (http or https).
    pub rpc_url: String,
    /// The Market contract.
    pub market: Address,
    /// The payment token. Informational: the Market fixes its token at construction.
    #[serde(default)]
    pub token: Option<Address>,
    /// The chain the Market lives on. Checked against the endpoint before anything is signed,
    /// so a misconfigured endpoint cannot get a transaction meant for another chain.
    pub chain_id: u64,
    /// Blocks a transaction or event must be buried under before it counts, counting its own
    /// block (1 = as soon as it is mined). Default 1; raise it where reorgs happen.
    #[serde(default = "defaults::confirmations")]
    pub confirmations: u64,
    /// Upper bound for every single RPC call, in milliseconds. Default 10 s: long enough for a
    /// slow public endpoint, short enough that a dead one is reported instead of hanging.
    #[serde(default = "defaults::rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// How often the event follower and receipt waits poll, in milliseconds. Default 2 s
    /// (about a block on most L2s; L1 blocks are 12 s).
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long `activate` waits for its transaction to be confirmed before returning
    /// `TxPending` (the journal keeps it; calling again resumes). Default 300 s.
    #[serde(default = "defaults::receipt_timeout_secs")]
    pub receipt_timeout_secs: u64,
    /// A lock transaction still unmined after this many seconds is replaced at its nonce
    /// with fees at least 12.5 % higher (checked while `activate` waits, and on every later
    /// call). Default 120; 0 never replaces, only re-sends the same bytes.
    #[serde(default = "defaults::replace_after_secs")]
    pub replace_after_secs: u64,
    /// Attempts for an operation that fails because the chain is unreachable, the first
    /// included. Default 4. Only transport errors are retried: a revert will not change.
    #[serde(default = "defaults::retry_attempts")]
    pub retry_attempts: u32,
    /// First backoff between retries, in milliseconds; doubled each time, at most 30 s. Default 500.
    #[serde(default = "defaults::retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Most blocks asked for in one `eth_getLogs`. Default 2000: many providers cap ranges.
    #[serde(default = "defaults::log_block_range")]
    pub log_block_range: u64,
    /// Block the event follower starts at when it has no cursor yet (the Market's deployment
    /// block saves scanning history). Default 0.
    #[serde(default)]
    pub start_block: u64,
    /// The node wallet as a raw hex private key file (mode 0600). Exclusive with `keystore`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The node wallet as an encrypted JSON keystore. Its password comes from
    /// `keystore_password_env` or `keystore_password_file`.
    #[serde(default)]
    pub keystore: Option<PathBuf>,
    /// Environment variable holding the keystore password.
    #[serde(default)]
    pub keystore_password_env: Option<String>,
    /// File holding the keystore password (trailing newline ignored).
    #[serde(default)]
    pub keystore_password_file: Option<PathBuf>,
}

mod defaults {
    pub fn confirmations() -> u64 {
        1
    }
    pub fn rpc_timeout_ms() -> u64 {
        10_000
    }
    pub fn poll_interval_ms() -> u64 {
        2_000
    }
    pub fn receipt_timeout_secs() -> u64 {
        300
    }
    pub fn replace_after_secs() -> u64 {
        120
    }
    pub fn retry_attempts() -> u32 {
        4
    }
    pub fn retry_backoff_ms() -> u64 {
        500
    }
    pub fn log_block_range() -> u64 {
        2_000
    }
}

impl ChainConfig {
    /// A config with every optional setting at its default and no key configured.
    pub fn new(rpc_url: impl Into<String>, market: Address, chain_id: u64) -> Self {
        ChainConfig {
            rpc_url: rpc_url.into(),
            market,
            token: None,
            chain_id,
            confirmations: defaults::confirmations(),
            rpc_timeout_ms: defaults::rpc_timeout_ms(),
            poll_interval_ms: defaults::poll_interval_ms(),
            receipt_timeout_secs: defaults::receipt_timeout_secs(),
            replace_after_secs: defaults::replace_after_secs(),
            retry_attempts: defaults::retry_attempts(),
            retry_backoff_ms: defaults::retry_backoff_ms(),
            log_block_range: defaults::log_block_range(),
            start_block: 0,
            key_file: None,
            keystore: None,
            keystore_password_env: None,
            keystore_password_file: None,
        }
    }

    /// The bound on one RPC call.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms.max(1))
    }

    /// The polling period.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    /// How long `activate` waits for confirmations.
    pub fn receipt_timeout(&self) -> Duration {
        Duration::from_secs(self.receipt_timeout_secs)
    }

    /// After how long a pending lock is replaced with higher fees; `None` for never.
    pub fn replace_after(&self) -> Option<Duration> {
        (self.replace_after_secs > 0).then(|| Duration::from_secs(self.replace_after_secs))
    }

    /// Confirmations, where 0 is read as 1 (a transaction counts once mined, never before).
    pub fn confirmations(&self) -> u64 {
        self.confirmations.max(1)
    }

    /// Where the node wallet comes from, from `key_file` / `keystore` and its password setting.
    pub fn key_source(&self) -> Result<KeySource> {
        match (&self.key_file, &self.keystore) {
            (Some(_), Some(_)) => Err(Error::Config {
                reason: "set either key_file or keystore, not both".into(),
            }),
            (Some(path), None) => Ok(KeySource::KeyFile { path: path.clone() }),
            (None, Some(path)) => {
                let password = match (&self.keystore_password_env, &self.keystore_password_file) {
                    (Some(var), None) => PasswordSource::Env(var.clone()),
                    (None, Some(file)) => PasswordSource::File(file.clone()),
                    _ => {
                        return Err(Error::Config {
                            reason: "a keystore needs exactly one of keystore_password_env or \
                                     keystore_password_file"
                                .into(),
                        });
                    }
                };
                Ok(KeySource::Keystore {
                    path: path.clone(),
                    password,
                })
            }
            (None, None) => Err(Error::Config {
                reason: "no node wallet: set key_file or keystore".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lines_deploy_dev_prints_with_defaults() {
        let text = r#"{"rpc_url":"http://127.0.0.1:8545","market":"0x5fbdb2315678afecb367f032d93f642f64180aa3","chain_id":31337}"#;
        let cfg: ChainConfig = serde_json::from_str(text).expect("parses");
        assert_eq!(cfg.confirmations(), 1);
        assert_eq!(cfg.rpc_timeout(), Duration::from_secs(10));
        assert!(matches!(cfg.key_source(), Err(Error::Config { .. })));
    }

    #[test]
    fn key_source_needs_one_password_setting() {
        let mut cfg = ChainConfig::new("http://x", Address::ZERO, 1);
        cfg.keystore = Some("/k.json".into());
        assert!(cfg.key_source().is_err());
        cfg.keystore_password_env = Some("PW".into());
        assert!(matches!(
            cfg.key_source(),
            Ok(KeySource::Keystore {
                password: PasswordSource::Env(_),
                ..
            })
        ));
        cfg.key_file = Some("/k.hex".into());
        assert!(cfg.key_source().is_err());
    }
}
