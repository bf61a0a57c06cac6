//! The traits a policy implements: one per WIT world.
//!
//! A policy *is* its settings: the type you implement a world's trait on is deserialized
//! from the operator's settings file (JSON), validated with [`Policy::validate`], and then
//! asked the world's questions. Everything the methods need arrives as arguments, so policy
//! logic is plain Rust that `cargo test` runs natively, without a wasm runtime.

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::types::{
    Decision, NodeInfo, Order, Quote, QuoteRequest, RequestMeta, SessionDecision, SessionRequest,
};

/// What every policy is: settings that can be parsed and checked.
///
/// `Default` is the behaviour with no settings file, so choose defaults an operator can
/// live with (or make `validate` refuse the default when there is none).
pub trait Policy: DeserializeOwned + Default + 'static {
    /// Checks settings beyond what their types say (ranges, consistency). The message is
    /// shown to the operator verbatim when a settings file is refused.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `pricing` world: prices an order and says whether the payment is enough.
pub trait PricingPolicy: Policy {
    /// Quotes `request` on a node whose capacity is `node`.
    fn quote(&self, request: &QuoteRequest, node: &NodeInfo, ctx: &Context) -> Quote;
}

/// The `payee` world: decides whether an order's payee (and the order around it) is
/// acceptable before the node locks it on chain.
pub trait PayeePolicy: Policy {
    /// Checks `order` for the node `node`.
    fn check(&self, order: &Order, node: &NodeInfo, ctx: &Context) -> Decision;
}

/// The `authorization` world: who gets a session, and which requests a session may make.
pub trait AuthorizationPolicy: Policy {
    /// Decides whether the signed-in address gets a session, and on what terms.
    fn authorize_session(&self, request: &SessionRequest, ctx: &Context) -> SessionDecision;

    /// Decides whether one request from a session may proceed.
    fn authorize_request(&self, request: &RequestMeta, ctx: &Context) -> Decision;
}

/// Parses and validates settings the way the gateway does before a policy is used:
/// empty text or `null` means "no settings file" and gives `P::default()`.
pub fn parse_settings<P: Policy>(json: &str) -> Result<P, String> {
    let trimmed = json.trim();
    let policy = if trimmed.is_empty() || trimmed == "null" {
        P::default()
    } else {
        serde_json::from_str::<P>(trimmed).map_err(|e| format!("settings: {e}"))?
    };
    policy.validate()?;
    Ok(policy)
}
