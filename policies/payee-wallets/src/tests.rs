use std::path::Path;

use grid_policy_sdk::fixture::{Fixture, check_dir};
use grid_policy_sdk::prelude::*;

use super::*;

#[test]
fn every_fixture_gives_its_expected_answer() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
    let ran = check_dir::<PayeeWallets>(dir, Fixture::run_payee).unwrap_or_else(|e| panic!("{e}"));
    assert!(ran >= 6, "only {ran} fixtures");
}

fn addr(byte: u8) -> Address {
    Address([byte; 20])
}

fn order(payee: Address) -> Order {
    Order {
        id: "1".into(),
        user: addr(0xaa),
        provider: addr(0x11),
        payee,
        resources: Resources::default(),
        duration_secs: 60,
        payment: Amount::from(1),
        start_time: None,
        created_at: 0,
        status: OrderStatus::Created,
    }
}

fn node() -> NodeInfo {
    NodeInfo {
        wallet: addr(0x11),
        chain_id: 1,
        total: Resources::default(),
        free: Resources::default(),
    }
}

#[test]
fn without_payees_only_the_node_wallet_is_accepted() {
    let policy = PayeeWallets::default();
    assert_eq!(
        policy.check(&order(addr(0x11)), &node(), &Context::at(0)),
        Decision::Allow
    );
    assert!(
        !policy
            .check(&order(addr(0x22)), &node(), &Context::at(0))
            .is_allowed()
    );
}

#[test]
fn payee_addresses_compare_case_insensitively() {
    let policy: PayeeWallets =
        parse_settings(r#"{"payees":["0xABABABABABABABABABABABABABABABABABABABAB"]}"#).unwrap();
    assert_eq!(
        policy.check(&order(addr(0xab)), &node(), &Context::at(0)),
        Decision::Allow
    );
}

#[test]
fn order_age_window_is_enforced_both_ways() {
    let policy: PayeeWallets =
        parse_settings(r#"{"payees":[],"max_order_age_secs":10,"max_clock_skew_secs":5}"#).unwrap();
    let mut o = order(addr(0x11));
    o.created_at = 1000;
    assert!(policy.check(&o, &node(), &Context::at(1010)).is_allowed());
    assert!(!policy.check(&o, &node(), &Context::at(1011)).is_allowed());
    assert!(policy.check(&o, &node(), &Context::at(995)).is_allowed());
    assert!(!policy.check(&o, &node(), &Context::at(994)).is_allowed());
}

#[test]
fn settings_are_validated() {
    let err = parse_settings::<PayeeWallets>(
        r#"{"payees":["0x0000000000000000000000000000000000000000"]}"#,
    )
    .unwrap_err();
    assert!(err.contains("zero address"), "{err}");
    let err = parse_settings::<PayeeWallets>(r#"{"payees":["0x12"]}"#).unwrap_err();
    assert!(err.contains("not an address"), "{err}");
    parse_settings::<PayeeWallets>("").unwrap();
}
