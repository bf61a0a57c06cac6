//! The values a policy sees and returns, as plain Rust types.
//!
//! They mirror the records of `wit/types.wit` one to one (WIT `kebab-case` names become
//! `snake_case`), and their serde form is the JSON fixture format of
//! `grid-gateway policy run`, so the same fixture file drives a native `cargo test`
//! of a policy and an evaluation of its compiled component.

use serde::{Deserialize, Serialize};

use crate::{Address, Amount};

/// Compute resources: what an order asks for, what a node has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Persistent storage in bytes.
    #[serde(default)]
    pub storage_bytes: u64,
    /// Number of GPUs.
    #[serde(default)]
    pub gpus: u32,
    /// GPU model asked for or offered (e.g. "nvidia-a100"); `None` means any / not stated.
    #[serde(default)]
    pub gpu_model: Option<String>,
}

impl Resources {
    /// True when every quantity of `self` fits in `available` and, when `self` names a
    /// GPU model and asks for GPUs, `available` offers that model.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpu_millis <= available.cpu_millis
            && self.memory_bytes <= available.memory_bytes
            && self.storage_bytes <= available.storage_bytes
            && self.gpus <= available.gpus
            && (self.gpus == 0
                || match (&self.gpu_model, &available.gpu_model) {
                    (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                    (Some(_), None) => false,
                    (None, _) => true,
                })
    }

    /// The first resource of `self` that does not fit in `available`, named for a message.
    pub fn first_shortfall(&self, available: &Resources) -> Option<String> {
        use crate::quantity::{format_bytes, format_cpu_millis};
        if self.cpu_millis > available.cpu_millis {
            return Some(format!(
                "cpu: asked {}, free {}",
                format_cpu_millis(self.cpu_millis),
                format_cpu_millis(available.cpu_millis)
            ));
        }
        if self.memory_bytes > available.memory_bytes {
            return Some(format!(
                "memory: asked {}, free {}",
                format_bytes(self.memory_bytes),
                format_bytes(available.memory_bytes)
            ));
        }
        if self.storage_bytes > available.storage_bytes {
            return Some(format!(
                "storage: asked {}, free {}",
                format_bytes(self.storage_bytes),
                format_bytes(available.storage_bytes)
            ));
        }
        if self.gpus > available.gpus {
            return Some(format!("gpu: asked {}, free {}", self.gpus, available.gpus));
        }
        if !self.fits_in(available) {
            return Some(format!(
                "gpu model: asked {}, offered {}",
                self.gpu_model.as_deref().unwrap_or("any"),
                available.gpu_model.as_deref().unwrap_or("none")
            ));
        }
        None
    }
}

/// Where an order is in its on-chain lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// The user deposited the payment; no provider has locked it yet.
    Created,
    /// The provider locked it (the gateway's accept); it is running.
    Active,
    /// The user cancelled it.
    Cancelled,
    /// Its full duration elapsed and it was settled.
    Completed,
}

impl core::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OrderStatus::Created => "created",
            OrderStatus::Active => "active",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Completed => "completed",
        })
    }
}

/// An order as the Market contract holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The Market's order id (a u256, as a decimal string).
    pub id: String,
    /// Who pays and uses the capacity.
    pub user: Address,
    /// The node wallet the order is addressed to.
    pub provider: Address,
    /// Who receives the payment as it is released.
    pub payee: Address,
    /// The capacity bought.
    pub resources: Resources,
    /// How long the capacity is bought for, in seconds.
    pub duration_secs: u64,
    /// The payment held in escrow, in the token's smallest unit.
    pub payment: Amount,
    /// Unix time the order started running (set when the provider locks it); `None` before.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// Unix time the order was created on chain (the block time of its creation).
    pub created_at: u64,
    /// Lifecycle state.
    pub status: OrderStatus,
}

/// What the node is and has, as the host measures it at evaluation time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node's wallet: the provider address orders must name.
    pub wallet: Address,
    /// The chain the Market lives on.
    #[serde(default)]
    pub chain_id: u64,
    /// All capacity the node offers.
    pub total: Resources,
    /// Capacity not taken by active orders.
    pub free: Resources,
}

/// The pricing world's question: what would this cost, and is the payment enough?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Capacity asked for.
    pub resources: Resources,
    /// For how long, in seconds.
    pub duration_secs: u64,
    /// What the user pays (or offers to pay).
    pub payment: Amount,
    /// The on-chain order, when the quote is for one (`None` for an inline spec).
    #[serde(default)]
    pub order: Option<Order>,
}

/// One line of a price breakdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceLine {
    /// What this line prices ("cpu", "memory", "storage", "gpu:nvidia-a100", …).
    pub item: String,
    /// Its share of the price.
    pub amount: Amount,
}

/// Why a quote is not acceptable, in a form the gateway maps to an error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The payment is below the price.
    InsufficientPayment,
    /// The node lacks free capacity for the request.
    InsufficientCapacity,
    /// The duration is outside what the node sells.
    DurationOutOfRange,
    /// The request asks for something the node does not sell (a GPU model, say).
    UnsupportedResource,
    /// Any other reason.
    Other,
}

/// A refusal: its kind and a sentence for the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// Why, in words a user can act on.
    pub reason: String,
}

/// The pricing world's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// The price of the request (also when it is refused, where it can be computed).
    pub price: Amount,
    /// How the price is made up.
    #[serde(default)]
    pub breakdown: Vec<PriceLine>,
    /// `None` when the node takes the order at this payment; else why not.
    #[serde(default)]
    pub refusal: Option<Refusal>,
}

impl Quote {
    /// An acceptable quote.
    pub fn accept(price: Amount, breakdown: Vec<PriceLine>) -> Self {
        Quote {
            price,
            breakdown,
            refusal: None,
        }
    }

    /// A refused quote.
    pub fn refuse(
        price: Amount,
        breakdown: Vec<PriceLine>,
        kind: RefusalKind,
        reason: impl Into<String>,
    ) -> Self {
        Quote {
            price,
            breakdown,
            refusal: Some(Refusal {
                kind,
                reason: reason.into(),
            }),
        }
    }

    /// True when the node takes the order at this payment.
    pub fn acceptable(&self) -> bool {
        self.refusal.is_none()
    }
}

/// A yes or no, with the reason for a no. JSON: `{"decision":"allow"}` or
/// `{"decision":"deny","reason":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied.
    Deny {
        /// Why, in words the user sees.
        reason: String,
    },
}

impl Decision {
    /// A denial with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision::Deny {
            reason: reason.into(),
        }
    }

    /// True for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// The authorization world's session question: may this address have a session?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The address that proved control of its key by signing in.
    pub address: Address,
    /// Its orders on this node that are active now.
    #[serde(default)]
    pub orders: Vec<Order>,
}

/// A granted session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// Unix time the session ends (the gateway may cap it further).
    pub expires_at: u64,
    /// What the session may do, if the policy scopes sessions; `None` means unscoped.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// The authorization world's session answer. JSON:
/// `{"decision":"grant","expires_at":…,"scopes":…}` or `{"decision":"deny","reason":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum SessionDecision {
    /// A session is granted on these terms.
    Grant(SessionGrant),
    /// No session.
    Deny {
        /// Why, in words the user sees.
        reason: String,
    },
}

impl SessionDecision {
    /// A denial with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        SessionDecision::Deny {
            reason: reason.into(),
        }
    }
}

/// A request on its way through the gateway, for per-request authorization.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMeta {
    /// HTTP method as the app receives it: standard methods always upper case (the host
    /// refuses other spellings of them), extension methods as sent.
    pub method: String,
    /// Path without the query string, normalised by the host (unreserved percent-escapes
    /// decoded, dot segments resolved, repeated slashes merged). Targets no normalisation
    /// makes unambiguous (an encoded `/` or `\`, encoded dot segments, control bytes) are
    /// refused before any policy; with `process.allow_encoded_slash`, `%2F` stays encoded.
    pub path: String,
    /// The Host the client addressed.
    #[serde(default)]
    pub host: Option<String>,
    /// Selected request headers (names lower case); never the session cookie or token.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The session's address, when there is a session.
    #[serde(default)]
    pub caller: Option<Address>,
    /// The order whose app the request goes to, when known.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Scopes the session was granted.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl RequestMeta {
    /// The value of a header (name compared case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu: u64, mem: u64, gpus: u32, model: Option<&str>) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_bytes: mem,
            storage_bytes: 0,
            gpus,
            gpu_model: model.map(str::to_owned),
        }
    }

    #[test]
    fn fits_checks_every_dimension_and_gpu_model() {
        let free = res(4000, 8 << 30, 2, Some("nvidia-a100"));
        assert!(res(4000, 8 << 30, 2, None).fits_in(&free));
        assert!(res(1000, 1, 1, Some("NVIDIA-A100")).fits_in(&free));
        assert!(!res(4001, 1, 0, None).fits_in(&free));
        assert!(!res(1, 1, 3, None).fits_in(&free));
        assert!(!res(1, 1, 1, Some("nvidia-h100")).fits_in(&free));
        assert_eq!(
            res(5000, 1, 0, None).first_shortfall(&free).unwrap(),
            "cpu: asked 5, free 4"
        );
        assert!(
            res(1, 1, 0, Some("nvidia-h100"))
                .first_shortfall(&free)
                .is_none()
        );
    }

    #[test]
    fn decisions_serialize_as_tagged_json() {
        assert_eq!(
            serde_json::to_value(Decision::deny("no")).unwrap(),
            serde_json::json!({"decision":"deny","reason":"no"})
        );
        assert_eq!(
            serde_json::to_value(Decision::Allow).unwrap(),
            serde_json::json!({"decision":"allow"})
        );
        let grant = SessionDecision::Grant(SessionGrant {
            expires_at: 10,
            scopes: None,
        });
        assert_eq!(
            serde_json::to_value(&grant).unwrap(),
            serde_json::json!({"decision":"grant","expires_at":10,"scopes":null})
        );
        assert_eq!(
            serde_json::to_value(SessionDecision::deny("no")).unwrap(),
            serde_json::json!({"decision":"deny","reason":"no"})
        );
        let back: SessionDecision = serde_json::from_value(
            serde_json::json!({"decision":"grant","expires_at":10,"scopes":null}),
        )
        .unwrap();
        assert_eq!(back, grant);
    }
}
