use std::path::Path;

use grid_policy_sdk::fixture::{Fixture, check_dir};
use grid_policy_sdk::prelude::*;

use super::*;

#[test]
fn every_fixture_gives_its_expected_answer() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
    let ran =
        check_dir::<OrderOwner>(dir, Fixture::run_authorization).unwrap_or_else(|e| panic!("{e}"));
    assert!(ran >= 6, "only {ran} fixtures");
}

fn active_order(user: Address, start: u64, duration: u64) -> Order {
    Order {
        id: "1".into(),
        user,
        provider: Address([0x11; 20]),
        payee: Address([0x11; 20]),
        resources: Resources::default(),
        duration_secs: duration,
        payment: Amount::from(1),
        start_time: Some(start),
        created_at: start,
        status: OrderStatus::Active,
    }
}

#[test]
fn session_never_outlives_the_last_order() {
    let user = Address([0xaa; 20]);
    let policy = OrderOwner::default();
    let request = SessionRequest {
        address: user,
        orders: vec![active_order(user, 1000, 100), active_order(user, 1000, 500)],
    };
    let SessionDecision::Grant(grant) = policy.authorize_session(&request, &Context::at(1050))
    else {
        panic!()
    };
    assert_eq!(grant.expires_at, 1500);
    // An ended order does not count.
    let request = SessionRequest {
        address: user,
        orders: vec![active_order(user, 1000, 10)],
    };
    assert!(matches!(
        policy.authorize_session(&request, &Context::at(1050)),
        SessionDecision::Deny { .. }
    ));
}

#[test]
fn orders_of_someone_else_do_not_grant_a_session() {
    let user = Address([0xaa; 20]);
    let request = SessionRequest {
        address: user,
        orders: vec![active_order(Address([0xbb; 20]), 1000, 1000)],
    };
    assert!(matches!(
        OrderOwner::default().authorize_session(&request, &Context::at(1000)),
        SessionDecision::Deny { .. }
    ));
}

#[test]
fn path_prefixes_match_whole_segments() {
    assert!(path_has_prefix("/admin", "/admin"));
    assert!(path_has_prefix("/admin/users", "/admin/"));
    assert!(!path_has_prefix("/administrator", "/admin"));
    assert!(path_has_prefix("/anything", "/"));
}

#[test]
fn settings_are_validated() {
    for (bad, needle) in [
        (r#"{"session_lifetime_secs":0}"#, "above 0"),
        (r#"{"deny_path_prefixes":["admin"]}"#, "start with"),
        (r#"{"deny_methods":["GET /"]}"#, "not an HTTP method"),
        (
            r#"{"allow":["0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"deny":["0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}"#,
            "both",
        ),
    ] {
        let err = parse_settings::<OrderOwner>(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
    }
    parse_settings::<OrderOwner>("").unwrap();
}
