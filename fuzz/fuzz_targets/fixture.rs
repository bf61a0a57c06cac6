//! The policy fixture loader (`grid_policy_sdk::Fixture::from_json`, what `grid-gateway
//! policy check` and the SDK's `check_dir` read): any text is parsed without a panic, and
//! a fixture it accepts survives its own round trip (written back as JSON, read as the same
//! fixture).
#![no_main]

use grid_policy_sdk::Fixture;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(fixture) = Fixture::from_json(text) else {
        return;
    };
    let _ = fixture.call.world();
    let written = serde_json::to_string(&fixture).expect("a fixture is written as JSON");
    let again = Fixture::from_json(&written).expect("a written fixture is read back");
    assert_eq!(again, fixture, "{written}");
});
