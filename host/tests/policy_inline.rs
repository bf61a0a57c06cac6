//! Per-request authorization runs on the calling thread (on the gateway, an HTTP worker: a
//! current-thread runtime, as here). A policy that uses WASI's output streams, which cannot
//! run there, is moved to the evaluation threads and keeps answering exactly as before;
//! the worker never sees its panic.

mod support;

use grid_gateway::policy::{EvalError, Isolation, PolicyError, PolicySet, World};
use grid_policy_sdk::prelude::*;
use support::*;

fn set() -> PolicySet {
    let engine = engine(Isolation::default());
    let set = PolicySet::new(engine.clone());
    set.install(load(&engine, World::Authorization, CHATTY_AUTHZ, ""));
    set
}

async fn decide(set: &PolicySet, path: &str) -> Result<Decision, PolicyError> {
    set.authorize_request(RequestMeta {
        method: "GET".into(),
        path: path.into(),
        host: None,
        headers: Vec::new(),
        caller: Some(Address([0xaa; 20])),
        order_id: Some("1".into()),
        scopes: Vec::new(),
    })
    .await
}

fn inline(set: &PolicySet) -> bool {
    set.current(World::Authorization)
        .expect("loaded")
        .evaluates_inline()
}

#[tokio::test(flavor = "current_thread")]
async fn a_quiet_policy_decides_on_the_calling_thread() {
    let set = set();
    assert_eq!(decide(&set, "/app").await.unwrap(), Decision::Allow);
    assert_eq!(
        decide(&set, "/deny").await.unwrap(),
        Decision::deny("denied by chatty-authz")
    );
    assert!(inline(&set), "nothing moved it off the calling thread");
}

#[tokio::test(flavor = "current_thread")]
async fn a_policy_that_prints_moves_to_the_evaluation_threads_and_keeps_answering() {
    let set = set();
    assert_eq!(decide(&set, "/app").await.unwrap(), Decision::Allow);
    assert_eq!(decide(&set, "/print").await.unwrap(), Decision::Allow);
    assert!(!inline(&set), "printing cannot run on a runtime's thread");
    assert_eq!(decide(&set, "/print").await.unwrap(), Decision::Allow);
    assert_eq!(
        decide(&set, "/deny").await.unwrap(),
        Decision::deny("denied by chatty-authz")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_guest_panic_is_a_trap_and_the_worker_goes_on() {
    let set = set();
    let error = decide(&set, "/panic").await.unwrap_err();
    assert!(
        matches!(error, PolicyError::Eval(EvalError::Trap(_))),
        "{error:?}"
    );
    assert_eq!(decide(&set, "/app").await.unwrap(), Decision::Allow);
}
