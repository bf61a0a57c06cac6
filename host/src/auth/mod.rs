//! Sign-in and sessions: nonces, SIWE logins decided by the authorization policy,
//! sessions kept in the store and carried in an encrypted cookie (or the same value as a
//! bearer token).
//!
//! The cookie value is the session id sealed with the `cookie` crate's private jar
//! (AES-256-GCM with the cookie's name as associated data, so a value cannot be moved to
//! another cookie). The crate has no key rotation: opening tries the current key, then the
//! previous ones. The server-side record decides expiry and revocation; the cookie only
//! names it.

pub(crate) mod cache;
pub mod credential;
pub mod keys;
pub mod limit;
pub mod nonce;
pub mod operator;
pub mod siwe;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use cookie::{Cookie, CookieJar};
use grid_chain::ChainClient;
use grid_policy_sdk::{OrderStatus, SessionDecision, SessionRequest};
use rand::RngCore;

use crate::error::{Error, Result};
use crate::policy::PolicySet;
use crate::store::{OrderState, SessionRecord, Store};
pub use keys::KeyRing;

/// The cookie's name: `__Host-` makes browsers insist on Secure, Path=/ and no Domain,
/// so a sibling subdomain cannot plant or shadow it. Without Secure the prefix is invalid.
pub const fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-grid_session"
    } else {
        "grid_session"
    }
}

/// Settings of the auth service.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// What login messages must match.
    pub expect: siwe::Expectations,
    /// How long a nonce lives, seconds.
    pub nonce_ttl_secs: u64,
    /// Nonces a client address may get per second (0: no limit).
    pub nonce_rate_per_sec: f64,
    /// Nonces a client address may get at once before the rate applies.
    pub nonce_burst: u32,
    /// Longest session, seconds.
    pub max_lifetime_secs: u64,
    /// The cookie name (the name is bound into the sealed value).
    pub cookie_name: &'static str,
}

/// A successful login.
#[derive(Clone, Debug)]
pub struct Login {
    /// The session created.
    pub session: SessionRecord,
    /// The sealed session id: the cookie's value and the bearer token.
    pub token: String,
}

/// Nonces, logins, sessions.
pub struct AuthService {
    store: Store,
    /// For EIP-1271 contract wallets; without a chain only key signatures are accepted.
    chain: Option<ChainClient>,
    policies: Arc<PolicySet>,
    keys: KeyRing,
    nonces: nonce::NonceSealer,
    limiter: limit::IssueLimiter,
    settings: AuthSettings,
    /// Tokens opened before, so a request skips the AES-GCM open (see [`cache`]). Lives
    /// and dies with `keys`.
    opened: cache::TokenCache,
}

impl AuthService {
    /// The service.
    pub fn new(
        store: Store,
        chain: Option<ChainClient>,
        policies: Arc<PolicySet>,
        keys: KeyRing,
        settings: AuthSettings,
    ) -> Self {
        AuthService {
            store,
            chain,
            policies,
            nonces: nonce::NonceSealer::new(&keys),
            limiter: limit::IssueLimiter::new(
                settings.nonce_rate_per_sec,
                settings.nonce_burst,
                limit::MAX_CLIENTS,
            ),
            keys,
            settings,
            opened: cache::TokenCache::new(cache::CAPACITY),
        }
    }

    /// Tokens held in the opened-token cache (for tests and diagnostics).
    pub fn cached_tokens(&self) -> usize {
        self.opened.len()
    }

    /// The settings in use.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Issues a single-use nonce for `client` (when known, it is rate limited):
    /// `(nonce, expires_at)`. Nothing is written: the nonce is sealed (see [`nonce`]).
    pub fn nonce(&self, client: Option<IpAddr>, now: u64) -> Result<(String, u64)> {
        if let Some(client) = client
            && let Err(retry) = self.limiter.take(client, Instant::now())
        {
            return Err(Error::RateLimited {
                retry_after_secs: retry.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let expires_at = now.saturating_add(self.settings.nonce_ttl_secs);
        Ok((self.nonces.seal(expires_at), expires_at))
    }

    /// Verifies a signed sign-in message, consumes its nonce, asks the authorization
    /// policy, and creates a session.
    pub async fn login(&self, message: &str, signature: &str, now: u64) -> Result<Login> {
        let verified = self.verify_signed(message, signature, now).await?;
        let orders = self
            .store
            .orders()?
            .into_iter()
            .filter(|r| {
                r.state == OrderState::Active
                    && r.order.user == verified.address
                    && r.holds_capacity(now)
            })
            .map(|r| {
                let mut order = r.order;
                order.status = OrderStatus::Active;
                order
            })
            .collect();
        let decision = self
            .policies
            .authorize_session(SessionRequest {
                address: verified.address,
                orders,
            })
            .await?;
        let grant = match decision {
            SessionDecision::Grant(grant) => grant,
            SessionDecision::Deny { reason } => return Err(Error::SessionDenied(reason)),
        };
        let mut expires_at = grant
            .expires_at
            .min(now.saturating_add(self.settings.max_lifetime_secs));
        if let Some(message_end) = verified.expires_at {
            // The wallet user agreed to a sign-in valid until then, not longer.
            expires_at = expires_at.min(message_end.max(now + 1));
        }
        if expires_at <= now {
            return Err(Error::SessionDenied(
                "the granted session is already over".into(),
            ));
        }
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let session = SessionRecord {
            id: hex::encode(id),
            address: verified.address,
            expires_at,
            scopes: grant.scopes,
            created_at: now,
            revoked: false,
        };
        self.store.put_session(&session)?;
        let token = self.seal(&session.id);
        Ok(Login { session, token })
    }

    /// The checks every sign-in shares, user or operator: the message (domain, URI, chain,
    /// times), the signature (a key's, else a contract wallet's), then the nonce, consumed.
    async fn verify_signed(
        &self,
        message: &str,
        signature: &str,
        now: u64,
    ) -> Result<siwe::Verified> {
        let verified = siwe::verify(message, signature, &self.settings.expect, now)?;
        if !verified.signed_by_key && !self.contract_signs(&verified, message).await? {
            return Err(Error::InvalidSignature);
        }
        // Only a correctly signed message may burn a nonce, so nobody can use up another
        // user's nonce by posting garbage with it.
        let nonce_expires_at = self
            .nonces
            .open(&verified.nonce, now)
            .map_err(|_| Error::InvalidNonce)?;
        if !self
            .store
            .consume_nonce(&verified.nonce, nonce_expires_at, now)?
        {
            return Err(Error::InvalidNonce);
        }
        Ok(verified)
    }

    /// Signs an operator in (see [`operator`]): the message must ask for the operator
    /// scope and its wallet be listed in `operators`. Returns the session and its token.
    pub async fn operator_login(
        &self,
        message: &str,
        signature: &str,
        now: u64,
        operators: &operator::OperatorsConfig,
    ) -> Result<(operator::OperatorSession, String)> {
        let verified = self.verify_signed(message, signature, now).await?;
        if !verified
            .resources
            .iter()
            .any(|r| r == operator::OPERATOR_RESOURCE)
        {
            return Err(Error::OperatorScopeRequired);
        }
        let address = grid_chain::from_sdk_address(verified.address);
        let roles = operators
            .roles_of(address)
            .ok_or_else(|| Error::NotAnOperator(address.to_string()))?
            .to_vec();
        let mut expires_at = now.saturating_add(operators.session_lifetime_secs);
        if let Some(message_end) = verified.expires_at {
            expires_at = expires_at.min(message_end.max(now + 1));
        }
        tracing::info!(target: "grid::operator", operator = %address, expires_at, "operator signed in");
        let token = self.operator_token(address, expires_at);
        Ok((
            operator::OperatorSession {
                address,
                expires_at,
                roles,
            },
            token,
        ))
    }

    /// An operator token of `address` until `expires_at` (what a successful
    /// [`Self::operator_login`] answers).
    pub fn operator_token(&self, address: alloy::primitives::Address, expires_at: u64) -> String {
        self.seal_as(
            operator::OPERATOR_TOKEN_NAME,
            &operator::token_value(address, expires_at),
        )
    }

    /// The operator a bearer token names, with its roles as `operators` lists them now.
    /// A tenant's token does not open as an operator's (`invalid_session`).
    pub fn operator_session(
        &self,
        token: &str,
        now: u64,
        operators: &operator::OperatorsConfig,
    ) -> Result<operator::OperatorSession> {
        let value = self
            .open_as(operator::OPERATOR_TOKEN_NAME, token)
            .ok_or(Error::InvalidSession)?;
        let (address, expires_at) =
            operator::parse_token_value(&value).ok_or(Error::InvalidSession)?;
        if expires_at <= now {
            return Err(Error::SessionExpired);
        }
        let roles = operators
            .roles_of(address)
            .ok_or_else(|| Error::NotAnOperator(address.to_string()))?
            .to_vec();
        Ok(operator::OperatorSession {
            address,
            expires_at,
            roles,
        })
    }

    /// EIP-1271: asks the contract at the message's address whether the signature is its
    /// own, over the EIP-191 hash of the message (as EIP-4361 specifies).
    async fn contract_signs(&self, verified: &siwe::Verified, message: &str) -> Result<bool> {
        let Some(chain) = &self.chain else {
            return Ok(false);
        };
        let hash = alloy::primitives::eip191_hash_message(message.as_bytes());
        chain
            .is_valid_signature(
                grid_chain::from_sdk_address(verified.address),
                hash,
                verified.signature.clone().into(),
            )
            .await
            .map_err(Error::from_chain)
    }

    /// The live session a cookie value or bearer token names.
    pub fn authenticate(&self, token: &str, now: u64) -> Result<SessionRecord> {
        let id = self.open(token).ok_or(Error::InvalidSession)?;
        let session = self.store.session(&id)?.ok_or(Error::InvalidSession)?;
        if session.revoked {
            return Err(Error::SessionRevoked);
        }
        if session.expires_at <= now {
            return Err(Error::SessionExpired);
        }
        Ok(session)
    }

    /// Ends the session a token names.
    pub fn logout(&self, token: &str, now: u64) -> Result<SessionRecord> {
        let session = self.authenticate(token, now)?;
        self.store.revoke_session(&session.id)?;
        Ok(session)
    }

    /// Ends every live session of the wallet the token's session belongs to (on every
    /// device); returns that session and how many were ended.
    pub fn logout_all(&self, token: &str, now: u64) -> Result<(SessionRecord, u64)> {
        let session = self.authenticate(token, now)?;
        let ended = self.store.revoke_sessions_of(&session.address, now)?;
        Ok((session, ended))
    }

    /// Seals a session id with the current key.
    pub fn seal(&self, id: &str) -> String {
        self.seal_as(self.settings.cookie_name, id)
    }

    /// Seals `value` under `name` with the current key.
    fn seal_as(&self, name: &'static str, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.keys.current)
            .add(Cookie::new(name, value.to_owned()));
        jar.get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    /// Whether `value` is a token this gateway sealed, live or not: it opens with any of
    /// the keys, under either cookie name (a node that switched `session.secure` still
    /// holds tokens sealed under the other), or an operator's token. Expired, revoked and
    /// unknown sessions count.
    pub fn is_token(&self, value: &str) -> bool {
        [
            cookie_name(true),
            cookie_name(false),
            operator::OPERATOR_TOKEN_NAME,
        ]
        .into_iter()
        .any(|name| self.open_as(name, value).is_some())
    }

    /// Opens a sealed value with the current key, then each previous one.
    fn open(&self, value: &str) -> Option<String> {
        self.open_as(self.settings.cookie_name, value)
    }

    /// Opens a value sealed under the cookie name `name`: from the cache when it opened
    /// before, else with the keys (and then cached). What does not open is not cached.
    fn open_as(&self, name: &'static str, value: &str) -> Option<String> {
        match self.opened.get(name, value) {
            cache::Lookup::Hit(id) => return Some(id),
            cache::Lookup::OtherName => return None,
            cache::Lookup::Miss => {}
        }
        let id = self.keys.all().find_map(|key| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(name, value.to_owned()));
            jar.private(key).get(name).map(|c| c.value().to_owned())
        })?;
        self.opened.insert(name, value, &id);
        Some(id)
    }
}
