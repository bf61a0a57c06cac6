//! Request and response bodies of the API (what the OpenAPI document describes), and their
//! conversion to and from the services' types.

use grid_policy_sdk::quantity::{parse_bytes, parse_cpu_millis};
use grid_policy_sdk::{Amount, Resources};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::orders::{AcceptOutcome, QuoteInput, QuoteOutcome};
use crate::store::OrderRecord;

/// A quantity as a Kubernetes quantity string or a bare number.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Quantity {
    /// `"2"`, `"500m"`, `"4Gi"`.
    Text(String),
    /// `2`.
    Number(u64),
}

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Text(s) => s.clone(),
            Quantity::Number(n) => n.to_string(),
        }
    }
}

/// Resources of an inline quote, in Kubernetes quantities.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPU: `"2"`, `"1500m"`.
    pub cpu: Quantity,
    /// Memory: `"4Gi"`.
    pub memory: Quantity,
    /// Storage: `"10Gi"`. Default 0.
    #[serde(default)]
    pub storage: Option<Quantity>,
    /// GPUs. Default 0.
    #[serde(default)]
    pub gpu: u32,
    /// GPU model, if it matters.
    #[serde(default)]
    pub gpu_model: Option<String>,
}

impl ResourceSpec {
    fn resources(&self) -> Result<Resources, Error> {
        let bad = |field: &str, e: String| Error::BadRequest(format!("resources.{field}: {e}"));
        Ok(Resources {
            cpu_millis: parse_cpu_millis(&self.cpu.text())
                .map_err(|e| bad("cpu", e.to_string()))?,
            memory_bytes: parse_bytes(&self.memory.text())
                .map_err(|e| bad("memory", e.to_string()))?,
            storage_bytes: match &self.storage {
                Some(q) => parse_bytes(&q.text()).map_err(|e| bad("storage", e.to_string()))?,
                None => 0,
            },
            gpus: self.gpu,
            gpu_model: self.gpu_model.as_ref().map(|m| m.to_ascii_lowercase()),
        })
    }
}

/// `POST /_grid/v1/quote`: either `order_id`, or `resources` + `duration_secs` + `payment`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteBody {
    /// An order on chain (decimal id).
    #[serde(default)]
    pub order_id: Option<String>,
    /// What is asked for (inline quote).
    #[serde(default)]
    pub resources: Option<ResourceSpec>,
    /// For how long, seconds (inline quote).
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// Payment offered, decimal u256 in the token's smallest unit (inline quote).
    #[serde(default)]
    pub payment: Option<String>,
}

impl QuoteBody {
    /// The service's input; the error says which field is missing or wrong.
    pub fn input(self) -> Result<QuoteInput, Error> {
        match (
            self.order_id,
            self.resources,
            self.duration_secs,
            self.payment,
        ) {
            (Some(id), None, None, None) => Ok(QuoteInput::Order(id)),
            (None, Some(resources), Some(duration_secs), Some(payment)) => Ok(QuoteInput::Inline {
                resources: resources.resources()?,
                duration_secs,
                payment: payment.parse::<Amount>().map_err(|_| {
                    Error::BadRequest(format!(
                        "payment: {payment:?} is not a decimal amount in the token's smallest unit"
                    ))
                })?,
            }),
            (Some(_), ..) => Err(Error::BadRequest(
                "give either order_id or an inline spec, not both".into(),
            )),
            _ => Err(Error::BadRequest(
                "give order_id, or resources, duration_secs and payment".into(),
            )),
        }
    }
}

/// One line of a price breakdown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PriceLineView {
    /// What it prices.
    pub item: String,
    /// Its share (decimal u256).
    pub amount: String,
}

/// A quote.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuoteResponse {
    /// True when the node takes it at this payment.
    pub acceptable: bool,
    /// The price, decimal u256.
    pub price: String,
    /// Why not, when not acceptable.
    pub reason: Option<String>,
    /// The error code an accept would get, when not acceptable.
    pub code: Option<String>,
    /// How the price is made up.
    pub breakdown: Vec<PriceLineView>,
}

impl From<QuoteOutcome> for QuoteResponse {
    fn from(q: QuoteOutcome) -> Self {
        QuoteResponse {
            acceptable: q.acceptable,
            price: q.price,
            reason: q.reason,
            code: q.code.map(str::to_owned),
            breakdown: q
                .breakdown
                .into_iter()
                .map(|l| PriceLineView {
                    item: l.item,
                    amount: l.amount.to_string(),
                })
                .collect(),
        }
    }
}

/// An accepted order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AcceptResponse {
    /// The order.
    pub order_id: String,
    /// `active`.
    pub status: String,
    /// The lock transaction, when known.
    pub tx_hash: Option<String>,
}

impl From<AcceptOutcome> for AcceptResponse {
    fn from(a: AcceptOutcome) -> Self {
        AcceptResponse {
            order_id: a.order_id,
            status: a.status.to_owned(),
            tx_hash: a.tx_hash,
        }
    }
}

/// An order this node accepted, as it stands here.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    /// The order (decimal).
    pub order_id: String,
    /// `accepted` (lock not confirmed yet), `active`, `cancelled` or `completed`.
    pub state: String,
    /// The wallet that ordered (and may sign in to use it).
    pub user: String,
    /// Who is paid as the order runs.
    pub payee: String,
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Storage in bytes.
    pub storage_bytes: u64,
    /// GPUs.
    pub gpus: u32,
    /// Seconds bought, extensions included.
    pub duration_secs: u64,
    /// Escrowed payment, decimal u256, extensions included.
    pub payment: String,
    /// Unix seconds it started running (the lock), when locked.
    pub start_time: Option<u64>,
    /// Unix seconds it ends (its app is torn down then).
    pub ends_at: u64,
    /// The lock transaction, when known.
    pub tx_hash: Option<String>,
    /// Unix seconds this node accepted it.
    pub accepted_at: u64,
    /// Paid to the payee so far, decimal u256 in the token's smallest unit: read from the
    /// chain, or the node's last record of it when the chain does not answer; `null` before
    /// either is known.
    pub paid: Option<String>,
    /// What a settlement now would pay the payee (released and not yet paid), decimal u256;
    /// `null` when the chain does not answer.
    pub releasable: Option<String>,
    /// The last settlement transaction this node got mined for the order.
    pub last_settlement_tx: Option<String>,
}

impl OrderResponse {
    /// The record with its pay (see `settlement::pay_view`).
    pub fn with_pay(record: OrderRecord, pay: crate::settlement::PayView) -> Self {
        OrderResponse {
            paid: pay.paid,
            releasable: pay.releasable,
            last_settlement_tx: pay.last_settlement_tx,
            ..record.into()
        }
    }
}

impl From<OrderRecord> for OrderResponse {
    fn from(r: OrderRecord) -> Self {
        let ends_at = r.ends_at();
        let o = r.order;
        OrderResponse {
            order_id: o.id,
            state: r.state.as_str().to_owned(),
            // EIP-55 checksummed, like the node's wallet.
            user: grid_chain::from_sdk_address(o.user).to_string(),
            payee: grid_chain::from_sdk_address(o.payee).to_string(),
            cpu_millis: o.resources.cpu_millis,
            memory_bytes: o.resources.memory_bytes,
            storage_bytes: o.resources.storage_bytes,
            gpus: o.resources.gpus,
            duration_secs: o.duration_secs,
            payment: o.payment.to_string(),
            start_time: o.start_time,
            ends_at,
            tx_hash: r.tx_hash,
            accepted_at: r.accepted_at,
            paid: None,
            releasable: None,
            last_settlement_tx: None,
        }
    }
}

/// A login nonce.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NonceResponse {
    /// Put it in the sign-in message's `Nonce:` line.
    pub nonce: String,
    /// Unix seconds it stops being accepted.
    pub expires_at: u64,
}

/// `POST /_grid/v1/auth/login`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The EIP-4361 message, exactly as signed.
    pub message: String,
    /// Its EIP-191 signature, hex (65 bytes).
    pub signature: String,
}

/// A session.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The signed-in wallet.
    pub address: String,
    /// Unix seconds the session ends.
    pub expires_at: u64,
    /// The session cookie's value, for `Authorization: Bearer`.
    pub token: String,
}

/// The current session.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The signed-in wallet.
    pub address: String,
    /// Unix seconds the session ends.
    pub expires_at: u64,
    /// Granted scopes (`null`: unscoped).
    pub scopes: Option<Vec<String>>,
}

/// Logout's answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    /// The wallet whose session ended.
    pub address: String,
    /// Always true.
    pub ended: bool,
}

/// Logout-all's answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LogoutAllResponse {
    /// The wallet whose sessions ended.
    pub address: String,
    /// How many live sessions were ended, the caller's included.
    pub sessions_ended: u64,
}

/// `GET /greet`: the original GRID gateway's form.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct GreetQuery {
    /// 0 = quote, 1 = accept, 2 = login.
    #[serde(rename = "type")]
    pub kind: u8,
    /// The order id (types 0 and 1).
    pub input: Option<String>,
    /// The sign-in message (type 2).
    pub message: Option<String>,
    /// Its signature (type 2).
    pub sig: Option<String>,
}
