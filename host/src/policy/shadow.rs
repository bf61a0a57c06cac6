//! Shadow evaluation: a candidate version answers the same questions as the live one and
//! is never enforced. The live answer is computed first and returned unchanged; the
//! candidate's answer is only compared with it. Disagreements are counted
//! (`grid_policy_shadow_disagreements_total{world,kind}`) and the last
//! `policy.shadow.keep_disagreements` are kept with their inputs and both answers.
//!
//! Quotes, payee checks and session decisions are rare and run the candidate right after
//! the live version, on the same evaluation thread: the caller waits for the extra
//! evaluation, nothing more (a candidate that traps or overruns its deadline costs at most
//! its deadline, and its failure is only recorded). Per-request authorization is on every
//! proxied request's path, so it is sampled (`policy.shadow.request_sample_rate`) and the
//! sampled inputs go to a bounded queue drained by one shadow thread: the serving thread
//! never waits for the candidate, and when the queue is full the sample is dropped and
//! counted (`grid_policy_shadow_dropped_total`).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use grid_policy_sdk::{self as sdk, Call, Outcome};

use super::compiled::{CompiledPolicy, rfc3339};
use super::error::EvalError;
use super::metrics::{PolicyMetrics, ShadowLabels, WorldLabels};
use super::world::World;

/// `[policy.shadow]`: how candidates are evaluated.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Evaluate candidates beside the live versions. Default true: naming a candidate is
    /// the operator's opt-in; false keeps candidates loaded (ready to promote) but idle.
    pub enabled: bool,
    /// Share of proxied requests whose per-request authorization also runs on the
    /// candidate, 0 to 1. Default 0.01: enough to see a policy's behaviour on busy traffic
    /// without doubling the evaluation work.
    pub request_sample_rate: f64,
    /// Disagreements kept (with inputs and both answers) for `/_grid/v1/node` and the
    /// operator API; older ones are forgotten. Default 100.
    pub keep_disagreements: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            enabled: true,
            request_sample_rate: 0.01,
            keep_disagreements: 100,
        }
    }
}

impl ShadowConfig {
    /// Checks the section: `(key, message)` on error.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.request_sample_rate) {
            return Err((
                "policy.shadow.request_sample_rate",
                format!("must be between 0 and 1, not {}", self.request_sample_rate),
            ));
        }
        Ok(())
    }
}

/// Sampled requests waiting for the shadow thread; one more is dropped and counted.
pub const SHADOW_QUEUE: usize = 1024;

/// What one version answered: its outcome, or why it gave none.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The policy answered.
    Outcome(Outcome),
    /// The policy gave no answer.
    Error {
        /// [`EvalError::kind`].
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl Answer {
    fn of<T>(result: &Result<T, EvalError>, outcome: impl FnOnce(&T) -> Outcome) -> Self {
        match result {
            Ok(answer) => Answer::Outcome(outcome(answer)),
            Err(e) => Answer::Error {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }
}

/// One question the live version and the candidate answered differently.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Disagreement {
    /// The world.
    pub world: World,
    /// `allow_to_deny`, `deny_to_allow` (the candidate would refuse what live allows, or
    /// the reverse; for quotes, acceptable or not), `price_delta` (same acceptance, another
    /// price), `scopes_changed` (both grant a session, with other scopes), `error` (the
    /// candidate gave no answer) or `live_error` (only the candidate answered).
    pub kind: &'static str,
    /// When (RFC 3339).
    pub at: String,
    /// sha256 of the live version's component.
    pub live_sha256: String,
    /// sha256 of the candidate's component.
    pub candidate_sha256: String,
    /// The question, as a `policy run` fixture's call.
    pub input: Call,
    /// The live version's answer (the one enforced).
    pub live: Answer,
    /// The candidate's answer (never enforced).
    pub candidate: Answer,
}

/// The disagreement kinds, in the order the node endpoint lists their counts.
pub const KINDS: [&str; 6] = [
    "allow_to_deny",
    "deny_to_allow",
    "price_delta",
    "scopes_changed",
    "error",
    "live_error",
];

/// Shadow counters of one world, for `/_grid/v1/node`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ShadowCounters {
    /// Questions the candidate answered (or failed) beside the live version.
    pub evaluations: u64,
    /// Disagreements by kind (every kind listed, zeros included).
    pub disagreements: std::collections::BTreeMap<&'static str, u64>,
    /// Sampled per-request evaluations dropped because the shadow queue was full.
    pub dropped: u64,
}

/// The shadow results: the ring of recent disagreements and the metrics. Shared with the
/// shadow thread.
pub(crate) struct ShadowLog {
    metrics: PolicyMetrics,
    keep: usize,
    recent: Mutex<VecDeque<Disagreement>>,
}

impl ShadowLog {
    pub(crate) fn new(metrics: PolicyMetrics, keep: usize) -> Self {
        ShadowLog {
            metrics,
            keep,
            recent: Mutex::new(VecDeque::with_capacity(keep.min(1024))),
        }
    }

    /// The kept disagreements, oldest first, of one world or of all.
    pub(crate) fn recent(&self, world: Option<World>) -> Vec<Disagreement> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|d| world.is_none_or(|w| d.world == w))
            .cloned()
            .collect()
    }

    pub(crate) fn counters(&self, world: World) -> ShadowCounters {
        let labels = WorldLabels {
            world: world.name().into(),
        };
        ShadowCounters {
            evaluations: self.metrics.shadow_evaluations.get_or_create(&labels).get(),
            disagreements: KINDS
                .into_iter()
                .map(|kind| (kind, self.metrics.shadow_disagreement_count(world, kind)))
                .collect(),
            dropped: self.metrics.shadow_dropped.get_or_create(&labels).get(),
        }
    }

    fn count_dropped(&self, world: World) {
        self.metrics
            .shadow_dropped
            .get_or_create(&WorldLabels {
                world: world.name().into(),
            })
            .inc();
    }

    /// Records one comparison; `kind` is `None` when both answers agree.
    fn record(
        &self,
        live_policy: &CompiledPolicy,
        candidate_policy: &CompiledPolicy,
        kind: Option<&'static str>,
        input: impl FnOnce() -> Call,
        live: Answer,
        candidate: Answer,
    ) {
        let world = live_policy.world();
        self.metrics
            .shadow_evaluations
            .get_or_create(&WorldLabels {
                world: world.name().into(),
            })
            .inc();
        let Some(kind) = kind else { return };
        self.metrics
            .shadow_disagreements
            .get_or_create(&ShadowLabels {
                world: world.name().into(),
                kind: kind.into(),
            })
            .inc();
        tracing::debug!(
            target: "grid::policy::shadow",
            world = %world,
            kind,
            live = %live_policy.info().sha256,
            candidate = %candidate_policy.info().sha256,
            "shadow disagreement"
        );
        if self.keep == 0 {
            return;
        }
        let entry = Disagreement {
            world,
            kind,
            at: rfc3339(std::time::SystemTime::now()),
            live_sha256: live_policy.info().sha256.clone(),
            candidate_sha256: candidate_policy.info().sha256.clone(),
            input: input(),
            live,
            candidate,
        };
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent.len() >= self.keep {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    fn observe_price_delta(&self, world: World, live: &sdk::Quote, candidate: &sdk::Quote) {
        // Relative to the live price; a live price of 0 is compared with 1 so that any
        // non-zero candidate price shows as a change.
        let (l, c) = (amount_f64(&live.price), amount_f64(&candidate.price));
        let ratio = (c - l) / l.max(1.0);
        self.metrics
            .shadow_price_delta
            .get_or_create(&WorldLabels {
                world: world.name().into(),
            })
            .observe(ratio);
    }
}

fn amount_f64(amount: &sdk::Amount) -> f64 {
    amount.to_string().parse().unwrap_or(f64::MAX)
}

/// A candidate to run beside one live evaluation.
pub(crate) struct Shadow {
    pub(crate) candidate: Arc<CompiledPolicy>,
    pub(crate) log: Arc<ShadowLog>,
}

fn error_kind<T, U>(
    live: &Result<T, EvalError>,
    candidate: &Result<U, EvalError>,
) -> Option<&'static str> {
    match (live, candidate) {
        (Ok(_), Err(_)) => Some("error"),
        (Err(_), Ok(_)) => Some("live_error"),
        _ => None,
    }
}

fn allow_kind(live: bool, candidate: bool) -> Option<&'static str> {
    match (live, candidate) {
        (true, false) => Some("allow_to_deny"),
        (false, true) => Some("deny_to_allow"),
        _ => None,
    }
}

/// pricing: the live quote, then the candidate's, compared.
pub(crate) fn quote(
    live: &CompiledPolicy,
    shadow: Option<Shadow>,
    request: &sdk::QuoteRequest,
    node: &sdk::NodeInfo,
) -> Result<sdk::Quote, EvalError> {
    let answer = live.quote(request, node);
    if let Some(Shadow { candidate, log }) = shadow {
        let other = candidate.quote(request, node);
        let kind = match (&answer, &other) {
            (Ok(l), Ok(c)) => {
                log.observe_price_delta(live.world(), l, c);
                allow_kind(l.acceptable(), c.acceptable())
                    .or_else(|| (l.price != c.price).then_some("price_delta"))
            }
            _ => error_kind(&answer, &other),
        };
        log.record(
            live,
            &candidate,
            kind,
            || Call::Quote {
                request: request.clone(),
                node: node.clone(),
            },
            Answer::of(&answer, |q| Outcome::Quote(q.clone())),
            Answer::of(&other, |q| Outcome::Quote(q.clone())),
        );
    }
    answer
}

/// payee: the live decision, then the candidate's, compared.
pub(crate) fn check(
    live: &CompiledPolicy,
    shadow: Option<Shadow>,
    order: &sdk::Order,
    node: &sdk::NodeInfo,
) -> Result<sdk::Decision, EvalError> {
    let answer = live.check(order, node);
    if let Some(Shadow { candidate, log }) = shadow {
        let other = candidate.check(order, node);
        compare_decisions(&log, live, &candidate, &answer, &other, || Call::Check {
            order: order.clone(),
            node: node.clone(),
        });
    }
    answer
}

fn compare_decisions(
    log: &ShadowLog,
    live: &CompiledPolicy,
    candidate: &CompiledPolicy,
    answer: &Result<sdk::Decision, EvalError>,
    other: &Result<sdk::Decision, EvalError>,
    input: impl FnOnce() -> Call,
) {
    let kind = match (answer, other) {
        (Ok(l), Ok(c)) => allow_kind(l.is_allowed(), c.is_allowed()),
        _ => error_kind(answer, other),
    };
    log.record(
        live,
        candidate,
        kind,
        input,
        Answer::of(answer, |d| Outcome::Decision(d.clone())),
        Answer::of(other, |d| Outcome::Decision(d.clone())),
    );
}

/// authorization: the live session decision, then the candidate's, compared. Grants are
/// compared by their scopes, not their expiry (which follows the clock of each call).
pub(crate) fn authorize_session(
    live: &CompiledPolicy,
    shadow: Option<Shadow>,
    request: &sdk::SessionRequest,
) -> Result<sdk::SessionDecision, EvalError> {
    let answer = live.authorize_session(request);
    if let Some(Shadow { candidate, log }) = shadow {
        let other = candidate.authorize_session(request);
        let kind = match (&answer, &other) {
            (Ok(l), Ok(c)) => match (l, c) {
                (sdk::SessionDecision::Grant(a), sdk::SessionDecision::Grant(b)) => {
                    (a.scopes != b.scopes).then_some("scopes_changed")
                }
                (sdk::SessionDecision::Grant(_), _) => Some("allow_to_deny"),
                (_, sdk::SessionDecision::Grant(_)) => Some("deny_to_allow"),
                _ => None,
            },
            _ => error_kind(&answer, &other),
        };
        log.record(
            live,
            &candidate,
            kind,
            || Call::AuthorizeSession {
                request: request.clone(),
            },
            Answer::of(&answer, |d| Outcome::Session(d.clone())),
            Answer::of(&other, |d| Outcome::Session(d.clone())),
        );
    }
    answer
}

/// A per-request authorization picked for shadowing: its inputs, taken before the live
/// evaluation consumed them.
pub(crate) struct RequestSample {
    live: Arc<CompiledPolicy>,
    shadow: Shadow,
    queue: SyncSender<Sampled>,
    request: sdk::RequestMeta,
}

pub(crate) struct Sampled {
    live: Arc<CompiledPolicy>,
    shadow: Shadow,
    request: sdk::RequestMeta,
    answer: Result<sdk::Decision, EvalError>,
}

impl RequestSample {
    pub(crate) fn new(
        live: Arc<CompiledPolicy>,
        shadow: Shadow,
        queue: SyncSender<Sampled>,
        request: sdk::RequestMeta,
    ) -> Self {
        RequestSample {
            live,
            shadow,
            queue,
            request,
        }
    }

    /// Hands the live answer and the inputs to the shadow thread; never waits. A full
    /// queue drops the sample and counts it.
    pub(crate) fn send(self, answer: &Result<sdk::Decision, EvalError>) {
        let log = self.shadow.log.clone();
        let world = self.live.world();
        let sampled = Sampled {
            live: self.live,
            shadow: self.shadow,
            request: self.request,
            answer: answer.clone(),
        };
        match self.queue.try_send(sampled) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                log.count_dropped(world)
            }
        }
    }
}

/// The queue to the shadow thread, started on first use.
#[derive(Default)]
pub(crate) struct ShadowQueue(OnceLock<Option<SyncSender<Sampled>>>);

impl ShadowQueue {
    /// The sender, starting the thread the first time; `None` if no thread can be started
    /// (then samples are not taken).
    pub(crate) fn sender(&self) -> Option<SyncSender<Sampled>> {
        self.0
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel(SHADOW_QUEUE);
                match std::thread::Builder::new()
                    .name("grid-policy-shadow".into())
                    .spawn(move || drain(rx))
                {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        tracing::error!(target: "grid::policy::shadow", error = %e, "cannot start the shadow thread; per-request shadowing is off");
                        None
                    }
                }
            })
            .clone()
    }
}

/// The shadow thread: evaluates sampled requests on their candidate until every sender is
/// gone (the policy set was dropped).
fn drain(queue: Receiver<Sampled>) {
    while let Ok(Sampled {
        live,
        shadow: Shadow { candidate, log },
        request,
        answer,
    }) = queue.recv()
    {
        let other = candidate.authorize_request(&request);
        compare_decisions(&log, &live, &candidate, &answer, &other, move || {
            Call::AuthorizeRequest { request }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_rate_is_a_share() {
        for (rate, ok) in [
            (0.0, true),
            (1.0, true),
            (0.5, true),
            (-0.1, false),
            (1.5, false),
        ] {
            let config = ShadowConfig {
                request_sample_rate: rate,
                ..ShadowConfig::default()
            };
            assert_eq!(
                config.validate().map_err(|(key, _)| key),
                if ok {
                    Ok(())
                } else {
                    Err("policy.shadow.request_sample_rate")
                },
                "{rate}"
            );
        }
    }
}
