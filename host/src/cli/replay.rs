//! `grid-gateway policy replay`: the operator's "what if" before a promotion. Evaluates
//! every recorded input of the candidate's world ([`crate::policy::recording`]) on the
//! candidate, with the recorded clock, and reports what would change: outcome
//! transitions, price deltas and examples.
//!
//! Bad lines (corrupt, truncated, another format version) are reported with their file
//! and line number, counted, and skipped; only unusable arguments, an unreadable file or
//! a candidate that does not load are errors.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use grid_policy_sdk::fixture::{Call, Outcome};
use serde::Serialize;
use serde_json::Value;

use super::policy::{CommandError, PolicyOptions, load};
use crate::policy::recording::{FORMAT_VERSION, Record};
use crate::policy::{CompiledPolicy, LoadError, PolicyInfo, World};

/// Bad lines listed in the report (all are counted).
pub const MAX_LISTED_BAD_LINES: usize = 100;

/// What `policy replay` is asked.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// The candidate (its world is inferred when `policy.world` is `None`).
    pub policy: PolicyOptions,
    /// Recording files, read in order.
    pub recordings: Vec<PathBuf>,
    /// Examples of changed answers to show.
    pub examples: usize,
}

/// Records read, by fate.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Lines that parsed as records.
    pub read: u64,
    /// Records of the candidate's world evaluated on it.
    pub replayed: u64,
    /// Records of another world, skipped.
    pub other_world: u64,
    /// Lines that are not records of this format version (see `bad_lines`).
    pub invalid: u64,
}

/// A line that could not be used.
#[derive(Debug, Serialize)]
pub struct BadLine {
    /// The file.
    pub file: PathBuf,
    /// Its line number (from 1).
    pub line: u64,
    /// Why.
    pub error: String,
}

/// The price differences on quotes both versions answered: candidate − recorded, in the
/// token's smallest unit, as decimal strings (they may exceed a JSON number).
#[derive(Debug, Serialize)]
pub struct PriceDeltas {
    /// Quotes compared.
    pub compared: u64,
    /// Of those, quotes whose price differs.
    pub changed: u64,
    /// Smallest delta.
    pub min: String,
    /// Median delta (the lower middle one for an even count).
    pub median: String,
    /// Largest delta.
    pub max: String,
}

/// One answer: the policy's outcome or the code of its failure.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `allow` (a quote accepted, a payee or request allowed, a session granted), `deny`
    /// or `error`.
    pub class: &'static str,
    /// The outcome, as in a fixture's `expect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    /// The failure's stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A record whose answer changed.
#[derive(Debug, Serialize)]
pub struct Example {
    /// Where it was read.
    pub file: PathBuf,
    /// Its line.
    pub line: u64,
    /// `from->to`.
    pub transition: String,
    /// The recorded clock.
    pub now: u64,
    /// The input.
    pub call: Call,
    /// What the recorded policy answered.
    pub recorded: Answer,
    /// What the candidate answers.
    pub candidate: Answer,
}

/// `policy replay`'s answer.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    /// The candidate's world.
    pub world: World,
    /// The candidate.
    pub candidate: PolicyInfo,
    /// Records by fate.
    pub records: Counts,
    /// Replayed records with exactly the same answer.
    pub unchanged: u64,
    /// Replayed records with another answer (a price, a reason, a class).
    pub changed: u64,
    /// Replayed records by `recorded->candidate` class (`allow->deny`, `deny->allow`,
    /// `allow->allow`, `error->allow`, ...).
    pub transitions: BTreeMap<String, u64>,
    /// Price deltas (pricing only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceDeltas>,
    /// The first bad lines ([`MAX_LISTED_BAD_LINES`]).
    pub bad_lines: Vec<BadLine>,
    /// The first changed answers (`--examples`).
    pub examples: Vec<Example>,
}

/// Loads the candidate: as `world` when given, else as the world it implements.
fn load_candidate(options: &PolicyOptions) -> Result<CompiledPolicy, CommandError> {
    if options.policy.is_none() {
        return Err(CommandError::NoCandidate);
    }
    if let Some(world) = options.world {
        return load(options, world);
    }
    let mut last = None;
    for world in World::ALL {
        match load(options, world) {
            Ok(policy) => return Ok(policy),
            Err(CommandError::Load(e @ LoadError::WrongWorld { .. })) => {
                last = Some(CommandError::Load(e))
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(CommandError::NoWorld))
}

/// Classifies a recorded or computed outcome of `world`; `None` when it is not one.
fn classify(world: World, outcome: &Value) -> Option<(&'static str, Option<String>)> {
    match world {
        World::Pricing => {
            let price = outcome.get("price")?.as_str()?.to_owned();
            let class = if outcome.get("refusal").is_none_or(Value::is_null) {
                "allow"
            } else {
                "deny"
            };
            Some((class, Some(price)))
        }
        _ => match outcome.get("decision")?.as_str()? {
            "allow" | "grant" => Some(("allow", None)),
            "deny" => Some(("deny", None)),
            _ => None,
        },
    }
}

fn answer(
    world: World,
    outcome: Option<Value>,
    error: Option<String>,
) -> Option<(Answer, Option<String>)> {
    match (outcome, error) {
        (Some(outcome), None) => {
            let (class, price) = classify(world, &outcome)?;
            Some((
                Answer {
                    class,
                    outcome: Some(outcome),
                    error: None,
                },
                price,
            ))
        }
        (None, Some(error)) => Some((
            Answer {
                class: "error",
                outcome: None,
                error: Some(error),
            },
            None,
        )),
        _ => None,
    }
}

fn delta(recorded: &str, candidate: &str) -> Option<i128> {
    let r = i128::try_from(recorded.parse::<u128>().ok()?).ok()?;
    let c = i128::try_from(candidate.parse::<u128>().ok()?).ok()?;
    c.checked_sub(r)
}

/// `policy replay`.
pub fn replay(options: &ReplayOptions) -> Result<ReplayReport, CommandError> {
    let candidate = load_candidate(&options.policy)?;
    let world = candidate.world();
    let mut report = ReplayReport {
        world,
        candidate: candidate.info().clone(),
        records: Counts::default(),
        unchanged: 0,
        changed: 0,
        transitions: BTreeMap::new(),
        price: None,
        bad_lines: Vec::new(),
        examples: Vec::new(),
    };
    let mut deltas = Vec::new();
    for path in &options.recordings {
        replay_file(&candidate, path, options.examples, &mut report, &mut deltas)?;
    }
    if world == World::Pricing && !deltas.is_empty() {
        deltas.sort_unstable();
        report.price = Some(PriceDeltas {
            compared: deltas.len() as u64,
            changed: deltas.iter().filter(|d| **d != 0).count() as u64,
            min: deltas[0].to_string(),
            median: deltas[(deltas.len() - 1) / 2].to_string(),
            max: deltas[deltas.len() - 1].to_string(),
        });
    }
    Ok(report)
}

fn replay_file(
    candidate: &CompiledPolicy,
    path: &Path,
    examples: usize,
    report: &mut ReplayReport,
    deltas: &mut Vec<i128>,
) -> Result<(), CommandError> {
    let read_error = |e: std::io::Error| CommandError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut reader = std::io::BufReader::new(file);
    let world = candidate.world();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(read_error)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut bad = |error: String| {
            report.records.invalid += 1;
            if report.bad_lines.len() < MAX_LISTED_BAD_LINES {
                report.bad_lines.push(BadLine {
                    file: path.to_owned(),
                    line: line_no,
                    error,
                });
            }
        };
        let record: Record = match serde_json::from_slice(&buf) {
            Ok(r) => r,
            Err(e) => {
                // A line cut short (a crash mid-write, a copy in progress) says so.
                bad(if e.is_eof() {
                    format!("truncated record: {e}")
                } else {
                    format!("not a record: {e}")
                });
                continue;
            }
        };
        if record.v != FORMAT_VERSION {
            bad(format!(
                "format version {} (this binary reads {FORMAT_VERSION})",
                record.v
            ));
            continue;
        }
        if record.call.world() != record.world.name() {
            bad(format!(
                "the call is of the {} world but the record says {}",
                record.call.world(),
                record.world
            ));
            continue;
        }
        report.records.read += 1;
        if record.world != world {
            report.records.other_world += 1;
            continue;
        }
        let Some((recorded, recorded_price)) = answer(world, record.outcome, record.error) else {
            report.records.read -= 1;
            bad("the answer is neither an outcome of its world nor an error code".into());
            continue;
        };
        report.records.replayed += 1;
        let computed = candidate.evaluate_call(&record.call, Some(record.now));
        let (now_answer, now_price) = match computed {
            Ok(outcome) => {
                let value = outcome_json(&outcome);
                match classify(world, &value) {
                    Some((class, price)) => (
                        Answer {
                            class,
                            outcome: Some(value),
                            error: None,
                        },
                        price,
                    ),
                    None => (
                        Answer {
                            class: "error",
                            outcome: None,
                            error: Some("invalid_output".into()),
                        },
                        None,
                    ),
                }
            }
            Err(e) => (
                Answer {
                    class: "error",
                    outcome: None,
                    error: Some(e.kind().into()),
                },
                None,
            ),
        };
        if let (Some(r), Some(c)) = (&recorded_price, &now_price)
            && let Some(d) = delta(r, c)
        {
            deltas.push(d);
        }
        let transition = format!("{}->{}", recorded.class, now_answer.class);
        *report.transitions.entry(transition.clone()).or_default() += 1;
        let same = recorded.outcome == now_answer.outcome && recorded.error == now_answer.error;
        if same {
            report.unchanged += 1;
            continue;
        }
        report.changed += 1;
        if report.examples.len() < examples {
            report.examples.push(Example {
                file: path.to_owned(),
                line: line_no,
                transition,
                now: record.now,
                call: record.call,
                recorded,
                candidate: now_answer,
            });
        }
    }
}

fn outcome_json(outcome: &Outcome) -> Value {
    serde_json::to_value(outcome).unwrap_or(Value::Null)
}

/// The report for a terminal.
pub fn render_text(report: &ReplayReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let r = &report.records;
    let _ = writeln!(
        out,
        "candidate {} ({} world, sha256 {})",
        report.candidate.name, report.world, report.candidate.sha256
    );
    let _ = writeln!(
        out,
        "records: {} read, {} replayed, {} of another world skipped, {} bad lines",
        r.read, r.replayed, r.other_world, r.invalid
    );
    let _ = writeln!(
        out,
        "answers: {} unchanged, {} changed",
        report.unchanged, report.changed
    );
    for (transition, count) in &report.transitions {
        let _ = writeln!(out, "  {transition}: {count}");
    }
    if let Some(p) = &report.price {
        let _ = writeln!(
            out,
            "price deltas (candidate - recorded) over {} quotes, {} changed: min {}, median {}, max {}",
            p.compared, p.changed, p.min, p.median, p.max
        );
    }
    for e in &report.examples {
        let show = |a: &Answer| match (&a.outcome, &a.error) {
            (Some(o), _) => o.to_string(),
            (None, Some(e)) => format!("error {e}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "example {}:{} ({}):\n  input     {}\n  recorded  {}\n  candidate {}",
            e.file.display(),
            e.line,
            e.transition,
            serde_json::to_string(&e.call).unwrap_or_default(),
            show(&e.recorded),
            show(&e.candidate)
        );
    }
    out
}
