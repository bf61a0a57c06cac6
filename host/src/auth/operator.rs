//! Operators: wallets listed in `[operators]`, signed in with SIWE under the operator
//! scope, each with the roles the config gives it (least privilege).
//!
//! An operator signs the same EIP-4361 message as a user (same nonce, same domain, URI,
//! chain and time checks) with one more line: a `Resources:` entry
//! [`OPERATOR_RESOURCE`], so the wallet shows what is being granted and a message signed
//! to sign in as a user can never be turned into an operator session. It is posted to its
//! own endpoint (`POST /_grid/v1/operator/login`), which never consults the
//! authorization policy: operators are the node's config, not its tenants.
//!
//! The operator session is a separate kind of token: the wallet and expiry sealed with the
//! session keys under [`OPERATOR_TOKEN_NAME`] (the name is the AES-GCM associated data),
//! so a tenant token never opens as an operator token nor the reverse. It is carried as
//! `Authorization: Bearer` only (no cookie: nothing a browser would send to an app or on a
//! cross-site request), stripped on the proxy path like tenant tokens, and short-lived
//! (`operators.session_lifetime_secs`). The roles are read from the config on every
//! request, so a wallet removed from the list loses access at once.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// The `Resources:` entry that asks for the operator scope.
pub const OPERATOR_RESOURCE: &str = "urn:grid:operator";

/// The name operator tokens are sealed under (never a cookie's name).
pub const OPERATOR_TOKEN_NAME: &str = "grid_operator";

/// What an operator may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// View candidates, previous versions, shadow results and recordings.
    PolicyRead,
    /// Set and clear candidates, promote, roll back.
    PolicyWrite,
}

impl Role {
    /// Its config spelling, used in `missing_role` messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::PolicyRead => "policy_read",
            Role::PolicyWrite => "policy_write",
        }
    }
}

/// One `[[operators.wallet]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorWallet {
    /// The operator's wallet.
    pub address: Address,
    /// What it may do.
    pub roles: Vec<Role>,
}

/// `[operators]`: who may use the operator API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorsConfig {
    /// How long an operator session lasts, seconds. Default 3600.
    pub session_lifetime_secs: u64,
    /// The operators' wallets and roles. Default none: the operator API refuses everyone.
    pub wallet: Vec<OperatorWallet>,
}

impl Default for OperatorsConfig {
    fn default() -> Self {
        OperatorsConfig {
            session_lifetime_secs: 3600,
            wallet: Vec::new(),
        }
    }
}

impl OperatorsConfig {
    /// The roles of `address`, `None` when it is not an operator.
    pub fn roles_of(&self, address: Address) -> Option<&[Role]> {
        self.wallet
            .iter()
            .find(|w| w.address == address)
            .map(|w| w.roles.as_slice())
    }

    /// `(key, message)` of the first invalid setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.session_lifetime_secs == 0 {
            return Err((
                "operators.session_lifetime_secs",
                "must be at least 1 second".into(),
            ));
        }
        for (i, w) in self.wallet.iter().enumerate() {
            if self.wallet[..i].iter().any(|o| o.address == w.address) {
                return Err(("operators.wallet", format!("{} is listed twice", w.address)));
            }
        }
        Ok(())
    }
}

/// A signed-in operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSession {
    /// The wallet.
    pub address: Address,
    /// Unix seconds the session ends.
    pub expires_at: u64,
    /// Its roles now.
    pub roles: Vec<Role>,
}

impl OperatorSession {
    /// `Err(missing_role)` unless the operator has `role`.
    pub fn require(&self, role: Role) -> crate::error::Result<()> {
        if self.roles.contains(&role) {
            Ok(())
        } else {
            Err(crate::error::Error::MissingRole(role.name()))
        }
    }

    /// The actor written in the lifecycle log: `operator:<address>`.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.address)
    }
}

/// The sealed value of an operator token: `<address>:<expires_at>`.
pub(crate) fn token_value(address: Address, expires_at: u64) -> String {
    format!("{address}:{expires_at}")
}

/// The address and expiry of an opened operator token.
pub(crate) fn parse_token_value(value: &str) -> Option<(Address, u64)> {
    let (address, expires_at) = value.split_once(':')?;
    Some((address.parse().ok()?, expires_at.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_wallets_and_roles_and_refuses_duplicates() {
        let config: OperatorsConfig = toml::from_str(
            "[[wallet]]\naddress = \"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"\nroles = [\"policy_read\"]\n",
        )
        .expect("parses");
        assert_eq!(config.session_lifetime_secs, 3600);
        let address = config.wallet[0].address;
        assert_eq!(config.roles_of(address), Some(&[Role::PolicyRead][..]));
        assert_eq!(config.roles_of(Address::ZERO), None);
        assert!(config.validate().is_ok());
        let mut twice = config.clone();
        twice.wallet.push(twice.wallet[0].clone());
        assert_eq!(twice.validate().unwrap_err().0, "operators.wallet");
        assert!(
            toml::from_str::<OperatorsConfig>(
                "[[wallet]]\naddress = \"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"\nroles = [\"root\"]\n"
            )
            .is_err()
        );
    }

    #[test]
    fn token_values_round_trip() {
        let a: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .expect("address");
        assert_eq!(parse_token_value(&token_value(a, 42)), Some((a, 42)));
        assert_eq!(parse_token_value("nonsense"), None);
    }
}
