//! The example pricing policy (`examples/pricing-surge`): the README's `grid-gateway policy
//! run` on its fixtures passes. Its hot swap into a serving node (`grid-gateway serve` as
//! its own process) is in `tests/policy_swap.rs` (crate `grid-node-tests`).

mod support;

use serde_json::Value;
use support::{PRICING_SURGE, workspace};

#[test]
fn policy_run_passes_on_the_examples_fixtures() {
    let fixtures = workspace().join("examples/pricing-surge/fixtures");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["policy", "run", "--policy", PRICING_SURGE, "--settings"])
        .arg(fixtures.join("settings.json"))
        .arg("--input")
        .arg(&fixtures)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert!(results.len() >= 7, "{results:?}");
    assert!(
        results.iter().all(|r| r["expect_matched"] == true),
        "{results:?}"
    );
}
