//! The lifecycle of policy versions beside the one in service: a **candidate** per world
//! (evaluated in shadow, [`super::shadow`], never enforced), **promotion** of the candidate
//! into service, and the **previous versions** kept compiled for an instant **rollback**.
//!
//! A version is identified by the sha256 of its component (`PolicyInfo::sha256`); a
//! version pulled from a registry also by its manifest digest (`sha256:<hex>`).
//!
//! Every change of the version in service goes through one place
//! ([`PolicySet::install_by`] for reloads, [`PolicySet::promote`], [`PolicySet::rollback`]):
//! the replaced version is pushed onto the world's history (newest first, at most
//! `policy.keep_previous_versions`), the change is logged under the target
//! `grid::policy::lifecycle` with who made it (`actor`: `config`, `watcher`, `registry`,
//! an operator's address) and counted in `grid_policy_lifecycle_changes_total`.
//!
//! A promotion or rollback outlives the files it did not come from: the watcher and the
//! registry follower remember what they last installed (the world's *origin*) and install
//! again only when that changes (a new file, a new digest behind the tag). A later hot
//! reload then replaces the promoted version like any other and pushes it onto the
//! history, from where a rollback can bring it back.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use grid_policy_sdk as sdk;

use super::compiled::{CompiledPolicy, PolicyInfo, PolicySource};
use super::error::LoadError;
use super::metrics::{ChangeLabels, PolicyMetrics};
use super::set::PolicySet;
use super::shadow::{
    Disagreement, RequestSample, Shadow, ShadowConfig, ShadowCounters, ShadowLog, ShadowQueue,
};
use super::world::World;

/// Default of `policy.keep_previous_versions`: enough to step back over a bad promotion
/// and the reload that followed it, at the memory of three compiled components per world.
pub const DEFAULT_KEEP_PREVIOUS: usize = 3;

/// `[policy.candidates]`: a candidate per world, loaded at start. Each is either an
/// absolute path to a `.wasm` file (its settings, if any, in the `.settings.json` file of
/// the same stem beside it: `/p/pricing-v2.wasm` → `/p/pricing-v2.settings.json`), loaded
/// with the checks of the policy directory, or an OCI reference, pulled and verified as
/// `[policy.oci]` artefacts are (its registry options and trusted signers).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandidatesConfig {
    /// Candidate of the pricing world.
    pub pricing: Option<String>,
    /// Candidate of the payee world.
    pub payee: Option<String>,
    /// Candidate of the authorization world.
    pub authorization: Option<String>,
}

/// Where a configured candidate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CandidateSource {
    /// A local `.wasm` file (absolute path).
    File(std::path::PathBuf),
    /// An OCI reference.
    Oci(String),
}

impl CandidatesConfig {
    /// The worlds named, with where their candidate comes from.
    pub fn sources(&self) -> Vec<(World, CandidateSource)> {
        [
            (World::Pricing, &self.pricing),
            (World::Payee, &self.payee),
            (World::Authorization, &self.authorization),
        ]
        .into_iter()
        .filter_map(|(w, named)| {
            let named = named.as_deref()?;
            Some((
                w,
                if named.starts_with('/') {
                    CandidateSource::File(named.into())
                } else {
                    CandidateSource::Oci(named.to_owned())
                },
            ))
        })
        .collect()
    }

    /// The config key naming `world`'s candidate.
    pub fn key(world: World) -> &'static str {
        match world {
            World::Pricing => "policy.candidates.pricing",
            World::Payee => "policy.candidates.payee",
            World::Authorization => "policy.candidates.authorization",
        }
    }
}

/// The settings file of a candidate `.wasm`: the same stem, `.settings.json`.
pub fn candidate_settings_path(wasm: &Path) -> std::path::PathBuf {
    wasm.with_extension("settings.json")
}

/// Why a lifecycle operation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LifecycleError {
    /// The world has no candidate to promote (`policy_no_candidate`).
    #[error("no {0} candidate is loaded")]
    NoCandidate(World),
    /// No kept version of the world has this id (`policy_version_unknown`).
    #[error("no kept {world} version is {version}")]
    UnknownVersion {
        /// The world.
        world: World,
        /// The id asked for.
        version: String,
    },
    /// The candidate could not be loaded (the load error's own code).
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl LifecycleError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::NoCandidate(_) => "policy_no_candidate",
            LifecycleError::UnknownVersion { .. } => "policy_version_unknown",
            LifecycleError::Load(e) => e.code(),
        }
    }
}

/// One world's versions besides the one in service.
#[derive(Default)]
struct WorldLife {
    candidate: ArcSwapOption<CompiledPolicy>,
    /// Replaced versions, newest first. Its lock also serialises changes of the version
    /// in service, so the history never misses one.
    previous: Mutex<VecDeque<Arc<CompiledPolicy>>>,
    /// What the watcher or the follower last installed (files' fingerprint, digest).
    origin: Mutex<Option<String>>,
}

/// Candidates, history and shadow state of a [`PolicySet`].
pub(crate) struct Lifecycle {
    worlds: [WorldLife; 3],
    shadow: ShadowConfig,
    keep_previous: usize,
    log: Arc<ShadowLog>,
    queue: ShadowQueue,
    metrics: PolicyMetrics,
}

impl Lifecycle {
    pub(crate) fn new(metrics: PolicyMetrics, shadow: ShadowConfig, keep_previous: usize) -> Self {
        Lifecycle {
            worlds: Default::default(),
            log: Arc::new(ShadowLog::new(metrics.clone(), shadow.keep_disagreements)),
            shadow,
            keep_previous,
            queue: ShadowQueue::default(),
            metrics,
        }
    }

    fn world(&self, world: World) -> &WorldLife {
        &self.worlds[world.index()]
    }

    fn count(&self, world: World, action: &str) {
        self.metrics
            .lifecycle_changes
            .get_or_create(&ChangeLabels {
                world: world.name().into(),
                action: action.into(),
            })
            .inc();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `version` names `policy`: its registry manifest digest (`sha256:<hex>`, which
/// covers component and settings), its component's sha256 (bare or `sha256:`-prefixed),
/// or `<component sha256>:<settings sha256>` to tell apart versions that differ only in
/// their settings.
fn is_version(policy: &CompiledPolicy, version: &str) -> bool {
    let info = policy.info();
    if info
        .artefact
        .as_ref()
        .is_some_and(|a| a.digest.eq_ignore_ascii_case(version))
    {
        return true;
    }
    let bare = version.strip_prefix("sha256:").unwrap_or(version);
    match bare.split_once(':') {
        Some((component, settings)) => {
            component.eq_ignore_ascii_case(&info.sha256)
                && settings.eq_ignore_ascii_case(&info.settings_sha256)
        }
        None => bare.eq_ignore_ascii_case(&info.sha256),
    }
}

impl PolicySet {
    /// Sets the shadow settings and how many replaced versions stay compiled per world
    /// (`policy.keep_previous_versions`).
    pub fn with_lifecycle(mut self, shadow: ShadowConfig, keep_previous: usize) -> Self {
        self.lifecycle = Lifecycle::new(self.engine().metrics().clone(), shadow, keep_previous);
        self
    }

    /// The shadow settings in force.
    pub fn shadow_config(&self) -> &ShadowConfig {
        &self.lifecycle.shadow
    }

    /// The candidate of `world`, if any.
    pub fn candidate(&self, world: World) -> Option<Arc<CompiledPolicy>> {
        self.lifecycle.world(world).candidate.load_full()
    }

    /// Makes `policy` its world's candidate (replacing any other): from now on it answers
    /// every question beside the live version, without being enforced.
    pub fn set_candidate(&self, policy: CompiledPolicy, actor: &str) -> PolicyInfo {
        let world = policy.world();
        let info = policy.info().clone();
        self.lifecycle
            .world(world)
            .candidate
            .store(Some(Arc::new(policy)));
        self.lifecycle.count(world, "candidate_set");
        tracing::info!(
            target: "grid::policy::lifecycle",
            world = %world,
            actor,
            policy = %info.name,
            sha256 = %info.sha256,
            digest = info.artefact.as_ref().map(|a| a.digest.as_str()),
            "policy candidate set"
        );
        info
    }

    /// Removes the candidate of `world`; returns what it was.
    pub fn clear_candidate(&self, world: World, actor: &str) -> Option<PolicyInfo> {
        let old = self.lifecycle.world(world).candidate.swap(None)?;
        self.lifecycle.count(world, "candidate_cleared");
        tracing::info!(
            target: "grid::policy::lifecycle",
            world = %world,
            actor,
            sha256 = %old.info().sha256,
            "policy candidate cleared"
        );
        Some(old.info().clone())
    }

    /// Loads a candidate from local files (a `.wasm` and optional settings), with the
    /// same checks as the policy directory: the size cap, settings validation, and
    /// refused (`policy_unsigned`) when `policy.require_signatures` is on.
    pub async fn load_candidate_file(
        &self,
        world: World,
        wasm: &Path,
        settings: Option<&Path>,
        actor: &str,
    ) -> Result<PolicyInfo, LifecycleError> {
        if self.requires_signatures() {
            return Err(LoadError::Refused {
                code: "policy_unsigned",
                message: format!(
                    "{} is an unsigned local file and policy.require_signatures is on",
                    wasm.display()
                ),
            }
            .into());
        }
        let limit = self.max_file_bytes();
        let read = |path: &Path| -> Result<Vec<u8>, LoadError> {
            match super::watcher::read_capped(path, limit) {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(LoadError::Read {
                    path: path.to_owned(),
                    message: "no such file".into(),
                }),
                Err((e, _)) => Err(e),
            }
        };
        let bytes = read(wasm)?;
        let settings = match settings {
            Some(path) => String::from_utf8(read(path)?).map_err(|_| LoadError::SettingsNotText)?,
            None => String::new(),
        };
        let name = wasm
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| wasm.display().to_string());
        let engine = self.engine().clone();
        let source = PolicySource::File(wasm.to_owned());
        let policy = tokio::task::spawn_blocking(move || {
            engine.load(world, &name, source, &bytes, &settings)
        })
        .await
        .map_err(|e| LoadError::Refused {
            code: "compile_task_failed",
            message: e.to_string(),
        })??;
        Ok(self.set_candidate(policy, actor))
    }

    /// Records a configured candidate that did not load: logged and counted
    /// (`grid_policy_reloads_total{result=<code>}`); the node serves without it.
    pub fn candidate_failed(&self, world: World, named: &str, error: &LifecycleError) {
        self.count_candidate_failure(world, error.code());
        tracing::error!(
            target: "grid::policy::lifecycle",
            world = %world,
            candidate = named,
            code = error.code(),
            error = %error,
            "policy candidate not loaded"
        );
    }

    /// Puts the candidate of `world` into service atomically (evaluations already running
    /// finish on the version they started with); the replaced version joins the history.
    pub fn promote(&self, world: World, actor: &str) -> Result<PolicyInfo, LifecycleError> {
        let life = self.lifecycle.world(world);
        let mut previous = lock(&life.previous);
        let candidate = life
            .candidate
            .swap(None)
            .ok_or(LifecycleError::NoCandidate(world))?;
        let info = candidate.info().clone();
        self.replace_live(world, candidate, &mut previous, "promote", actor);
        Ok(info)
    }

    /// Puts the kept version `version` back into service: the newest kept version it
    /// names (a registry digest, a component sha256, or `<sha256>:<settings sha256>`).
    /// The replaced version joins the history, so a rollback can itself be undone. A
    /// version naming only the one in service changes nothing.
    pub fn rollback(
        &self,
        world: World,
        version: &str,
        actor: &str,
    ) -> Result<PolicyInfo, LifecycleError> {
        let life = self.lifecycle.world(world);
        let mut previous = lock(&life.previous);
        let Some(at) = previous.iter().position(|p| is_version(p, version)) else {
            return match self.current(world) {
                Some(current) if is_version(&current, version) => Ok(current.info().clone()),
                _ => Err(LifecycleError::UnknownVersion {
                    world,
                    version: version.to_owned(),
                }),
            };
        };
        let Some(back) = previous.remove(at) else {
            unreachable!("position is in range")
        };
        let info = back.info().clone();
        self.replace_live(world, back, &mut previous, "rollback", actor);
        Ok(info)
    }

    /// The versions kept for rollback, newest first.
    pub fn previous_versions(&self, world: World) -> Vec<PolicyInfo> {
        lock(&self.lifecycle.world(world).previous)
            .iter()
            .map(|p| p.info().clone())
            .collect()
    }

    /// The kept disagreements, oldest first, of one world or of all.
    pub fn disagreements(&self, world: Option<World>) -> Vec<Disagreement> {
        self.lifecycle.log.recent(world)
    }

    /// Shadow counters of `world`.
    pub fn shadow_counters(&self, world: World) -> ShadowCounters {
        self.lifecycle.log.counters(world)
    }

    /// Puts a version loaded by a reload (the watcher, the registry follower, start-up)
    /// into service; `origin` is what it was loaded from (the files' fingerprint, the
    /// manifest digest) so the same origin is not installed again over a promotion.
    pub(crate) fn install_arc(
        &self,
        policy: Arc<CompiledPolicy>,
        actor: &str,
        origin: Option<String>,
    ) {
        let world = policy.world();
        let life = self.lifecycle.world(world);
        let mut previous = lock(&life.previous);
        *lock(&life.origin) = origin;
        self.replace_live(world, policy, &mut previous, "reload", actor);
    }

    /// What the watcher or follower last installed for `world`.
    pub(crate) fn origin(&self, world: World) -> Option<String> {
        lock(&self.lifecycle.world(world).origin).clone()
    }

    fn replace_live(
        &self,
        world: World,
        new: Arc<CompiledPolicy>,
        previous: &mut VecDeque<Arc<CompiledPolicy>>,
        action: &str,
        actor: &str,
    ) {
        let info = new.info().clone();
        let old = self.swap_current(world, new);
        let replaced = old.as_ref().map(|p| p.info().sha256.clone());
        if let Some(old) = old {
            // A version equal to the new one is not kept twice.
            previous.retain(|p| {
                p.info().sha256 != old.info().sha256
                    || p.info().settings_sha256 != old.info().settings_sha256
            });
            previous.push_front(old);
            previous.truncate(self.lifecycle.keep_previous);
        }
        self.lifecycle.count(world, action);
        tracing::info!(
            target: "grid::policy::lifecycle",
            world = %world,
            action,
            actor,
            policy = %info.name,
            sha256 = %info.sha256,
            digest = info.artefact.as_ref().map(|a| a.digest.as_str()),
            replaced = replaced.as_deref(),
            "policy version in service changed"
        );
    }

    /// The candidate to run beside an evaluation of `world`, when shadowing is on.
    pub(crate) fn shadow_for(&self, world: World) -> Option<Shadow> {
        if !self.lifecycle.shadow.enabled {
            return None;
        }
        Some(Shadow {
            candidate: self.candidate(world)?,
            log: self.lifecycle.log.clone(),
        })
    }

    /// Picks this per-request authorization for shadowing at the configured rate, copying
    /// its inputs; `None` (nothing copied) for most requests.
    pub(crate) fn sample_request(
        &self,
        live: &Arc<CompiledPolicy>,
        request: &sdk::RequestMeta,
    ) -> Option<RequestSample> {
        let rate = self.lifecycle.shadow.request_sample_rate;
        if rate <= 0.0 {
            return None;
        }
        let shadow = self.shadow_for(World::Authorization)?;
        if rate < 1.0 && rand::random::<f64>() >= rate {
            return None;
        }
        let queue = self.lifecycle.queue.sender()?;
        Some(RequestSample::new(
            live.clone(),
            shadow,
            queue,
            request.clone(),
        ))
    }
}
