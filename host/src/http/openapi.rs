//! `/_grid/openapi.json`, generated from the handlers' annotations and the body types.

use axum::Json;
use utoipa::OpenApi;

use super::api::*;
use super::apps::{self, AppResponse, ConditionView, DeployBody, DeployResponse, HandoffResponse};
use super::error::{ErrorBody, ErrorDetail};
use super::handlers;
use super::node::{
    ArtefactView, CapacityView, DisagreementCounts, LoadFailureView, NodeResponse, PolicyView,
    ResourcesView, ShadowView, SourceKind, SourceView, WorldName, WorldView,
};
use super::operator;
use crate::tls::{AcmeHostStatus, CertificateStatus};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "grid-gateway",
        description = "Provider gateway of a decentralized compute market"
    ),
    paths(
        handlers::quote,
        handlers::accept,
        handlers::order,
        handlers::nonce,
        handlers::login,
        handlers::logout,
        handlers::logout_all,
        handlers::session,
        handlers::greet,
        handlers::node,
        handlers::healthz,
        handlers::acme_challenge,
        handlers::readyz,
        handlers::metrics,
        apps::deploy,
        apps::status,
        apps::delete,
        apps::logs,
        apps::handoff,
        operator::login,
        operator::policies,
        operator::policy,
        operator::set_candidate,
        operator::clear_candidate,
        operator::promote,
        operator::rollback,
        operator::disagreements,
        operator::recordings,
        operator::recording
    ),
    components(schemas(
        QuoteBody,
        ResourceSpec,
        Quantity,
        QuoteResponse,
        PriceLineView,
        AcceptResponse,
        OrderResponse,
        NonceResponse,
        LoginBody,
        LoginResponse,
        SessionResponse,
        LogoutResponse,
        LogoutAllResponse,
        DeployBody,
        DeployResponse,
        AppResponse,
        ConditionView,
        HandoffResponse,
        ErrorBody,
        ErrorDetail,
        NodeResponse,
        CapacityView,
        ResourcesView,
        WorldName,
        WorldView,
        PolicyView,
        SourceKind,
        SourceView,
        ArtefactView,
        LoadFailureView,
        ShadowView,
        DisagreementCounts,
        CertificateStatus,
        AcmeHostStatus,
        operator::OperatorLoginResponse,
        operator::OperatorPoliciesResponse,
        operator::CandidateBody,
        operator::CandidateCleared,
        operator::RollbackBody,
        operator::DisagreementView,
        operator::DisagreementsResponse,
        operator::RecordingView,
        operator::RecordingsResponse
    ))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
