//! Policy runtime benchmarks: one evaluation per world, the isolation modes, the cost of
//! shadow mode and of recording, compiling a component, and a reload (file written → new version serving).
//!
//! Run: `cargo bench -p grid-gateway --bench policy_eval`. Numbers and how to read them:
//! `host/benches/README.md`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use grid_gateway::policy::{
    CompiledPolicy, Isolation, PolicyEngine, PolicySet, PolicySource, RuntimeLimits, ShadowConfig,
    WatchConfig, World, reload, spawn_watcher,
};
use grid_policy_sdk::fixture::{Fixture, load_dir};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn engine(isolation: Isolation) -> PolicyEngine {
    PolicyEngine::builder()
        .limits(RuntimeLimits {
            isolation,
            ..RuntimeLimits::default()
        })
        .build()
        .unwrap()
}

/// A reference policy loaded with its fixtures' settings, and the named fixture.
fn policy_and_fixture(
    engine: &PolicyEngine,
    world: World,
    wasm: &str,
    policy: &str,
    fixture: &str,
) -> (CompiledPolicy, Fixture) {
    let (settings, fixtures) =
        load_dir(&workspace().join("policies").join(policy).join("fixtures")).unwrap();
    let fixture = fixtures.into_iter().find(|(n, _)| n == fixture).unwrap().1;
    let bytes = std::fs::read(wasm).unwrap();
    let compiled = engine
        .load(world, policy, PolicySource::Builtin, &bytes, &settings)
        .unwrap();
    (compiled, fixture)
}

fn cases() -> [(
    &'static str,
    World,
    &'static str,
    &'static str,
    &'static str,
); 4] {
    [
        (
            "pricing/quote",
            World::Pricing,
            env!("GRID_WASM_PRICING_LINEAR"),
            "pricing-linear",
            "accept-gpu-by-model.json",
        ),
        (
            "payee/check",
            World::Payee,
            env!("GRID_WASM_PAYEE_WALLETS"),
            "payee-wallets",
            "allow-configured-payee.json",
        ),
        (
            "authorization/authorize_session",
            World::Authorization,
            env!("GRID_WASM_AUTHZ_ORDER_OWNER"),
            "authz-order-owner",
            "session-grant-capped-by-lifetime.json",
        ),
        (
            "authorization/authorize_request",
            World::Authorization,
            env!("GRID_WASM_AUTHZ_ORDER_OWNER"),
            "authz-order-owner",
            "request-allow.json",
        ),
    ]
}

fn evaluation(c: &mut Criterion) {
    for (isolation_name, isolation) in [
        ("pooled", Isolation::default()),
        ("fresh", Isolation::Fresh),
    ] {
        let engine = engine(isolation);
        let mut group = c.benchmark_group(format!("evaluate_{isolation_name}"));
        for (name, world, wasm, policy, fixture) in cases() {
            let (compiled, fixture) = policy_and_fixture(&engine, world, wasm, policy, fixture);
            group.bench_function(name, |b| {
                b.iter(|| compiled.evaluate_call(&fixture.call, fixture.now).unwrap());
            });
        }
        group.finish();
    }
}

/// The async entry point the gateway's handlers use (block_in_place on a multi-thread
/// runtime), to show what it adds over a direct call.
fn async_entry(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let set = Arc::new(PolicySet::new(engine(Isolation::default())));
    runtime.block_on(reload(&set, None));
    let (_, fixture) = policy_and_fixture(
        set.engine(),
        World::Authorization,
        env!("GRID_WASM_AUTHZ_ORDER_OWNER"),
        "authz-order-owner",
        "request-allow.json",
    );
    let grid_policy_sdk::Call::AuthorizeRequest { request } = fixture.call else {
        unreachable!()
    };
    c.bench_function("policy_set/authorize_request_async", |b| {
        b.to_async(&runtime).iter(|| {
            let (set, request) = (set.clone(), request.clone());
            async move { set.authorize_request(request).await.unwrap() }
        });
    });
}

/// A quote through `PolicySet::quote` (the gateway's entry point), without and with
/// `[policy.recording]` on: what recording adds on the request path (the input's clone and
/// a queue hand-off; the writing is on its own thread).
fn recording(c: &mut Criterion) {
    use grid_gateway::policy::recording::{
        DropLabels, Recorder, RecordingConfig, RecordingMetrics,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_, fixture) = policy_and_fixture(
        &engine(Isolation::default()),
        World::Pricing,
        env!("GRID_WASM_PRICING_LINEAR"),
        "pricing-linear",
        "accept-cpu-memory-storage.json",
    );
    let grid_policy_sdk::Call::Quote { request, node } = fixture.call else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let metrics = RecordingMetrics::default();
    let recorder = Recorder::start(
        &RecordingConfig {
            enabled: true,
            dir: Some(dir.path().to_owned()),
            ..Default::default()
        },
        dir.path(),
        metrics.clone(),
    )
    .unwrap();
    for (name, recorder) in [("off", None), ("on", Some(recorder))] {
        let mut set = PolicySet::new(engine(Isolation::default()));
        if let Some(recorder) = recorder {
            set = set.with_recording(recorder);
        }
        let set = Arc::new(set);
        runtime.block_on(reload(&set, None));
        c.bench_function(&format!("policy_set/quote_async_recording_{name}"), |b| {
            b.to_async(&runtime).iter(|| {
                let (set, request, node) = (set.clone(), request.clone(), node.clone());
                async move { set.quote(request, node).await.unwrap() }
            });
        });
    }
    let dropped = metrics
        .dropped
        .get_or_create(&DropLabels {
            reason: "queue_full".into(),
        })
        .get();
    eprintln!("recording: {dropped} records dropped (queue full) during the benchmark");
}

/// The cost of shadow mode: a quote through `PolicySet` with no candidate, and with a
/// candidate (pricing-linear with other prices, so every quote is a kept disagreement,
/// the worst case); per-request authorization with a candidate sampled at rate 1 (the
/// serving thread copies the inputs and queues them; the candidate runs on the shadow
/// thread).
fn shadow(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("shadow");
    // A generous deadline: this group also runs in debug builds (`cargo test --bench`),
    // where one evaluation on a busy machine can pass the default 10 ms. The load deadline
    // must be at least the evaluation deadline (the builder refuses it otherwise).
    let engine = || {
        PolicyEngine::builder()
            .limits(RuntimeLimits {
                deadline: Duration::from_secs(1),
                load_deadline: Duration::from_secs(2),
                ..RuntimeLimits::default()
            })
            .build()
            .unwrap()
    };
    let (_, quote_fixture) = policy_and_fixture(
        &engine(),
        World::Pricing,
        env!("GRID_WASM_PRICING_LINEAR"),
        "pricing-linear",
        "accept-gpu-by-model.json",
    );
    let grid_policy_sdk::Call::Quote { request, node } = quote_fixture.call else {
        unreachable!()
    };
    let other_prices =
        r#"{"cpu_core_per_second":"7","memory_gib_per_second":"0","storage_gib_per_second":"0"}"#;
    for (name, with_candidate) in [
        ("quote_without_candidate", false),
        ("quote_with_candidate", true),
    ] {
        let set = Arc::new(PolicySet::new(engine()).with_lifecycle(
            ShadowConfig {
                keep_disagreements: 100,
                ..ShadowConfig::default()
            },
            3,
        ));
        runtime.block_on(reload(&set, None));
        if with_candidate {
            let bytes = std::fs::read(env!("GRID_WASM_PRICING_LINEAR")).unwrap();
            let candidate = set
                .engine()
                .load(
                    World::Pricing,
                    "candidate",
                    PolicySource::Builtin,
                    &bytes,
                    other_prices,
                )
                .unwrap();
            set.set_candidate(candidate, "bench");
        }
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let (set, request, node) = (set.clone(), request.clone(), node.clone());
                async move { set.quote(request, node).await.unwrap() }
            });
        });
    }
    let (_, request_fixture) = policy_and_fixture(
        &engine(),
        World::Authorization,
        env!("GRID_WASM_AUTHZ_ORDER_OWNER"),
        "authz-order-owner",
        "request-allow.json",
    );
    let grid_policy_sdk::Call::AuthorizeRequest { request } = request_fixture.call else {
        unreachable!()
    };
    for (name, rate) in [
        ("authorize_request_without_candidate", None),
        ("authorize_request_sampled_1.0", Some(1.0)),
        ("authorize_request_sampled_0.01", Some(0.01)),
    ] {
        let set = Arc::new(PolicySet::new(engine()).with_lifecycle(
            ShadowConfig {
                request_sample_rate: rate.unwrap_or(0.0),
                ..ShadowConfig::default()
            },
            3,
        ));
        runtime.block_on(reload(&set, None));
        if rate.is_some() {
            let bytes = std::fs::read(env!("GRID_WASM_AUTHZ_ORDER_OWNER")).unwrap();
            let candidate = set
                .engine()
                .load(
                    World::Authorization,
                    "candidate",
                    PolicySource::Builtin,
                    &bytes,
                    "",
                )
                .unwrap();
            set.set_candidate(candidate, "bench");
        }
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let (set, request) = (set.clone(), request.clone());
                async move { set.authorize_request(request).await.unwrap() }
            });
        });
        let counters = set.shadow_counters(World::Authorization);
        eprintln!(
            "{name}: shadow evaluations {}, dropped {}",
            counters.evaluations, counters.dropped
        );
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let bytes = std::fs::read(env!("GRID_WASM_PRICING_LINEAR")).unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    // A new engine per sample, so nothing is in the compile cache: what a new component
    // costs (Cranelift compile, linking, the world check, validate-settings).
    group.bench_function("pricing_linear_compile_and_validate", |b| {
        b.iter_batched(
            || engine(Isolation::default()),
            |engine| {
                engine
                    .load(World::Pricing, "p", PolicySource::Builtin, &bytes, "")
                    .unwrap()
            },
            criterion::BatchSize::PerIteration,
        );
    });
    // The same bytes again: the compiled component is reused (a settings-only change).
    let engine = engine(Isolation::default());
    engine
        .load(World::Pricing, "p", PolicySource::Builtin, &bytes, "")
        .unwrap();
    group.bench_function("pricing_linear_cached_load_and_validate", |b| {
        b.iter(|| {
            engine
                .load(World::Pricing, "p", PolicySource::Builtin, &bytes, "")
                .unwrap()
        });
    });
    group.finish();
}

/// Writes `file` with `bytes` and returns how long until the pricing policy in service
/// changed, polling every 200 µs.
fn time_until_swapped(set: &PolicySet, file: &Path, bytes: &[u8]) -> Duration {
    let before = set
        .current(World::Pricing)
        .map(|p| (p.info().sha256.clone(), p.info().settings_sha256.clone()));
    let started = Instant::now();
    std::fs::write(file, bytes).unwrap();
    loop {
        let now = set
            .current(World::Pricing)
            .map(|p| (p.info().sha256.clone(), p.info().settings_sha256.clone()));
        if now != before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "reload never happened"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// File written → new version serving, through the watcher (debounce included) as an
/// operator experiences it: a settings change (the compiled component is reused) and a
/// new component (compiled from scratch: a fresh engine per sample, so no cache).
fn reload_latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("reload");
    group.sample_size(10);

    let dir = tempfile::tempdir().unwrap();
    let set = Arc::new(PolicySet::new(engine(Isolation::default())));
    runtime.block_on(reload(&set, Some(dir.path())));
    let _watcher = runtime.block_on(async {
        spawn_watcher(set.clone(), dir.path().to_owned(), WatchConfig::default())
    });
    let settings = dir.path().join("pricing.settings.json");
    let mut n: u64 = 0;
    group.bench_function("settings_write_to_serving_via_watcher", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    n += 1;
                    time_until_swapped(
                        &set,
                        &settings,
                        format!(r#"{{"min_duration_secs":{n}}}"#).as_bytes(),
                    )
                })
                .sum()
        });
    });

    let hostile = std::fs::read(env!("GRID_WASM_HOSTILE")).unwrap();
    group.bench_function("component_write_to_serving_via_watcher", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    let dir = tempfile::tempdir().unwrap();
                    let set = Arc::new(PolicySet::new(engine(Isolation::default())));
                    runtime.block_on(reload(&set, Some(dir.path())));
                    let watcher = runtime.block_on(async {
                        spawn_watcher(set.clone(), dir.path().to_owned(), WatchConfig::default())
                    });
                    let took = time_until_swapped(&set, &dir.path().join("pricing.wasm"), &hostile);
                    runtime.block_on(watcher.stop());
                    took
                })
                .sum()
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    evaluation,
    async_entry,
    recording,
    shadow,
    compile,
    reload_latency
);
criterion_main!(benches);
