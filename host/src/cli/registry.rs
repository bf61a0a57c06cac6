//! `grid-gateway policy push|pull|sign`: a policy and its settings as a signed OCI
//! artefact (see [`crate::oci`] for the format).

use std::path::{Path, PathBuf};

use crate::oci::{
    Credentials, OciError, Pushed, Registry, RegistryOptions, Signer, TrustedSigners,
    parse_reference,
};
use crate::policy::World;
use crate::policy::watcher::{settings_path, wasm_path};

/// How the commands reach the registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the reference's registry (a registry on loopback).
    pub plain_http: bool,
    /// A Docker `config.json`-style credentials file.
    pub credentials: Option<PathBuf>,
}

impl RegistryArgs {
    fn registry(&self, reference: &str) -> Result<Registry, OciError> {
        let parsed = parse_reference(reference)?;
        let credentials = match &self.credentials {
            Some(path) => Credentials::from_file(path)?,
            None => Credentials::default(),
        };
        Ok(Registry::new(RegistryOptions {
            plain_http: if self.plain_http {
                vec![parsed.resolve_registry().to_owned()]
            } else {
                Vec::new()
            },
            credentials,
        }))
    }
}

/// `policy push`: uploads the component (and settings), signed with `sign_key` if given.
pub async fn push(
    args: &RegistryArgs,
    reference: &str,
    world: World,
    policy: &Path,
    settings: Option<&Path>,
    sign_key: Option<&Path>,
) -> Result<Pushed, OciError> {
    let registry = args.registry(reference)?;
    let signer = sign_key.map(Signer::from_key_file).transpose()?;
    let wasm = crate::oci::read_file(policy)?;
    let settings = settings.map(crate::oci::read_file).transpose()?;
    registry
        .push(reference, world.name(), wasm, settings, signer.as_ref())
        .await
}

/// `policy sign`: signs what `reference` resolves to now and pushes the signature.
pub async fn sign(
    args: &RegistryArgs,
    reference: &str,
    sign_key: &Path,
) -> Result<Pushed, OciError> {
    let registry = args.registry(reference)?;
    let signer = Signer::from_key_file(sign_key)?;
    let digest = registry.resolve(reference).await?;
    let parsed = parse_reference(reference)?;
    let address = registry.attach_signature(&parsed, &digest, &signer).await?;
    Ok(Pushed {
        reference: parsed.whole(),
        digest,
        signer: Some(address),
    })
}

/// What `policy pull` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
    /// The verified signer, when trusted signers were given.
    pub signer: Option<String>,
    /// The component written.
    pub wasm: PathBuf,
    /// The settings written, when the artefact has some.
    pub settings: Option<PathBuf>,
}

/// `policy pull`: downloads and verifies the artefact, and writes it into `out` as a
/// policy directory expects it (`<world>.wasm`, `<world>.settings.json`).
pub async fn pull(
    args: &RegistryArgs,
    reference: &str,
    world: World,
    trusted: Vec<alloy::primitives::Address>,
    out: &Path,
) -> Result<Pulled, OciError> {
    let registry = args.registry(reference)?;
    let artefact = registry
        .pull(
            reference,
            &TrustedSigners::new(trusted),
            crate::policy::DEFAULT_MAX_FILE_BYTES,
        )
        .await?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes)
            .map(|()| path.clone())
            .map_err(|e| OciError::InvalidArtefact(format!("cannot write {}: {e}", path.display())))
    };
    let wasm = write(wasm_path(out, world), &artefact.wasm)?;
    let settings = if artefact.settings.is_empty() {
        None
    } else {
        Some(write(
            settings_path(out, world),
            artefact.settings.as_bytes(),
        )?)
    };
    Ok(Pulled {
        digest: artefact.digest,
        signer: artefact.signer,
        wasm,
        settings,
    })
}
