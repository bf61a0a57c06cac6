//! A pricing policy that misbehaves on request, for the gateway's runtime tests. It talks
//! to the raw bindings (not the SDK traits) so it can also return what the SDK would never
//! let a policy return.
//!
//! Behaviour is chosen by the request's `resources.gpu_model`:
//! - `"loop"`: spins forever (the deadline must stop it);
//! - `"oom"`: allocates until memory runs out (the memory cap must stop it);
//! - `"trap"`: panics, which traps;
//! - `"garbage"`: returns a price that is not a number;
//! - `"count"`: returns as price how many evaluations this instance has served, to observe
//!   when the host recycles instances;
//! - `"log-flood"`: logs 10 000 lines (the host must bound what it keeps);
//! - anything else: an acceptable quote of price 1.
//!
//! Settings: `{"validate": "loop"}` spins in `validate-settings`; `{"validate": "reject"}`
//! refuses the settings; anything else is accepted.

use std::sync::atomic::{AtomicU64, Ordering};

use grid_policy_sdk::bindings::pricing::{
    Guest,
    grid::policy::host,
    grid::policy::types::{NodeInfo, Quote, QuoteRequest},
};

static SERVED: AtomicU64 = AtomicU64::new(0);

/// The exported component.
pub struct Hostile;

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

impl Guest for Hostile {
    fn validate_settings(settings: String) -> Result<(), String> {
        if settings.contains("\"loop\"") {
            spin();
        }
        if settings.contains("\"reject\"") {
            return Err("these settings are rejected on purpose".into());
        }
        Ok(())
    }

    fn quote(request: QuoteRequest, _node: NodeInfo) -> Quote {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let ok = |price: String| Quote {
            price,
            breakdown: Vec::new(),
            refusal: None,
        };
        match request.resources.gpu_model.as_deref() {
            Some("loop") => spin(),
            Some("oom") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("trap") => panic!("hostile policy traps on purpose"),
            Some("garbage") => ok("a lot of money".into()),
            Some("count") => ok(served.to_string()),
            Some("log-flood") => {
                for i in 0..10_000 {
                    host::log(host::Level::Info, &format!("flood line {i}"));
                }
                ok("1".into())
            }
            _ => ok("1".into()),
        }
    }
}

grid_policy_sdk::bindings::pricing::export_pricing_world!(Hostile with_types_in grid_policy_sdk::bindings::pricing);
