//! The bridge between the generated bindings and the policy traits: type conversions,
//! settings parsed once per instance, and the per-world entry points the export macros call.
//!
//! Nothing here panics on input: a value the host sent that does not parse (it never
//! should) becomes a refusal or a denial naming the problem, not a trap.

use std::cell::OnceCell;

use crate::context::{Context, Level};
use crate::policy::{AuthorizationPolicy, PayeePolicy, Policy, PricingPolicy, parse_settings};
use crate::types as sdk;

/// Generates the conversions between one world module's WIT types and the SDK types,
/// plus that world's host calls. Each world module has its own copy of the `types`
/// interface, so the same conversions are stamped out per module.
macro_rules! world_glue {
    ($world:ident) => {
        pub mod $world {
            use crate::bindings::$world::grid::policy::host;
            use crate::bindings::$world::grid::policy::types as wit;
            use crate::context::{Context, Level};
            use crate::types as sdk;

            pub fn context() -> Context {
                Context::with_sink(host::now(), |level, message| {
                    let level = match level {
                        Level::Trace => host::Level::Trace,
                        Level::Debug => host::Level::Debug,
                        Level::Info => host::Level::Info,
                        Level::Warn => host::Level::Warn,
                        Level::Error => host::Level::Error,
                    };
                    host::log(level, message)
                })
            }

            pub fn settings_text() -> String {
                host::settings()
            }

            #[allow(dead_code)]
            pub fn resources_in(r: wit::Resources) -> sdk::Resources {
                sdk::Resources {
                    cpu_millis: r.cpu_millis,
                    memory_bytes: r.memory_bytes,
                    storage_bytes: r.storage_bytes,
                    gpus: r.gpus,
                    gpu_model: r.gpu_model,
                }
            }

            #[allow(dead_code)]
            pub fn order_in(o: wit::Order) -> Result<sdk::Order, String> {
                Ok(sdk::Order {
                    id: o.id,
                    user: o.user.parse().map_err(|e| format!("order.user: {e}"))?,
                    provider: o
                        .provider
                        .parse()
                        .map_err(|e| format!("order.provider: {e}"))?,
                    payee: o.payee.parse().map_err(|e| format!("order.payee: {e}"))?,
                    resources: resources_in(o.resources),
                    duration_secs: o.duration_secs,
                    payment: o
                        .payment
                        .parse()
                        .map_err(|e| format!("order.payment: {e}"))?,
                    start_time: o.start_time,
                    created_at: o.created_at,
                    status: match o.status {
                        wit::OrderStatus::Created => sdk::OrderStatus::Created,
                        wit::OrderStatus::Active => sdk::OrderStatus::Active,
                        wit::OrderStatus::Cancelled => sdk::OrderStatus::Cancelled,
                        wit::OrderStatus::Completed => sdk::OrderStatus::Completed,
                    },
                })
            }

            #[allow(dead_code)]
            pub fn node_in(n: wit::NodeInfo) -> Result<sdk::NodeInfo, String> {
                Ok(sdk::NodeInfo {
                    wallet: n.wallet.parse().map_err(|e| format!("node.wallet: {e}"))?,
                    chain_id: n.chain_id,
                    total: resources_in(n.total),
                    free: resources_in(n.free),
                })
            }

            #[allow(dead_code)]
            pub fn decision_out(d: sdk::Decision) -> wit::Decision {
                match d {
                    sdk::Decision::Allow => wit::Decision::Allow,
                    sdk::Decision::Deny { reason } => wit::Decision::Deny(reason),
                }
            }
        }
    };
}

world_glue!(pricing);
world_glue!(payee);
world_glue!(authorization);

/// Parses this instance's settings once (they cannot change for a loaded policy version:
/// new settings mean a new version and new instances) and runs `f` with the policy.
fn with_policy<P: Policy, R>(
    settings_text: fn() -> String,
    f: impl FnOnce(Result<&P, &str>) -> R,
) -> R {
    thread_local! {
        // One slot per instance; the type is erased because a thread_local cannot be
        // generic. A component exports exactly one world with one policy type, so the
        // slot only ever holds that type.
        static SLOT: OnceCell<Box<dyn std::any::Any>> = const { OnceCell::new() };
    }
    SLOT.with(|slot| {
        let parsed = slot.get_or_init(|| Box::new(parse_settings::<P>(&settings_text())));
        match parsed.downcast_ref::<Result<P, String>>() {
            Some(Ok(policy)) => f(Ok(policy)),
            Some(Err(e)) => f(Err(e.as_str())),
            None => f(Err("internal: settings slot holds another policy type")),
        }
    })
}

fn bad_settings(e: &str) -> String {
    format!("policy settings are invalid: {e}")
}

/// `validate-settings` of every world.
pub fn validate_settings<P: Policy>(settings: &str) -> Result<(), String> {
    parse_settings::<P>(settings).map(|_| ())
}

/// `quote` of the pricing world.
pub fn pricing_quote<P: PricingPolicy>(
    request: crate::bindings::pricing::grid::policy::types::QuoteRequest,
    node: crate::bindings::pricing::grid::policy::types::NodeInfo,
) -> crate::bindings::pricing::grid::policy::types::Quote {
    use crate::bindings::pricing::grid::policy::types as wit;
    let refuse = |reason: String| wit::Quote {
        price: "0".into(),
        breakdown: Vec::new(),
        refusal: Some(wit::Refusal {
            kind: wit::RefusalKind::Other,
            reason,
        }),
    };
    let input = (|| -> Result<(sdk::QuoteRequest, sdk::NodeInfo), String> {
        let order = request.order.map(pricing::order_in).transpose()?;
        Ok((
            sdk::QuoteRequest {
                resources: pricing::resources_in(request.resources),
                duration_secs: request.duration_secs,
                payment: request
                    .payment
                    .parse()
                    .map_err(|e| format!("request.payment: {e}"))?,
                order,
            },
            pricing::node_in(node)?,
        ))
    })();
    let (request, node) = match input {
        Ok(v) => v,
        Err(e) => return refuse(format!("invalid input: {e}")),
    };
    with_policy::<P, _>(pricing::settings_text, |policy| match policy {
        Err(e) => refuse(bad_settings(e)),
        Ok(policy) => {
            let quote = policy.quote(&request, &node, &pricing::context());
            wit::Quote {
                price: quote.price.to_string(),
                breakdown: quote
                    .breakdown
                    .into_iter()
                    .map(|l| wit::PriceLine {
                        item: l.item,
                        amount: l.amount.to_string(),
                    })
                    .collect(),
                refusal: quote.refusal.map(|r| wit::Refusal {
                    kind: match r.kind {
                        sdk::RefusalKind::InsufficientPayment => {
                            wit::RefusalKind::InsufficientPayment
                        }
                        sdk::RefusalKind::InsufficientCapacity => {
                            wit::RefusalKind::InsufficientCapacity
                        }
                        sdk::RefusalKind::DurationOutOfRange => {
                            wit::RefusalKind::DurationOutOfRange
                        }
                        sdk::RefusalKind::UnsupportedResource => {
                            wit::RefusalKind::UnsupportedResource
                        }
                        sdk::RefusalKind::Other => wit::RefusalKind::Other,
                    },
                    reason: r.reason,
                }),
            }
        }
    })
}

/// `check` of the payee world.
pub fn payee_check<P: PayeePolicy>(
    order: crate::bindings::payee::grid::policy::types::Order,
    node: crate::bindings::payee::grid::policy::types::NodeInfo,
) -> crate::bindings::payee::grid::policy::types::Decision {
    use crate::bindings::payee::grid::policy::types as wit;
    let input = payee::order_in(order).and_then(|o| Ok((o, payee::node_in(node)?)));
    let (order, node) = match input {
        Ok(v) => v,
        Err(e) => return wit::Decision::Deny(format!("invalid input: {e}")),
    };
    with_policy::<P, _>(payee::settings_text, |policy| match policy {
        Err(e) => wit::Decision::Deny(bad_settings(e)),
        Ok(policy) => payee::decision_out(policy.check(&order, &node, &payee::context())),
    })
}

/// `authorize-session` of the authorization world.
pub fn authorize_session<P: AuthorizationPolicy>(
    request: crate::bindings::authorization::grid::policy::types::SessionRequest,
) -> crate::bindings::authorization::grid::policy::types::SessionDecision {
    use crate::bindings::authorization::grid::policy::types as wit;
    let input = (|| -> Result<sdk::SessionRequest, String> {
        Ok(sdk::SessionRequest {
            address: request
                .address
                .parse()
                .map_err(|e| format!("request.address: {e}"))?,
            orders: request
                .orders
                .into_iter()
                .map(authorization::order_in)
                .collect::<Result<_, _>>()?,
        })
    })();
    let request = match input {
        Ok(v) => v,
        Err(e) => return wit::SessionDecision::Deny(format!("invalid input: {e}")),
    };
    with_policy::<P, _>(authorization::settings_text, |policy| match policy {
        Err(e) => wit::SessionDecision::Deny(bad_settings(e)),
        Ok(policy) => match policy.authorize_session(&request, &authorization::context()) {
            sdk::SessionDecision::Grant(g) => wit::SessionDecision::Grant(wit::SessionGrant {
                expires_at: g.expires_at,
                scopes: g.scopes,
            }),
            sdk::SessionDecision::Deny { reason } => wit::SessionDecision::Deny(reason),
        },
    })
}

/// `authorize-request` of the authorization world.
pub fn authorize_request<P: AuthorizationPolicy>(
    request: crate::bindings::authorization::grid::policy::types::RequestMeta,
) -> crate::bindings::authorization::grid::policy::types::Decision {
    use crate::bindings::authorization::grid::policy::types as wit;
    let caller = match request.caller.map(|c| c.parse()).transpose() {
        Ok(c) => c,
        Err(e) => return wit::Decision::Deny(format!("invalid input: request.caller: {e}")),
    };
    let request = sdk::RequestMeta {
        method: request.method,
        path: request.path,
        host: request.host,
        headers: request.headers,
        caller,
        order_id: request.order_id,
        scopes: request.scopes,
    };
    with_policy::<P, _>(authorization::settings_text, |policy| match policy {
        Err(e) => wit::Decision::Deny(bad_settings(e)),
        Ok(policy) => authorization::decision_out(
            policy.authorize_request(&request, &authorization::context()),
        ),
    })
}

// Keep `Level` and `Context` imports meaningful when a world's glue is compiled out.
#[allow(dead_code)]
fn _assert_types(_: Level, _: Context) {}
