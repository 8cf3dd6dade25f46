//! `/api/v1/defaults`: cluster and project defaults for pipeline specs, merged under every
//! spec at create and update (`pipeline_core::spec::defaults`).
//!
//! `PUT` replaces the defaults (Pachyderm's `create defaults` and `update defaults` are the
//! same call); `DELETE` removes them. Neither changes a pipeline unless `regenerate` asks
//! for it, in the same transaction.

use axum::extract::State;
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pps::{DefaultsChange, DefaultsRecord, DefaultsScope, SetDefaultsOptions};
use pipeline_core::spec::ParseError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The defaults routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            inspect_cluster_defaults,
            set_cluster_defaults,
            delete_cluster_defaults
        ))
        .routes(routes!(
            inspect_project_defaults,
            set_project_defaults,
            delete_project_defaults
        ))
}

/// Body of `PUT /api/v1/defaults/...`: the defaults document's text and what to do with
/// the pipelines it affects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SetDefaults {
    /// The document, JSON or YAML: `{"create_pipeline_request": {...}}`.
    pub defaults: String,
    /// The file's name, used in error positions (`d.yaml:3:5: create_pipeline_request...`).
    #[serde(default)]
    pub source_name: String,
    /// Give every pipeline in scope whose effective spec changes a new version now.
    #[serde(default)]
    pub regenerate: bool,
    /// The regenerated pipelines reprocess every datum (implies `regenerate`).
    #[serde(default)]
    pub reprocess: bool,
    /// Check and report the affected pipelines, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `?regenerate=&reprocess=&dry_run=` of `DELETE /api/v1/defaults/...`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, IntoParams)]
pub struct DefaultsQuery {
    /// Give every pipeline in scope whose effective spec changes a new version now.
    #[serde(default)]
    pub regenerate: bool,
    /// The regenerated pipelines reprocess every datum (implies `regenerate`).
    #[serde(default)]
    pub reprocess: bool,
    /// Report the affected pipelines, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl From<DefaultsQuery> for SetDefaultsOptions {
    fn from(q: DefaultsQuery) -> Self {
        SetDefaultsOptions {
            regenerate: q.regenerate,
            reprocess: q.reprocess,
            dry_run: q.dry_run,
        }
    }
}

/// Parses the body's document and sets it.
async fn set(s: &AppState, scope: DefaultsScope, req: SetDefaults) -> ApiResult<DefaultsChange> {
    let change = s
        .blocking(move |e| {
            let name = if req.source_name.is_empty() {
                "defaults"
            } else {
                req.source_name.as_str()
            };
            let defaults = pipeline_core::spec::parse_defaults(&req.defaults, name)
                .map_err(|err| ApiError::invalid(problems(&err, name)))?;
            let opts = SetDefaultsOptions {
                regenerate: req.regenerate,
                reprocess: req.reprocess,
                dry_run: req.dry_run,
            };
            Ok(e.set_defaults(&scope, &defaults, opts)?)
        })
        .await?;
    if !change.dry_run {
        s.notify_changed();
    }
    Ok(change)
}

/// Every problem of a defaults document, one per line (`NAME:LINE:COL: FIELD: message`).
fn problems(err: &ParseError, name: &str) -> String {
    match err.diagnostics() {
        [] => ErrorChain(err).to_string(),
        all => all
            .iter()
            .map(|d| format!("{name}:{d}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Removes the defaults of `scope`.
async fn delete(
    s: &AppState,
    scope: DefaultsScope,
    query: DefaultsQuery,
) -> ApiResult<DefaultsChange> {
    let change = s
        .blocking(move |e| Ok(e.delete_defaults(&scope, query.into())?))
        .await?;
    if !change.dry_run {
        s.notify_changed();
    }
    Ok(change)
}

/// The cluster defaults (`{}` when none are set).
#[utoipa::path(get, path = "/api/v1/defaults/cluster", tag = "defaults",
    responses((status = 200, body = DefaultsRecord), (status = 500, body = ErrorBody)))]
async fn inspect_cluster_defaults(State(s): State<AppState>) -> ApiResult<Json<DefaultsRecord>> {
    s.blocking(|e| Ok(e.defaults(&DefaultsScope::Cluster)?))
        .await
        .map(Json)
}

/// Sets (replaces) the cluster defaults; 400 lists every problem of the document with its
/// field path and position.
#[utoipa::path(put, path = "/api/v1/defaults/cluster", tag = "defaults", request_body = SetDefaults,
    responses((status = 200, body = DefaultsChange), (status = 400, body = ErrorBody)))]
async fn set_cluster_defaults(
    State(s): State<AppState>,
    Json(req): Json<SetDefaults>,
) -> ApiResult<Json<DefaultsChange>> {
    set(&s, DefaultsScope::Cluster, req).await.map(Json)
}

/// Removes the cluster defaults.
#[utoipa::path(delete, path = "/api/v1/defaults/cluster", tag = "defaults",
    params(DefaultsQuery),
    responses((status = 200, body = DefaultsChange), (status = 400, body = ErrorBody)))]
async fn delete_cluster_defaults(
    State(s): State<AppState>,
    Query(query): Query<DefaultsQuery>,
) -> ApiResult<Json<DefaultsChange>> {
    delete(&s, DefaultsScope::Cluster, query).await.map(Json)
}

/// The defaults of a project (`{}` when none are set).
#[utoipa::path(get, path = "/api/v1/defaults/projects/{project}", tag = "defaults",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, body = DefaultsRecord), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_project_defaults(
    State(s): State<AppState>,
    Path(project): Path<String>,
) -> ApiResult<Json<DefaultsRecord>> {
    s.blocking(move |e| Ok(e.defaults(&DefaultsScope::Project(project))?))
        .await
        .map(Json)
}

/// Sets (replaces) the defaults of a project.
#[utoipa::path(put, path = "/api/v1/defaults/projects/{project}", tag = "defaults",
    params(("project" = String, Path, description = "Project name")),
    request_body = SetDefaults,
    responses((status = 200, body = DefaultsChange), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn set_project_defaults(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Json(req): Json<SetDefaults>,
) -> ApiResult<Json<DefaultsChange>> {
    set(&s, DefaultsScope::Project(project), req)
        .await
        .map(Json)
}

/// Removes the defaults of a project.
#[utoipa::path(delete, path = "/api/v1/defaults/projects/{project}", tag = "defaults",
    params(("project" = String, Path, description = "Project name"), DefaultsQuery),
    responses((status = 200, body = DefaultsChange), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_project_defaults(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<DefaultsQuery>,
) -> ApiResult<Json<DefaultsChange>> {
    delete(&s, DefaultsScope::Project(project), query)
        .await
        .map(Json)
}
