//! The operator API (`/_grid/v1/operator/…`): sign-in under the operator scope, and the
//! policy lifecycle (candidates, promotion, rollback, shadow results) for operators with
//! the role each endpoint needs (see [`crate::auth::operator`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::LoginBody;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery};
use super::node::{PolicyView, WorldName, WorldView};
use crate::auth::credential::{Credential, session_credential};
use crate::auth::operator::{OperatorSession, Role};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::policy::lifecycle::{LifecycleError, candidate_settings_path};
use crate::policy::{World, unix_now};

type AppState = State<Arc<Gateway>>;

/// The signed-in operator, from `Authorization: Bearer <operator token>` (never a
/// cookie). A tenant's session token is not an operator's: `401 invalid_session`.
pub struct Operator(pub OperatorSession);

impl FromRequestParts<Arc<Gateway>> for Operator {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        // The cookie name no operator token is sealed under: only the bearer token counts.
        let token = match session_credential(&parts.headers, "\0no-cookie") {
            Some((token, Credential::Bearer)) => token,
            _ => return Err(Error::Unauthenticated),
        };
        gateway
            .auth
            .operator_session(&token, unix_now(), &gateway.config.operators)
            .map(Operator)
    }
}

/// An operator session.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OperatorLoginResponse {
    /// The operator's wallet.
    pub address: String,
    /// Unix seconds the session ends (`operators.session_lifetime_secs` at most).
    pub expires_at: u64,
    /// Its roles: `policy_read`, `policy_write`.
    pub roles: Vec<String>,
    /// The operator token, for `Authorization: Bearer` on the operator API only.
    pub token: String,
}

/// Sign in as an operator: the same SIWE message, nonce and checks as a user's login,
/// with a `Resources:` entry `urn:grid:operator`; the wallet must be in `[operators]`.
/// The answer's token works on the operator API only (no cookie is set).
#[utoipa::path(post, path = "/_grid/v1/operator/login", request_body = LoginBody, tag = "operator",
    responses((status = 200, body = OperatorLoginResponse),
              (status = 400, body = ErrorBody, description = "malformed_message, operator_scope_required (no urn:grid:operator resource)"),
              (status = 401, body = ErrorBody, description = "wrong_domain, wrong_uri, wrong_chain, message_expired, message_not_yet_valid, invalid_nonce, invalid_signature"),
              (status = 403, body = ErrorBody, description = "not_an_operator")))]
pub async fn login(
    State(gw): AppState,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<OperatorLoginResponse>, Error> {
    let (session, token) = gw
        .auth
        .operator_login(
            &body.message,
            &body.signature,
            unix_now(),
            &gw.config.operators,
        )
        .await?;
    Ok(Json(OperatorLoginResponse {
        address: session.address.to_string(),
        expires_at: session.expires_at,
        roles: session.roles.iter().map(|r| r.name().to_owned()).collect(),
        token,
    }))
}

/// Every world's policy state.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OperatorPoliciesResponse {
    /// Per world: the live version (digest, origin), the candidate, the previous versions
    /// kept for rollback, shadow counters.
    pub policies: Vec<WorldView>,
}

fn world_of(name: &str) -> Result<World, Error> {
    name.parse::<World>().map_err(|_| {
        Error::NotFound(format!(
            "no world {name:?}: pricing, payee or authorization"
        ))
    })
}

fn world_view(gw: &Gateway, world: World) -> Result<WorldView, Error> {
    gw.policies
        .status()
        .into_iter()
        .find(|s| s.world == world)
        .map(Into::into)
        .ok_or_else(|| Error::NotFound(format!("no world {world}")))
}

/// Every world's policy state (role `policy_read`).
#[utoipa::path(get, path = "/_grid/v1/operator/policies", tag = "operator",
    responses((status = 200, body = OperatorPoliciesResponse),
              (status = 401, body = ErrorBody, description = "unauthenticated (no bearer token), invalid_session (not an operator token: a tenant's is refused), session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role")))]
pub async fn policies(
    State(gw): AppState,
    Operator(op): Operator,
) -> Result<Json<OperatorPoliciesResponse>, Error> {
    op.require(Role::PolicyRead)?;
    Ok(Json(OperatorPoliciesResponse {
        policies: gw.policies.status().into_iter().map(Into::into).collect(),
    }))
}

/// One world's policy state (role `policy_read`).
#[utoipa::path(get, path = "/_grid/v1/operator/policies/{world}", tag = "operator",
    params(("world" = WorldName, Path, description = "pricing, payee or authorization")),
    responses((status = 200, body = WorldView),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world)")))]
pub async fn policy(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(world): UrlPath<String>,
) -> Result<Json<WorldView>, Error> {
    op.require(Role::PolicyRead)?;
    Ok(Json(world_view(&gw, world_of(&world)?)?))
}

/// `PUT /_grid/v1/operator/policies/{world}/candidate`: exactly one of `path` and
/// `reference`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateBody {
    /// A `.wasm` file under `policy.dir` (relative to it, or absolute), its settings in
    /// the `.settings.json` file of the same stem beside it. Loaded with the checks of the
    /// policy directory.
    #[serde(default)]
    pub path: Option<String>,
    /// An OCI reference (`registry/repo:tag` or `@sha256:…`), pulled and verified against
    /// `policy.oci.trusted_signers` like a followed artefact.
    #[serde(default)]
    pub reference: Option<String>,
}

/// `path` resolved inside `dir`, every symbolic link followed: a path that leaves the
/// directory (`..`, an absolute path elsewhere, a link out) is refused.
fn path_in_policy_dir(dir: Option<&Path>, path: &str) -> Result<PathBuf, Error> {
    let outside = |why: String| Error::CandidatePathOutside(why);
    let dir = dir.ok_or_else(|| {
        outside("this node has no policy.dir: candidates come from a registry only".into())
    })?;
    let dir = dir
        .canonicalize()
        .map_err(|e| outside(format!("policy.dir {}: {e}", dir.display())))?;
    let joined = dir.join(path);
    let resolved = joined.canonicalize().map_err(|e| {
        LifecycleError::Load(crate::policy::LoadError::Read {
            path: PathBuf::from(path),
            message: e.to_string(),
        })
    })?;
    if !resolved.starts_with(&dir) {
        return Err(outside(format!(
            "{path} is outside the policy directory; candidates from files must be under it"
        )));
    }
    Ok(resolved)
}

/// Set a world's candidate (role `policy_write`): evaluated in shadow beside the live
/// version from now on, never enforced. Replaces any other candidate.
#[utoipa::path(put, path = "/_grid/v1/operator/policies/{world}/candidate", tag = "operator",
    params(("world" = WorldName, Path, description = "pricing, payee or authorization")),
    request_body = CandidateBody,
    responses((status = 200, body = PolicyView, description = "the candidate now shadowing"),
              (status = 400, body = ErrorBody, description = "bad_request (not exactly one of path and reference), candidate_path_outside_policy_dir"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world)"),
              (status = 422, body = ErrorBody, description = "the load's or verification's code: policy_unsigned, policy_signer_untrusted, policy_digest_mismatch, policy_read_failed, …"),
              (status = 502, body = ErrorBody, description = "registry_unavailable")))]
pub async fn set_candidate(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(world): UrlPath<String>,
    ApiJson(body): ApiJson<CandidateBody>,
) -> Result<Json<PolicyView>, Error> {
    op.require(Role::PolicyWrite)?;
    let world = world_of(&world)?;
    let actor = op.actor();
    let info = match (body.path, body.reference) {
        (Some(path), None) => {
            let wasm = path_in_policy_dir(gw.config.policy.dir.as_deref(), &path)?;
            let settings = candidate_settings_path(&wasm);
            let settings = settings.exists().then_some(settings);
            gw.policies
                .load_candidate_file(world, &wasm, settings.as_deref(), &actor)
                .await?
        }
        (None, Some(reference)) => {
            crate::oci::follower::load_candidate(
                &gw.policies,
                &gw.config.policy.oci,
                world,
                &reference,
                &actor,
            )
            .await?
        }
        _ => {
            return Err(Error::BadRequest(
                "give exactly one of path (under policy.dir) and reference (OCI)".into(),
            ));
        }
    };
    Ok(Json(info.into()))
}

/// What clearing a candidate removed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CandidateCleared {
    /// The candidate removed; `null` when there was none.
    pub cleared: Option<PolicyView>,
}

/// Remove a world's candidate (role `policy_write`).
#[utoipa::path(delete, path = "/_grid/v1/operator/policies/{world}/candidate", tag = "operator",
    params(("world" = WorldName, Path, description = "pricing, payee or authorization")),
    responses((status = 200, body = CandidateCleared),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world)")))]
pub async fn clear_candidate(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(world): UrlPath<String>,
) -> Result<Json<CandidateCleared>, Error> {
    op.require(Role::PolicyWrite)?;
    let world = world_of(&world)?;
    Ok(Json(CandidateCleared {
        cleared: gw
            .policies
            .clear_candidate(world, &op.actor())
            .map(Into::into),
    }))
}

/// Put a world's candidate into service atomically (role `policy_write`); the replaced
/// version is kept for a rollback.
#[utoipa::path(post, path = "/_grid/v1/operator/policies/{world}/promote", tag = "operator",
    params(("world" = WorldName, Path, description = "pricing, payee or authorization")),
    responses((status = 200, body = PolicyView, description = "the version now in service"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world)"),
              (status = 409, body = ErrorBody, description = "policy_no_candidate")))]
pub async fn promote(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(world): UrlPath<String>,
) -> Result<Json<PolicyView>, Error> {
    op.require(Role::PolicyWrite)?;
    let world = world_of(&world)?;
    Ok(Json(gw.policies.promote(world, &op.actor())?.into()))
}

/// `POST /_grid/v1/operator/policies/{world}/rollback`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// A kept version: its registry digest (`sha256:…`), its component's sha256, or
    /// `<component sha256>:<settings sha256>`.
    pub version: String,
}

/// Put a kept previous version back into service (role `policy_write`); the replaced
/// version joins the history, so a rollback can itself be undone.
#[utoipa::path(post, path = "/_grid/v1/operator/policies/{world}/rollback", tag = "operator",
    params(("world" = WorldName, Path, description = "pricing, payee or authorization")),
    request_body = RollbackBody,
    responses((status = 200, body = PolicyView, description = "the version now in service"),
              (status = 400, body = ErrorBody, description = "bad_request"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world), policy_version_unknown")))]
pub async fn rollback(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(world): UrlPath<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<PolicyView>, Error> {
    op.require(Role::PolicyWrite)?;
    let world = world_of(&world)?;
    Ok(Json(
        gw.policies
            .rollback(world, &body.version, &op.actor())?
            .into(),
    ))
}

/// `GET /_grid/v1/operator/disagreements` query.
#[derive(Clone, Debug, Deserialize, IntoParams)]
pub struct DisagreementsQuery {
    /// Only this world's.
    pub world: Option<String>,
    /// At most this many, the newest. Default 100.
    pub limit: Option<usize>,
}

/// One question the live version and the candidate answered differently.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisagreementView {
    /// The world.
    pub world: WorldName,
    /// `allow_to_deny`, `deny_to_allow`, `price_delta`, `scopes_changed`, `error`,
    /// `live_error`.
    pub kind: String,
    /// When (RFC 3339).
    pub at: String,
    /// sha256 of the live version's component.
    pub live_sha256: String,
    /// sha256 of the candidate's component.
    pub candidate_sha256: String,
    /// The question, as a `policy run` fixture's call.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// The live version's answer (enforced): `{"outcome": …}` or `{"error": {kind, message}}`.
    #[schema(value_type = Object)]
    pub live: serde_json::Value,
    /// The candidate's answer (never enforced), in the same form.
    #[schema(value_type = Object)]
    pub candidate: serde_json::Value,
}

/// Recent disagreements.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisagreementsResponse {
    /// Oldest first (the node keeps `policy.shadow.keep_disagreements`).
    pub disagreements: Vec<DisagreementView>,
}

/// The recent shadow disagreements, with their inputs and both answers (role
/// `policy_read`).
#[utoipa::path(get, path = "/_grid/v1/operator/disagreements", tag = "operator",
    params(DisagreementsQuery),
    responses((status = 200, body = DisagreementsResponse),
              (status = 400, body = ErrorBody, description = "bad_request"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such world)")))]
pub async fn disagreements(
    State(gw): AppState,
    Operator(op): Operator,
    ApiQuery(query): ApiQuery<DisagreementsQuery>,
) -> Result<Json<DisagreementsResponse>, Error> {
    op.require(Role::PolicyRead)?;
    let world = query.world.as_deref().map(world_of).transpose()?;
    let all = gw.policies.disagreements(world);
    let limit = query.limit.unwrap_or(100);
    let skip = all.len().saturating_sub(limit);
    let disagreements = all
        .into_iter()
        .skip(skip)
        .map(|d| DisagreementView {
            world: d.world.into(),
            kind: d.kind.to_owned(),
            at: d.at,
            live_sha256: d.live_sha256,
            candidate_sha256: d.candidate_sha256,
            input: serde_json::to_value(&d.input).unwrap_or_default(),
            live: serde_json::to_value(&d.live).unwrap_or_default(),
            candidate: serde_json::to_value(&d.candidate).unwrap_or_default(),
        })
        .collect();
    Ok(Json(DisagreementsResponse { disagreements }))
}

/// A recording file.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// Its name (`recording-<n>.jsonl`), for the download.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was last written (unix seconds).
    pub modified: u64,
}

/// The recording files.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordingsResponse {
    /// True when `[policy.recording]` is on.
    pub enabled: bool,
    /// The files, oldest first (the last one is being written).
    pub recordings: Vec<RecordingView>,
}

fn recordings_dir(gw: &Gateway) -> PathBuf {
    gw.config.policy.recording.dir_in(&gw.config.data_dir)
}

/// Writes out what the recorder holds, so a listing or a download is current.
async fn flush_recorder(gw: &Gateway) {
    if let Some(recorder) = gw.policies.recorder().cloned() {
        let _ = tokio::task::spawn_blocking(move || recorder.flush()).await;
    }
}

/// The policy recording files (`[policy.recording]`) for `grid-gateway policy replay`
/// (role `policy_read`).
#[utoipa::path(get, path = "/_grid/v1/operator/recordings", tag = "operator",
    responses((status = 200, body = RecordingsResponse),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role")))]
pub async fn recordings(
    State(gw): AppState,
    Operator(op): Operator,
) -> Result<Json<RecordingsResponse>, Error> {
    op.require(Role::PolicyRead)?;
    flush_recorder(&gw).await;
    let mut recordings = Vec::new();
    // No directory yet: nothing recorded.
    if let Ok(entries) = std::fs::read_dir(recordings_dir(&gw)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if !crate::policy::recording::is_file_name(&name) || !meta.is_file() {
                continue;
            }
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            recordings.push(RecordingView {
                name,
                bytes: meta.len(),
                modified,
            });
        }
    }
    recordings.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(RecordingsResponse {
        enabled: gw.config.policy.recording.enabled,
        recordings,
    }))
}

/// One recording file, as JSON lines (role `policy_read`): the `--recording` of
/// `grid-gateway policy replay`.
#[utoipa::path(get, path = "/_grid/v1/operator/recordings/{name}", tag = "operator",
    params(("name" = String, Path, description = "recording-<n>.jsonl, as listed")),
    responses((status = 200, content_type = "application/x-ndjson", description = "the file"),
              (status = 400, body = ErrorBody, description = "ambiguous_path (an encoded separator or dot segment in the name)"),
              (status = 401, body = ErrorBody, description = "unauthenticated, invalid_session, session_expired"),
              (status = 403, body = ErrorBody, description = "not_an_operator, missing_role"),
              (status = 404, body = ErrorBody, description = "not_found (no such recording)")))]
pub async fn recording(
    State(gw): AppState,
    Operator(op): Operator,
    UrlPath(name): UrlPath<String>,
) -> Result<axum::response::Response, Error> {
    use axum::response::IntoResponse;
    op.require(Role::PolicyRead)?;
    let missing = || Error::NotFound(format!("no recording {name:?}"));
    if !crate::policy::recording::is_file_name(&name) {
        return Err(missing());
    }
    flush_recorder(&gw).await;
    let bytes = tokio::fs::read(recordings_dir(&gw).join(&name))
        .await
        .map_err(|_| missing())?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        bytes,
    )
        .into_response())
}
