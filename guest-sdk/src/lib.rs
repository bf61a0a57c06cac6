//! # grid-policy-sdk
//!
//! Write grid-gateway policies as plain Rust. A policy is a settings type that implements
//! one world's trait ([`PricingPolicy`], [`PayeePolicy`], [`AuthorizationPolicy`]); one
//! export macro turns it into a WebAssembly component the gateway loads and hot-swaps.
//!
//! ```
//! use grid_policy_sdk::prelude::*;
//!
//! /// Charges a flat amount per second, whatever is asked for.
//! #[derive(Default, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Flat {
//!     per_second: Amount,
//! }
//!
//! impl Policy for Flat {
//!     fn validate(&self) -> Result<(), String> {
//!         if self.per_second.is_zero() { Err("per_second must be above 0".into()) } else { Ok(()) }
//!     }
//! }
//!
//! impl PricingPolicy for Flat {
//!     fn quote(&self, req: &QuoteRequest, _node: &NodeInfo, _ctx: &Context) -> Quote {
//!         let Some(price) = self.per_second.checked_mul(req.duration_secs) else {
//!             return Quote::refuse(Amount::MAX, vec![], RefusalKind::Other, "price overflows");
//!         };
//!         if req.payment < price {
//!             return Quote::refuse(price, vec![], RefusalKind::InsufficientPayment,
//!                 format!("payment {} is below the price {price}", req.payment));
//!         }
//!         Quote::accept(price, vec![])
//!     }
//! }
//!
//! // In the policy crate (crate-type cdylib, built for wasm32-wasip2):
//! // grid_policy_sdk::export_pricing!(Flat);
//!
//! // Native test of the logic: no wasm runtime involved.
//! let policy: Flat = parse_settings(r#"{"per_second":"10"}"#).unwrap();
//! let req = QuoteRequest {
//!     resources: Resources::default(), duration_secs: 60, payment: Amount::from(600), order: None,
//! };
//! let node = NodeInfo { wallet: Address::ZERO, chain_id: 1, total: Resources::default(),
//!     free: Resources::default() };
//! assert!(policy.quote(&req, &node, &Context::at(0)).acceptable());
//! assert!(parse_settings::<Flat>(r#"{"per_second":"0"}"#).is_err());
//! ```
//!
//! Helpers: [`Amount`] (u256 with checked arithmetic), [`quantity`] (Kubernetes quantities),
//! [`Address`] (compared by bytes, so case-insensitively).

// The generated bindings and export macros name this crate by path, also from inside it.
extern crate self as grid_policy_sdk;

pub mod address;
pub mod amount;
pub mod context;
pub mod fixture;
pub mod policy;
pub mod quantity;
pub mod types;

pub use address::{Address, AddressParseError};
pub use amount::{Amount, AmountParseError};
pub use context::{Context, Level};
pub use fixture::{Call, Fixture, Outcome};
pub use policy::{AuthorizationPolicy, PayeePolicy, Policy, PricingPolicy, parse_settings};
pub use types::*;

/// Everything a policy file usually needs, in one import.
pub mod prelude {
    pub use crate::quantity;
    pub use crate::{
        Address, Amount, AuthorizationPolicy, Context, Decision, Level, NodeInfo, Order,
        OrderStatus, PayeePolicy, Policy, PriceLine, PricingPolicy, Quote, QuoteRequest, Refusal,
        RefusalKind, RequestMeta, Resources, SessionDecision, SessionGrant, SessionRequest,
        parse_settings,
    };
}

#[doc(hidden)]
#[cfg(feature = "guest")]
#[path = "glue.rs"]
pub mod __glue;
#[cfg(feature = "guest")]
pub mod bindings;
#[cfg(feature = "guest")]
mod export;

/// Runtime support the generated bindings refer to, re-exported so policy crates need no
/// direct `wit-bindgen` dependency.
#[doc(hidden)]
#[cfg(feature = "guest")]
pub mod __rt {
    pub use wit_bindgen;
}
