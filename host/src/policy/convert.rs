//! Conversions between the SDK's Rust types (what the rest of the gateway and the JSON
//! fixtures use) and the generated WIT types. Answers from a policy are untrusted input:
//! anything malformed becomes [`EvalError::InvalidOutput`].

use grid_policy_sdk as sdk;

use super::bindings::types as wit;
use super::error::EvalError;

pub(crate) fn resources(r: &sdk::Resources) -> wit::Resources {
    wit::Resources {
        cpu_millis: r.cpu_millis,
        memory_bytes: r.memory_bytes,
        storage_bytes: r.storage_bytes,
        gpus: r.gpus,
        gpu_model: r.gpu_model.clone(),
    }
}

pub(crate) fn order(o: &sdk::Order) -> wit::Order {
    wit::Order {
        id: o.id.clone(),
        user: o.user.to_string(),
        provider: o.provider.to_string(),
        payee: o.payee.to_string(),
        resources: resources(&o.resources),
        duration_secs: o.duration_secs,
        payment: o.payment.to_string(),
        start_time: o.start_time,
        created_at: o.created_at,
        status: match o.status {
            sdk::OrderStatus::Created => wit::OrderStatus::Created,
            sdk::OrderStatus::Active => wit::OrderStatus::Active,
            sdk::OrderStatus::Cancelled => wit::OrderStatus::Cancelled,
            sdk::OrderStatus::Completed => wit::OrderStatus::Completed,
        },
    }
}

pub(crate) fn node(n: &sdk::NodeInfo) -> wit::NodeInfo {
    wit::NodeInfo {
        wallet: n.wallet.to_string(),
        chain_id: n.chain_id,
        total: resources(&n.total),
        free: resources(&n.free),
    }
}

pub(crate) fn quote_request(q: &sdk::QuoteRequest) -> wit::QuoteRequest {
    wit::QuoteRequest {
        resources: resources(&q.resources),
        duration_secs: q.duration_secs,
        payment: q.payment.to_string(),
        order: q.order.as_ref().map(order),
    }
}

pub(crate) fn session_request(s: &sdk::SessionRequest) -> wit::SessionRequest {
    wit::SessionRequest {
        address: s.address.to_string(),
        orders: s.orders.iter().map(order).collect(),
    }
}

pub(crate) fn request_meta(r: &sdk::RequestMeta) -> wit::RequestMeta {
    request_meta_owned(r.clone())
}

pub(crate) fn request_meta_owned(r: sdk::RequestMeta) -> wit::RequestMeta {
    wit::RequestMeta {
        method: r.method,
        path: r.path,
        host: r.host,
        headers: r.headers,
        caller: r.caller.map(|a| a.to_string()),
        order_id: r.order_id,
        scopes: r.scopes,
    }
}

fn amount(field: &str, text: &str) -> Result<sdk::Amount, EvalError> {
    text.parse()
        .map_err(|e| EvalError::InvalidOutput(format!("{field}: {e}")))
}

pub(crate) fn quote_out(q: wit::Quote) -> Result<sdk::Quote, EvalError> {
    Ok(sdk::Quote {
        price: amount("price", &q.price)?,
        breakdown: q
            .breakdown
            .into_iter()
            .map(|l| {
                Ok(sdk::PriceLine {
                    amount: amount(&format!("breakdown[{}].amount", l.item), &l.amount)?,
                    item: l.item,
                })
            })
            .collect::<Result<_, EvalError>>()?,
        refusal: q.refusal.map(|r| sdk::Refusal {
            kind: match r.kind {
                wit::RefusalKind::InsufficientPayment => sdk::RefusalKind::InsufficientPayment,
                wit::RefusalKind::InsufficientCapacity => sdk::RefusalKind::InsufficientCapacity,
                wit::RefusalKind::DurationOutOfRange => sdk::RefusalKind::DurationOutOfRange,
                wit::RefusalKind::UnsupportedResource => sdk::RefusalKind::UnsupportedResource,
                wit::RefusalKind::Other => sdk::RefusalKind::Other,
            },
            reason: r.reason,
        }),
    })
}

pub(crate) fn decision_out(d: wit::Decision) -> sdk::Decision {
    match d {
        wit::Decision::Allow => sdk::Decision::Allow,
        wit::Decision::Deny(reason) => sdk::Decision::Deny { reason },
    }
}

pub(crate) fn session_decision_out(d: wit::SessionDecision) -> sdk::SessionDecision {
    match d {
        wit::SessionDecision::Grant(g) => sdk::SessionDecision::Grant(sdk::SessionGrant {
            expires_at: g.expires_at,
            scopes: g.scopes,
        }),
        wit::SessionDecision::Deny(reason) => sdk::SessionDecision::Deny { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_that_is_not_a_number_is_invalid_output() {
        let q = wit::Quote {
            price: "lots".into(),
            breakdown: vec![],
            refusal: None,
        };
        assert!(matches!(quote_out(q), Err(EvalError::InvalidOutput(m)) if m.contains("price")));
        let q = wit::Quote {
            price: "1".into(),
            breakdown: vec![wit::PriceLine {
                item: "cpu".into(),
                amount: "-1".into(),
            }],
            refusal: None,
        };
        assert!(
            matches!(quote_out(q), Err(EvalError::InvalidOutput(m)) if m.contains("breakdown[cpu]"))
        );
    }
}
