//! Hostile and broken policies: each yields a clean, typed error (no panic, no hang), and
//! the runtime keeps serving other evaluations — on the same policy and on others.

mod support;

use std::sync::Arc;

use grid_gateway::policy::{EvalError, Isolation, PolicySource, World};
use grid_policy_sdk::prelude::*;
use support::*;

fn request(mode: &str) -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            gpu_model: Some(mode.into()),
            ..Default::default()
        },
        duration_secs: 3600,
        payment: Amount::from(1000),
        order: None,
    }
}

fn price(policy: &grid_gateway::policy::CompiledPolicy, mode: &str) -> Result<String, EvalError> {
    policy
        .quote(&request(mode), &node())
        .map(|q| q.price.to_string())
}

#[test]
fn an_infinite_loop_is_stopped_by_the_deadline_and_the_policy_keeps_serving() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    assert!(matches!(
        price(&policy, "loop"),
        Err(EvalError::Deadline(_))
    ));
    assert_eq!(price(&policy, "fine").unwrap(), "1");
    assert_eq!(engine.metrics().trap_count("pricing", "deadline"), 1);
}

#[test]
fn a_memory_bomb_is_stopped_by_the_memory_cap() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "oom").unwrap_err();
    assert!(
        matches!(err, EvalError::Memory(limit) if limit == 16 << 20),
        "{err:?}"
    );
    assert_eq!(price(&policy, "fine").unwrap(), "1");
    assert_eq!(engine.metrics().trap_count("pricing", "memory"), 1);
}

#[test]
fn a_world_can_have_its_own_memory_cap_under_the_node_wide_maximum() {
    let limits = grid_gateway::policy::RuntimeLimits {
        memory_bytes_by_world: [(World::Pricing, 32 << 20)].into(),
        max_memory_bytes: 32 << 20,
        ..test_limits(Isolation::default())
    };
    let engine = grid_gateway::policy::PolicyEngine::builder()
        .limits(limits.clone())
        .build()
        .unwrap();
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "oom").unwrap_err();
    assert!(
        matches!(err, EvalError::Memory(limit) if limit == 32 << 20),
        "{err:?}"
    );
    assert_eq!(price(&policy, "fine").unwrap(), "1");
    // Above the node-wide maximum, the engine is not built.
    let over = grid_gateway::policy::RuntimeLimits {
        max_memory_bytes: 16 << 20,
        ..limits
    };
    assert!(
        grid_gateway::policy::PolicyEngine::builder()
            .limits(over)
            .build()
            .is_err()
    );
}

#[test]
fn a_panic_is_a_trap_not_a_crash() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "trap").unwrap_err();
    assert!(matches!(err, EvalError::Trap(_)), "{err:?}");
    assert_eq!(price(&policy, "fine").unwrap(), "1");
    assert_eq!(engine.metrics().trap_count("pricing", "other"), 1);
}

#[test]
fn a_policy_cannot_sleep_past_its_deadline() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "sleep").unwrap_err();
    assert!(
        matches!(&err, EvalError::Trap(m) if m.contains("may not block")),
        "{err:?}"
    );
    assert_eq!(price(&policy, "fine").unwrap(), "1");
}

#[test]
fn an_answer_aliasing_one_string_many_times_is_refused_not_copied() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "alias").unwrap_err();
    assert!(
        matches!(&err, EvalError::Trap(m) if m.contains("too much data")),
        "{err:?}"
    );
    assert_eq!(price(&policy, "fine").unwrap(), "1");
}

#[test]
fn a_garbage_answer_is_an_invalid_output() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let err = price(&policy, "garbage").unwrap_err();
    assert!(
        matches!(&err, EvalError::InvalidOutput(m) if m.contains("price")),
        "{err:?}"
    );
    assert_eq!(
        engine
            .metrics()
            .evaluation_count("pricing", "hostile_policy.wasm", "invalid_output"),
        1
    );
}

#[test]
fn a_log_flood_is_bounded_and_the_answer_still_arrives() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    assert_eq!(price(&policy, "log-flood").unwrap(), "1");
    let kept = u64::from(grid_gateway::policy::RuntimeLimits::default().log_lines_per_evaluation);
    assert_eq!(engine.metrics().log_lines_dropped("pricing"), 10_000 - kept);
}

#[test]
fn stdout_and_stderr_lines_go_to_the_policy_log_under_its_budget() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The only subscriber of this test binary: the other tests log into it too, which
    // does not matter for what is asserted.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("policy=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    assert_eq!(price(&policy, "print").unwrap(), "1");
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let line_of = |text: &str| {
        log.lines()
            .find(|l| l.contains(&format!(" policy: {text} ")))
            .unwrap_or_else(|| panic!("no policy log line {text:?}: {log}"))
            .to_owned()
    };
    for (text, level, stream) in [
        ("out 0", "INFO", "stdout"),
        ("out 1", "INFO", "stdout"),
        // Unfinished when the evaluation ended: logged then.
        ("partial", "INFO", "stdout"),
        ("err line", "WARN", "stderr"),
    ] {
        let line = line_of(text);
        assert!(line.contains(level), "{line}");
        assert!(line.contains(&format!("stream=\"{stream}\"")), "{line}");
        assert!(line.contains("policy=\"hostile_policy.wasm\""), "{line}");
    }

    // Printed lines share host.log's per-evaluation budget.
    assert_eq!(price(&policy, "print-flood").unwrap(), "1");
    let kept = u64::from(grid_gateway::policy::RuntimeLimits::default().log_lines_per_evaluation);
    assert_eq!(engine.metrics().log_lines_dropped("pricing"), 5000 - kept);
}

/// Captures the log lines of the process.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_component_of_another_world_is_refused_at_load() {
    let engine = engine(Isolation::default());
    let err = engine
        .load(
            World::Pricing,
            "payee-as-pricing",
            PolicySource::File(PAYEE_WALLETS.into()),
            &wasm(PAYEE_WALLETS),
            "",
        )
        .err()
        .expect("a payee component is not a pricing policy");
    assert_eq!(err.code(), "wrong_world");
    assert!(
        err.to_string().contains("grid:policy/pricing@0.1.0"),
        "{err}"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused_at_load() {
    let engine = engine(Isolation::default());
    for bytes in [
        b"not wasm at all".to_vec(),
        b"\0asm\x01\0\0\0".to_vec(),
        wasm(PRICING_LINEAR)[..1000].to_vec(),
    ] {
        let err = engine
            .load(World::Pricing, "junk", PolicySource::Builtin, &bytes, "")
            .err()
            .expect("junk must be refused");
        assert_eq!(err.code(), "invalid_component", "{err}");
    }
}

#[test]
fn settings_the_policy_rejects_and_a_validator_that_loops_are_refused() {
    let engine = engine(Isolation::default());
    let err = engine
        .load(
            World::Pricing,
            "hostile",
            PolicySource::Builtin,
            &wasm(HOSTILE),
            r#"{"validate":"reject"}"#,
        )
        .err()
        .unwrap();
    assert_eq!(err.code(), "settings_rejected");
    assert!(err.to_string().contains("rejected on purpose"), "{err}");
    let err = engine
        .load(
            World::Pricing,
            "hostile",
            PolicySource::Builtin,
            &wasm(HOSTILE),
            r#"{"validate":"loop"}"#,
        )
        .err()
        .unwrap();
    assert_eq!(err.code(), "settings_evaluation_failed");
    assert!(err.to_string().contains("deadline"), "{err}");
}

#[test]
fn pooled_instances_are_reused_until_a_failure_or_max_uses() {
    let engine = engine(Isolation::Pooled { max_uses: 3 });
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    // One instance serves evaluations 1, 2, 3, then is replaced.
    let counts: Vec<String> = (0..5).map(|_| price(&policy, "count").unwrap()).collect();
    assert_eq!(counts, ["1", "2", "3", "1", "2"]);
    // A trap discards the instance: the next evaluation starts on a clean one.
    assert!(price(&policy, "trap").is_err());
    assert_eq!(price(&policy, "count").unwrap(), "1");
}

#[test]
fn fresh_isolation_never_shares_an_instance() {
    let engine = engine(Isolation::Fresh);
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    for _ in 0..3 {
        assert_eq!(price(&policy, "count").unwrap(), "1");
    }
}

#[test]
fn concurrent_failures_never_reach_other_evaluations() {
    let engine = engine(Isolation::default());
    let hostile = Arc::new(load(&engine, World::Pricing, HOSTILE, ""));
    let linear = Arc::new(load(&engine, World::Pricing, PRICING_LINEAR, ""));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (hostile, linear) = (hostile.clone(), linear.clone());
            std::thread::spawn(move || {
                for i in 0..30 {
                    let mode = ["trap", "oom", "fine", "garbage", "loop"][(t + i) % 5];
                    let result = price(&hostile, mode);
                    match mode {
                        "fine" => assert_eq!(result.unwrap(), "1"),
                        _ => assert!(result.is_err(), "{mode} must fail"),
                    }
                    // The well-behaved policy on the same engine is unaffected.
                    let quote = linear.quote(&request("nvidia-a100"), &node()).unwrap();
                    assert!(!quote.price.is_zero());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs a hostile WASI mode and checks it is refused within the deadline plus a generous
/// margin for a debug build (the measured time is printed), then that the same policy
/// serves the next evaluation. Returns the refusal.
fn refused_in_time(mode: &str) -> EvalError {
    refused_in_time_on(&engine(Isolation::default()), mode)
}

fn refused_in_time_on(engine: &grid_gateway::policy::PolicyEngine, mode: &str) -> EvalError {
    let policy = load(engine, World::Pricing, HOSTILE, "");
    let deadline = engine.limits().deadline;
    let started = std::time::Instant::now();
    let err = price(&policy, mode).expect_err("a hostile WASI loop must be refused");
    let took = started.elapsed();
    println!("{mode}: refused after {took:?} (deadline {deadline:?}): {err}");
    assert!(
        took < deadline + std::time::Duration::from_millis(500),
        "{mode} ran {took:?}, past its {deadline:?} deadline"
    );
    assert_eq!(
        price(&policy, "fine").unwrap(),
        "1",
        "{mode}: next evaluation"
    );
    err
}

#[test]
fn wasi_random_asked_for_24_mib_at_a_time_is_cut_off() {
    for mode in ["random", "random-insecure"] {
        let err = refused_in_time(mode);
        assert!(
            matches!(&err, EvalError::Deadline(_))
                || matches!(&err, EvalError::Trap(m) if m.contains("wasi:random")),
            "{mode}: {err:?}"
        );
    }
}

#[test]
fn wasi_random_within_the_per_call_cap_is_held_to_a_per_evaluation_budget() {
    // A budget a debug build reaches well within the deadline.
    let limits = grid_gateway::policy::RuntimeLimits {
        random_bytes_per_evaluation: 128 << 10,
        ..test_limits(Isolation::default())
    };
    let engine = grid_gateway::policy::PolicyEngine::builder()
        .limits(limits)
        .build()
        .unwrap();
    let err = refused_in_time_on(&engine, "random-small");
    assert!(
        matches!(&err, EvalError::Trap(m) if m.contains("in one evaluation")),
        "{err:?}"
    );
}

#[test]
fn wasi_clocks_read_in_a_loop_stop_at_the_deadline() {
    let err = refused_in_time("clock");
    assert!(matches!(err, EvalError::Deadline(_)), "{err:?}");
}

#[test]
fn wasi_stdout_and_stderr_written_in_a_loop_stop_at_the_deadline() {
    for mode in ["stdout", "stderr"] {
        let err = refused_in_time(mode);
        assert!(matches!(err, EvalError::Deadline(_)), "{mode}: {err:?}");
    }
}

/// A component importing each of `names` as an (empty) instance, and nothing else.
fn component_importing(names: &[&str]) -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    for name in names {
        imports.import(*name, ComponentTypeRef::Instance(0));
    }
    let mut component = Component::new();
    component.section(&types);
    component.section(&imports);
    component.finish()
}

#[test]
fn a_component_importing_wasi_http_or_sockets_is_refused_at_load_naming_the_import_and_flag() {
    let engine = engine(Isolation::default());
    let cases = [
        (
            "wasi:http/outgoing-handler@0.2.0",
            "--disable http --disable fetch-event",
        ),
        ("wasi:sockets/tcp@0.2.0", "--stub-wasi"),
        ("wasi:keyvalue/store@0.2.0-draft", "--stub-wasi"),
        ("wasi:clocks/wall-clock@0.3.0", "--stub-wasi"),
    ];
    for (import, flag) in cases {
        let wasm = component_importing(&["wasi:clocks/wall-clock@0.2.0", import]);
        let err = engine
            .load(World::Pricing, "net", PolicySource::Builtin, &wasm, "")
            .err()
            .unwrap_or_else(|| panic!("{import}: loaded"));
        assert_eq!(err.code(), "unsupported_imports", "{import}: {err}");
        let message = err.to_string();
        assert!(message.contains(&format!("`{import}`")), "{message}");
        assert!(message.contains(flag), "{message}");
        assert!(
            !message.contains("wall-clock@0.2.0"),
            "an allowed import is not named: {message}"
        );
    }
}

#[test]
fn wasi_clocks_show_the_evaluation_instant_frozen() {
    let engine = engine(Isolation::default());
    let policy = load(&engine, World::Pricing, HOSTILE, "");
    let call = grid_policy_sdk::Call::Quote {
        request: request("clock-read"),
        node: node(),
    };
    for now in [1_700_000_000, 1_800_000_000] {
        let grid_policy_sdk::Outcome::Quote(quote) =
            policy.evaluate_call(&call, Some(now)).unwrap()
        else {
            panic!("not a quote");
        };
        assert_eq!(
            quote.price.to_string(),
            now.to_string(),
            "the wall clock is the fixture's now"
        );
        assert_eq!(quote.breakdown.len(), 1);
        assert_eq!(
            quote.breakdown[0].amount.to_string(),
            "1",
            "monotonic clock frozen"
        );
    }
    // Without a fixed now, the wall clock is the host's.
    let before = grid_gateway::policy::unix_now();
    let seen: u64 = price(&policy, "clock-read").unwrap().parse().unwrap();
    assert!(seen >= before && seen <= grid_gateway::policy::unix_now());
}

#[test]
fn wasi_exit_is_a_clean_refusal() {
    let err = refused_in_time("exit");
    assert!(matches!(err, EvalError::Trap(_)), "{err:?}");
}
