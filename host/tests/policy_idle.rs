//! An idle gateway does no periodic policy work: the watcher does not trigger itself on
//! its own reads, and the epoch clock stands still while no policy code runs.

mod support;

use std::sync::Arc;
use std::time::Duration;

use grid_gateway::policy::{Isolation, PolicySet, WatchConfig, World, reload, spawn_watcher};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_policy_directory_is_not_rescanned_and_the_epoch_clock_stands_still() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pricing.wasm"), wasm(PRICING_LINEAR)).unwrap();
    std::fs::write(dir.path().join("pricing.settings.json"), "{}").unwrap();
    std::fs::write(dir.path().join("payee.settings.json"), "{}").unwrap();
    let set = Arc::new(PolicySet::new(engine(Isolation::default())));
    reload(&set, Some(dir.path())).await;
    assert!(set.current(World::Pricing).is_some());
    let watcher = spawn_watcher(set.clone(), dir.path().to_owned(), WatchConfig::default());
    // Let the watcher settle, then watch it idle for two poll intervals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = set.engine().metrics();
    let (rescans, ticks) = (metrics.rescans.get(), set.engine().epoch_ticks());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let rescans = metrics.rescans.get() - rescans;
    let ticks = set.engine().epoch_ticks() - ticks;
    println!("idle for 4 s: {rescans} rescans, {ticks} epoch ticks");
    // The periodic rescan (every 2 s) may run twice; anything more is self-triggering.
    assert!(
        rescans <= 2,
        "{rescans} rescans of an idle directory in 4 s"
    );
    assert_eq!(ticks, 0, "the epoch clock ticked with no policy running");
    watcher.stop().await;
}
