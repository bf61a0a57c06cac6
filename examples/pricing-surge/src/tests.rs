use std::path::Path;

use grid_policy_sdk::fixture::{Fixture, check_dir};

use super::*;

/// Rates of 10 per core-second, 4 per GiB-second, 1 per GiB-second of storage and 1000 per
/// GPU-second; +20 % from 50 % busy, +50 % from 80 %; 5 % off a day, 15 % off a week;
/// no order may take CPU, memory or storage above 95 %. The fixtures' settings, too.
fn policy() -> SurgePricing {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/settings.json"
    ))
    .expect("fixtures/settings.json");
    parse_settings(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// A node with 8 cores, 32 GiB, 100 GiB and 2 GPUs, of which `used_cpu_millis` and
/// `used_gpus` are taken by active orders.
fn node(used_cpu_millis: u64, used_gpus: u32) -> NodeInfo {
    let total = Resources {
        cpu_millis: 8000,
        memory_bytes: 32 * GIB,
        storage_bytes: 100 * GIB,
        gpus: 2,
        gpu_model: Some("nvidia-a100".into()),
    };
    let mut free = total.clone();
    free.cpu_millis -= used_cpu_millis;
    free.gpus -= used_gpus;
    NodeInfo {
        wallet: Address::ZERO,
        chain_id: 31337,
        total,
        free,
    }
}

/// `cpu_millis` of CPU and nothing else, for `duration_secs`, paying plenty.
fn cpu_request(cpu_millis: u64, duration_secs: u64) -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis,
            ..Resources::default()
        },
        duration_secs,
        payment: Amount::MAX,
        order: None,
    }
}

fn quote(policy: &SurgePricing, request: &QuoteRequest, node: &NodeInfo) -> Quote {
    policy.quote(request, node, &Context::at(1_700_000_000))
}

fn line(quote: &Quote, item: &str) -> Option<Amount> {
    quote
        .breakdown
        .iter()
        .find(|l| l.item == item)
        .map(|l| l.amount)
}

#[test]
fn every_fixture_gives_its_expected_answer() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
    let ran =
        check_dir::<SurgePricing>(dir, Fixture::run_pricing).unwrap_or_else(|e| panic!("{e}"));
    assert!(ran >= 7, "only {ran} fixtures");
}

#[test]
fn surge_steps_follow_the_utilisation_the_order_itself_brings() {
    let policy = policy();
    // One core for an hour lists at 10 × 3600 = 36000. Asking 1 core when `used` are taken:
    // the step is chosen by (used + 1000) / 8000.
    let cases = [
        (0, 36_000),     // 12.5 %: list price
        (2_900, 36_000), // 48.75 %: still below the 50 % step
        (3_000, 43_200), // exactly 50 %: the step applies from its threshold on, +20 %
        (5_000, 43_200), // 75 %
        (5_400, 54_000), // exactly 80 %: +50 %
        (6_500, 54_000), // 93.75 %
    ];
    for (used, price) in cases {
        let q = quote(&policy, &cpu_request(1000, 3600), &node(used, 0));
        assert_eq!(q.price, Amount::from(price), "{used} millicores in use");
        assert!(q.acceptable(), "{used}: {:?}", q.refusal);
    }
    // Half an idle node is priced as half a node: the order's own share counts.
    let q = quote(&policy, &cpu_request(4000, 3600), &node(0, 0));
    assert_eq!(line(&q, "cpu"), Some(Amount::from(144_000)));
    assert_eq!(line(&q, "surge:cpu"), Some(Amount::from(28_800)));
}

#[test]
fn resources_surge_separately() {
    let policy = policy();
    // Both GPUs taken by others; a CPU-only order is not charged for their scarcity.
    let mut busy_gpus = node(0, 0);
    busy_gpus.free.gpus = 0;
    let q = quote(&policy, &cpu_request(1000, 3600), &busy_gpus);
    assert_eq!(q.price, Amount::from(36_000));
    assert_eq!(q.breakdown.len(), 3, "{:?}", q.breakdown);
    // One GPU of two free: the order takes the node's GPUs to 100 %, +50 % on the GPU only.
    let mut request = cpu_request(1000, 3600);
    request.resources.gpus = 1;
    let q = quote(&policy, &request, &node(0, 1));
    assert_eq!(line(&q, "gpu"), Some(Amount::from(3_600_000)));
    assert_eq!(line(&q, "surge:gpu"), Some(Amount::from(1_800_000)));
    assert_eq!(line(&q, "surge:cpu"), None);
    assert!(
        q.acceptable(),
        "GPUs are exempt from the headroom: {:?}",
        q.refusal
    );
}

#[test]
fn term_discounts_start_at_their_threshold() {
    let policy = policy();
    // Rate 10 per core-second: one core for d seconds lists at 10 d.
    assert_eq!(
        quote(&policy, &cpu_request(1000, 86_399), &node(0, 0)).price,
        Amount::from(863_990)
    );
    // 864000 × 95 % = 820800
    assert_eq!(
        quote(&policy, &cpu_request(1000, 86_400), &node(0, 0)).price,
        Amount::from(820_800)
    );
    // 6048000 × 85 % = 5140800
    assert_eq!(
        quote(&policy, &cpu_request(1000, 604_800), &node(0, 0)).price,
        Amount::from(5_140_800)
    );
}

#[test]
fn the_surge_applies_to_the_discounted_line() {
    let policy = policy();
    // A day at 87.5 %: 864000 → 820800 after 5 % off, +50 % of that = 410400.
    let q = quote(&policy, &cpu_request(1000, 86_400), &node(6000, 0));
    assert_eq!(line(&q, "cpu"), Some(Amount::from(820_800)));
    assert_eq!(line(&q, "surge:cpu"), Some(Amount::from(410_400)));
    assert_eq!(q.price, Amount::from(1_231_200));
}

#[test]
fn every_step_rounds_up_never_down() {
    let policy: SurgePricing = parse_settings(
        r#"{"cpu_core_per_second":"1","memory_gib_per_second":"0","storage_gib_per_second":"0",
            "min_duration_secs":1,"max_utilisation_percent":100,
            "surge":[{"utilisation_percent":1,"markup_percent":1}],
            "term_discounts":[{"min_duration_secs":1,"discount_percent":99}]}"#,
    )
    .unwrap();
    // A thousandth of a core for a second lists at 1/1000, rounds to 1; 1 % of it is 0.01,
    // rounds to 1; on a node 7/8 busy the surge of 1 % on 1 rounds to 1.
    let q = quote(&policy, &cpu_request(1, 1), &node(7000, 0));
    assert_eq!(line(&q, "cpu"), Some(Amount::from(1)));
    assert_eq!(line(&q, "surge:cpu"), Some(Amount::from(1)));
    assert_eq!(q.price, Amount::from(2));
}

#[test]
fn the_headroom_refuses_above_the_maximum_and_allows_it_exactly() {
    let policy = policy();
    // 95 % of 8 cores is 7.6: up to 7600 millicores in use is sold.
    let q = quote(&policy, &cpu_request(1600, 3600), &node(6000, 0));
    assert!(q.acceptable(), "{:?}", q.refusal);
    let q = quote(&policy, &cpu_request(1601, 3600), &node(6000, 0));
    let refusal = q.refusal.clone().unwrap();
    assert_eq!(refusal.kind, RefusalKind::InsufficientCapacity);
    assert_eq!(
        refusal.reason,
        "cpu would be 96% in use with this order, above the 95% this node sells"
    );
    assert!(!q.price.is_zero(), "a refusal still shows the price");
    // More than is free is the plain shortfall, named as such.
    let q = quote(&policy, &cpu_request(2001, 3600), &node(6000, 0));
    assert!(
        q.refusal
            .unwrap()
            .reason
            .starts_with("not enough free capacity: cpu")
    );
}

#[test]
fn gpus_on_a_node_that_sells_none_are_unsupported() {
    let policy: SurgePricing = parse_settings(r#"{"gpu_per_second":null}"#).unwrap();
    let mut request = cpu_request(1000, 3600);
    request.resources.gpus = 1;
    let q = quote(&policy, &request, &node(0, 0));
    let refusal = q.refusal.unwrap();
    assert_eq!(refusal.kind, RefusalKind::UnsupportedResource);
    assert_eq!(refusal.reason, "this node does not sell GPUs");
    // Without GPUs asked the same settings price normally.
    assert!(quote(&policy, &cpu_request(1000, 3600), &node(0, 0)).acceptable());
}

#[test]
fn an_overflowing_price_is_refused_not_wrapped() {
    let policy: SurgePricing =
        parse_settings(&format!(r#"{{"cpu_core_per_second":"{}"}}"#, Amount::MAX)).unwrap();
    let q = quote(&policy, &cpu_request(1000, 3600), &node(0, 0));
    let refusal = q.refusal.unwrap();
    assert_eq!(refusal.kind, RefusalKind::Other);
    assert!(refusal.reason.contains("u256"), "{}", refusal.reason);
    assert!(q.price.is_zero());
}

#[test]
fn extreme_and_inconsistent_node_numbers_never_panic() {
    let policy = policy();
    let huge = Resources {
        cpu_millis: u64::MAX,
        memory_bytes: u64::MAX,
        storage_bytes: u64::MAX,
        gpus: u32::MAX,
        gpu_model: None,
    };
    let zero = Resources::default();
    let nodes = [
        (huge.clone(), huge.clone()),
        (huge.clone(), zero.clone()),
        (zero.clone(), huge.clone()), // free above total: a host bug, read as idle
        (zero.clone(), zero.clone()),
    ];
    for (total, free) in nodes {
        let node = NodeInfo {
            wallet: Address::ZERO,
            chain_id: 1,
            total,
            free,
        };
        for asked in [huge.clone(), zero.clone()] {
            let request = QuoteRequest {
                resources: asked,
                duration_secs: 2_592_000,
                payment: Amount::ZERO,
                order: None,
            };
            // Any answer is fine; the point is that there is one.
            let q = quote(&policy, &request, &node);
            assert!(q.refusal.is_some() || q.price.is_zero());
        }
    }
}

#[test]
fn settings_errors_name_the_field() {
    let cases = [
        (
            r#"{"max_utilisation_percent":0}"#,
            "max_utilisation_percent must be between 1 and 100, not 0",
        ),
        (
            r#"{"min_duration_secs":10,"max_duration_secs":5,"term_discounts":[]}"#,
            "min_duration_secs (10) is above max_duration_secs (5)",
        ),
        (
            r#"{"surge":[{"utilisation_percent":150,"markup_percent":10}]}"#,
            "surge[0].utilisation_percent must be between 1 and 100, not 150",
        ),
        (
            r#"{"max_utilisation_percent":90,"surge":[{"utilisation_percent":95,"markup_percent":10}]}"#,
            "surge[0].utilisation_percent (95) is above max_utilisation_percent (90): the step could never apply",
        ),
        (
            r#"{"surge":[{"utilisation_percent":50,"markup_percent":2500}]}"#,
            "surge[0].markup_percent must be between 1 and 1000, not 2500",
        ),
        (
            r#"{"surge":[{"utilisation_percent":80,"markup_percent":10},{"utilisation_percent":50,"markup_percent":20}]}"#,
            "surge[1].utilisation_percent (50) must be above surge[0].utilisation_percent (80)",
        ),
        (
            r#"{"surge":[{"utilisation_percent":50,"markup_percent":30},{"utilisation_percent":80,"markup_percent":20}]}"#,
            "surge[1].markup_percent (20) is below surge[0].markup_percent (30): a busier node must not be cheaper",
        ),
        (
            r#"{"term_discounts":[{"min_duration_secs":86400,"discount_percent":100}]}"#,
            "term_discounts[0].discount_percent must be between 1 and 99, not 100",
        ),
        (
            r#"{"max_duration_secs":86400,"term_discounts":[{"min_duration_secs":604800,"discount_percent":10}]}"#,
            "term_discounts[0].min_duration_secs (604800) is above max_duration_secs (86400)",
        ),
        (
            r#"{"term_discounts":[{"min_duration_secs":604800,"discount_percent":10},{"min_duration_secs":86400,"discount_percent":20}]}"#,
            "term_discounts[1].min_duration_secs (86400) must be above term_discounts[0].min_duration_secs (604800)",
        ),
        (
            r#"{"term_discounts":[{"min_duration_secs":86400,"discount_percent":20},{"min_duration_secs":604800,"discount_percent":10}]}"#,
            "term_discounts[1].discount_percent (10) is below term_discounts[0].discount_percent (20)",
        ),
        (r#"{"surge_tiers":[]}"#, "unknown field `surge_tiers`"),
        (
            r#"{"surge":[{"utilisation":50,"markup_percent":20}]}"#,
            "unknown field `utilisation`",
        ),
        (r#"{"cpu_core_per_second":"-1"}"#, "not an amount"),
    ];
    for (settings, expected) in cases {
        let err = parse_settings::<SurgePricing>(settings)
            .map(|_| ())
            .expect_err(settings);
        assert!(
            err.contains(expected),
            "{settings}\n  gave: {err}\n  want: {expected}"
        );
    }
    // No settings file is the built-in default, which must itself be valid.
    parse_settings::<SurgePricing>("").unwrap();
}
