//! The app endpoints: deploy, status, teardown, logs. Bodies and handlers together, as
//! they are used nowhere else.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, OrderIdPath, Session};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::store::AppRecord;

type AppState = State<Arc<Gateway>>;

/// `POST /_grid/v1/apps`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// The order (decimal) whose capacity the app runs in.
    pub order_id: String,
    /// Where the Kubernetes YAML is (`http`/`https`; public addresses only unless the
    /// operator allows others).
    pub manifest_url: String,
}

/// A deploy was accepted and runs in the background.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeployResponse {
    /// The order.
    pub order_id: String,
    /// The namespace the app goes into.
    pub namespace: String,
    /// `deploying`.
    pub status: String,
}

/// A condition of one of the app's workloads.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConditionView {
    /// `Kind/name`.
    pub object: String,
    /// e.g. `Available`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// Kubernetes' reason.
    pub reason: Option<String>,
    /// Kubernetes' message.
    pub message: Option<String>,
}

/// An app's status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AppResponse {
    /// The order.
    pub order_id: String,
    /// Its namespace.
    pub namespace: String,
    /// `deploying`, `available`, `failed` or `deleted`.
    pub status: String,
    /// Stable code of a failure or of the teardown's cause, e.g. `app_not_ready`,
    /// `deploy_interrupted`, `app_vanished` (its namespace or workloads disappeared from the
    /// cluster), `order_cancelled`, `deleted_by_user`.
    pub code: Option<String>,
    /// Why it failed or was torn down.
    pub reason: Option<String>,
    /// Conditions of its workloads, as last seen.
    pub conditions: Vec<ConditionView>,
    /// The manifest it was deployed from.
    pub manifest_url: String,
    /// Unix seconds of the last change.
    pub updated_at: u64,
}

impl From<AppRecord> for AppResponse {
    fn from(app: AppRecord) -> Self {
        AppResponse {
            order_id: app.order_id,
            namespace: app.namespace,
            status: app.status.as_str().to_owned(),
            code: app.code,
            reason: app.reason,
            conditions: app
                .conditions
                .into_iter()
                .map(|c| ConditionView {
                    object: c.object,
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect(),
            manifest_url: app.manifest_url,
            updated_at: app.updated_at,
        }
    }
}

/// A sign-in hand-off to the app's own host.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HandoffResponse {
    /// Send the browser here: the app's host (`<order-id>.<apps domain>`) with a one-time
    /// code, which it trades for a session cookie of that host and redirects to `/`.
    pub url: String,
    /// Unix seconds the code stops working (a minute from now).
    pub expires_at: u64,
}

/// `GET /_grid/v1/apps/{order_id}/logs` parameters.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// Keep the response open and stream new lines. Default false.
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines. Default: all the container's log.
    pub tail: Option<u32>,
}

/// Deploy an app from a manifest URL into the order's namespace. The manifest is fetched
/// and checked before the answer; applying it and waiting for it run in the background
/// (poll `GET /_grid/v1/apps/{order_id}`).
#[utoipa::path(post, path = "/_grid/v1/apps", request_body = DeployBody, tag = "apps",
    responses((status = 202, body = DeployResponse),
              (status = 400, body = ErrorBody, description = "bad_request, invalid_order_id"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired, session_revoked"),
              (status = 403, body = ErrorBody, description = "not_order_owner, request_denied"),
              (status = 404, body = ErrorBody, description = "order_not_accepted"),
              (status = 409, body = ErrorBody, description = "order_not_running"),
              (status = 422, body = ErrorBody, description = "the manifest URL or content refused: manifest_address_refused, manifest_url_scheme, manifest_too_large, manifest_privileged, manifest_resources_exceeded, … (cluster/README.md lists them all)"),
              (status = 502, body = ErrorBody, description = "manifest_http_status, manifest_connect_failed, manifest_tls_failed"),
              (status = 503, body = ErrorBody, description = "cluster_not_configured, policy_failed"),
              (status = 504, body = ErrorBody, description = "manifest_timeout")))]
pub async fn deploy(
    State(gw): AppState,
    session: Session,
    ApiJson(body): ApiJson<DeployBody>,
) -> Result<Response, Error> {
    let scopes = session.record.scopes.clone().unwrap_or_default();
    let order_id = crate::orders::canonical_order_id(&body.order_id)?;
    let accepted = gw
        .apps
        .deploy(
            &session.record.address,
            &scopes,
            &order_id,
            &body.manifest_url,
        )
        .await?;
    let body = DeployResponse {
        order_id: accepted.order_id,
        namespace: accepted.namespace,
        status: accepted.status.to_owned(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The app's status: `deploying`, `available`, `failed` (with code and reason) or `deleted`.
#[utoipa::path(get, path = "/_grid/v1/apps/{order_id}", tag = "apps",
    params(("order_id" = String, Path, description = "order id, decimal")),
    responses((status = 200, body = AppResponse),
              (status = 400, body = ErrorBody, description = "invalid_order_id"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "not_order_owner"),
              (status = 404, body = ErrorBody, description = "app_not_found")))]
pub async fn status(
    State(gw): AppState,
    session: Session,
    OrderIdPath(order_id): OrderIdPath,
) -> Result<Json<AppResponse>, Error> {
    Ok(Json(
        gw.apps.status(&session.record.address, &order_id)?.into(),
    ))
}

/// Tear the app down: its namespace and everything in it are deleted.
#[utoipa::path(delete, path = "/_grid/v1/apps/{order_id}", tag = "apps",
    params(("order_id" = String, Path, description = "order id, decimal")),
    responses((status = 200, body = AppResponse),
              (status = 400, body = ErrorBody, description = "invalid_order_id"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "not_order_owner"),
              (status = 404, body = ErrorBody, description = "app_not_found"),
              (status = 502, body = ErrorBody, description = "cluster_*"),
              (status = 503, body = ErrorBody, description = "cluster_unreachable, cluster_timeout")))]
pub async fn delete(
    State(gw): AppState,
    session: Session,
    OrderIdPath(order_id): OrderIdPath,
) -> Result<Json<AppResponse>, Error> {
    Ok(Json(
        gw.apps
            .delete(&session.record.address, &order_id)
            .await?
            .into(),
    ))
}

/// A link that signs the browser in on the app's own host (`<order-id>.<apps domain>`),
/// where the gateway's cookie is not sent: single use, valid for a minute.
#[utoipa::path(post, path = "/_grid/v1/apps/{order_id}/handoff", tag = "apps",
    params(("order_id" = String, Path, description = "order id, decimal")),
    responses((status = 200, body = HandoffResponse),
              (status = 400, body = ErrorBody, description = "invalid_order_id"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired, session_revoked"),
              (status = 404, body = ErrorBody, description = "no_app (not the caller's order, or no such order)"),
              (status = 409, body = ErrorBody, description = "app_not_available, apps_domain_not_configured")))]
pub async fn handoff(
    State(gw): AppState,
    session: Session,
    OrderIdPath(order_id): OrderIdPath,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Result<Json<HandoffResponse>, Error> {
    // `Host`, or the authority of an HTTP/2 request.
    let host = crate::admission::host_of(&headers, &uri);
    let handoff = gw
        .process
        .handoff(&session.record, &order_id, host, gw.config.session.secure)?;
    Ok(Json(HandoffResponse {
        url: handoff.url,
        expires_at: handoff.expires_at,
    }))
}

/// The log of the app's first pod, as text; with `follow=true` the response stays open.
#[utoipa::path(get, path = "/_grid/v1/apps/{order_id}/logs", tag = "apps",
    params(("order_id" = String, Path, description = "order id, decimal"), LogsQuery),
    responses((status = 200, content_type = "text/plain", body = String),
              (status = 400, body = ErrorBody, description = "invalid_order_id, bad_request (a query parameter)"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "not_order_owner"),
              (status = 404, body = ErrorBody, description = "app_not_found"),
              (status = 409, body = ErrorBody, description = "app_not_running, app_no_pods")))]
pub async fn logs(
    State(gw): AppState,
    session: Session,
    OrderIdPath(order_id): OrderIdPath,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Result<Response, Error> {
    let stream = gw
        .apps
        .logs(
            &session.record.address,
            &order_id,
            query.follow,
            query.tail.map(i64::from),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
