//! Policies as OCI artefacts: `grid-gateway policy push|pull` and the node's pulls.
//!
//! An artefact is an OCI image manifest whose config has the media type wasm OCI tooling
//! uses (`application/vnd.wasm.config.v0+json`), with one `application/wasm` layer (the
//! component) and at most one settings layer ([`SETTINGS_MEDIA_TYPE`]). Its signature is a
//! second artefact under the tag `sha256-<hex>.sig` in the same repository: an EIP-191
//! signature by an Ethereum account over the manifest digest ([`signature`]).
//!
//! A pull verifies before anything is used: the manifest's bytes against its digest (and the
//! pinned digest), the signature against the trusted signers, then every layer against the
//! digest the signed manifest names. Nothing in here compiles or loads a policy.

pub mod credentials;
pub mod follower;
pub mod signature;

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::Digest as _;

pub use credentials::Credentials;
pub use signature::{SignatureDoc, Signer, TrustedSigners};

/// Media type of the artefact's config (and its `artifactType`), as wasm OCI tooling uses.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the settings layer (the policy's settings JSON).
pub const SETTINGS_MEDIA_TYPE: &str = "application/vnd.grid.policy.settings.v1+json";
/// Media type of a signature artefact's config and layer.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.grid.policy.signature.v1+json";
/// Annotation naming the world a policy artefact serves.
pub const WORLD_ANNOTATION: &str = "dev.grid.policy.world";

/// Why an artefact was not pushed, pulled or accepted. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    /// The reference does not parse.
    #[error("invalid OCI reference {reference:?}: {message}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why.
        message: String,
    },
    /// The registry could not be reached or answered with an error.
    #[error("registry: {0}")]
    Registry(String),
    /// The registry refused the credentials (or asked for some and there were none).
    #[error("registry refused the credentials: {0}")]
    Unauthorized(String),
    /// No such manifest.
    #[error("{0} not found in the registry")]
    NotFound(String),
    /// Bytes did not hash to the digest that names them (the manifest, a pinned digest or
    /// a layer): tampered with in the registry or on the way.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest that names the bytes.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// Signatures are required and the artefact has none.
    #[error("{0} has no signature")]
    Unsigned(String),
    /// The signature does not verify over this digest.
    #[error("invalid signature: {0}")]
    SignatureInvalid(String),
    /// A valid signature, by an account not in the trusted signers.
    #[error("signed by {0}, which is not a trusted signer")]
    SignerUntrusted(String),
    /// Not a policy artefact (media types, layers).
    #[error("not a grid policy artefact: {0}")]
    InvalidArtefact(String),
    /// A layer larger than `policy.max_file_bytes`.
    #[error("a layer of {size} bytes is larger than the {limit} bytes allowed")]
    TooLarge {
        /// The layer's declared size.
        size: i64,
        /// The cap.
        limit: u64,
    },
    /// The credentials file could not be read.
    #[error("registry credentials {path}: {message}")]
    Credentials {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// `[policy.oci]` names worlds but trusts nobody: registry artefacts are only ever
    /// loaded signed.
    #[error("policy.oci.trusted_signers is empty: registry artefacts are only loaded signed")]
    NoTrustedSigners,
    /// The signing key could not be read.
    #[error("signing key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl OciError {
    /// A stable snake_case code for logs, metrics and `/_grid/v1/node`.
    pub fn code(&self) -> &'static str {
        match self {
            OciError::InvalidReference { .. } => "policy_reference_invalid",
            OciError::Registry(_) => "registry_unavailable",
            OciError::Unauthorized(_) => "registry_unauthorized",
            OciError::NotFound(_) => "policy_not_found",
            OciError::DigestMismatch { .. } => "policy_digest_mismatch",
            OciError::Unsigned(_) => "policy_unsigned",
            OciError::SignatureInvalid(_) => "policy_signature_invalid",
            OciError::SignerUntrusted(_) => "policy_signer_untrusted",
            OciError::InvalidArtefact(_) => "policy_artifact_invalid",
            OciError::TooLarge { .. } => "policy_file_too_large",
            OciError::Credentials { .. } => "registry_credentials_invalid",
            OciError::Key { .. } => "sign_key_invalid",
            OciError::NoTrustedSigners => "policy_trusted_signers_missing",
        }
    }

    /// Whether the same pull would fail the same way (a bad artefact) rather than perhaps
    /// succeed later (the registry down).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, OciError::Registry(_) | OciError::Unauthorized(_))
    }
}

fn from_client(what: &str, e: OciDistributionError) -> OciError {
    match e {
        OciDistributionError::DigestError(d) => OciError::DigestMismatch {
            expected: what.to_owned(),
            actual: d.to_string(),
        },
        OciDistributionError::ImageManifestNotFoundError(_) => OciError::NotFound(what.to_owned()),
        OciDistributionError::AuthenticationFailure(m) => OciError::Unauthorized(m),
        OciDistributionError::UnauthorizedError { url } => OciError::Unauthorized(url),
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            OciError::NotFound(what.to_owned())
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::Unauthorized
                        | oci_client::errors::OciErrorCode::Denied
                )
            }) =>
        {
            OciError::Unauthorized(what.to_owned())
        }
        OciDistributionError::ServerError { code: 404, .. } => OciError::NotFound(what.to_owned()),
        OciDistributionError::ServerError { code: 401, .. } => {
            OciError::Unauthorized(what.to_owned())
        }
        other => OciError::Registry(format!("{what}: {other}")),
    }
}

/// Parses an OCI reference (`registry/repo:tag` or `registry/repo@sha256:…`).
pub fn parse_reference(reference: &str) -> Result<Reference, OciError> {
    reference
        .parse::<Reference>()
        .map_err(|e| OciError::InvalidReference {
            reference: reference.to_owned(),
            message: e.to_string(),
        })
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port`) spoken to in plain HTTP, e.g. one on loopback.
    pub plain_http: Vec<String>,
    /// Credentials per registry; anonymous for the others.
    pub credentials: Credentials,
}

/// A policy as pulled and verified.
#[derive(Clone, Debug)]
pub struct Artefact {
    /// The manifest digest (`sha256:<hex>`): what was signed, what is in force.
    pub digest: String,
    /// The world the artefact says it serves, if it says.
    pub world: Option<String>,
    /// The component.
    pub wasm: Vec<u8>,
    /// The settings JSON ("" when the artefact has none).
    pub settings: String,
    /// Who signed it, when it was verified against trusted signers.
    pub signer: Option<String>,
    /// The manifest's bytes (what `digest` names), kept with the cache so a restart can
    /// verify the cached files again offline.
    pub manifest: Vec<u8>,
    /// The verified signature, when there was one.
    pub signature: Option<SignatureDoc>,
}

/// What a push produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pushed {
    /// The reference pushed to.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The signer, when signed.
    pub signer: Option<String>,
}

/// A client of OCI registries for policy artefacts.
pub struct Registry {
    client: Client,
    credentials: Credentials,
}

impl Registry {
    /// A client with these options. TLS is rustls on the ring provider, as the rest of the
    /// gateway.
    pub fn new(options: RegistryOptions) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if options.plain_http.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(options.plain_http)
        };
        let client = Client::new(ClientConfig {
            protocol,
            ..ClientConfig::default()
        });
        Registry {
            client,
            credentials: options.credentials,
        }
    }

    fn auth(&self, reference: &Reference) -> RegistryAuth {
        self.credentials.auth_for(reference.resolve_registry())
    }

    async fn push_blob(&self, reference: &Reference, bytes: Vec<u8>) -> Result<String, OciError> {
        let digest = digest_of(&bytes);
        self.client
            .push_blob(reference, bytes, &digest)
            .await
            .map_err(|e| from_client(&digest, e))?;
        Ok(digest)
    }

    async fn push_manifest(
        &self,
        reference: &Reference,
        manifest: &serde_json::Value,
    ) -> Result<String, OciError> {
        let bytes = serde_json::to_vec(manifest)
            .map_err(|e| OciError::InvalidArtefact(format!("manifest: {e}")))?;
        let digest = digest_of(&bytes);
        self.client
            .push_manifest_raw(
                reference,
                bytes,
                http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
            )
            .await
            .map_err(|e| from_client(&reference.whole(), e))?;
        Ok(digest)
    }

    /// Authenticates for pushing to `reference`'s repository.
    async fn login_push(&self, reference: &Reference) -> Result<(), OciError> {
        self.client
            .auth(
                reference,
                &self.auth(reference),
                oci_client::RegistryOperation::Push,
            )
            .await
            .map_err(|e| from_client(&reference.whole(), e))?;
        Ok(())
    }

    /// Pushes a component and its settings as a policy artefact to `reference` (a tag),
    /// signed by `signer` when given. Returns the manifest digest.
    pub async fn push(
        &self,
        reference: &str,
        world: &str,
        wasm: Vec<u8>,
        settings: Option<Vec<u8>>,
        signer: Option<&Signer>,
    ) -> Result<Pushed, OciError> {
        let reference = parse_reference(reference)?;
        self.login_push(&reference).await?;
        let config = br#"{}"#.to_vec();
        let config_size = config.len();
        let config_digest = self.push_blob(&reference, config).await?;
        let mut layers = vec![descriptor(
            WASM_MEDIA_TYPE,
            wasm.len(),
            self.push_blob(&reference, wasm).await?,
        )];
        if let Some(settings) = settings {
            let size = settings.len();
            layers.push(descriptor(
                SETTINGS_MEDIA_TYPE,
                size,
                self.push_blob(&reference, settings).await?,
            ));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "artifactType": CONFIG_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, config_size, config_digest),
            "layers": layers,
            "annotations": { WORLD_ANNOTATION: world },
        });
        let digest = self.push_manifest(&reference, &manifest).await?;
        let signed_by = match signer {
            Some(signer) => Some(self.attach_signature(&reference, &digest, signer).await?),
            None => None,
        };
        Ok(Pushed {
            reference: reference.whole(),
            digest,
            signer: signed_by,
        })
    }

    /// Signs the artefact `digest` in `reference`'s repository and pushes the signature
    /// under the tag `sha256-<hex>.sig`. Returns the signer's address.
    pub async fn attach_signature(
        &self,
        reference: &Reference,
        digest: &str,
        signer: &Signer,
    ) -> Result<String, OciError> {
        let doc = signer.sign(digest);
        self.push_signature_doc(reference, &doc).await?;
        Ok(doc.signer)
    }

    /// Pushes a signature document as `sha256-<hex>.sig` of `doc.digest` (tests push
    /// forged ones through it too).
    pub async fn push_signature_doc(
        &self,
        reference: &Reference,
        doc: &SignatureDoc,
    ) -> Result<(), OciError> {
        let target = signature_reference(reference, &doc.digest)?;
        self.login_push(&target).await?;
        let bytes = serde_json::to_vec(doc)
            .map_err(|e| OciError::InvalidArtefact(format!("signature: {e}")))?;
        let size = bytes.len();
        let blob = self.push_blob(&target, bytes).await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "artifactType": SIGNATURE_MEDIA_TYPE,
            "config": descriptor(SIGNATURE_MEDIA_TYPE, size, blob.clone()),
            "layers": [descriptor(SIGNATURE_MEDIA_TYPE, size, blob)],
        });
        self.push_manifest(&target, &manifest).await?;
        Ok(())
    }

    /// The manifest digest `reference` resolves to now (a HEAD request: cheap to poll).
    pub async fn resolve(&self, reference: &str) -> Result<String, OciError> {
        let reference = parse_reference(reference)?;
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_owned());
        }
        self.client
            .fetch_manifest_digest(&reference, &self.auth(&reference))
            .await
            .map_err(|e| from_client(&reference.whole(), e))
    }

    /// Pulls and verifies the artefact at `reference`: manifest digest, signature (when
    /// `trust` requires one), layer digests and sizes (at most `max_layer_bytes` each).
    pub async fn pull(
        &self,
        reference: &str,
        trust: &TrustedSigners,
        max_layer_bytes: u64,
    ) -> Result<Artefact, OciError> {
        let reference = parse_reference(reference)?;
        let auth = self.auth(&reference);
        let (bytes, _header_digest) = self
            .client
            .pull_manifest_raw(&reference, &auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| from_client(&reference.whole(), e))?;
        let digest = digest_of(&bytes);
        if let Some(pinned) = reference.digest()
            && pinned != digest
        {
            return Err(OciError::DigestMismatch {
                expected: pinned.to_owned(),
                actual: digest,
            });
        }
        let (signer, signature) = if trust.is_empty() {
            (None, None)
        } else {
            let doc = self.fetch_signature(&reference, &digest).await?;
            (Some(trust.verify(&doc, &digest)?), Some(doc))
        };
        let layers = PolicyLayers::of(&bytes)?;
        let wasm = self
            .pull_layer(&reference, &layers.wasm, max_layer_bytes)
            .await?;
        let settings = match &layers.settings {
            Some(layer) => {
                String::from_utf8(self.pull_layer(&reference, layer, max_layer_bytes).await?)
                    .map_err(|_| OciError::InvalidArtefact("settings are not UTF-8".into()))?
            }
            None => String::new(),
        };
        Ok(Artefact {
            digest,
            world: layers.world,
            wasm,
            settings,
            signer,
            manifest: bytes.to_vec(),
            signature,
        })
    }

    async fn pull_layer(
        &self,
        reference: &Reference,
        layer: &OciDescriptor,
        max_layer_bytes: u64,
    ) -> Result<Vec<u8>, OciError> {
        if layer.size < 0 || layer.size as u64 > max_layer_bytes {
            return Err(OciError::TooLarge {
                size: layer.size,
                limit: max_layer_bytes,
            });
        }
        let mut out = Vec::with_capacity(layer.size as usize);
        self.client
            .pull_blob(reference, layer, &mut out)
            .await
            .map_err(|e| from_client(&layer.digest, e))?;
        let actual = digest_of(&out);
        if actual != layer.digest {
            return Err(OciError::DigestMismatch {
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    async fn fetch_signature(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<SignatureDoc, OciError> {
        let target = signature_reference(reference, digest)?;
        let auth = self.auth(&target);
        let (bytes, _) = match self
            .client
            .pull_manifest_raw(&target, &auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| from_client(&target.whole(), e))
        {
            Ok(found) => found,
            Err(OciError::NotFound(_)) => return Err(OciError::Unsigned(digest.to_owned())),
            Err(other) => return Err(other),
        };
        let manifest: OciImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::SignatureInvalid(format!("signature manifest: {e}")))?;
        if manifest.config.media_type != SIGNATURE_MEDIA_TYPE {
            return Err(OciError::SignatureInvalid(format!(
                "signature config media type {}",
                manifest.config.media_type
            )));
        }
        let doc = self
            .pull_layer(&target, &manifest.config, 64 << 10)
            .await
            .map_err(|e| match e {
                OciError::Registry(_) | OciError::Unauthorized(_) => e,
                other => OciError::SignatureInvalid(other.to_string()),
            })?;
        serde_json::from_slice(&doc)
            .map_err(|e| OciError::SignatureInvalid(format!("signature document: {e}")))
    }
}

/// The layers of a policy artefact's manifest.
struct PolicyLayers {
    wasm: OciDescriptor,
    settings: Option<OciDescriptor>,
    world: Option<String>,
}

impl PolicyLayers {
    fn of(manifest: &[u8]) -> Result<Self, OciError> {
        let manifest: OciImageManifest = serde_json::from_slice(manifest)
            .map_err(|e| OciError::InvalidArtefact(format!("manifest: {e}")))?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(OciError::InvalidArtefact(format!(
                "config media type {} (expected {CONFIG_MEDIA_TYPE})",
                manifest.config.media_type
            )));
        }
        let mut wasm = None;
        let mut settings = None;
        for layer in manifest.layers {
            let slot = match layer.media_type.as_str() {
                WASM_MEDIA_TYPE => &mut wasm,
                SETTINGS_MEDIA_TYPE => &mut settings,
                other => {
                    return Err(OciError::InvalidArtefact(format!(
                        "unexpected layer media type {other}"
                    )));
                }
            };
            if slot.is_some() {
                return Err(OciError::InvalidArtefact(format!(
                    "two {} layers",
                    layer.media_type
                )));
            }
            *slot = Some(layer);
        }
        Ok(PolicyLayers {
            wasm: wasm
                .ok_or_else(|| OciError::InvalidArtefact("no application/wasm layer".into()))?,
            settings,
            world: manifest
                .annotations
                .as_ref()
                .and_then(|a| a.get(WORLD_ANNOTATION).cloned()),
        })
    }
}

/// Verifies an artefact kept on disk as thoroughly as a pull: the manifest against its
/// digest, the signature (when `trust` names signers) and the files against the layer
/// digests the manifest names.
pub fn verify_offline(artefact: &Artefact, trust: &TrustedSigners) -> Result<String, OciError> {
    let actual = digest_of(&artefact.manifest);
    if actual != artefact.digest {
        return Err(OciError::DigestMismatch {
            expected: artefact.digest.clone(),
            actual,
        });
    }
    let signer = if trust.is_empty() {
        None
    } else {
        let doc = artefact
            .signature
            .as_ref()
            .ok_or_else(|| OciError::Unsigned(artefact.digest.clone()))?;
        Some(trust.verify(doc, &artefact.digest)?)
    };
    let layers = PolicyLayers::of(&artefact.manifest)?;
    let check = |layer: &OciDescriptor, bytes: &[u8]| {
        let actual = digest_of(bytes);
        if actual == layer.digest {
            Ok(())
        } else {
            Err(OciError::DigestMismatch {
                expected: layer.digest.clone(),
                actual,
            })
        }
    };
    check(&layers.wasm, &artefact.wasm)?;
    match &layers.settings {
        Some(layer) => check(layer, artefact.settings.as_bytes())?,
        None if artefact.settings.is_empty() => {}
        None => {
            return Err(OciError::InvalidArtefact(
                "settings without a settings layer".into(),
            ));
        }
    }
    Ok(signer.unwrap_or_default())
}

/// The reference of the signature of `digest` in `reference`'s repository.
pub fn signature_reference(reference: &Reference, digest: &str) -> Result<Reference, OciError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| OciError::InvalidArtefact(format!("digest {digest} is not sha256")))?;
    Ok(Reference::with_tag(
        reference.registry().to_owned(),
        reference.repository().to_owned(),
        format!("sha256-{hex}.sig"),
    ))
}

fn descriptor(media_type: &str, size: usize, digest: String) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "size": size, "digest": digest })
}

/// Reads a file for a push, as a CLI argument names it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, OciError> {
    std::fs::read(path).map_err(|e| OciError::InvalidArtefact(format!("{}: {e}", path.display())))
}
