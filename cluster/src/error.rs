//! Errors of talking to the cluster's API server.

/// What an operation on the cluster can fail on. Each variant keeps the API server's own
/// words, because an operator or a user reading a failed deploy's reason needs them.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No client could be built: no kubeconfig, no in-cluster service account, or a
    /// kubeconfig that does not load.
    #[error("cluster config: {0}")]
    Config(String),
    /// The API server could not be reached (connection refused or reset, TLS, DNS).
    #[error("the Kubernetes API server is unreachable: {0}")]
    Unreachable(String),
    /// The API server did not answer in time.
    #[error("the Kubernetes API server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The API server refused the request (a `Status` answer), e.g. a conflict, a quota
    /// refusal, an admission webhook's denial, an internal error.
    #[error("{kind} {name}: the API server refused it ({code} {reason}): {message}")]
    Refused {
        /// The object's kind.
        kind: String,
        /// The object's name (or the namespace for namespace-wide calls).
        name: String,
        /// HTTP status of the refusal.
        code: u16,
        /// Kubernetes' reason, e.g. `Conflict`, `Forbidden`, `InternalError`.
        reason: String,
        /// Kubernetes' message.
        message: String,
    },
    /// The API server answered something this client could not read.
    #[error("unexpected answer from the API server: {0}")]
    Protocol(String),
    /// The namespace exists and carries another gateway's identity (or none): this gateway
    /// neither applies into it nor deletes it.
    #[error(
        "namespace {namespace} belongs to another gateway (its grid.dev identity labels are not this node's); it is left alone"
    )]
    NotOwned {
        /// The namespace.
        namespace: String,
    },
    /// An object could not be turned into JSON for the API server (a bug, not the user's
    /// fault: objects were checked before).
    #[error("cannot encode {kind} {name}: {reason}")]
    Encode {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl ClusterError {
    /// Maps a kube-rs error about the object `kind`/`name`.
    pub fn from_kube(kind: &str, name: &str, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ClusterError::Refused {
                kind: kind.to_owned(),
                name: name.to_owned(),
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::HyperError(e) => ClusterError::Unreachable(e.to_string()),
            kube::Error::Service(e) => ClusterError::Unreachable(e.to_string()),
            kube::Error::SerdeError(e) => ClusterError::Protocol(e.to_string()),
            other => ClusterError::Protocol(other.to_string()),
        }
    }

    /// The HTTP status of a refusal, if the API server refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClusterError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for a 404 from the API server.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A stable snake_case code for the failure, shown in an app's status.
    pub fn code(&self) -> &'static str {
        match self {
            ClusterError::Config(_) => "cluster_config",
            ClusterError::Unreachable(_) => "cluster_unreachable",
            ClusterError::Timeout(_) => "cluster_timeout",
            ClusterError::Refused { code: 409, .. } => "cluster_conflict",
            ClusterError::Refused { code: 403, .. } => "cluster_forbidden",
            ClusterError::Refused { code, .. } if *code >= 500 => "cluster_server_error",
            ClusterError::Refused { .. } => "cluster_refused",
            ClusterError::Protocol(_) => "cluster_protocol",
            ClusterError::Encode { .. } => "cluster_encode",
            ClusterError::NotOwned { .. } => "cluster_not_owned",
        }
    }
}

/// Results of cluster operations.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
