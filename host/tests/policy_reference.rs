//! The reference policies as real wasm components, evaluated by the host on the same
//! fixtures their native tests use: the component and the Rust logic must agree.

mod support;

use grid_gateway::policy::{Isolation, World};
use grid_policy_sdk::fixture::load_dir;
use support::*;

fn run_fixtures(world: World, wasm_path: &str, policy: &str, isolation: Isolation) {
    let engine = engine(isolation);
    let (settings, fixtures) = load_dir(&fixtures_of(policy)).unwrap();
    let compiled = load(&engine, world, wasm_path, &settings);
    assert!(!fixtures.is_empty());
    for (name, fixture) in fixtures {
        let outcome = compiled
            .evaluate_call(&fixture.call, fixture.now)
            .unwrap_or_else(|e| panic!("{policy}/{name}: {e}"));
        fixture
            .check(&outcome)
            .unwrap_or_else(|e| panic!("{policy}/{name}: {e}"));
    }
    let metrics = engine.metrics();
    assert!(metrics.evaluation_count(world.name(), compiled.info().name.as_str(), "ok") > 0);
}

#[test]
fn pricing_linear_component_matches_its_fixtures() {
    run_fixtures(
        World::Pricing,
        PRICING_LINEAR,
        "pricing-linear",
        Isolation::default(),
    );
}

#[test]
fn payee_wallets_component_matches_its_fixtures() {
    run_fixtures(
        World::Payee,
        PAYEE_WALLETS,
        "payee-wallets",
        Isolation::default(),
    );
}

#[test]
fn authz_order_owner_component_matches_its_fixtures() {
    run_fixtures(
        World::Authorization,
        AUTHZ_ORDER_OWNER,
        "authz-order-owner",
        Isolation::default(),
    );
}

#[test]
fn fixtures_also_pass_with_a_fresh_instance_per_evaluation() {
    run_fixtures(
        World::Pricing,
        PRICING_LINEAR,
        "pricing-linear",
        Isolation::Fresh,
    );
    run_fixtures(
        World::Authorization,
        AUTHZ_ORDER_OWNER,
        "authz-order-owner",
        Isolation::Fresh,
    );
}

#[test]
fn builtin_policies_load_with_no_settings() {
    let engine = engine(Isolation::default());
    for b in grid_gateway::policy::builtin::all() {
        let policy = engine
            .load(
                b.world,
                b.name,
                grid_gateway::policy::PolicySource::Builtin,
                b.wasm,
                "",
            )
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert_eq!(policy.world(), b.world);
    }
    assert_eq!(grid_gateway::policy::builtin::all().len(), 3);
}

#[test]
fn settings_a_policy_rejects_keep_it_out_of_service() {
    let engine = engine(Isolation::default());
    let err = engine
        .load(
            World::Pricing,
            "pricing-linear",
            grid_gateway::policy::PolicySource::Builtin,
            &wasm(PRICING_LINEAR),
            r#"{"min_duration_secs":10,"max_duration_secs":1}"#,
        )
        .err()
        .expect("bad settings must be refused");
    assert_eq!(err.code(), "settings_rejected");
    assert!(err.to_string().contains("min_duration_secs"), "{err}");
    let err = engine
        .load(
            World::Payee,
            "payee",
            grid_gateway::policy::PolicySource::Builtin,
            &wasm(PAYEE_WALLETS),
            "{not json",
        )
        .err()
        .expect("malformed settings must be refused");
    assert_eq!(err.code(), "settings_rejected");
}
