//! Why a manifest is refused, with a stable code for each reason.

use std::fmt;
use std::time::Duration;

/// Where a refusal points: the object and the field inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The object, as `Kind "name"`, or `Kind (object #n)` while it has no name.
    pub object: String,
    /// The field, as a path in the object (`spec.template.spec.containers[0].image`).
    pub field: String,
    /// What is wrong with the field; the message reads `object: field reason`.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(
        object: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Refusal {
            object: object.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.object, self.field, self.reason)
    }
}

/// Why a manifest is refused. Every variant but [`ManifestError::Internal`] is the user's
/// fault (the host answers 422); [`ManifestError::code`] gives the stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The manifest is larger than `max_bytes`.
    #[error("the manifest is {size} bytes, above the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not YAML: bad syntax, not UTF-8, a duplicate key, an alias to an undefined anchor.
    #[error("the manifest is not valid YAML: {0}")]
    InvalidYaml(String),
    /// The YAML trips a parse budget: an alias bomb, nesting too deep, too many nodes,
    /// events, anchors, aliases or bytes of text.
    #[error("the manifest exceeds a parse limit: {0}")]
    BudgetExceeded(String),
    /// Parsing took longer than `parse_timeout_ms`.
    #[error("parsing the manifest took longer than {} ms", .0.as_millis())]
    ParseTimeout(Duration),
    /// More objects (non-empty YAML documents) than `max_documents`.
    #[error("the manifest has more than {max} objects")]
    TooManyDocuments {
        /// The limit.
        max: usize,
    },
    /// No objects at all: empty, or only empty documents and comments.
    #[error("the manifest has no objects")]
    Empty,
    /// A kind (or apiVersion) outside the allowlist.
    #[error("{0}")]
    KindNotAllowed(Refusal),
    /// A cluster-scoped kind (Namespace, ClusterRole, PersistentVolume, ...).
    #[error("{0}")]
    ClusterScoped(Refusal),
    /// A namespace other than the order's, or a reference into another namespace.
    #[error("{0}")]
    NamespaceMismatch(Refusal),
    /// A privileged container, or a Windows host-process one.
    #[error("{0}")]
    Privileged(Refusal),
    /// `hostNetwork`, `hostPID` or `hostIPC`.
    #[error("{0}")]
    HostNamespace(Refusal),
    /// A `hostPath` volume.
    #[error("{0}")]
    HostPath(Refusal),
    /// A container port bound on the node (`hostPort`, `hostIP`).
    #[error("{0}")]
    HostPort(Refusal),
    /// A volume type other than configMap, secret, emptyDir, persistentVolumeClaim,
    /// projected, downwardAPI and ephemeral.
    #[error("{0}")]
    VolumeType(Refusal),
    /// Added Linux capabilities (other than `NET_BIND_SERVICE`).
    #[error("{0}")]
    Capabilities(Refusal),
    /// `allowPrivilegeEscalation: true`.
    #[error("{0}")]
    PrivilegeEscalation(Refusal),
    /// A security context that turns off confinement: seccomp or AppArmor `Unconfined`,
    /// `procMount: Unmasked`.
    #[error("{0}")]
    SecurityContext(Refusal),
    /// Placement that bypasses the scheduler or the cluster's taints: `nodeName`, a
    /// toleration of every taint or of the control plane's.
    #[error("{0}")]
    NodeSelection(Refusal),
    /// `priorityClassName` or `priority`.
    #[error("{0}")]
    PriorityClass(Refusal),
    /// A service-account token: `automountServiceAccountToken: true`, a projected token, a
    /// token Secret, or a service account other than `default`.
    #[error("{0}")]
    ServiceAccount(Refusal),
    /// A Service of type NodePort, LoadBalancer or ExternalName (or with `externalName`).
    #[error("{0}")]
    ServiceType(Refusal),
    /// A Service with `externalIPs`.
    #[error("{0}")]
    ExternalIps(Refusal),
    /// A claim bound by hand to a named PersistentVolume (`volumeName`).
    #[error("{0}")]
    VolumeBinding(Refusal),
    /// `metadata.finalizers` other than the built-in PVC protection: nothing in the sandbox
    /// would remove them, and they would hold the namespace at teardown.
    #[error("{0}")]
    Finalizers(Refusal),
    /// The manifest asks for more of a resource than the order has (summed over objects).
    #[error(
        "the manifest asks for {requested} of {resource}, above the order's {available} ({breakdown})"
    )]
    ResourcesExceeded {
        /// `cpu`, `memory`, `nvidia.com/gpu`, `storage`, `pods`, `persistentvolumeclaims`,
        /// or `limits.cpu`/`limits.memory` when only the limits are over.
        resource: String,
        /// The manifest's total, as a quantity.
        requested: String,
        /// The order's amount, as a quantity.
        available: String,
        /// Where the total comes from (`Deployment "web": 3 × 500m, ...`), or why.
        breakdown: String,
    },
    /// A resource the order does not sell: an extended resource other than
    /// `nvidia.com/gpu`, hugepages, dynamic resource claims, pod-level resources.
    #[error("{0}")]
    ResourceNotOffered(Refusal),
    /// A field the Kubernetes API the gateway checks against (1.32) does not have: a typo,
    /// or a field of a newer release. The API server refuses those too (strict validation).
    #[error("{0}")]
    UnknownField(Refusal),
    /// An object of an allowed kind with a bad shape: a missing name, a wrong type, a bad
    /// quantity, a negative replica count.
    #[error("{0}")]
    InvalidObject(Refusal),
    /// Two objects of the same kind and name.
    #[error("{object} appears more than once")]
    DuplicateObject {
        /// The object, as `Kind "name"`.
        object: String,
    },
    /// No Deployment or StatefulSet: nothing would run.
    #[error("the manifest has no Deployment or StatefulSet")]
    NoWorkload,
    /// No Service to route to, and the first workload's first container exposes no TCP
    /// port to generate one from.
    #[error("{0}")]
    NoPort(Refusal),
    /// The parser panicked or its task was cancelled: not the user's fault (500).
    #[error("the manifest could not be parsed: {0}")]
    Internal(String),
}

impl ManifestError {
    /// The stable snake_case code of the error, for API responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::TooLarge { .. } => "manifest_too_large",
            ManifestError::InvalidYaml(_) => "manifest_invalid_yaml",
            ManifestError::BudgetExceeded(_) => "manifest_budget_exceeded",
            ManifestError::ParseTimeout(_) => "manifest_parse_timeout",
            ManifestError::TooManyDocuments { .. } => "manifest_too_many_documents",
            ManifestError::Empty => "manifest_empty",
            ManifestError::KindNotAllowed(_) => "manifest_kind_not_allowed",
            ManifestError::ClusterScoped(_) => "manifest_cluster_scoped",
            ManifestError::NamespaceMismatch(_) => "manifest_namespace_mismatch",
            ManifestError::Privileged(_) => "manifest_privileged",
            ManifestError::HostNamespace(_) => "manifest_host_namespace",
            ManifestError::HostPath(_) => "manifest_host_path",
            ManifestError::HostPort(_) => "manifest_host_port",
            ManifestError::VolumeType(_) => "manifest_volume_type",
            ManifestError::Capabilities(_) => "manifest_capabilities",
            ManifestError::PrivilegeEscalation(_) => "manifest_privilege_escalation",
            ManifestError::SecurityContext(_) => "manifest_security_context",
            ManifestError::NodeSelection(_) => "manifest_node_selection",
            ManifestError::PriorityClass(_) => "manifest_priority_class",
            ManifestError::ServiceAccount(_) => "manifest_service_account",
            ManifestError::ServiceType(_) => "manifest_service_type",
            ManifestError::ExternalIps(_) => "manifest_external_ips",
            ManifestError::VolumeBinding(_) => "manifest_volume_binding",
            ManifestError::Finalizers(_) => "manifest_finalizers",
            ManifestError::ResourcesExceeded { .. } => "manifest_resources_exceeded",
            ManifestError::ResourceNotOffered(_) => "manifest_resource_not_offered",
            ManifestError::UnknownField(_) => "manifest_unknown_field",
            ManifestError::InvalidObject(_) => "manifest_invalid_object",
            ManifestError::DuplicateObject { .. } => "manifest_duplicate_object",
            ManifestError::NoWorkload => "manifest_no_workload",
            ManifestError::NoPort(_) => "manifest_no_port",
            ManifestError::Internal(_) => "manifest_internal",
        }
    }

    /// True when the manifest is at fault (the host answers 422); false only for
    /// [`ManifestError::Internal`].
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ManifestError::Internal(_))
    }

    /// The object and field refused, when the error points at one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ManifestError::KindNotAllowed(r)
            | ManifestError::ClusterScoped(r)
            | ManifestError::NamespaceMismatch(r)
            | ManifestError::Privileged(r)
            | ManifestError::HostNamespace(r)
            | ManifestError::HostPath(r)
            | ManifestError::HostPort(r)
            | ManifestError::VolumeType(r)
            | ManifestError::Capabilities(r)
            | ManifestError::PrivilegeEscalation(r)
            | ManifestError::SecurityContext(r)
            | ManifestError::NodeSelection(r)
            | ManifestError::PriorityClass(r)
            | ManifestError::ServiceAccount(r)
            | ManifestError::ServiceType(r)
            | ManifestError::ExternalIps(r)
            | ManifestError::VolumeBinding(r)
            | ManifestError::Finalizers(r)
            | ManifestError::ResourceNotOffered(r)
            | ManifestError::UnknownField(r)
            | ManifestError::InvalidObject(r)
            | ManifestError::NoPort(r) => Some(r),
            _ => None,
        }
    }
}
