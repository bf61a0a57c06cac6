//! Hot reload: file changes switch decisions; bad files keep the last good version and
//! report why; evaluations running across reloads never fail.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use grid_gateway::policy::{
    Isolation, PolicySet, PolicySource, ReloadOutcome, WatchConfig, World, reload, spawn_watcher,
};
use grid_policy_sdk::prelude::*;
use support::*;

fn request() -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            ..Default::default()
        },
        duration_secs: 100,
        payment: Amount::MAX,
        order: None,
    }
}

/// pricing-linear settings charging `cpu` per core-second and nothing else: the price of
/// `request()` is then 100 × cpu.
fn cpu_only(cpu: u64) -> String {
    format!(
        r#"{{"cpu_core_per_second":"{cpu}","memory_gib_per_second":"0","storage_gib_per_second":"0"}}"#
    )
}

fn current_price(set: &PolicySet) -> String {
    set.current(World::Pricing)
        .unwrap()
        .quote(&request(), &node())
        .unwrap()
        .price
        .to_string()
}

fn new_set() -> Arc<PolicySet> {
    Arc::new(PolicySet::new(engine(Isolation::default())))
}

fn outcome(outcomes: &[(World, ReloadOutcome)], world: World) -> ReloadOutcome {
    outcomes
        .iter()
        .find(|(w, _)| *w == world)
        .unwrap()
        .1
        .clone()
}

/// Waits until `f` holds, failing the test after a generous bound (not a timing assertion:
/// the bound only keeps a broken watcher from hanging the suite).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes a file atomically (temp file + rename), as deploy tools do.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_directory_serves_the_builtin_policies() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    let outcomes = reload(&set, Some(dir.path())).await;
    assert!(
        outcomes.iter().all(|(_, o)| *o == ReloadOutcome::Loaded),
        "{outcomes:?}"
    );
    assert!(set.all_loaded());
    let status = set.status();
    assert_eq!(
        status[0].current.as_ref().unwrap().name,
        "builtin:pricing-linear"
    );
    assert_eq!(
        status[0].current.as_ref().unwrap().source,
        PolicySource::Builtin
    );
    // A second scan with nothing changed compiles nothing.
    let outcomes = reload(&set, Some(dir.path())).await;
    assert!(
        outcomes.iter().all(|(_, o)| *o == ReloadOutcome::Unchanged),
        "{outcomes:?}"
    );
    assert_eq!(set.engine().metrics().reload_count("pricing", "ok"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_settings_or_the_component_switches_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(3)).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(current_price(&set), "300");

    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(5)).unwrap();
    assert_eq!(
        outcome(&reload(&set, Some(dir.path())).await, World::Pricing),
        ReloadOutcome::Loaded
    );
    assert_eq!(current_price(&set), "500");

    // A component of the operator's replaces the built-in one.
    std::fs::copy(HOSTILE, dir.path().join("pricing.wasm")).unwrap();
    std::fs::write(dir.path().join("pricing.settings.json"), "").unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(current_price(&set), "1");
    assert_eq!(
        set.status()[0].current.as_ref().unwrap().name,
        "pricing.wasm"
    );

    // Removing it falls back to the built-in.
    std::fs::remove_file(dir.path().join("pricing.wasm")).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(
        set.status()[0].current.as_ref().unwrap().name,
        "builtin:pricing-linear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_wrong_world_file_keeps_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(7)).unwrap();
    reload(&set, Some(dir.path())).await;
    let good_sha = set.current(World::Pricing).unwrap().info().sha256.clone();

    std::fs::write(dir.path().join("pricing.wasm"), b"\0asm garbage").unwrap();
    let o = outcome(&reload(&set, Some(dir.path())).await, World::Pricing);
    assert!(matches!(o, ReloadOutcome::Failed(_)), "{o:?}");
    assert_eq!(
        current_price(&set),
        "700",
        "the last good version keeps serving"
    );
    assert_eq!(set.current(World::Pricing).unwrap().info().sha256, good_sha);
    let error = set.status()[0].last_error.clone().unwrap();
    assert_eq!(error.code, "invalid_component");

    // The same bad file is not recompiled on every scan.
    assert_eq!(
        outcome(&reload(&set, Some(dir.path())).await, World::Pricing),
        ReloadOutcome::Unchanged
    );
    assert_eq!(
        set.engine()
            .metrics()
            .reload_count("pricing", "invalid_component"),
        1
    );

    std::fs::copy(PAYEE_WALLETS, dir.path().join("pricing.wasm")).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(
        set.status()[0].last_error.clone().unwrap().code,
        "wrong_world"
    );
    assert_eq!(current_price(&set), "700");

    // Settings the policy rejects are reported the same way.
    std::fs::remove_file(dir.path().join("pricing.wasm")).unwrap();
    std::fs::write(
        dir.path().join("pricing.settings.json"),
        r#"{"min_duration_secs":9,"max_duration_secs":1}"#,
    )
    .unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(
        set.status()[0].last_error.clone().unwrap().code,
        "settings_rejected"
    );
    assert_eq!(current_price(&set), "700");

    // A good file again clears the error.
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(8)).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(current_price(&set), "800");
    assert!(set.status()[0].last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_holding_a_version_finishes_on_it_after_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(1)).unwrap();
    reload(&set, Some(dir.path())).await;
    let in_flight = set.current(World::Pricing).unwrap();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(2)).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(
        in_flight
            .quote(&request(), &node())
            .unwrap()
            .price
            .to_string(),
        "100"
    );
    assert_eq!(current_price(&set), "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_sees_writes_atomic_renames_and_configmap_symlink_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    reload(&set, Some(dir.path())).await;
    let config = WatchConfig {
        debounce: Duration::from_millis(20),
        poll_interval: Duration::from_secs(3600),
    };
    let watcher = spawn_watcher(set.clone(), dir.path().to_owned(), config);

    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(11)).unwrap();
    eventually("a plain write", || current_price(&set) == "1100").await;

    write_atomic(
        &dir.path().join("pricing.settings.json"),
        cpu_only(12).as_bytes(),
    );
    eventually("an atomic rename", || current_price(&set) == "1200").await;

    // Kubernetes mounts a ConfigMap as `name -> ..data/name` with `..data` a symlink to a
    // timestamped directory, swapped atomically on update.
    std::fs::remove_file(dir.path().join("pricing.settings.json")).unwrap();
    let v1 = dir.path().join("..2026_v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("pricing.settings.json"), cpu_only(13)).unwrap();
    std::os::unix::fs::symlink("..2026_v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink(
        "..data/pricing.settings.json",
        dir.path().join("pricing.settings.json"),
    )
    .unwrap();
    eventually("a ConfigMap mount", || current_price(&set) == "1300").await;

    let v2 = dir.path().join("..2026_v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("pricing.settings.json"), cpu_only(14)).unwrap();
    std::os::unix::fs::symlink("..2026_v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    eventually("a ConfigMap update", || current_price(&set) == "1400").await;

    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_reloads_when_no_events_arrive() {
    // The directory does not exist yet, so no filesystem watch can be set up: only the
    // periodic rescan can notice it appearing.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("policies");
    let set = new_set();
    reload(&set, Some(&dir)).await;
    assert!(set.all_loaded(), "a missing directory means built-ins");
    let config = WatchConfig {
        debounce: Duration::from_millis(20),
        poll_interval: Duration::from_millis(100),
    };
    let watcher = spawn_watcher(set.clone(), dir.clone(), config);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("pricing.settings.json"), cpu_only(21)).unwrap();
    eventually("the poll to pick the file up", || {
        current_price(&set) == "2100"
    })
    .await;
    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evaluations_across_repeated_reloads_all_succeed_on_the_old_or_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(1)).unwrap();
    reload(&set, Some(dir.path())).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut evaluators = Vec::new();
    for _ in 0..3 {
        let (set, stop) = (set.clone(), stop.clone());
        evaluators.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            let mut count = 0u32;
            while !stop.load(Ordering::Relaxed) || count == 0 {
                let quote = set
                    .quote(request(), node())
                    .await
                    .expect("no evaluation may fail during reloads");
                let price = quote.price.to_string();
                assert!(
                    price == "100" || price == "200" || price == "1",
                    "unexpected price {price}"
                );
                seen.insert(price);
                count += 1;
                tokio::task::yield_now().await;
            }
            (count, seen)
        }));
    }
    // Alternate between two settings and two components while they run.
    for i in 0..12 {
        match i % 3 {
            0 => std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(2)).unwrap(),
            1 => {
                std::fs::copy(HOSTILE, dir.path().join("pricing.wasm")).unwrap();
                std::fs::write(dir.path().join("pricing.settings.json"), "").unwrap();
            }
            _ => {
                std::fs::remove_file(dir.path().join("pricing.wasm")).unwrap();
                std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(1)).unwrap();
            }
        }
        let o = outcome(&reload(&set, Some(dir.path())).await, World::Pricing);
        assert_eq!(o, ReloadOutcome::Loaded);
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for e in evaluators {
        let (count, seen) = e.await.unwrap();
        total += count;
        assert!(!seen.is_empty());
    }
    assert!(total > 0);
    assert_eq!(set.engine().metrics().reload_count("pricing", "ok"), 13);
}

fn cached_engine(cache: &Path) -> grid_gateway::policy::PolicyEngine {
    grid_gateway::policy::PolicyEngine::builder()
        .limits(test_limits(Isolation::default()))
        .compile_cache(cache.to_path_buf(), 1 << 30)
        .build()
        .unwrap()
}

fn load_linear(engine: &grid_gateway::policy::PolicyEngine, cpu: u64) -> String {
    engine
        .load(
            World::Pricing,
            "linear",
            PolicySource::Builtin,
            &wasm(PRICING_LINEAR),
            &cpu_only(cpu),
        )
        .unwrap()
        .quote(&request(), &node())
        .unwrap()
        .price
        .to_string()
}

fn cache_files(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_restart_or_a_settings_change_loads_the_compiled_component_from_disk() {
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("policy-cache");

    let first = cached_engine(&cache);
    assert_eq!(load_linear(&first, 3), "300");
    assert_eq!(first.metrics().compilations.get(), 1);
    // A settings-only change compiles nothing.
    assert_eq!(load_linear(&first, 5), "500");
    assert_eq!(first.metrics().compilations.get(), 1);
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(&sha256_of(PRICING_LINEAR)) && name.ends_with(".cwasm"));
    drop(first);

    // A restart (a new engine, same data_dir) loads it from disk instead of compiling.
    let restarted = cached_engine(&cache);
    assert_eq!(load_linear(&restarted, 3), "300");
    assert_eq!(restarted.metrics().compilations.get(), 0);
    assert_eq!(restarted.metrics().compile_cache_loads.get(), 1);
}

fn sha256_of(path: &str) -> String {
    grid_gateway::policy::sha256_hex(&wasm(path))
}

#[test]
fn a_corrupt_or_truncated_cache_file_is_ignored_and_compiled_again() {
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("policy-cache");
    load_linear(&cached_engine(&cache), 3);
    let file = cache_files(&cache).pop().unwrap();
    let good = std::fs::read(&file).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let truncated = good[..good.len() / 3].to_vec();
    for (what, bytes) in [
        ("flipped", flipped),
        ("truncated", truncated),
        ("empty", vec![]),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        let engine = cached_engine(&cache);
        assert_eq!(load_linear(&engine, 3), "300", "{what}");
        assert_eq!(
            engine.metrics().compilations.get(),
            1,
            "{what}: compiled again"
        );
        assert_eq!(engine.metrics().compile_cache_loads.get(), 0, "{what}");
        assert_eq!(std::fs::read(&file).unwrap(), good, "{what}: rewritten");
    }
}

#[test]
fn the_cache_directory_is_held_to_its_byte_budget_oldest_first() {
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("policy-cache");
    let one = {
        load_linear(&cached_engine(&cache), 3);
        std::fs::metadata(cache_files(&cache)[0].clone())
            .unwrap()
            .len()
    };
    // Room for one compiled component only (the hostile one is smaller than pricing-linear):
    // the second evicts the first.
    let engine = grid_gateway::policy::PolicyEngine::builder()
        .limits(test_limits(Isolation::default()))
        .compile_cache(cache.clone(), one)
        .build()
        .unwrap();
    load(&engine, World::Pricing, HOSTILE, "");
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&sha256_of(HOSTILE)), "{name}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_reload_compiles_off_the_runtime_while_the_old_version_serves() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set();
    std::fs::write(dir.path().join("pricing.settings.json"), cpu_only(3)).unwrap();
    reload(&set, Some(dir.path())).await;
    assert_eq!(current_price(&set), "300");
    let compiled_before = set.engine().metrics().compilations.get();

    // A component not compiled before: the reload must compile it.
    std::fs::copy(HOSTILE, dir.path().join("pricing.wasm")).unwrap();
    std::fs::write(dir.path().join("pricing.settings.json"), "").unwrap();
    let reloading = tokio::spawn({
        let (set, dir) = (set.clone(), dir.path().to_path_buf());
        async move { reload(&set, Some(&dir)).await }
    });
    // On this one-thread runtime the reload task only gives the thread back once it waits
    // for the compile on a blocking thread; a compile on the runtime would finish first.
    let mut served_while_compiling = 0;
    while !reloading.is_finished() {
        if set.engine().metrics().compilations.get() > compiled_before {
            assert_eq!(current_price(&set), "300", "the old version serves");
            served_while_compiling += 1;
        }
        tokio::task::yield_now().await;
    }
    reloading.await.unwrap();
    assert!(served_while_compiling > 0);
    assert_eq!(current_price(&set), "1");
}

/// Not a test: prints how long a first compile and a load from the on-disk cache take
/// (numbers in host/benches/README.md). `GRID_BENCH_COMPONENT=path.wasm` picks the
/// component (a pricing policy accepting empty settings; default pricing-linear):
/// `cargo test -p grid-gateway --test policy_reload measure_ -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_compile_and_disk_cache_load() {
    let path = std::env::var("GRID_BENCH_COMPONENT").unwrap_or_else(|_| PRICING_LINEAR.into());
    let bytes = wasm(&path);
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("policy-cache");
    let timed = |engine: &grid_gateway::policy::PolicyEngine| {
        let started = Instant::now();
        engine
            .load(World::Pricing, "m", PolicySource::Builtin, &bytes, "")
            .unwrap();
        started.elapsed()
    };
    let compile = timed(&cached_engine(&cache));
    let mut loads: Vec<Duration> = (0..5).map(|_| timed(&cached_engine(&cache))).collect();
    loads.sort();
    let file = cache_files(&cache).pop().unwrap();
    println!(
        "{path}: {} bytes; compile+validate {compile:?}; disk-cache load+validate median of 5 {:?} (min {:?}); cache file {} bytes",
        bytes.len(),
        loads[2],
        loads[0],
        std::fs::metadata(file).unwrap().len()
    );
}
