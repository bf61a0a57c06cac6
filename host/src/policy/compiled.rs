//! A policy version ready to serve: its compiled component, pre-linked for its world, its
//! settings, and its warm instances. Everything here is synchronous and may block for up
//! to the deadline; [`super::set`] runs it off the async reactor.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use grid_policy_sdk::{self as sdk, Call, Outcome};
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use super::bindings::authorization::{Authorization, AuthorizationPre};
use super::bindings::payee::{Payee, PayeePre};
use super::bindings::pricing::{Pricing, PricingPre};
use super::convert;
use super::engine::{EngineInner, PolicyEngine};
use super::error::{EvalError, LoadError};
use super::limits::Isolation;
use super::metrics::{EvaluationLabels, TrapLabels, WorldLabels};
use super::state::PolicyState;
use super::world::World;

/// The pre-linked component of one world: imports resolved and exports type-checked once,
/// so an instantiation only allocates and initialises.
enum WorldPre {
    Pricing(PricingPre<PolicyState>),
    Payee(PayeePre<PolicyState>),
    Authorization(AuthorizationPre<PolicyState>),
}

/// The typed exports of a live instance.
enum WorldExports {
    Pricing(Pricing),
    Payee(Payee),
    Authorization(Authorization),
}

/// A live instance and how many evaluations it served.
struct Instance {
    store: Store<PolicyState>,
    exports: WorldExports,
    uses: u32,
}

/// Where a policy version came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum PolicySource {
    /// Embedded in the gateway binary.
    Builtin,
    /// A file in the policy directory (or given on the command line).
    File(std::path::PathBuf),
    /// An artefact pulled from an OCI registry, by this reference (see
    /// [`PolicyInfo::artefact`] for the digest in force).
    Oci(String),
}

/// The registry artefact a version was pulled from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArtefactOrigin {
    /// The reference followed (`registry/repo:tag` or `registry/repo@sha256:...`).
    pub reference: String,
    /// The manifest digest in force (`sha256:<hex>`): what was signed.
    pub digest: String,
    /// The trusted account whose signature was verified.
    pub signer: Option<String>,
}

/// Identity of a loaded policy version, as shown on `/_grid/v1/node`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyInfo {
    /// The policy's name (e.g. `pricing-linear` or the file's stem).
    pub name: String,
    /// The world it serves.
    pub world: World,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    /// sha256 of the settings text, hex (of "" when there are none).
    pub settings_sha256: String,
    /// Where it came from.
    pub source: PolicySource,
    /// When it was put into service (RFC 3339).
    pub loaded_at: String,
    /// For a version pulled from a registry: the reference, digest and signer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artefact: Option<ArtefactOrigin>,
}

/// A compiled, validated policy version. Shared behind an `Arc`; evaluations that started
/// on it finish on it even after a newer version replaced it.
pub struct CompiledPolicy {
    engine: Arc<EngineInner>,
    info: PolicyInfo,
    label: Arc<str>,
    settings: Arc<str>,
    /// This policy's memory cap (`memory_bytes`, or its world's own).
    memory_bytes: usize,
    pre: WorldPre,
    warm: Mutex<Vec<Instance>>,
    /// False once an evaluation could not run on a runtime's thread ([`super::inline`]).
    inline: std::sync::atomic::AtomicBool,
    /// This version's series of the two metrics every evaluation records, looked up once:
    /// per evaluation they are then an atomic add and a bucket search, with no label
    /// strings made and no map searched (per proxied request with the policy on).
    evaluated_ok: prometheus_client::metrics::counter::Counter,
    duration: prometheus_client::metrics::histogram::Histogram,
}

/// sha256 of bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl PolicyEngine {
    /// Compiles `wasm` as a policy of `world`, checks it implements the world with only
    /// the imports the gateway provides, and has it validate `settings`. Blocking: a
    /// compilation takes tens of milliseconds for a Rust component and seconds for an
    /// interpreter-based one; a component compiled before is taken from memory or from the
    /// on-disk cache ([`super::disk_cache`]) instead.
    pub fn load(
        &self,
        world: World,
        name: &str,
        source: PolicySource,
        wasm: &[u8],
        settings: &str,
    ) -> Result<CompiledPolicy, LoadError> {
        let inner = &self.inner;
        let sha256 = sha256_hex(wasm);
        let cached = inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sha256);
        let from_disk = || {
            let component = inner.disk.as_ref()?.get(&inner.engine, &sha256)?;
            inner.metrics.compile_cache_loads.inc();
            Some(component)
        };
        let component = match cached.or_else(from_disk) {
            Some(component) => component,
            None => {
                inner.metrics.compilations.inc();
                let component = Component::from_binary(&inner.engine, wasm)
                    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                if let Some(disk) = &inner.disk {
                    disk.put(&sha256, &component);
                }
                component
            }
        };
        inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.clone(), component.clone());
        super::imports::check(&inner.engine, &component)?;
        let instance_pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports(format!("{e:#}")))?;
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            expected: world,
            detail: format!("{e:#}"),
        };
        let pre = match world {
            World::Pricing => {
                WorldPre::Pricing(PricingPre::new(instance_pre).map_err(wrong_world)?)
            }
            World::Payee => WorldPre::Payee(PayeePre::new(instance_pre).map_err(wrong_world)?),
            World::Authorization => {
                WorldPre::Authorization(AuthorizationPre::new(instance_pre).map_err(wrong_world)?)
            }
        };
        let label: Arc<str> = Arc::from(name);
        let policy = CompiledPolicy {
            engine: inner.clone(),
            info: PolicyInfo {
                name: name.to_owned(),
                world,
                sha256,
                settings_sha256: sha256_hex(settings.as_bytes()),
                source,
                loaded_at: rfc3339(SystemTime::now()),
                artefact: None,
            },
            label,
            settings: Arc::from(settings),
            memory_bytes: inner.limits.memory_bytes_of(world),
            pre,
            warm: Mutex::new(Vec::new()),
            inline: std::sync::atomic::AtomicBool::new(true),
            evaluated_ok: inner
                .metrics
                .evaluations
                .get_or_create(&EvaluationLabels {
                    world: world.name().into(),
                    policy: name.to_owned(),
                    outcome: "ok".into(),
                })
                .clone(),
            duration: inner
                .metrics
                .duration
                .get_or_create(&WorldLabels {
                    world: world.name().into(),
                })
                .clone(),
        };
        match policy.validate_settings(settings) {
            Ok(Ok(())) => Ok(policy),
            Ok(Err(message)) => Err(LoadError::SettingsRejected(message)),
            Err(e) => Err(LoadError::SettingsEvaluation(e)),
        }
    }
}

impl CompiledPolicy {
    /// Whether per-request evaluations run on the calling (HTTP worker) thread; false once
    /// one could not (see `policy::inline`), and then for the rest of this version's life.
    pub fn evaluates_inline(&self) -> bool {
        self.inline.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From now on, this version's per-request evaluations run on evaluation threads.
    pub(crate) fn evaluate_off_thread_from_now(&self) {
        self.inline
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// What this version is.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    /// Records the registry artefact this version was pulled from.
    pub fn with_artefact(mut self, origin: ArtefactOrigin) -> Self {
        self.info.artefact = Some(origin);
        self
    }

    /// The world it serves.
    pub fn world(&self) -> World {
        self.info.world
    }

    /// Runs `validate-settings` on a fresh instance that is not kept. It gets the longer
    /// load deadline: it runs once per version, on a cold instance, maybe on a busy machine,
    /// and a spurious timeout here would keep a good policy out of service.
    fn validate_settings(&self, settings: &str) -> Result<Result<(), String>, EvalError> {
        let mut instance = self.instantiate()?;
        let limits = &self.engine.limits;
        self.call_on(
            &mut instance,
            None,
            (limits.load_deadline_ticks(), limits.load_deadline),
            |exports, store| match exports {
                WorldExports::Pricing(p) => p.call_validate_settings(store, settings),
                WorldExports::Payee(p) => p.call_validate_settings(store, settings),
                WorldExports::Authorization(p) => p.call_validate_settings(store, settings),
            },
        )
    }

    /// pricing: `quote`.
    pub fn quote(
        &self,
        request: &sdk::QuoteRequest,
        node: &sdk::NodeInfo,
    ) -> Result<sdk::Quote, EvalError> {
        self.quote_at(request, node, None)
    }

    fn quote_at(
        &self,
        request: &sdk::QuoteRequest,
        node: &sdk::NodeInfo,
        now: Option<u64>,
    ) -> Result<sdk::Quote, EvalError> {
        let (request, node) = (convert::quote_request(request), convert::node(node));
        self.evaluate(
            World::Pricing,
            now,
            |exports, store| match exports {
                WorldExports::Pricing(p) => p.call_quote(store, &request, &node).map(Some),
                _ => Ok(None),
            },
            convert::quote_out,
        )
    }

    /// payee: `check`.
    pub fn check(
        &self,
        order: &sdk::Order,
        node: &sdk::NodeInfo,
    ) -> Result<sdk::Decision, EvalError> {
        self.check_at(order, node, None)
    }

    fn check_at(
        &self,
        order: &sdk::Order,
        node: &sdk::NodeInfo,
        now: Option<u64>,
    ) -> Result<sdk::Decision, EvalError> {
        let (order, node) = (convert::order(order), convert::node(node));
        self.evaluate(
            World::Payee,
            now,
            |exports, store| match exports {
                WorldExports::Payee(p) => p.call_check(store, &order, &node).map(Some),
                _ => Ok(None),
            },
            |d| Ok(convert::decision_out(d)),
        )
    }

    /// authorization: `authorize-session`.
    pub fn authorize_session(
        &self,
        request: &sdk::SessionRequest,
    ) -> Result<sdk::SessionDecision, EvalError> {
        self.authorize_session_at(request, None)
    }

    fn authorize_session_at(
        &self,
        request: &sdk::SessionRequest,
        now: Option<u64>,
    ) -> Result<sdk::SessionDecision, EvalError> {
        let request = convert::session_request(request);
        self.evaluate(
            World::Authorization,
            now,
            |exports, store| match exports {
                WorldExports::Authorization(p) => {
                    p.call_authorize_session(store, &request).map(Some)
                }
                _ => Ok(None),
            },
            |d| Ok(convert::session_decision_out(d)),
        )
    }

    /// authorization: `authorize-request`.
    pub fn authorize_request(
        &self,
        request: &sdk::RequestMeta,
    ) -> Result<sdk::Decision, EvalError> {
        self.authorize_request_at(request, None)
    }

    fn authorize_request_at(
        &self,
        request: &sdk::RequestMeta,
        now: Option<u64>,
    ) -> Result<sdk::Decision, EvalError> {
        self.authorize_converted(&convert::request_meta(request), now)
    }

    /// authorization: `authorize-request` with the request already in its WIT form (the
    /// proxy's path converts by move, without a copy).
    pub(crate) fn authorize_request_wit(
        &self,
        request: &super::bindings::types::RequestMeta,
    ) -> Result<sdk::Decision, EvalError> {
        self.authorize_converted(request, None)
    }

    fn authorize_converted(
        &self,
        request: &super::bindings::types::RequestMeta,
        now: Option<u64>,
    ) -> Result<sdk::Decision, EvalError> {
        self.evaluate(
            World::Authorization,
            now,
            |exports, store| match exports {
                WorldExports::Authorization(p) => {
                    p.call_authorize_request(store, request).map(Some)
                }
                _ => Ok(None),
            },
            |d| Ok(convert::decision_out(d)),
        )
    }

    /// Evaluates a fixture's call, with its clock if it fixes one.
    pub fn evaluate_call(&self, call: &Call, now: Option<u64>) -> Result<Outcome, EvalError> {
        match call {
            Call::Quote { request, node } => self.quote_at(request, node, now).map(Outcome::Quote),
            Call::Check { order, node } => self.check_at(order, node, now).map(Outcome::Decision),
            Call::AuthorizeSession { request } => self
                .authorize_session_at(request, now)
                .map(Outcome::Session),
            Call::AuthorizeRequest { request } => self
                .authorize_request_at(request, now)
                .map(Outcome::Decision),
        }
    }

    fn count(&self, outcome: &str) {
        self.engine
            .metrics
            .evaluations
            .get_or_create(&EvaluationLabels {
                world: self.world().name().into(),
                policy: self.info.name.clone(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// One evaluation: take an instance, call, check the answer, and give the instance
    /// back only if all of that succeeded and it has uses left. Records metrics.
    fn evaluate<T, R>(
        &self,
        call_world: World,
        now: Option<u64>,
        call: impl FnOnce(&WorldExports, &mut Store<PolicyState>) -> wasmtime::Result<Option<T>>,
        answer: impl FnOnce(T) -> Result<R, EvalError>,
    ) -> Result<R, EvalError> {
        if call_world != self.world() {
            return Err(EvalError::WrongCall {
                call: call_world,
                policy: self.world(),
            });
        }
        let started = Instant::now();
        let limits = &self.engine.limits;
        let deadline = (limits.deadline_ticks(), limits.deadline);
        let result = self.checkout().and_then(|mut instance| {
            let result = self
                .call_on(&mut instance, now, deadline, call)
                .and_then(|raw| {
                    raw.ok_or(EvalError::WrongCall {
                        call: call_world,
                        policy: self.world(),
                    })
                })
                .and_then(answer);
            // A failed instance (trap, overrun, garbage answer) is dropped here with its
            // memory and state; only a clean one goes back.
            if result.is_ok() {
                self.checkin(instance);
            }
            result
        });
        let metrics = &self.engine.metrics;
        self.duration.observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => {
                self.evaluated_ok.inc();
            }
            Err(e) => {
                self.count(e.kind());
                let trap_kind = match e {
                    EvalError::Deadline(_) => Some("deadline"),
                    EvalError::Memory(_) => Some("memory"),
                    EvalError::Trap(_) => Some("other"),
                    _ => None,
                };
                if let Some(kind) = trap_kind {
                    metrics
                        .traps
                        .get_or_create(&TrapLabels {
                            world: self.world().name().into(),
                            kind: kind.into(),
                        })
                        .inc();
                }
                tracing::warn!(policy = %self.label, world = %self.world(), error = %e, "policy evaluation failed");
            }
        }
        result
    }

    /// Calls into `instance` under the deadline and budgets.
    fn call_on<R>(
        &self,
        instance: &mut Instance,
        now: Option<u64>,
        (deadline_ticks, budget): (u64, std::time::Duration),
        call: impl FnOnce(&WorldExports, &mut Store<PolicyState>) -> wasmtime::Result<R>,
    ) -> Result<R, EvalError> {
        instance.store.set_epoch_deadline(deadline_ticks);
        instance.store.data_mut().begin_evaluation(now, budget);
        let ticking = self.engine.ticker.ticking();
        let result = call(&instance.exports, &mut instance.store);
        drop(ticking);
        let dropped = instance.store.data_mut().end_evaluation();
        if dropped > 0 {
            self.engine
                .metrics
                .log_lines_dropped
                .get_or_create(&WorldLabels {
                    world: self.world().name().into(),
                })
                .inc_by(u64::from(dropped));
        }
        instance.uses = instance.uses.saturating_add(1);
        result.map_err(|e| self.classify(&instance.store, e))
    }

    /// Names a failure: a refused memory growth first (the guest usually aborts after
    /// it), then the epoch interrupt, then any other trap.
    fn classify(&self, store: &Store<PolicyState>, error: wasmtime::Error) -> EvalError {
        let limits = &self.engine.limits;
        if store.data().limiter.denied {
            return EvalError::Memory(self.memory_bytes);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => EvalError::Deadline(limits.deadline),
            _ => EvalError::Trap(format!("{error:#}")),
        }
    }

    /// A warm instance if one is waiting, else a new one.
    fn checkout(&self) -> Result<Instance, EvalError> {
        if matches!(self.engine.limits.isolation, Isolation::Pooled { .. }) {
            // A poisoned lock only means another thread panicked while holding it; the
            // vector itself is still consistent (push/pop), so keep using it.
            let warm = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
            if let Some(instance) = warm {
                return Ok(instance);
            }
        }
        self.instantiate()
    }

    /// Returns an instance to the warm pool if the isolation mode reuses instances, it has
    /// uses left, and the pool is not full.
    fn checkin(&self, instance: Instance) {
        let limits = &self.engine.limits;
        let Isolation::Pooled { max_uses } = limits.isolation else {
            return;
        };
        if instance.uses >= max_uses {
            return;
        }
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if warm.len() < limits.warm_instances_per_policy {
            warm.push(instance);
        }
    }

    fn instantiate(&self) -> Result<Instance, EvalError> {
        let limits = &self.engine.limits;
        let state = PolicyState::new(
            self.label.clone(),
            self.world(),
            self.settings.clone(),
            limits,
            self.memory_bytes,
        );
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Bounds what the host copies out of the guest per call (answers, log lines): a
        // list of entries that all point at one large string would otherwise make the host
        // allocate far more than the guest's own memory cap.
        store.set_hostcall_fuel(limits.transfer_bytes);
        // Instantiation runs start functions: hold it to the load deadline.
        store.set_epoch_deadline(limits.load_deadline_ticks());
        let ticking = self.engine.ticker.ticking();
        let exports = match &self.pre {
            WorldPre::Pricing(pre) => pre.instantiate(&mut store).map(WorldExports::Pricing),
            WorldPre::Payee(pre) => pre.instantiate(&mut store).map(WorldExports::Payee),
            WorldPre::Authorization(pre) => {
                pre.instantiate(&mut store).map(WorldExports::Authorization)
            }
        };
        drop(ticking);
        self.engine
            .metrics
            .instantiations
            .get_or_create(&WorldLabels {
                world: self.world().name().into(),
            })
            .inc();
        match exports {
            Ok(exports) => Ok(Instance {
                store,
                exports,
                uses: 0,
            }),
            Err(e) => Err(match self.classify(&store, e) {
                EvalError::Trap(message) => EvalError::Instantiate(message),
                other => other,
            }),
        }
    }
}

/// Formats a time as RFC 3339 UTC with second precision, without a date crate.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
