//! `GET /_grid/v1/node`'s answer, typed for the OpenAPI document: the node's state
//! ([`NodeStatus`]) as the API shows it. The policy runtime's and the guest SDK's types
//! know nothing of the API, so they have views here; the certificates' states
//! ([`CertificateStatus`], [`AcmeHostStatus`]) exist for this answer only and are their
//! own schemas. Every object is closed (`additionalProperties:
//! false`, from `deny_unknown_fields`), so a field the gateway starts sending without
//! documenting it fails the schema checks (the node test, schemathesis in CI).

use serde::Serialize;
use utoipa::ToSchema;

use crate::capacity::CapacitySnapshot;
use crate::gateway::NodeStatus;
use crate::policy::set::LoadFailure;
use crate::policy::{ArtefactOrigin, PolicyInfo, PolicySource, ShadowCounters, World, WorldStatus};
use crate::tls::{AcmeHostStatus, CertificateStatus};
use grid_policy_sdk::Resources;

/// The node: wallet, chain, capacity, the policies in service and the certificates.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeResponse {
    /// The node wallet (orders must name it as provider), EIP-55 checksummed.
    pub wallet: String,
    /// The chain id.
    pub chain_id: u64,
    /// The Market, EIP-55 checksummed; `null` without `[chain]`.
    pub market: Option<String>,
    /// Total and free capacity.
    pub capacity: CapacityView,
    /// Per world, the version in service and the last failed load since.
    pub policies: Vec<WorldView>,
    /// The certificates from files and their last reload errors (absent without `[tls]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Vec<CertificateStatus>>,
    /// The certificates from ACME, per host: validity, renewal time, failures (absent
    /// without `[tls.acme]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<Vec<AcmeHostStatus>>,
}

/// Total and free capacity.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityView {
    /// All capacity the node offers.
    pub total: ResourcesView,
    /// What accepted orders leave.
    pub free: ResourcesView,
}

/// Compute resources.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesView {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Persistent storage in bytes.
    pub storage_bytes: u64,
    /// Number of GPUs.
    pub gpus: u32,
    /// GPU model offered; `null` when not stated.
    pub gpu_model: Option<String>,
}

/// A world of `grid:policy`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorldName {
    /// What an order costs.
    Pricing,
    /// Whether an order's payee is acceptable.
    Payee,
    /// Who gets a session and which requests it may make.
    Authorization,
}

/// One world's policy state.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorldView {
    /// The world.
    pub world: WorldName,
    /// The version in service; `null` when none loaded (the world fails closed).
    pub current: Option<PolicyView>,
    /// The last failed load since that version; `null` when none.
    pub last_error: Option<LoadFailureView>,
    /// The candidate evaluated in shadow beside it (`[policy.candidates]`); `null` when none.
    pub candidate: Option<PolicyView>,
    /// Replaced versions kept compiled for a rollback, newest first.
    pub previous: Vec<PolicyView>,
    /// What shadow evaluation has seen since start.
    pub shadow: ShadowView,
}

/// Shadow evaluation's counters for one world.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowView {
    /// Questions the candidate answered (or failed) beside the live version.
    pub evaluations: u64,
    /// Disagreements by kind.
    pub disagreements: DisagreementCounts,
    /// Sampled per-request evaluations dropped because the shadow queue was full.
    pub dropped: u64,
}

/// Disagreements between the live version and the candidate, by kind.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisagreementCounts {
    /// The candidate would refuse what the live version allows.
    pub allow_to_deny: u64,
    /// The candidate would allow what the live version refuses.
    pub deny_to_allow: u64,
    /// Both quoted, at different prices.
    pub price_delta: u64,
    /// Both granted a session, with different scopes.
    pub scopes_changed: u64,
    /// The candidate failed where the live version answered.
    pub error: u64,
    /// The live version failed where the candidate answered.
    pub live_error: u64,
}

/// A policy version in service.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyView {
    /// The policy's name (e.g. `pricing-linear` or the file's stem).
    pub name: String,
    /// The world it serves.
    pub world: WorldName,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    /// sha256 of the settings text, hex (of "" when there are none).
    pub settings_sha256: String,
    /// Where it came from.
    pub source: SourceView,
    /// When it was put into service (RFC 3339).
    pub loaded_at: String,
    /// For a version pulled from a registry: the reference, digest and signer (absent
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artefact: Option<ArtefactView>,
}

/// Where a policy version came from.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Embedded in the gateway binary.
    Builtin,
    /// A file in the policy directory.
    File,
    /// An artefact pulled from an OCI registry.
    Oci,
}

/// Where a policy version came from: its kind, and the file or reference.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceView {
    /// `builtin`, `file` or `oci`.
    pub kind: SourceKind,
    /// The file (`file`) or the reference followed (`oci`); absent for `builtin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The registry artefact a version was pulled from.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtefactView {
    /// The reference followed (`registry/repo:tag` or `registry/repo@sha256:...`).
    pub reference: String,
    /// The manifest digest in force (`sha256:<hex>`): what was signed.
    pub digest: String,
    /// The trusted account whose signature was verified; `null` when unsigned.
    pub signer: Option<String>,
}

/// A failed policy load.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadFailureView {
    /// Stable snake_case code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

impl From<NodeStatus> for NodeResponse {
    fn from(node: NodeStatus) -> Self {
        NodeResponse {
            wallet: node.wallet,
            chain_id: node.chain_id,
            market: node.market,
            capacity: node.capacity.into(),
            policies: node.policies.into_iter().map(Into::into).collect(),
            tls: node.tls,
            acme: node.acme,
        }
    }
}

impl From<CapacitySnapshot> for CapacityView {
    fn from(capacity: CapacitySnapshot) -> Self {
        CapacityView {
            total: capacity.total.into(),
            free: capacity.free.into(),
        }
    }
}

impl From<Resources> for ResourcesView {
    fn from(r: Resources) -> Self {
        ResourcesView {
            cpu_millis: r.cpu_millis,
            memory_bytes: r.memory_bytes,
            storage_bytes: r.storage_bytes,
            gpus: r.gpus,
            gpu_model: r.gpu_model,
        }
    }
}

impl From<World> for WorldName {
    fn from(world: World) -> Self {
        match world {
            World::Pricing => WorldName::Pricing,
            World::Payee => WorldName::Payee,
            World::Authorization => WorldName::Authorization,
        }
    }
}

impl From<WorldStatus> for WorldView {
    fn from(status: WorldStatus) -> Self {
        WorldView {
            world: status.world.into(),
            current: status.current.map(Into::into),
            last_error: status.last_error.map(Into::into),
            candidate: status.candidate.map(Into::into),
            previous: status.previous.into_iter().map(Into::into).collect(),
            shadow: status.shadow.into(),
        }
    }
}

impl From<ShadowCounters> for ShadowView {
    fn from(counters: ShadowCounters) -> Self {
        let kind = |name: &str| counters.disagreements.get(name).copied().unwrap_or(0);
        ShadowView {
            evaluations: counters.evaluations,
            disagreements: DisagreementCounts {
                allow_to_deny: kind("allow_to_deny"),
                deny_to_allow: kind("deny_to_allow"),
                price_delta: kind("price_delta"),
                scopes_changed: kind("scopes_changed"),
                error: kind("error"),
                live_error: kind("live_error"),
            },
            dropped: counters.dropped,
        }
    }
}

impl From<PolicyInfo> for PolicyView {
    fn from(info: PolicyInfo) -> Self {
        PolicyView {
            name: info.name,
            world: info.world.into(),
            sha256: info.sha256,
            settings_sha256: info.settings_sha256,
            source: info.source.into(),
            loaded_at: info.loaded_at,
            artefact: info.artefact.map(Into::into),
        }
    }
}

impl From<PolicySource> for SourceView {
    fn from(source: PolicySource) -> Self {
        let (kind, path) = match source {
            PolicySource::Builtin => (SourceKind::Builtin, None),
            PolicySource::File(path) => (SourceKind::File, Some(path.display().to_string())),
            PolicySource::Oci(reference) => (SourceKind::Oci, Some(reference)),
        };
        SourceView { kind, path }
    }
}

impl From<ArtefactOrigin> for ArtefactView {
    fn from(origin: ArtefactOrigin) -> Self {
        ArtefactView {
            reference: origin.reference,
            digest: origin.digest,
            signer: origin.signer,
        }
    }
}

impl From<LoadFailure> for LoadFailureView {
    fn from(failure: LoadFailure) -> Self {
        LoadFailureView {
            code: failure.code.to_owned(),
            message: failure.message,
            at: failure.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view serializes as the domain types did (the API's shape is unchanged), for
    /// every source kind and the optional parts.
    #[test]
    fn the_view_keeps_the_domain_shape() {
        let info = |source: PolicySource, artefact: Option<ArtefactOrigin>| PolicyInfo {
            name: "p".into(),
            world: World::Payee,
            sha256: "ab".into(),
            settings_sha256: "cd".into(),
            source,
            loaded_at: "2026-01-01T00:00:00Z".into(),
            artefact,
        };
        let artefact = ArtefactOrigin {
            reference: "r/p:1".into(),
            digest: "sha256:00".into(),
            signer: None,
        };
        for info in [
            info(PolicySource::Builtin, None),
            info(PolicySource::File("/p/payee.wasm".into()), None),
            info(PolicySource::Oci("r/p:1".into()), Some(artefact)),
        ] {
            let domain = serde_json::to_value(&info).unwrap();
            let view = serde_json::to_value(PolicyView::from(info)).unwrap();
            assert_eq!(view, domain);
        }
    }
}
