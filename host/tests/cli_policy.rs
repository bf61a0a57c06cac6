//! `grid-gateway policy run|check|bench` as a policy author runs them: the real binary,
//! the reference policies' fixtures, and the error paths an author hits.

mod support;

use std::process::{Command, Output};

use support::*;

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(args)
        .output()
        .expect("run grid-gateway")
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_evaluates_each_reference_policy_on_its_fixtures() {
    for (policy, wasm) in [
        ("pricing-linear", PRICING_LINEAR),
        ("payee-wallets", PAYEE_WALLETS),
        ("authz-order-owner", AUTHZ_ORDER_OWNER),
    ] {
        let fixtures = fixtures_of(policy);
        let settings = fixtures.join("settings.json");
        let out = gateway(&[
            "policy",
            "run",
            "--policy",
            wasm,
            "--settings",
            settings.to_str().unwrap(),
            "--input",
            fixtures.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{policy}: {}", stderr(&out));
        let results = stdout_json(&out);
        let results = results.as_array().unwrap();
        assert!(results.len() >= 6, "{policy}");
        assert!(
            results.iter().all(|r| r["expect_matched"] == true),
            "{policy}: {results:?}"
        );
    }
}

#[test]
fn run_takes_a_deadline_longer_than_the_default_load_deadline() {
    // Large interpreted components (TypeScript, Python) need seconds on a slow machine;
    // the load (instantiation, validate-settings) gets at least the evaluation's deadline.
    let fixtures = fixtures_of("pricing-linear");
    let settings = fixtures.join("settings.json");
    let out = gateway(&[
        "policy",
        "run",
        "--deadline-ms",
        "2000",
        "--policy",
        PRICING_LINEAR,
        "--settings",
        settings.to_str().unwrap(),
        "--input",
        fixtures.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = stdout_json(&out);
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["expect_matched"] == true),
        "{results}"
    );
}

#[test]
fn run_on_one_fixture_prints_the_decision_and_defaults_to_the_builtin_policy() {
    let fixtures = fixtures_of("pricing-linear");
    let out = gateway(&[
        "policy",
        "run",
        "--world",
        "pricing",
        "--settings",
        fixtures.join("settings.json").to_str().unwrap(),
        "--input",
        fixtures
            .join("refuse-insufficient-payment.json")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = stdout_json(&out);
    assert_eq!(answer["price"], "165600");
    assert_eq!(answer["refusal"]["kind"], "insufficient_payment");
}

#[test]
fn run_fails_when_an_answer_differs_from_expect() {
    let fixtures = fixtures_of("pricing-linear");
    // Default settings price differently from the fixture's settings.
    let out = gateway(&[
        "policy",
        "run",
        "--input",
        fixtures
            .join("accept-cpu-memory-storage.json")
            .to_str()
            .unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did not give the expected answer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_refuses_a_fixture_for_another_world() {
    let payee_fixture = fixtures_of("payee-wallets").join("allow-configured-payee.json");
    let out = gateway(&[
        "policy",
        "run",
        "--world",
        "pricing",
        "--input",
        payee_fixture.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("calls the payee world"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_reports_a_malformed_fixture_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"call":{"quote":{"request":{}}}}"#).unwrap();
    let out = gateway(&["policy", "run", "--input", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bad.json") && err.contains("not a valid fixture"),
        "{err}"
    );
}

#[test]
fn check_names_rejected_settings_once() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.json");
    std::fs::write(&settings, r#"{"no_such_key": 1}"#).unwrap();
    let out = gateway(&[
        "policy",
        "check",
        "--world",
        "pricing",
        "--settings",
        settings.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(
        err.matches("rejected its settings").count(),
        1,
        "the cause is printed once: {err}"
    );
    assert!(err.contains("cannot load the policy"), "{err}");
}

#[test]
fn run_reports_a_policy_that_fails_to_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("loop.json");
    let mut f: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_of("pricing-linear").join("accept-gpu-by-model.json"))
            .unwrap(),
    )
    .unwrap();
    f["call"]["quote"]["request"]["resources"]["gpu_model"] = "loop".into();
    f.as_object_mut().unwrap().remove("expect");
    std::fs::write(&fixture, f.to_string()).unwrap();
    let out = gateway(&[
        "policy",
        "run",
        "--policy",
        HOSTILE,
        "--deadline-ms",
        "20",
        "--input",
        fixture.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("deadline"), "{}", stderr(&out));
}

#[test]
fn check_validates_without_evaluating_and_names_what_is_wrong() {
    let ok = gateway(&[
        "policy",
        "check",
        "--world",
        "pricing",
        "--policy",
        PRICING_LINEAR,
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let report = stdout_json(&ok);
    assert_eq!(report["world"], "pricing");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);

    let wrong = gateway(&[
        "policy",
        "check",
        "--world",
        "pricing",
        "--policy",
        AUTHZ_ORDER_OWNER,
    ]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("does not implement the pricing world"),
        "{}",
        stderr(&wrong)
    );

    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("s.json");
    std::fs::write(
        &settings,
        r#"{"payees":["0x0000000000000000000000000000000000000000"]}"#,
    )
    .unwrap();
    let rejected = gateway(&[
        "policy",
        "check",
        "--world",
        "payee",
        "--policy",
        PAYEE_WALLETS,
        "--settings",
        settings.to_str().unwrap(),
    ]);
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("zero address"),
        "{}",
        stderr(&rejected)
    );

    let missing = gateway(&[
        "policy",
        "check",
        "--world",
        "payee",
        "--policy",
        "/nonexistent/p.wasm",
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent/p.wasm"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn bench_reports_a_latency_distribution() {
    let fixtures = fixtures_of("authz-order-owner");
    let out = gateway(&[
        "policy",
        "bench",
        "--settings",
        fixtures.join("settings.json").to_str().unwrap(),
        "--input",
        fixtures.join("request-allow.json").to_str().unwrap(),
        "--iterations",
        "200",
        "--warmup",
        "10",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["iterations"], 200);
    let (p50, p99, min, max) = (
        report["p50_us"].as_f64().unwrap(),
        report["p99_us"].as_f64().unwrap(),
        report["min_us"].as_f64().unwrap(),
        report["max_us"].as_f64().unwrap(),
    );
    assert!(
        min > 0.0 && min <= p50 && p50 <= p99 && p99 <= max,
        "{report}"
    );
}

#[test]
fn bench_with_a_compile_cache_compiles_once_then_loads_from_it() {
    let fixtures = fixtures_of("authz-order-owner");
    let cache = tempfile::tempdir().unwrap();
    let bench = || {
        let out = gateway(&[
            "policy",
            "bench",
            "--compile-cache",
            cache.path().to_str().unwrap(),
            "--settings",
            fixtures.join("settings.json").to_str().unwrap(),
            "--input",
            fixtures.join("request-allow.json").to_str().unwrap(),
            "--iterations",
            "10",
            "--warmup",
            "1",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout_json(&out)
    };
    let cwasm = || {
        std::fs::read_dir(cache.path())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                    .count()
            })
            .unwrap_or(0)
    };

    let first = bench();
    assert_eq!(first["loaded_from"], "compiled", "{first}");
    assert!(first["load_ms"].as_f64().unwrap() > 0.0, "{first}");
    assert_eq!(
        cwasm(),
        1,
        "the compiled component is kept in the directory"
    );

    let second = bench();
    assert_eq!(second["loaded_from"], "compile_cache", "{second}");
    assert!(second["load_ms"].as_f64().unwrap() > 0.0, "{second}");
    assert_eq!(cwasm(), 1);

    // Without the option nothing is read from (or written to) a cache.
    let plain = gateway(&[
        "policy",
        "bench",
        "--settings",
        fixtures.join("settings.json").to_str().unwrap(),
        "--input",
        fixtures.join("request-allow.json").to_str().unwrap(),
        "--iterations",
        "10",
    ]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(stdout_json(&plain)["loaded_from"], "compiled");
}
