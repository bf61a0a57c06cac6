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
//! - `"sleep"`: sleeps for a minute through WASI (the host must not wait for it);
//! - `"alias"`: answers a breakdown of 100 000 lines whose names all point at one 1 MiB
//!   string (the host must not copy 100 GB out of a 16 MiB guest);
//! - `"random"`, `"random-insecure"`: asks `wasi:random` (secure, insecure) for 24 MiB at a
//!   time, in a loop (the host must bound each call and the evaluation); `"random-small"`
//!   asks for 64 KiB at a time, in a loop (the per-evaluation budget must stop it);
//! - `"clock"`: reads the wall and monotonic clocks in a loop;
//! - `"clock-read"`: answers the wall clock's whole seconds as price, and a breakdown line
//!   `monotonic-frozen` of 1 when two monotonic reads with work between them are equal;
//! - `"stdout"`, `"stderr"`: writes 64 KiB at a time to stdout or stderr, in a loop;
//! - `"print"`: writes `out 0`, `out 1` and an unfinished `partial` to stdout and
//!   `err line` to stderr, then answers price 1 (the host logs each line);
//! - `"print-flood"`: writes 5000 short lines to stdout, then answers price 1;
//! - `"exit"`: calls `wasi:cli/exit`;
//! - anything else: an acceptable quote of price 1.
//!
//! Settings: `{"validate": "loop"}` spins in `validate-settings`; `{"validate": "reject"}`
//! refuses the settings; anything else is accepted.

use std::sync::atomic::{AtomicU64, Ordering};

use grid_policy_sdk::bindings::pricing::{
    Guest,
    grid::policy::host,
    grid::policy::types::{NodeInfo, PriceLine, Quote, QuoteRequest},
};

mod wasi_random {
    wit_bindgen::generate!({
        inline: r#"
            package hostile:imports;
            world imports {
                import wasi:random/random@0.2.0;
                import wasi:random/insecure@0.2.0;
            }
            package wasi:random@0.2.0 {
                interface random {
                    get-random-bytes: func(len: u64) -> list<u8>;
                    get-random-u64: func() -> u64;
                }
                interface insecure {
                    get-insecure-random-bytes: func(len: u64) -> list<u8>;
                    get-insecure-random-u64: func() -> u64;
                }
            }
        "#,
        world: "hostile:imports/imports",
        generate_all,
    });
    pub use wasi::random::{insecure, random};
}

/// Writes to stdout or stderr without end, ignoring refusals (the host must stop it).
fn write_forever(mut out: impl std::io::Write) -> ! {
    let chunk = vec![b'x'; 64 << 10];
    loop {
        let _ = std::hint::black_box(out.write(&chunk));
    }
}

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
            Some("sleep") => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                ok("1".into())
            }
            Some("alias") => {
                let big: &'static mut str = Box::leak("x".repeat(1 << 20).into_boxed_str());
                let (ptr, len) = (big.as_mut_ptr(), big.len());
                let breakdown = (0..100_000)
                    .map(|_| PriceLine {
                        // SAFETY: deliberately unsound — every line aliases the same leaked
                        // buffer — to build the hostile answer; the instance is discarded.
                        item: unsafe { String::from_raw_parts(ptr, len, len) },
                        amount: "1".into(),
                    })
                    .collect();
                Quote {
                    price: "1".into(),
                    breakdown,
                    refusal: None,
                }
            }
            Some("log-flood") => {
                for i in 0..10_000 {
                    host::log(host::Level::Info, &format!("flood line {i}"));
                }
                ok("1".into())
            }
            Some("random") => loop {
                std::hint::black_box(wasi_random::random::get_random_bytes(24 << 20));
            },
            Some("random-small") => loop {
                std::hint::black_box(wasi_random::random::get_random_bytes(64 << 10));
            },
            Some("random-insecure") => loop {
                std::hint::black_box(wasi_random::insecure::get_insecure_random_bytes(24 << 20));
            },
            Some("clock") => loop {
                std::hint::black_box(std::time::SystemTime::now());
                std::hint::black_box(std::time::Instant::now());
            },
            Some("clock-read") => {
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let first = std::time::Instant::now();
                let mut x: u64 = 0;
                for _ in 0..1_000_000 {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                let frozen = std::time::Instant::now() == first;
                Quote {
                    price: wall.to_string(),
                    breakdown: vec![PriceLine {
                        item: "monotonic-frozen".into(),
                        amount: if frozen { "1" } else { "0" }.into(),
                    }],
                    refusal: None,
                }
            }
            Some("print") => {
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = out.write_all(b"out 0\nout 1\npartial");
                let _ = out.flush();
                let _ = std::io::stderr().write_all(b"err line\n");
                ok("1".into())
            }
            Some("print-flood") => {
                use std::io::Write;
                let mut out = std::io::stdout();
                for i in 0..5000 {
                    let _ = writeln!(out, "{i}");
                }
                let _ = out.flush();
                ok("1".into())
            }
            Some("stdout") => write_forever(std::io::stdout()),
            Some("stderr") => write_forever(std::io::stderr()),
            Some("exit") => std::process::exit(3),
            _ => ok("1".into()),
        }
    }
}

grid_policy_sdk::bindings::pricing::export_pricing_world!(Hostile with_types_in grid_policy_sdk::bindings::pricing);
