//! The node side: worlds whose policy is named by an OCI reference in `[policy.oci]`.
//!
//! For each such world the follower keeps the verified artefact in force, with its digest
//! ([`crate::policy::ArtefactOrigin`] on `/_grid/v1/node`). At start it loads the copy
//! cached in `<data_dir>/policy-oci/<world>/` (verified again: manifest digest, signature,
//! layer digests), so a node starts without the registry; then, and every
//! `poll_interval_ms`, it asks the registry which digest the reference names and, when that
//! is not the one in force, pulls it by digest, verifies it, compiles it and swaps it in.
//! A refused artefact is recorded with its code and not pulled again; the version in force
//! keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::Address;

use super::{
    Artefact, Credentials, OciError, Registry, RegistryOptions, SignatureDoc, TrustedSigners,
};
use crate::policy::lifecycle::{CandidateSource, CandidatesConfig, candidate_settings_path};
use crate::policy::limits::duration_ms;
use crate::policy::{
    ArtefactOrigin, CompiledPolicy, LifecycleError, LoadError, PolicySet, PolicySource, World,
};

/// `[policy.oci]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OciConfig {
    /// Reference of the pricing policy (`registry/repo:tag` or `registry/repo@sha256:...`).
    pub pricing: Option<String>,
    /// Reference of the payee policy.
    pub payee: Option<String>,
    /// Reference of the authorization policy.
    pub authorization: Option<String>,
    /// How often a tag is looked up again (a HEAD request). Default 30 s.
    #[serde(with = "duration_ms", rename = "poll_interval_ms")]
    pub poll_interval: Duration,
    /// Registries (`host:port`) spoken to in plain HTTP. Default none: HTTPS everywhere.
    pub plain_http: Vec<String>,
    /// Docker `config.json`-style credentials file. Default none: anonymous.
    pub credentials_file: Option<PathBuf>,
    /// Accounts whose signatures are accepted. Required when a world is named.
    pub trusted_signers: Vec<Address>,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            pricing: None,
            payee: None,
            authorization: None,
            poll_interval: Duration::from_secs(30),
            plain_http: Vec::new(),
            credentials_file: None,
            trusted_signers: Vec::new(),
        }
    }
}

impl OciConfig {
    /// The worlds named, with their references.
    pub fn references(&self) -> Vec<(World, String)> {
        [
            (World::Pricing, &self.pricing),
            (World::Payee, &self.payee),
            (World::Authorization, &self.authorization),
        ]
        .into_iter()
        .filter_map(|(w, r)| r.clone().map(|r| (w, r)))
        .collect()
    }

    /// Checks `[policy.candidates]` against this section: a path must be absolute, a
    /// reference must parse and needs trusted signers. `(key, message)` on error.
    pub fn validate_candidates(
        &self,
        candidates: &CandidatesConfig,
    ) -> Result<(), (&'static str, String)> {
        for (world, source) in candidates.sources() {
            let key = CandidatesConfig::key(world);
            if let CandidateSource::Oci(reference) = source {
                if reference.ends_with(".wasm") || reference.starts_with('.') {
                    return Err((
                        key,
                        format!("{reference}: a local candidate must be an absolute path"),
                    ));
                }
                super::parse_reference(&reference).map_err(|e| {
                    (
                        key,
                        format!("{e} (a local candidate is an absolute path to a .wasm file)"),
                    )
                })?;
                if self.trusted_signers.is_empty() {
                    return Err((
                        "policy.oci.trusted_signers",
                        "required when a candidate is named by reference: registry artefacts are only loaded signed".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the section: `(key, message)` on error.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let references = self.references();
        for (world, reference) in &references {
            let key = match world {
                World::Pricing => "policy.oci.pricing",
                World::Payee => "policy.oci.payee",
                World::Authorization => "policy.oci.authorization",
            };
            super::parse_reference(reference).map_err(|e| (key, e.to_string()))?;
        }
        if !references.is_empty() && self.trusted_signers.is_empty() {
            return Err((
                "policy.oci.trusted_signers",
                "required when a world is named by reference: registry artefacts are only loaded signed".into(),
            ));
        }
        if self.poll_interval < Duration::from_secs(1) {
            return Err((
                "policy.oci.poll_interval_ms",
                "must be at least 1000".into(),
            ));
        }
        // The credentials file is read when the node starts (a start with an unreadable
        // one fails, naming it), not here: `config check` may run where it is not.
        Ok(())
    }
}

/// What one check of one world did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowOutcome {
    /// The reference still names the version in force (or one already refused).
    Unchanged,
    /// A new version is in force.
    Loaded(String),
    /// Refused or unreachable, with its code; the version in force (if any) stays.
    Failed(&'static str),
}

struct Follow {
    world: World,
    reference: String,
    /// The digest last refused, not pulled again.
    refused: Mutex<Option<String>>,
}

/// Keeps the registry-named worlds on their verified artefacts.
pub struct Follower {
    set: Arc<PolicySet>,
    registry: Registry,
    trust: TrustedSigners,
    follows: Vec<Follow>,
    cache_dir: PathBuf,
    poll_interval: Duration,
}

impl Follower {
    /// A follower for `config`'s worlds, caching in `<data_dir>/policy-oci`. Marks those
    /// worlds as served from the registry only. `None` when no world is named.
    pub fn new(
        set: Arc<PolicySet>,
        config: &OciConfig,
        data_dir: &Path,
    ) -> Result<Option<Self>, OciError> {
        let references = config.references();
        if references.is_empty() {
            return Ok(None);
        }
        if config.trusted_signers.is_empty() {
            // Also checked by `validate`; here for a config built in code.
            return Err(OciError::NoTrustedSigners);
        }
        let credentials = match &config.credentials_file {
            Some(path) => Credentials::from_file(path)?,
            None => Credentials::default(),
        };
        let follows = references
            .into_iter()
            .map(|(world, reference)| {
                set.set_remote(world);
                Follow {
                    world,
                    reference,
                    refused: Mutex::new(None),
                }
            })
            .collect();
        Ok(Some(Follower {
            set,
            registry: Registry::new(RegistryOptions {
                plain_http: config.plain_http.clone(),
                credentials,
            }),
            trust: TrustedSigners::new(config.trusted_signers.clone()),
            follows,
            cache_dir: data_dir.join("policy-oci"),
            poll_interval: config.poll_interval,
        }))
    }

    /// The initial load: every world from its cache, then the registry once for each.
    pub async fn start(&self) {
        for follow in &self.follows {
            self.load_cached(follow).await;
        }
        self.check_once().await;
    }

    /// Asks the registry once for every world.
    pub async fn check_once(&self) -> Vec<(World, FollowOutcome)> {
        let mut outcomes = Vec::new();
        for follow in &self.follows {
            outcomes.push((follow.world, self.check(follow).await));
        }
        outcomes
    }

    /// Checks every `poll_interval_ms` until the task is aborted.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(self.poll_interval);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            poll.tick().await; // the first tick fires at once; start() just checked
            loop {
                poll.tick().await;
                self.check_once().await;
            }
        })
    }

    fn in_force(&self, world: World) -> Option<String> {
        // What this follower last installed: a promotion or rollback since then
        // (`policy::lifecycle`) stands until the registry names another digest.
        self.set.origin(world)
    }

    async fn check(&self, follow: &Follow) -> FollowOutcome {
        let digest = match self.registry.resolve(&follow.reference).await {
            Ok(digest) => digest,
            Err(e) => return self.fail(follow, None, e),
        };
        if self.in_force(follow.world).as_deref() == Some(digest.as_str()) {
            self.set.clear_failure(follow.world);
            return FollowOutcome::Unchanged;
        }
        if follow
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(digest.as_str())
        {
            return FollowOutcome::Unchanged;
        }
        // By digest, so a tag moved meanwhile cannot mix two versions.
        let pinned = match super::parse_reference(&follow.reference) {
            Ok(r) => r.clone_with_digest(digest.clone()).whole(),
            Err(e) => return self.fail(follow, Some(digest), e),
        };
        let artefact = match self
            .registry
            .pull(&pinned, &self.trust, self.set.max_file_bytes())
            .await
        {
            Ok(a) => a,
            Err(e) => return self.fail(follow, Some(digest), e),
        };
        match self.install(follow, artefact.clone()).await {
            Ok(()) => {
                if let Err(e) = self.write_cache(follow, &artefact) {
                    tracing::warn!(world = %follow.world, error = %e, "cannot cache the policy artefact; a restart will need the registry");
                }
                FollowOutcome::Loaded(artefact.digest)
            }
            Err(e) => {
                *follow.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest);
                FollowOutcome::Failed(e.code())
            }
        }
    }

    fn fail(&self, follow: &Follow, digest: Option<String>, e: OciError) -> FollowOutcome {
        if e.is_refusal()
            && let Some(digest) = digest
        {
            *follow.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest);
        }
        let code = e.code();
        self.set.record_failure(
            follow.world,
            &LoadError::Refused {
                code,
                message: format!("{}: {e}", follow.reference),
            },
            None,
        );
        FollowOutcome::Failed(code)
    }

    /// Compiles and puts a verified artefact into service.
    async fn install(&self, follow: &Follow, artefact: Artefact) -> Result<(), LoadError> {
        let world = follow.world;
        match compile(&self.set, world, &follow.reference, artefact).await {
            Ok(policy) => {
                let digest = policy.info().artefact.as_ref().map(|a| a.digest.clone());
                self.set.install_by(policy, "registry", digest);
                Ok(())
            }
            Err(e) => {
                self.set.record_failure(world, &e, None);
                Err(e)
            }
        }
    }

    fn world_cache(&self, world: World) -> PathBuf {
        self.cache_dir.join(world.name())
    }

    async fn load_cached(&self, follow: &Follow) {
        let Some(artefact) = self.read_cache(follow) else {
            return;
        };
        if let Some(pinned) = super::parse_reference(&follow.reference)
            .ok()
            .and_then(|r| r.digest().map(str::to_owned))
            && pinned != artefact.digest
        {
            return; // the config now pins another version
        }
        match super::verify_offline(&artefact, &self.trust) {
            Ok(_) => {
                let digest = artefact.digest.clone();
                if self.install(follow, artefact).await.is_ok() {
                    tracing::info!(world = %follow.world, %digest, "policy loaded from the artefact cache");
                }
            }
            Err(e) => {
                tracing::warn!(world = %follow.world, code = e.code(), error = %e, "ignoring the cached policy artefact");
            }
        }
    }

    fn read_cache(&self, follow: &Follow) -> Option<Artefact> {
        let dir = self.world_cache(follow.world);
        let reference = std::fs::read_to_string(dir.join("reference")).ok()?;
        if reference != follow.reference {
            return None;
        }
        let manifest = std::fs::read(dir.join("manifest.json")).ok()?;
        let signature: Option<SignatureDoc> = std::fs::read(dir.join("signature.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let settings = match std::fs::read(dir.join("settings.json")) {
            Ok(bytes) => String::from_utf8(bytes).ok()?,
            Err(_) => String::new(),
        };
        Some(Artefact {
            digest: super::digest_of(&manifest),
            world: Some(follow.world.name().to_owned()),
            wasm: std::fs::read(dir.join("component.wasm")).ok()?,
            settings,
            signer: None,
            manifest,
            signature,
        })
    }

    fn write_cache(&self, follow: &Follow, artefact: &Artefact) -> std::io::Result<()> {
        let dir = self.world_cache(follow.world);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        let write = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let temp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, dir.join(name))
        };
        // The reference last: a half-written cache fails verification and is ignored.
        let _ = std::fs::remove_file(dir.join("reference"));
        write("component.wasm", &artefact.wasm)?;
        if artefact.settings.is_empty() {
            let _ = std::fs::remove_file(dir.join("settings.json"));
        } else {
            write("settings.json", artefact.settings.as_bytes())?;
        }
        match &artefact.signature {
            Some(doc) => write(
                "signature.json",
                &serde_json::to_vec(doc).map_err(std::io::Error::other)?,
            )?,
            None => {
                let _ = std::fs::remove_file(dir.join("signature.json"));
            }
        }
        write("manifest.json", &artefact.manifest)?;
        write("reference", follow.reference.as_bytes())
    }
}

/// Pulls `reference` with `config`'s registry options, verifies it against its trusted
/// signers exactly as a followed artefact is (manifest digest, signature, layers),
/// compiles it and makes it `world`'s candidate ([`PolicySet::set_candidate`]).
pub async fn load_candidate(
    set: &PolicySet,
    config: &OciConfig,
    world: World,
    reference: &str,
    actor: &str,
) -> Result<crate::policy::PolicyInfo, LifecycleError> {
    let refused = |e: OciError| {
        LifecycleError::Load(LoadError::Refused {
            code: e.code(),
            message: format!("{reference}: {e}"),
        })
    };
    if config.trusted_signers.is_empty() {
        return Err(refused(OciError::NoTrustedSigners));
    }
    let credentials = match &config.credentials_file {
        Some(path) => Credentials::from_file(path).map_err(refused)?,
        None => Credentials::default(),
    };
    let registry = Registry::new(RegistryOptions {
        plain_http: config.plain_http.clone(),
        credentials,
    });
    let trust = TrustedSigners::new(config.trusted_signers.clone());
    let digest = registry.resolve(reference).await.map_err(refused)?;
    let pinned = super::parse_reference(reference)
        .map_err(refused)?
        .clone_with_digest(digest)
        .whole();
    let artefact = registry
        .pull(&pinned, &trust, set.max_file_bytes())
        .await
        .map_err(refused)?;
    let policy = compile(set, world, reference, artefact).await?;
    Ok(set.set_candidate(policy, actor))
}

/// Compiles a verified artefact off the reactor (a component may take seconds), named by
/// its reference and carrying where it came from (reference, digest, signer).
async fn compile(
    set: &PolicySet,
    world: World,
    reference: &str,
    artefact: Artefact,
) -> Result<CompiledPolicy, LoadError> {
    let origin = ArtefactOrigin {
        reference: reference.to_owned(),
        digest: artefact.digest.clone(),
        signer: artefact.signer.clone(),
    };
    let engine = set.engine().clone();
    let name = reference.to_owned();
    let policy = tokio::task::spawn_blocking(move || {
        engine.load(
            world,
            &name,
            PolicySource::Oci(name.clone()),
            &artefact.wasm,
            &artefact.settings,
        )
    })
    .await
    .map_err(|e| LoadError::Refused {
        code: "compile_task_failed",
        message: e.to_string(),
    })??;
    Ok(policy.with_artefact(origin))
}

/// Loads the candidates `[policy.candidates]` names (actor `config`): files through
/// [`PolicySet::load_candidate_file`], references through [`load_candidate`]. One that
/// fails is logged and counted; the node serves without it.
pub async fn load_candidates(set: &PolicySet, candidates: &CandidatesConfig, config: &OciConfig) {
    for (world, source) in candidates.sources() {
        let (named, loaded) = match &source {
            CandidateSource::File(wasm) => {
                let settings = candidate_settings_path(wasm);
                let settings = settings.exists().then_some(settings);
                (
                    wasm.display().to_string(),
                    set.load_candidate_file(world, wasm, settings.as_deref(), "config")
                        .await,
                )
            }
            CandidateSource::Oci(reference) => (
                reference.clone(),
                load_candidate(set, config, world, reference, "config").await,
            ),
        };
        if let Err(e) = loaded {
            set.candidate_failed(world, &named, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_absolute_files_or_signed_references() {
        let candidates = |pricing: &str| CandidatesConfig {
            pricing: Some(pricing.into()),
            ..CandidatesConfig::default()
        };
        let config = OciConfig::default();
        let key =
            |c: &CandidatesConfig, o: &OciConfig| o.validate_candidates(c).map_err(|(k, _)| k);
        assert_eq!(key(&candidates("/etc/c/pricing.wasm"), &config), Ok(()));
        assert_eq!(
            key(&candidates("candidates/pricing.wasm"), &config),
            Err("policy.candidates.pricing")
        );
        assert_eq!(
            key(&candidates("127.0.0.1:5000/grid/pricing:next"), &config),
            Err("policy.oci.trusted_signers")
        );
        let trusted = OciConfig {
            trusted_signers: vec![Address::repeat_byte(0x11)],
            ..OciConfig::default()
        };
        assert_eq!(
            key(&candidates("127.0.0.1:5000/grid/pricing:next"), &trusted),
            Ok(())
        );
    }

    #[test]
    fn a_named_world_needs_trusted_signers() {
        let config = OciConfig {
            pricing: Some("127.0.0.1:5000/grid/pricing:stable".into()),
            ..OciConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|(key, _)| key),
            Err("policy.oci.trusted_signers")
        );
        let engine = crate::policy::PolicyEngine::builder()
            .build()
            .expect("engine");
        let set = Arc::new(PolicySet::new(engine));
        let refused = Follower::new(set.clone(), &config, Path::new("/nonexistent"))
            .err()
            .map(|e| e.code());
        assert_eq!(refused, Some("policy_trusted_signers_missing"));
        // Nothing named: no follower, and the worlds stay the directory's.
        assert!(matches!(
            Follower::new(
                set.clone(),
                &OciConfig::default(),
                Path::new("/nonexistent")
            ),
            Ok(None)
        ));
        assert!(!set.is_remote(World::Pricing));
    }
}
