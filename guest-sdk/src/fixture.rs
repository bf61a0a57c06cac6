//! Fixtures: one evaluation of a policy written down as JSON, with the answer expected.
//!
//! The same file drives three things: a native `cargo test` of a policy's logic
//! ([`Fixture::run_pricing`] and friends), `grid-gateway policy run --input <file>`, and the
//! gateway's own tests of the compiled component. Format:
//!
//! ```json
//! {
//!   "now": 1700000000,
//!   "call": { "quote": { "request": { ... QuoteRequest ... }, "node": { ... NodeInfo ... } } },
//!   "expect": { "price": "…", "breakdown": [ … ], "refusal": null }
//! }
//! ```
//!
//! `call` is one of `quote` (pricing), `check` (payee: `order`, `node`),
//! `authorize_session` (authorization: `request` = SessionRequest) and
//! `authorize_request` (authorization: `request` = RequestMeta). `now` fixes the clock the
//! policy sees (default: the real time); `expect` is optional and compared as JSON.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::policy::{AuthorizationPolicy, PayeePolicy, PricingPolicy};
use crate::types::{
    Decision, NodeInfo, Order, Quote, QuoteRequest, RequestMeta, SessionDecision, SessionRequest,
};

/// One recorded evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The unix time the policy sees; `None` means the real clock.
    #[serde(default)]
    pub now: Option<u64>,
    /// What is asked.
    pub call: Call,
    /// The answer expected, compared as JSON with the outcome's serde form.
    #[serde(default)]
    pub expect: Option<serde_json::Value>,
}

/// The question a fixture asks; the variant names the world's export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// pricing: `quote`.
    Quote {
        /// The request.
        request: QuoteRequest,
        /// The node's capacity.
        node: NodeInfo,
    },
    /// payee: `check`.
    Check {
        /// The order.
        order: Order,
        /// The node.
        node: NodeInfo,
    },
    /// authorization: `authorize-session`.
    AuthorizeSession {
        /// The signed-in address and its orders.
        request: SessionRequest,
    },
    /// authorization: `authorize-request`.
    AuthorizeRequest {
        /// The request.
        request: RequestMeta,
    },
}

impl Call {
    /// The name of the world whose export this call invokes.
    pub fn world(&self) -> &'static str {
        match self {
            Call::Quote { .. } => "pricing",
            Call::Check { .. } => "payee",
            Call::AuthorizeSession { .. } | Call::AuthorizeRequest { .. } => "authorization",
        }
    }
}

/// What an evaluation answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A pricing answer.
    Quote(Quote),
    /// A session answer.
    Session(SessionDecision),
    /// A payee or per-request answer.
    Decision(Decision),
}

/// Why a fixture could not be run natively against the policy given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongWorld {
    /// The world the fixture's call belongs to.
    pub fixture: &'static str,
    /// The world of the policy it was run against.
    pub policy: &'static str,
}

impl core::fmt::Display for WrongWorld {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the fixture calls the {} world but the policy is a {} policy",
            self.fixture, self.policy
        )
    }
}

impl std::error::Error for WrongWorld {}

impl Fixture {
    /// Parses a fixture from JSON text.
    pub fn from_json(text: &str) -> Result<Fixture, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The fixture's clock, or the real one, as the gateway would give it.
    fn context(&self) -> Context {
        let now = self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        Context::at(now)
    }

    /// Runs a pricing fixture natively.
    pub fn run_pricing<P: PricingPolicy>(&self, policy: &P) -> Result<Outcome, WrongWorld> {
        match &self.call {
            Call::Quote { request, node } => {
                Ok(Outcome::Quote(policy.quote(request, node, &self.context())))
            }
            other => Err(WrongWorld {
                fixture: other.world(),
                policy: "pricing",
            }),
        }
    }

    /// Runs a payee fixture natively.
    pub fn run_payee<P: PayeePolicy>(&self, policy: &P) -> Result<Outcome, WrongWorld> {
        match &self.call {
            Call::Check { order, node } => Ok(Outcome::Decision(policy.check(
                order,
                node,
                &self.context(),
            ))),
            other => Err(WrongWorld {
                fixture: other.world(),
                policy: "payee",
            }),
        }
    }

    /// Runs an authorization fixture natively.
    pub fn run_authorization<P: AuthorizationPolicy>(
        &self,
        policy: &P,
    ) -> Result<Outcome, WrongWorld> {
        match &self.call {
            Call::AuthorizeSession { request } => Ok(Outcome::Session(
                policy.authorize_session(request, &self.context()),
            )),
            Call::AuthorizeRequest { request } => Ok(Outcome::Decision(
                policy.authorize_request(request, &self.context()),
            )),
            other => Err(WrongWorld {
                fixture: other.world(),
                policy: "authorization",
            }),
        }
    }

    /// Compares an outcome with `expect`; `Ok` when there is no expectation or it matches,
    /// else a message showing both.
    pub fn check(&self, outcome: &Outcome) -> Result<(), String> {
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let got = serde_json::to_value(outcome).map_err(|e| e.to_string())?;
        if &got == expect {
            Ok(())
        } else {
            Err(format!("expected {expect}\n     got {got}"))
        }
    }
}

/// The name of the settings file beside a policy's fixtures; it is not a fixture.
pub const SETTINGS_FILE: &str = "settings.json";

/// The fixture files in `dir`: every `*.json` but [`SETTINGS_FILE`], sorted by name.
pub fn files_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".json") && name != SETTINGS_FILE {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and parses one fixture file; the error names the problem.
pub fn read_file(path: &std::path::Path) -> Result<Fixture, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Fixture::from_json(&text).map_err(|e| e.to_string())
}

/// Runs every fixture in `dir` natively against the policy its settings file configures,
/// with `run` (e.g. [`Fixture::run_pricing`]), and checks each answer against `expect`.
/// Returns how many fixtures ran; the error names the failing fixture. For a policy's
/// `cargo test`:
///
/// ```ignore
/// let ran = check_dir::<MyPricing>(Path::new("fixtures"), Fixture::run_pricing).unwrap();
/// ```
pub fn check_dir<P: crate::Policy>(
    dir: &std::path::Path,
    run: impl Fn(&Fixture, &P) -> Result<Outcome, WrongWorld>,
) -> Result<usize, String> {
    let (settings, fixtures) = load_dir(dir)?;
    let policy: P = crate::parse_settings(&settings)?;
    for (name, fixture) in &fixtures {
        let outcome = run(fixture, &policy).map_err(|e| format!("{name}: {e}"))?;
        fixture
            .check(&outcome)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(fixtures.len())
}

/// Reads every fixture in `dir` (see [`files_in`]) and the settings text beside them
/// ("" when there is none); errors name the file.
pub fn load_dir(dir: &std::path::Path) -> Result<(String, Vec<(String, Fixture)>), String> {
    let settings = match std::fs::read_to_string(dir.join(SETTINGS_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", dir.join(SETTINGS_FILE).display())),
    };
    let files = files_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut fixtures = Vec::new();
    for path in files {
        let fixture = read_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fixtures.push((name, fixture));
    }
    Ok((settings, fixtures))
}
