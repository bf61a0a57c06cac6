//! The gateway services' one error type. Every refusal a user can reach has its own
//! variant and a stable snake_case [`Error::code`]; `http::error` turns it into
//! `{"error":{"code","message"}}` with the right status, in one place.

use crate::policy::PolicyError;

/// Results of the gateway services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a quote, an accept, a login or a session check can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not well formed (a field missing or of the wrong type, a bad quantity).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the configured limit.
    #[error("the request body is larger than this node accepts")]
    PayloadTooLarge,
    /// Nothing is served at this path.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// The path exists but not for this method (the `Allow` header lists those it has).
    #[error("{0} is not allowed here")]
    MethodNotAllowed(String),
    /// An order id is not a decimal u256.
    #[error("{0:?} is not an order id: expected a decimal integer")]
    InvalidOrderId(String),

    // ---- quote and accept ----
    /// The Market holds no order with this id.
    #[error("order {0} not found on chain")]
    OrderNotFound(String),
    /// The order names another provider than this node's wallet.
    #[error("order {id} is addressed to provider {provider}, not to this node ({wallet})")]
    NotOurOrder {
        /// The order.
        id: String,
        /// The provider it names.
        provider: String,
        /// This node's wallet.
        wallet: String,
    },
    /// The order is cancelled or completed: it can no longer be accepted.
    #[error("order {id} is {status}: it can no longer be accepted")]
    OrderClosed {
        /// The order.
        id: String,
        /// Its state on chain.
        status: String,
    },
    /// The payee policy refused the order.
    #[error("{0}")]
    PayeeRejected(String),
    /// The payment is below the pricing policy's price.
    #[error("{0}")]
    InsufficientPayment(String),
    /// The node lacks free capacity for the order.
    #[error("{0}")]
    InsufficientCapacity(String),
    /// The duration is outside what the node sells.
    #[error("{0}")]
    DurationOutOfRange(String),
    /// The order asks for something the node does not sell.
    #[error("{0}")]
    UnsupportedResource(String),
    /// The pricing policy refused for another reason.
    #[error("{0}")]
    QuoteRefused(String),
    /// The lock transaction was refused by the Market (the order changed since it was read).
    #[error("the Market refused the lock: {0}")]
    LockReverted(String),
    /// The lock transaction was sent but is not confirmed yet; accepting again resumes.
    #[error("the lock transaction {0} is not confirmed yet; accept again to keep waiting")]
    LockPending(String),
    /// No chain is configured, so orders cannot be read or locked.
    #[error("this node has no chain configured")]
    ChainNotConfigured,
    /// The chain endpoint did not answer in time, or failed at the transport level.
    #[error("the chain is unavailable: {0}")]
    ChainUnavailable(String),
    /// The chain answered something unexpected (an RPC error, a wrong chain id, a key problem).
    #[error("chain error: {0}")]
    Chain(String),

    // ---- policies ----
    /// A policy gave no answer (not loaded, trapped, overran its limits). The gateway fails
    /// closed: the request is refused.
    #[error("policy unavailable: {0}")]
    Policy(#[from] PolicyError),

    // ---- login ----
    /// The sign-in message is not a valid EIP-4361 message, or the signature is not hex.
    #[error("malformed sign-in message: {0}")]
    MalformedMessage(String),
    /// The message was written for another domain than this gateway's.
    #[error("the message is for domain {got}, this gateway is {expected}")]
    WrongDomain {
        /// The message's domain.
        got: String,
        /// The configured domain.
        expected: String,
    },
    /// The message names another chain than the node's.
    #[error("the message is for chain {got}, this node is on chain {expected}")]
    WrongChain {
        /// The message's chain id.
        got: u64,
        /// The node's chain id.
        expected: u64,
    },
    /// The message's expiration time has passed.
    #[error("the sign-in message has expired")]
    MessageExpired,
    /// The message's not-before or issued-at time is still in the future.
    #[error("the sign-in message is not valid yet")]
    MessageNotYetValid,
    /// Too many requests from this client address; try again after the given seconds.
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request can succeed (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// The message's `URI:` is not this node's (its domain, or a configured origin).
    #[error("the message is for {got}, not for this node")]
    WrongUri {
        /// The message's URI.
        got: String,
    },
    /// The nonce was not issued by this node, has expired, or was already used.
    #[error("the nonce is unknown, expired or already used; get a new one")]
    InvalidNonce,
    /// The signature was not made by the message's address.
    #[error("the signature does not match the message's address")]
    InvalidSignature,
    /// The authorization policy refused a session.
    #[error("{0}")]
    SessionDenied(String),

    // ---- sessions ----
    /// No session cookie or bearer token came with the request.
    #[error("sign in first: no session cookie or bearer token")]
    Unauthenticated,
    /// The session cookie or token does not decrypt with any of the node's keys (tampered,
    /// or made with a key the node no longer has).
    #[error("the session is not valid")]
    InvalidSession,
    /// The session is past its expiry.
    #[error("the session has expired; sign in again")]
    SessionExpired,
    /// The session was ended (logout or revocation).
    #[error("the session has been revoked; sign in again")]
    SessionRevoked,

    // ---- operators ----
    /// An operator sign-in message without the operator scope (`Resources: urn:grid:operator`).
    #[error("an operator sign-in message must list the resource urn:grid:operator")]
    OperatorScopeRequired,
    /// The wallet is not listed in `[operators]`.
    #[error("{0} is not an operator of this node")]
    NotAnOperator(String),
    /// The operator lacks the role the endpoint needs.
    #[error("this needs the operator role {0}")]
    MissingRole(&'static str),
    /// A policy lifecycle operation was refused (its own code).
    #[error("{0}")]
    Lifecycle(#[from] crate::policy::lifecycle::LifecycleError),
    /// A candidate path outside the policy directory (or without one).
    #[error("{0}")]
    CandidatePathOutside(String),

    // ---- apps ----
    /// No cluster is configured, so nothing can be deployed.
    #[error("this node has no cluster configured: it cannot deploy apps")]
    ClusterNotConfigured,
    /// The order was not accepted by this node.
    #[error("order {0} was not accepted by this node")]
    OrderNotAccepted(String),
    /// The caller is not the order's user.
    #[error("order {0} belongs to another user")]
    NotOrderOwner(String),
    /// The order cannot run an app now (its lock is not confirmed, it ended, its time is up).
    #[error("order {id} is not running ({why}): it cannot run an app")]
    OrderNotRunning {
        /// The order.
        id: String,
        /// Why not.
        why: &'static str,
    },
    /// The authorization policy refused the request.
    #[error("{0}")]
    RequestDenied(String),
    /// The request's path is one the policy and the app could read differently.
    #[error("the request path has {0}, which apps and the gateway's policy could read differently")]
    AmbiguousPath(String),
    /// A standard method spelled otherwise than in upper case.
    #[error("method {0:?}: standard methods are accepted in upper case only")]
    NonCanonicalMethod(String),
    /// More than one `Host` header field (RFC 9112 §3.2).
    #[error("the request has more than one Host header field")]
    DuplicateHost,
    /// An HTTP/1.1 request without a `Host` field, or one whose `Host` is no `host[:port]`
    /// (RFC 9112 §3.2).
    #[error("{0}")]
    BadHost(&'static str),
    /// A GET or HEAD request with a body.
    #[error("a {0} request may not have a body on this node")]
    BodyNotAllowed(String),
    /// No app was ever deployed for the order.
    #[error("no app has been deployed for order {0}")]
    AppNotFound(String),
    /// The app is not running (failed or deleted), so it has no logs to show.
    #[error("the app of order {id} is {status}: nothing is running")]
    AppNotRunning {
        /// The order.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// The app has no pod yet.
    #[error("the app of order {0} has no pod yet")]
    NoPods(String),
    /// The caller has no available app matching the request (or names an order that is
    /// not theirs: the answer is the same, so orders cannot be probed).
    #[error("no app of yours matches this request")]
    NoSuchApp,
    /// The caller's order has no available app (not deployed, deploying, failed).
    #[error("the app of order {0} is not available; deploy it or wait for it")]
    AppNotAvailable(String),
    /// The caller has several apps and the request does not say which.
    #[error("you have {0} apps here: name one with the X-Grid-Order header")]
    OrderRequired(usize),
    /// A sign-in hand-off code that is unknown, spent, expired or for another app's host.
    #[error("this sign-in link is invalid or expired; ask the gateway for a new one")]
    HandoffInvalid,
    /// Hand-offs need host routing, which this node does not do.
    #[error("this node serves apps on no apps domain (process.apps_domain)")]
    AppsDomainNotConfigured,
    /// The request could not be forwarded to the app.
    #[error("{0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The manifest URL could not be fetched, or was refused.
    #[error("manifest: {0}")]
    ManifestFetch(#[from] grid_cluster::fetch::FetchError),
    /// The manifest is not acceptable.
    #[error("manifest: {0}")]
    Manifest(#[from] grid_cluster::manifest::ManifestError),
    /// The order's sandbox could not be built (the node's `[cluster.sandbox]` config).
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The cluster failed an operation the request needed.
    #[error("cluster: {0}")]
    Cluster(#[from] grid_cluster::ClusterError),

    // ---- the node itself ----
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A fault injected by a test (see `Hooks`).
    #[error("injected fault: {0}")]
    Injected(&'static str),
}

impl Error {
    /// The stable snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::PayloadTooLarge => "payload_too_large",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::InvalidOrderId(_) => "invalid_order_id",
            Error::OrderNotFound(_) => "order_not_found",
            Error::NotOurOrder { .. } => "not_our_order",
            Error::OrderClosed { .. } => "order_closed",
            Error::PayeeRejected(_) => "payee_rejected",
            Error::InsufficientPayment(_) => "insufficient_payment",
            Error::InsufficientCapacity(_) => "insufficient_capacity",
            Error::DurationOutOfRange(_) => "duration_out_of_range",
            Error::UnsupportedResource(_) => "unsupported_resource",
            Error::QuoteRefused(_) => "quote_refused",
            Error::LockReverted(_) => "lock_reverted",
            Error::LockPending(_) => "lock_pending",
            Error::ChainNotConfigured => "chain_not_configured",
            Error::ChainUnavailable(_) => "chain_unavailable",
            Error::Chain(_) => "chain_error",
            Error::Policy(PolicyError::NotLoaded(_)) => "policy_not_loaded",
            Error::Policy(PolicyError::Eval(_)) => "policy_failed",
            Error::MalformedMessage(_) => "malformed_message",
            Error::WrongDomain { .. } => "wrong_domain",
            Error::WrongChain { .. } => "wrong_chain",
            Error::MessageExpired => "message_expired",
            Error::MessageNotYetValid => "message_not_yet_valid",
            Error::InvalidNonce => "invalid_nonce",
            Error::RateLimited { .. } => "rate_limited",
            Error::WrongUri { .. } => "wrong_uri",
            Error::InvalidSignature => "invalid_signature",
            Error::SessionDenied(_) => "session_denied",
            Error::Unauthenticated => "unauthenticated",
            Error::InvalidSession => "invalid_session",
            Error::SessionExpired => "session_expired",
            Error::SessionRevoked => "session_revoked",
            Error::OperatorScopeRequired => "operator_scope_required",
            Error::NotAnOperator(_) => "not_an_operator",
            Error::MissingRole(_) => "missing_role",
            Error::Lifecycle(e) => e.code(),
            Error::CandidatePathOutside(_) => "candidate_path_outside_policy_dir",
            Error::ClusterNotConfigured => "cluster_not_configured",
            Error::OrderNotAccepted(_) => "order_not_accepted",
            Error::NotOrderOwner(_) => "not_order_owner",
            Error::OrderNotRunning { .. } => "order_not_running",
            Error::RequestDenied(_) => "request_denied",
            Error::AmbiguousPath(_) => "ambiguous_path",
            Error::NonCanonicalMethod(_) => "non_canonical_method",
            Error::DuplicateHost => "duplicate_host",
            Error::BadHost(_) => "bad_host",
            Error::BodyNotAllowed(_) => "body_not_allowed",
            Error::AppNotFound(_) => "app_not_found",
            Error::AppNotRunning { .. } => "app_not_running",
            Error::NoPods(_) => "app_no_pods",
            Error::NoSuchApp => "no_app",
            Error::AppNotAvailable(_) => "app_not_available",
            Error::OrderRequired(_) => "order_required",
            Error::HandoffInvalid => "handoff_invalid",
            Error::AppsDomainNotConfigured => "apps_domain_not_configured",
            Error::Proxy(e) => e.code(),
            Error::ManifestFetch(e) => e.code(),
            Error::Manifest(e) => e.code(),
            Error::Sandbox(_) => "sandbox_config",
            Error::Cluster(e) => e.code(),
            Error::Store(_) => "store_error",
            Error::Injected(_) => "injected_fault",
        }
    }

    /// Maps a failure to plan a deploy.
    pub fn from_plan(error: grid_cluster::plan::PlanError) -> Self {
        use grid_cluster::plan::PlanError;
        match error {
            PlanError::Manifest(e) => Error::Manifest(e),
            PlanError::Sandbox(e) => Error::Sandbox(e.to_string()),
            PlanError::Encode(e) => Error::Cluster(e),
        }
    }

    /// Maps a chain client error: transport failures become [`Error::ChainUnavailable`],
    /// a missing order [`Error::OrderNotFound`], the Market's refusals by their name.
    pub fn from_chain(error: grid_chain::Error) -> Self {
        use grid_chain::Error as C;
        if error.is_unavailable() {
            return Error::ChainUnavailable(error.to_string());
        }
        match error {
            C::OrderNotFound { id } => Error::OrderNotFound(id),
            C::InvalidOrderId { id } => Error::InvalidOrderId(id),
            C::TxPending { tx_hash } => Error::LockPending(tx_hash.to_string()),
            ref e @ C::Reverted { .. } => Error::LockReverted(e.to_string()),
            other => Error::Chain(other.to_string()),
        }
    }
}
