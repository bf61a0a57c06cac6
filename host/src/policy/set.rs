//! The policy versions in service, one per world, swapped atomically, and the async entry
//! points the rest of the gateway calls.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use grid_policy_sdk as sdk;
use grid_policy_sdk::fixture::{Call, Outcome};

use super::compiled::{CompiledPolicy, PolicyInfo, rfc3339};
use super::engine::PolicyEngine;
use super::error::{EvalError, LoadError};
use super::lifecycle::{DEFAULT_KEEP_PREVIOUS, Lifecycle};
use super::metrics::ReloadLabels;
use super::recording;
use super::shadow::{self, ShadowConfig, ShadowCounters};
use super::world::World;

/// Why a policy question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No version of the world's policy is in service (the operator's file failed to load
    /// at start and there is no earlier version). The gateway fails closed.
    #[error("no {0} policy is loaded")]
    NotLoaded(World),
    /// The policy gave no answer.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// The last failed load of a world, kept until a later load succeeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadFailure {
    /// Stable code ([`LoadError::code`]).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
    /// Fingerprint of the rejected files when the failure is permanent, so an unchanged
    /// bad file is not recompiled on every scan; `None` retries on the next scan.
    #[serde(skip)]
    pub(crate) fingerprint: Option<String>,
}

/// One world's state, for `/_grid/v1/node`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorldStatus {
    /// The world.
    pub world: World,
    /// The version in service, if any.
    pub current: Option<PolicyInfo>,
    /// The last failed load since that version, if any.
    pub last_error: Option<LoadFailure>,
    /// The candidate evaluated in shadow, if any.
    pub candidate: Option<PolicyInfo>,
    /// The versions kept for rollback, newest first.
    pub previous: Vec<PolicyInfo>,
    /// What shadow evaluation found so far.
    pub shadow: ShadowCounters,
}

struct Slot {
    current: ArcSwapOption<CompiledPolicy>,
    last_error: Mutex<Option<LoadFailure>>,
}

/// The policies in service.
pub struct PolicySet {
    engine: PolicyEngine,
    slots: [Slot; 3],
    reload_lock: tokio::sync::Mutex<()>,
    max_file_bytes: u64,
    /// Worlds whose policy comes from a registry artefact: the policy directory and the
    /// built-in policies do not apply to them.
    remote: [std::sync::atomic::AtomicBool; 3],
    /// `policy.require_signatures`: files of the policy directory (unsigned) are refused.
    require_signatures: bool,
    /// `[policy.recording]`, when on.
    recorder: Option<Arc<super::recording::Recorder>>,
    /// Candidates, kept versions, shadow results ([`super::lifecycle`]).
    pub(super) lifecycle: Lifecycle,
}

/// Default of `policy.max_file_bytes`: 64 MiB, far above any real policy (the reference
/// policies are a few hundred KB) and small enough that a stray file cannot make a reload
/// read gigabytes into memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

impl PolicySet {
    /// An empty set on this engine.
    pub fn new(engine: PolicyEngine) -> Self {
        let slot = || Slot {
            current: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
        };
        let lifecycle = Lifecycle::new(
            engine.metrics().clone(),
            ShadowConfig::default(),
            DEFAULT_KEEP_PREVIOUS,
        );
        PolicySet {
            lifecycle,
            engine,
            slots: [slot(), slot(), slot()],
            reload_lock: tokio::sync::Mutex::new(()),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            remote: Default::default(),
            require_signatures: false,
            recorder: None,
        }
    }

    /// The recorder, when `[policy.recording]` is on.
    pub fn recorder(&self) -> Option<&Arc<super::recording::Recorder>> {
        self.recorder.as_ref()
    }

    /// Records every evaluation with `recorder` (`[policy.recording]`).
    pub fn with_recording(mut self, recorder: Arc<super::recording::Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Refuses the policy directory's files (`policy_unsigned`): with this, only signed
    /// registry artefacts and the built-in policies (part of the binary) serve.
    pub fn with_require_signatures(mut self, require: bool) -> Self {
        self.require_signatures = require;
        self
    }

    /// Whether unsigned local policy files are refused.
    pub fn requires_signatures(&self) -> bool {
        self.require_signatures
    }

    /// Marks `world` as served from a registry artefact only: a reload of the policy
    /// directory leaves it alone, and until an artefact is verified and loaded the world
    /// has no policy (the gateway fails closed rather than run another one).
    pub fn set_remote(&self, world: World) {
        self.remote[world.index()].store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `world` is served from a registry artefact.
    pub fn is_remote(&self, world: World) -> bool {
        self.remote[world.index()].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Caps the size of a policy file (`.wasm` or settings) a reload reads; larger files
    /// are refused with `policy_file_too_large` and the version in service stays.
    pub fn with_max_file_bytes(mut self, max_file_bytes: u64) -> Self {
        self.max_file_bytes = max_file_bytes;
        self
    }

    /// The largest policy file a reload reads, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Serialises rescans of the policy directory.
    pub(crate) fn reload_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.reload_lock
    }

    /// The engine policies are compiled on.
    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    fn slot(&self, world: World) -> &Slot {
        &self.slots[world.index()]
    }

    /// The version in service for `world`.
    pub fn current(&self, world: World) -> Option<Arc<CompiledPolicy>> {
        self.slot(world).current.load_full()
    }

    /// Replaces the version in service of `world`, returning the one replaced.
    pub(super) fn swap_current(
        &self,
        world: World,
        policy: Arc<CompiledPolicy>,
    ) -> Option<Arc<CompiledPolicy>> {
        self.slot(world).current.swap(Some(policy))
    }

    /// Puts `policy` into service for its world. Evaluations already running keep the
    /// version they started with (they hold an `Arc` to it); the replaced version is kept
    /// for rollback ([`super::lifecycle`]).
    pub fn install(&self, policy: CompiledPolicy) {
        self.install_by(policy, "config", None);
    }

    /// [`Self::install`], saying who installs it (`watcher`, `registry`, …) and from what
    /// origin (see [`super::lifecycle`]).
    pub fn install_by(&self, policy: CompiledPolicy, actor: &str, origin: Option<String>) {
        let world = policy.world();
        let info = policy.info().clone();
        self.install_arc(Arc::new(policy), actor, origin);
        let slot = self.slot(world);
        *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.count_reload(world, "ok");
        tracing::info!(
            world = %world,
            policy = %info.name,
            sha256 = %info.sha256,
            settings_sha256 = %info.settings_sha256,
            "policy loaded"
        );
    }

    /// Records a failed load; the version in service (if any) stays. `fingerprint` marks
    /// a permanent failure of those exact files (see [`LoadError::is_permanent`]).
    pub fn record_failure(&self, world: World, error: &LoadError, fingerprint: Option<String>) {
        self.count_reload(world, error.code());
        let message = error.to_string();
        let repeated = {
            let mut last = self
                .slot(world)
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let repeated = last.as_ref().is_some_and(|f| f.message == message);
            *last = Some(LoadFailure {
                code: error.code(),
                message,
                at: rfc3339(std::time::SystemTime::now()),
                fingerprint,
            });
            repeated
        };
        if repeated {
            // The same failure on every poll (an unreadable file, say) is logged once.
            return;
        }
        let serving = self.current(world).map(|p| p.info().name.clone());
        tracing::error!(
            world = %world,
            code = error.code(),
            error = %error,
            still_serving = serving.as_deref().unwrap_or("nothing"),
            "policy load failed; keeping the previous version"
        );
    }

    /// Forgets the last failure of `world` (its files went back to the version in service).
    pub(crate) fn clear_failure(&self, world: World) {
        *self
            .slot(world)
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The fingerprint of the last failed load of `world`, if it failed permanently.
    pub(crate) fn failed_fingerprint(&self, world: World) -> Option<String> {
        self.slot(world)
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|f| f.fingerprint.clone())
    }

    pub(super) fn count_candidate_failure(&self, world: World, code: &str) {
        self.count_reload(world, code);
    }

    fn count_reload(&self, world: World, result: &str) {
        self.engine
            .metrics()
            .reloads
            .get_or_create(&ReloadLabels {
                world: world.name().into(),
                result: result.into(),
            })
            .inc();
    }

    /// Every world's state.
    pub fn status(&self) -> Vec<WorldStatus> {
        World::ALL
            .into_iter()
            .map(|world| WorldStatus {
                world,
                current: self.current(world).map(|p| p.info().clone()),
                last_error: self
                    .slot(world)
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
                candidate: self.candidate(world).map(|p| p.info().clone()),
                previous: self.previous_versions(world),
                shadow: self.shadow_counters(world),
            })
            .collect()
    }

    /// True when every world has a policy in service.
    pub fn all_loaded(&self) -> bool {
        World::ALL.into_iter().all(|w| self.current(w).is_some())
    }

    fn require(&self, world: World) -> Result<Arc<CompiledPolicy>, PolicyError> {
        self.current(world).ok_or(PolicyError::NotLoaded(world))
    }

    /// pricing: quotes a request.
    pub async fn quote(
        &self,
        request: sdk::QuoteRequest,
        node: sdk::NodeInfo,
    ) -> Result<sdk::Quote, PolicyError> {
        let policy = self.require(World::Pricing)?;
        let record = recording::start(&self.recorder, &policy, || Call::Quote {
            request: request.clone(),
            node: node.clone(),
        });
        let candidate = self.shadow_for(World::Pricing);
        let answer = off_reactor(move || shadow::quote(&policy, candidate, &request, &node)).await;
        Ok(record.finish(answer.and_then(|a| a), |q| Outcome::Quote(q.clone()))?)
    }

    /// payee: checks an order.
    pub async fn check_payee(
        &self,
        order: sdk::Order,
        node: sdk::NodeInfo,
    ) -> Result<sdk::Decision, PolicyError> {
        let policy = self.require(World::Payee)?;
        let record = recording::start(&self.recorder, &policy, || Call::Check {
            order: order.clone(),
            node: node.clone(),
        });
        let candidate = self.shadow_for(World::Payee);
        let answer = off_reactor(move || shadow::check(&policy, candidate, &order, &node)).await;
        Ok(record.finish(answer.and_then(|a| a), |d| Outcome::Decision(d.clone()))?)
    }

    /// authorization: decides a session.
    pub async fn authorize_session(
        &self,
        request: sdk::SessionRequest,
    ) -> Result<sdk::SessionDecision, PolicyError> {
        let policy = self.require(World::Authorization)?;
        let record = recording::start(&self.recorder, &policy, || Call::AuthorizeSession {
            request: request.clone(),
        });
        let candidate = self.shadow_for(World::Authorization);
        let answer =
            off_reactor(move || shadow::authorize_session(&policy, candidate, &request)).await;
        Ok(record.finish(answer.and_then(|a| a), |d| Outcome::Session(d.clone()))?)
    }

    /// authorization: decides one request, on the calling thread when the policy allows
    /// it (`policy::inline`: a hand-off to an evaluation thread costs more than the
    /// evaluation), on an evaluation thread otherwise.
    pub async fn authorize_request(
        &self,
        request: sdk::RequestMeta,
    ) -> Result<sdk::Decision, PolicyError> {
        let policy = self.require(World::Authorization)?;
        let record = recording::start_request(&self.recorder, &policy, &request);
        // Sampled for shadowing (`policy.shadow.request_sample_rate`): the inputs are
        // copied now and the candidate runs on the shadow thread, after the live answer.
        let sample = self.sample_request(&policy, &request);
        let request = super::convert::request_meta_owned(request);
        let decision = match super::inline::evaluate_here(&policy, || {
            policy.authorize_request_wit(&request)
        }) {
            Some(decision) => decision,
            None => off_reactor(move || policy.authorize_request_wit(&request))
                .await
                .and_then(|a| a),
        };
        if let Some(sample) = sample {
            sample.send(&decision);
        }
        Ok(record.finish(decision, |d: &sdk::Decision| Outcome::Decision(d.clone()))?)
    }
}

/// Runs a blocking evaluation without stalling the async reactor: inside a runtime on the
/// evaluation threads ([`super::eval_pool`]); outside a runtime (the CLI) it just runs.
///
/// It must never run directly on a worker thread: besides stalling other tasks, WASI's
/// synchronous bindings enter the runtime (`block_on`), which is refused there.
pub(crate) async fn off_reactor<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, EvalError> {
    use super::eval_pool::{self, Rejected};
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(f());
    }
    eval_pool::run(f).await.map_err(|e| match e {
        Rejected::Busy => EvalError::Overloaded,
        Rejected::Lost => EvalError::Cancelled,
    })
}
