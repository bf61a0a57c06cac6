//! Policy lifecycle on real components: a candidate evaluated in shadow (never enforced,
//! its disagreements counted and kept), promotion, rollback, the bounded history, and
//! per-request sampling off the serving thread.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grid_gateway::policy::{
    Answer, Isolation, PolicySet, ReloadOutcome, ShadowConfig, World, reload,
};
use grid_policy_sdk::prelude::*;
use grid_policy_sdk::{Call, Outcome};
use support::*;

/// pricing-linear settings charging `cpu` per core-second and nothing else: the price of
/// `request(..)` is then 100 × cpu.
fn cpu_only(cpu: u64) -> String {
    format!(
        r#"{{"cpu_core_per_second":"{cpu}","memory_gib_per_second":"0","storage_gib_per_second":"0"}}"#
    )
}

fn request(payment: u64, gpu_model: Option<&str>) -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            gpu_model: gpu_model.map(str::to_owned),
            ..Default::default()
        },
        duration_secs: 100,
        payment: Amount::from(payment),
        order: None,
    }
}

fn set_with(shadow: ShadowConfig, keep_previous: usize) -> Arc<PolicySet> {
    Arc::new(PolicySet::new(engine(Isolation::default())).with_lifecycle(shadow, keep_previous))
}

fn linear(set: &PolicySet, cpu: u64) -> grid_gateway::policy::CompiledPolicy {
    load(set.engine(), World::Pricing, PRICING_LINEAR, &cpu_only(cpu))
}

async fn price(set: &PolicySet, payment: u64) -> (String, bool) {
    let quote = set.quote(request(payment, None), node()).await.unwrap();
    (quote.price.to_string(), quote.acceptable())
}

/// Waits until `f` holds, failing the test after a generous bound (not a timing assertion:
/// the bound only keeps a broken shadow thread from hanging the suite).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_quotes_count_and_keep_disagreements_and_never_change_the_live_answer() {
    let set = set_with(ShadowConfig::default(), 3);
    set.install(linear(&set, 1));
    let candidate = set.set_candidate(linear(&set, 2), "test");
    assert_eq!(
        set.status()[0].candidate.as_ref().map(|c| c.sha256.clone()),
        Some(candidate.sha256.clone())
    );

    // Live charges 100, the candidate 200: the live answer is returned, a price delta kept.
    assert_eq!(price(&set, 1000).await, ("100".into(), true));
    // Paying 150: live accepts, the candidate would refuse.
    assert_eq!(price(&set, 150).await, ("100".into(), true));
    // Paying 50: both refuse, at different prices.
    assert_eq!(price(&set, 50).await, ("100".into(), false));

    let counters = set.shadow_counters(World::Pricing);
    assert_eq!(counters.evaluations, 3);
    assert_eq!(counters.disagreements["price_delta"], 2);
    assert_eq!(counters.disagreements["allow_to_deny"], 1);
    assert_eq!(counters.disagreements["error"], 0);

    let kept = set.disagreements(Some(World::Pricing));
    assert_eq!(
        kept.iter().map(|d| d.kind).collect::<Vec<_>>(),
        ["price_delta", "allow_to_deny", "price_delta"]
    );
    let second = &kept[1];
    assert_eq!(second.candidate_sha256, candidate.sha256);
    match &second.input {
        Call::Quote { request: r, .. } => assert_eq!(r.payment, Amount::from(150u64)),
        other => panic!("input kept: {other:?}"),
    }
    let price_of = |a: &Answer| match a {
        Answer::Outcome(Outcome::Quote(q)) => (q.price.to_string(), q.acceptable()),
        other => panic!("answer kept: {other:?}"),
    };
    assert_eq!(price_of(&second.live), ("100".into(), true));
    assert_eq!(price_of(&second.candidate), ("200".into(), false));
    // Nothing for the other worlds, and the JSON form is what the node endpoint shows.
    assert!(set.disagreements(Some(World::Payee)).is_empty());
    let json = serde_json::to_value(second).unwrap();
    assert_eq!(json["kind"], "allow_to_deny");
    assert_eq!(json["candidate"]["outcome"]["price"], "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_candidate_never_changes_the_live_answer() {
    let set = set_with(ShadowConfig::default(), 3);
    set.install(linear(&set, 1));
    let alone = set.quote(request(1000, Some("trap")), node()).await;
    set.set_candidate(load(set.engine(), World::Pricing, HOSTILE, ""), "test");
    for model in ["trap", "loop", "oom"] {
        let shadowed = set.quote(request(1000, Some(model)), node()).await;
        assert_eq!(
            shadowed.as_ref().map(|q| q.refusal.clone()),
            alone.as_ref().map(|q| q.refusal.clone()),
            "{model}"
        );
    }
    assert_eq!(
        set.shadow_counters(World::Pricing).disagreements["error"],
        3
    );
    let kinds: Vec<_> = set
        .disagreements(None)
        .iter()
        .map(|d| match &d.candidate {
            Answer::Error { kind, .. } => *kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["trap", "deadline", "memory"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_serves_the_candidate_and_rollback_the_old_version_again() {
    let set = set_with(ShadowConfig::default(), 3);
    set.install(linear(&set, 1));
    let v1 = set.current(World::Pricing).unwrap().info().clone();
    assert_eq!(
        set.promote(World::Pricing, "test").unwrap_err().code(),
        "policy_no_candidate"
    );

    set.set_candidate(linear(&set, 2), "0xoperator");
    let promoted = set.promote(World::Pricing, "0xoperator").unwrap();
    assert_eq!(price(&set, 1000).await.0, "200");
    assert!(set.candidate(World::Pricing).is_none());
    assert_eq!(
        set.previous_versions(World::Pricing)
            .iter()
            .map(|p| p.settings_sha256.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&v1.settings_sha256)
    );

    // Same component, other settings: the component's sha256 names the newest kept one.
    let back = set
        .rollback(World::Pricing, &v1.sha256, "0xoperator")
        .unwrap();
    assert_eq!(back.settings_sha256, v1.settings_sha256);
    assert_eq!(price(&set, 1000).await.0, "100");
    // The rollback can be undone: the promoted version is kept in turn.
    let exact = format!("{}:{}", promoted.sha256, promoted.settings_sha256);
    set.rollback(World::Pricing, &exact, "0xoperator").unwrap();
    assert_eq!(price(&set, 1000).await.0, "200");

    let unknown = set
        .rollback(World::Pricing, &"ab".repeat(32), "test")
        .unwrap_err();
    assert_eq!(unknown.code(), "policy_version_unknown");
    let metrics = set.engine().metrics();
    assert_eq!(metrics.lifecycle_change_count(World::Pricing, "promote"), 1);
    assert_eq!(
        metrics.lifecycle_change_count(World::Pricing, "rollback"),
        2
    );
    assert_eq!(
        metrics.lifecycle_change_count(World::Pricing, "candidate_set"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_the_last_k_versions() {
    let set = set_with(ShadowConfig::default(), 2);
    for cpu in 1..=4 {
        set.install(linear(&set, cpu));
    }
    let kept: Vec<String> = set
        .previous_versions(World::Pricing)
        .iter()
        .map(|p| p.settings_sha256.clone())
        .collect();
    let settings_sha = |cpu| grid_gateway::policy::sha256_hex(cpu_only(cpu).as_bytes());
    assert_eq!(kept, [settings_sha(3), settings_sha(2)]);
    let evicted = format!(
        "{}:{}",
        set.current(World::Pricing).unwrap().info().sha256,
        settings_sha(1)
    );
    assert_eq!(
        set.rollback(World::Pricing, &evicted, "test")
            .unwrap_err()
            .code(),
        "policy_version_unknown"
    );
    let two = format!(
        "{}:{}",
        set.current(World::Pricing).unwrap().info().sha256,
        settings_sha(2)
    );
    set.rollback(World::Pricing, &two, "test").unwrap();
    assert_eq!(price(&set, 1000).await.0, "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_stands_until_the_live_file_changes_which_pushes_it_into_history() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("pricing.settings.json");
    std::fs::write(&settings, cpu_only(1)).unwrap();
    let set = set_with(ShadowConfig::default(), 3);
    reload(&set, Some(dir.path())).await;
    set.set_candidate(linear(&set, 2), "test");
    set.promote(World::Pricing, "test").unwrap();
    // A rescan with the live files unchanged keeps the promotion.
    let outcomes = reload(&set, Some(dir.path())).await;
    assert_eq!(outcomes[0].1, ReloadOutcome::Unchanged);
    assert_eq!(price(&set, 1000).await.0, "200");
    // A new live file replaces it; the promoted version is kept for rollback.
    std::fs::write(&settings, cpu_only(3)).unwrap();
    assert_eq!(
        reload(&set, Some(dir.path())).await[0].1,
        ReloadOutcome::Loaded
    );
    assert_eq!(price(&set, 1000).await.0, "300");
    let previous = set.previous_versions(World::Pricing);
    assert_eq!(
        previous[0].settings_sha256,
        grid_gateway::policy::sha256_hex(cpu_only(2).as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_checks_are_shadowed() {
    let set = set_with(ShadowConfig::default(), 3);
    let payees = |p: u8| format!(r#"{{"payees":["{}"]}}"#, Address([p; 20]));
    set.install(load(
        set.engine(),
        World::Payee,
        PAYEE_WALLETS,
        &payees(0x22),
    ));
    set.set_candidate(
        load(set.engine(), World::Payee, PAYEE_WALLETS, &payees(0x33)),
        "test",
    );
    let order = Order {
        id: "7".into(),
        user: Address([0xaa; 20]),
        provider: node().wallet,
        payee: Address([0x22; 20]),
        resources: Resources::default(),
        duration_secs: 3600,
        payment: Amount::from(1_000_000u64),
        start_time: None,
        created_at: grid_gateway::policy::unix_now() - 10,
        status: OrderStatus::Created,
    };
    let decision = set.check_payee(order, node()).await.unwrap();
    assert!(decision.is_allowed());
    assert_eq!(
        set.shadow_counters(World::Payee).disagreements["allow_to_deny"],
        1
    );
}

fn request_meta(n: usize) -> RequestMeta {
    RequestMeta {
        method: "GET".into(),
        path: format!("/item/{n}"),
        ..Default::default()
    }
}

async fn authz_set(rate: f64) -> Arc<PolicySet> {
    let set = set_with(
        ShadowConfig {
            request_sample_rate: rate,
            ..ShadowConfig::default()
        },
        3,
    );
    set.install(load(
        set.engine(),
        World::Authorization,
        AUTHZ_ORDER_OWNER,
        "",
    ));
    set.set_candidate(
        load(set.engine(), World::Authorization, AUTHZ_ORDER_OWNER, ""),
        "test",
    );
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_sampling_at_rate_zero_evaluates_nothing() {
    let set = authz_set(0.0).await;
    for n in 0..50 {
        set.authorize_request(request_meta(n)).await.unwrap();
    }
    // Sampling is decided on the serving thread: nothing was queued, so nothing will run.
    let counters = set.shadow_counters(World::Authorization);
    assert_eq!((counters.evaluations, counters.dropped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_sampling_at_rate_one_evaluates_every_request_off_thread() {
    let set = authz_set(1.0).await;
    let mut live = Vec::new();
    for n in 0..50 {
        live.push(set.authorize_request(request_meta(n)).await.unwrap());
    }
    eventually("every sampled request evaluated", || {
        let c = set.shadow_counters(World::Authorization);
        c.evaluations + c.dropped == 50
    })
    .await;
    let counters = set.shadow_counters(World::Authorization);
    assert_eq!(counters.dropped, 0, "50 samples fit the queue");
    // Same component, same settings: no disagreement.
    assert_eq!(counters.disagreements.values().sum::<u64>(), 0);
    assert!(live.iter().all(|d| *d == live[0]));
}
