use std::path::Path;

use grid_policy_sdk::fixture::{Fixture, check_dir};
use grid_policy_sdk::prelude::*;

use super::*;

#[test]
fn every_fixture_gives_its_expected_answer() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
    let ran =
        check_dir::<LinearPricing>(dir, Fixture::run_pricing).unwrap_or_else(|e| panic!("{e}"));
    assert!(ran >= 6, "only {ran} fixtures");
}

fn node(free_gpus: u32, model: Option<&str>) -> NodeInfo {
    let res = Resources {
        cpu_millis: 8000,
        memory_bytes: 32 << 30,
        storage_bytes: 100 << 30,
        gpus: free_gpus,
        gpu_model: model.map(str::to_owned),
    };
    NodeInfo {
        wallet: Address::ZERO,
        chain_id: 1,
        total: res.clone(),
        free: res,
    }
}

fn request(gpus: u32, model: Option<&str>, payment: u128) -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            storage_bytes: 0,
            gpus,
            gpu_model: model.map(str::to_owned),
        },
        duration_secs: 100,
        payment: Amount::from_u128(payment),
        order: None,
    }
}

#[test]
fn gpu_model_without_a_price_is_unsupported() {
    let policy: LinearPricing =
        parse_settings(r#"{"gpu_per_second":{"nvidia-a100":"1"}}"#).unwrap();
    let quote = policy.quote(
        &request(1, Some("nvidia-h100"), u128::MAX),
        &node(4, Some("nvidia-h100")),
        &Context::at(0),
    );
    let refusal = quote.refusal.unwrap();
    assert_eq!(refusal.kind, RefusalKind::UnsupportedResource);
    assert!(refusal.reason.contains("nvidia-h100"), "{}", refusal.reason);
    // GPUs asked for without a model and no "*" price: not sold either.
    let quote = policy.quote(
        &request(1, None, u128::MAX),
        &node(4, None),
        &Context::at(0),
    );
    assert_eq!(
        quote.refusal.unwrap().kind,
        RefusalKind::UnsupportedResource
    );
}

#[test]
fn gpu_model_match_ignores_case_and_falls_back_to_star() {
    let policy: LinearPricing =
        parse_settings(r#"{"gpu_per_second":{"nvidia-a100":"7","*":"3"},"cpu_core_per_second":"0","memory_gib_per_second":"0","storage_gib_per_second":"0"}"#).unwrap();
    let q = policy.quote(
        &request(1, Some("NVIDIA-A100"), 10_000),
        &node(1, Some("nvidia-a100")),
        &Context::at(0),
    );
    assert_eq!(q.price, Amount::from(700));
    assert!(q.acceptable());
    let q = policy.quote(
        &request(2, Some("amd-mi300"), 10_000),
        &node(2, Some("amd-mi300")),
        &Context::at(0),
    );
    assert_eq!(q.price, Amount::from(600));
    assert_eq!(q.breakdown.last().unwrap().item, "gpu:amd-mi300");
}

#[test]
fn prices_round_up_never_down() {
    let policy: LinearPricing = parse_settings(
        r#"{"cpu_core_per_second":"1","memory_gib_per_second":"0","storage_gib_per_second":"0","min_duration_secs":1}"#,
    )
    .unwrap();
    let mut req = request(0, None, 1000);
    req.resources.cpu_millis = 1; // a thousandth of a core for one second
    req.duration_secs = 1;
    assert_eq!(
        policy.quote(&req, &node(0, None), &Context::at(0)).price,
        Amount::from(1)
    );
}

#[test]
fn overflowing_price_is_refused_not_wrapped() {
    let policy: LinearPricing = parse_settings(&format!(
        r#"{{"cpu_core_per_second":"{}","max_duration_secs":1000000}}"#,
        Amount::MAX
    ))
    .unwrap();
    let q = policy.quote(
        &request(0, None, u128::MAX),
        &node(0, None),
        &Context::at(0),
    );
    let refusal = q.refusal.unwrap();
    assert_eq!(refusal.kind, RefusalKind::Other);
    assert!(refusal.reason.contains("u256"));
}

#[test]
fn settings_are_validated() {
    let err = parse_settings::<LinearPricing>(r#"{"min_duration_secs":10,"max_duration_secs":5}"#)
        .unwrap_err();
    assert!(err.contains("min_duration_secs"), "{err}");
    let err = parse_settings::<LinearPricing>(r#"{"gpu_per_second":{"NVIDIA":"1"}}"#).unwrap_err();
    assert!(err.contains("lower case"), "{err}");
    let err = parse_settings::<LinearPricing>(r#"{"cpu_per_core":"1"}"#).unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
    let err = parse_settings::<LinearPricing>(r#"{"cpu_core_per_second":"-1"}"#).unwrap_err();
    assert!(err.contains("not an amount"), "{err}");
    // No settings at all is the built-in default, which must be valid.
    parse_settings::<LinearPricing>("").unwrap();
}
