//! Record and replay (issue 18 item 5): real evaluations on the real reference
//! components recorded through `PolicySet`, then replayed on a candidate with other
//! settings by the library and by the `grid-gateway policy replay` binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use grid_gateway::cli::policy::PolicyOptions;
use grid_gateway::cli::replay::{ReplayOptions, replay};
use grid_gateway::policy::recording::{Recorder, RecordingConfig};
use grid_gateway::policy::{Isolation, PolicySet, World};
use grid_policy_sdk::{Address, Amount, QuoteRequest, RequestMeta, Resources};
use support::*;

const GIB: u64 = 1 << 30;

/// The recorded pricing settings: `policies/pricing-linear/fixtures/settings.json`.
const CPU_RATE_A: u64 = 10;
const MEMORY_RATE: u64 = 4;
const MAX_DURATION_A: u64 = 86_400;
/// The candidate's: twice the CPU rate, a longer longest order, the rest unchanged.
const CPU_RATE_B: u64 = 20;
const MAX_DURATION_B: u64 = 200_000;

fn candidate_settings(dir: &Path) -> PathBuf {
    let path = dir.join("candidate.settings.json");
    std::fs::write(
        &path,
        serde_json::json!({
            "cpu_core_per_second": CPU_RATE_B.to_string(),
            "memory_gib_per_second": MEMORY_RATE.to_string(),
            "storage_gib_per_second": "1",
            "gpu_per_second": {"nvidia-a100": "1000", "*": "500"},
            "min_duration_secs": 60,
            "max_duration_secs": MAX_DURATION_B,
        })
        .to_string(),
    )
    .unwrap();
    path
}

/// pricing-linear's price of whole cores and GiB: rate × quantity × seconds per part.
fn price(cpu_rate: u64, cores: u64, memory_gib: u64, secs: u64) -> u64 {
    cpu_rate * cores * secs + MEMORY_RATE * memory_gib * secs
}

fn quote_request(cores: u64, memory_gib: u64, secs: u64, payment: u64) -> QuoteRequest {
    QuoteRequest {
        resources: Resources {
            cpu_millis: cores * 1000,
            memory_bytes: memory_gib * GIB,
            ..Default::default()
        },
        duration_secs: secs,
        payment: Amount::from(payment),
        order: None,
    }
}

fn read_fixture_settings(policy: &str) -> String {
    std::fs::read_to_string(fixtures_of(policy).join("settings.json")).unwrap()
}

fn recording_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn policies_with(recorder: Arc<Recorder>) -> PolicySet {
    let engine = engine(Isolation::Pooled { max_uses: 1000 });
    let set = PolicySet::new(engine.clone()).with_recording(recorder);
    set.install(load(
        &engine,
        World::Pricing,
        PRICING_LINEAR,
        &read_fixture_settings("pricing-linear"),
    ));
    set.install(load(
        &engine,
        World::Authorization,
        AUTHZ_ORDER_OWNER,
        &read_fixture_settings("authz-order-owner"),
    ));
    set
}

/// The four quotes: (cores, memory GiB, seconds, payment).
const QUOTES: [(u64, u64, u64, u64); 4] = [
    // A: 72000 accepted; B: 144000 accepted.
    (2, 0, 3600, 1_000_000),
    // A: 18000 accepted; B: 36000, above the payment: refused.
    (1, 0, 1800, 20_000),
    // A: above max_duration_secs, refused at price 0; B: accepted.
    (1, 0, 100_000, 1_000_000_000),
    // Memory only: the same price under both.
    (0, 1, 3600, 1_000_000),
];

const SECRET_TOKEN: &str = "tok-5ecret-0f-the-caller";
const SECRET_COOKIE: &str = "grid_session=c00kie-5ecret";

/// Records the quotes and one proxied request carrying a bearer token and a cookie.
async fn record(dir: &Path) -> Vec<PathBuf> {
    let config = RecordingConfig {
        enabled: true,
        dir: Some(dir.to_owned()),
        request_sample_rate: 1.0,
        ..Default::default()
    };
    let recorder = Recorder::start(&config, Path::new("unused"), Default::default()).unwrap();
    let policies = policies_with(recorder.clone());
    for (cores, gib, secs, payment) in QUOTES {
        policies
            .quote(quote_request(cores, gib, secs, payment), node())
            .await
            .unwrap();
    }
    let decision = policies
        .authorize_request(RequestMeta {
            method: "GET".into(),
            path: "/app".into(),
            host: Some("gateway.example".into()),
            headers: vec![
                ("user-agent".into(), "replay-test".into()),
                ("authorization".into(), format!("Bearer {SECRET_TOKEN}")),
                ("cookie".into(), SECRET_COOKIE.into()),
                ("x-api-key".into(), SECRET_TOKEN.into()),
                (
                    "referer".into(),
                    format!("https://a.example/?t={SECRET_TOKEN}"),
                ),
            ],
            caller: Some(Address([0xaa; 20])),
            order_id: Some("7".into()),
            scopes: vec!["process".into()],
        })
        .await
        .unwrap();
    assert_eq!(decision, grid_policy_sdk::Decision::Allow);
    recorder.flush();
    recording_files(dir)
}

#[tokio::test]
async fn replay_on_other_settings_reports_transitions_and_price_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let files = record(&dir.path().join("rec")).await;
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(text.lines().count(), QUOTES.len() + 1, "{text}");

    // Secrets never reach the file; the allow-listed header does.
    for secret in [
        SECRET_TOKEN,
        SECRET_COOKIE,
        "c00kie",
        "[\"authorization\"",
        "[\"cookie\"",
    ] {
        assert!(!text.contains(secret), "{secret} was recorded: {text}");
    }
    assert!(text.contains("replay-test"), "{text}");
    // Every record names the policy version that answered.
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["v"], 1);
    assert_eq!(first["world"], "pricing");
    assert_eq!(first["policy"]["sha256"].as_str().unwrap().len(), 64);

    let report = tokio::task::spawn_blocking(move || {
        let settings = candidate_settings(dir.path());
        let report = replay(&ReplayOptions {
            policy: PolicyOptions {
                world: None,
                policy: Some(PRICING_LINEAR.into()),
                settings: Some(settings),
                limits: test_limits(Isolation::Pooled { max_uses: 1000 }),
                compile_cache: None,
            },
            recordings: files,
            examples: 10,
        })
        .unwrap();
        drop(dir);
        report
    })
    .await
    .unwrap();

    assert_eq!(report.world, World::Pricing);
    assert_eq!(report.records.read, 5);
    assert_eq!(report.records.replayed, 4);
    assert_eq!(report.records.other_world, 1);
    assert_eq!(report.records.invalid, 0);
    let transitions: Vec<(&str, u64)> = report
        .transitions
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        transitions,
        [("allow->allow", 2), ("allow->deny", 1), ("deny->allow", 1)]
    );
    assert_eq!((report.unchanged, report.changed), (1, 3));

    // Deltas (B − A), from the settings: the refused-for-duration quote was priced 0.
    const { assert!(100_000 > MAX_DURATION_A && 100_000 <= MAX_DURATION_B) };
    let mut deltas = [
        price(CPU_RATE_B, 2, 0, 3600) - price(CPU_RATE_A, 2, 0, 3600),
        price(CPU_RATE_B, 1, 0, 1800) - price(CPU_RATE_A, 1, 0, 1800),
        price(CPU_RATE_B, 1, 0, 100_000),
        price(CPU_RATE_B, 0, 1, 3600) - price(CPU_RATE_A, 0, 1, 3600),
    ];
    deltas.sort();
    let p = report.price.as_ref().expect("price deltas");
    assert_eq!((p.compared, p.changed), (4, 3));
    assert_eq!(p.min, deltas[0].to_string());
    assert_eq!(p.median, deltas[1].to_string(), "lower middle of four");
    assert_eq!(p.max, deltas[3].to_string());

    // The allow->deny example shows the input and both answers.
    let example = report
        .examples
        .iter()
        .find(|e| e.transition == "allow->deny")
        .expect("an allow->deny example");
    assert_eq!(
        example.recorded.outcome.as_ref().unwrap()["price"],
        price(CPU_RATE_A, 1, 0, 1800).to_string()
    );
    let candidate = example.candidate.outcome.as_ref().unwrap();
    assert_eq!(
        candidate["price"],
        price(CPU_RATE_B, 1, 0, 1800).to_string()
    );
    assert_eq!(candidate["refusal"]["kind"], "insufficient_payment");
    assert_eq!(report.examples.len(), 3);
}

#[tokio::test]
async fn rotation_bounds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = RecordingConfig {
        enabled: true,
        dir: Some(dir.path().to_owned()),
        max_bytes: 4096,
        max_files: 2,
        ..Default::default()
    };
    let recorder = Recorder::start(&config, dir.path(), Default::default()).unwrap();
    let policies = policies_with(recorder.clone());
    let quotes = 200;
    for i in 0..quotes {
        policies
            .quote(quote_request(1, 1, 3600 + i, 1_000_000), node())
            .await
            .unwrap();
    }
    recorder.flush();
    let files = recording_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let mut lines = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.len() <= 4096,
            "{} is {} bytes",
            file.display(),
            text.len()
        );
        for line in text.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["world"], "pricing");
            lines += 1;
        }
    }
    assert!(lines < quotes, "older files were removed");
    // The newest record is kept: the files are the last ones written.
    let last = std::fs::read_to_string(files.last().unwrap()).unwrap();
    assert!(
        last.contains(&format!("\"duration_secs\":{}", 3600 + quotes - 1)),
        "{last}"
    );
    // A restart continues the numbering instead of overwriting.
    drop(policies);
    drop(recorder);
    let again = Recorder::start(&config, dir.path(), Default::default()).unwrap();
    let policies = policies_with(again.clone());
    policies
        .quote(quote_request(1, 1, 60, 1_000_000), node())
        .await
        .unwrap();
    again.flush();
    let after = recording_files(dir.path());
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], files[1]);
    assert!(after[1] > files[1]);
}

#[tokio::test]
async fn the_cli_reports_bad_lines_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let files = record(&dir.path().join("rec")).await;
    let recording = dir.path().join("damaged.jsonl");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let first = lines[0].to_owned();
    // Line 2 is garbage; the last line is a record cut in the middle (a crash mid-write).
    lines.insert(1, "this is not json");
    let damaged = format!("{}\n{}", lines.join("\n"), &first[..first.len() / 2]);
    std::fs::write(&recording, damaged).unwrap();
    let settings = candidate_settings(dir.path());

    let out = Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["policy", "replay", "--policy", PRICING_LINEAR, "--settings"])
        .arg(&settings)
        .arg("--recording")
        .arg(&recording)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"]["invalid"], 2, "{report}");
    assert_eq!(report["records"]["replayed"], 4, "{report}");
    assert_eq!(report["bad_lines"][0]["line"], 2);
    let last_line = QUOTES.len() as u64 + 3;
    assert_eq!(report["bad_lines"][1]["line"], last_line);
    assert!(
        report["bad_lines"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("truncated"),
        "{report}"
    );
    assert!(
        stderr.contains(&format!("{}:2:", recording.display())),
        "{stderr}"
    );

    // A missing recording or no candidate is a usage error: exit 1.
    let missing = Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["policy", "replay", "--policy", PRICING_LINEAR])
        .arg("--recording")
        .arg(dir.path().join("absent.jsonl"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let no_policy = Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["policy", "replay", "--world", "pricing", "--recording"])
        .arg(&recording)
        .output()
        .unwrap();
    assert_eq!(no_policy.status.code(), Some(1));
}
