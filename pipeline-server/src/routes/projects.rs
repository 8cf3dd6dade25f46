//! `/api/v1/projects`: create, list, inspect, update and delete projects.

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::pfs::ProjectInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The project routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(inspect_project, update_project, delete_project))
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateProject {
    /// Project name (`[a-zA-Z0-9_-]+`).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// Body of `PATCH /api/v1/projects/{project}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateProject {
    /// The new description.
    pub description: String,
}

/// `?force=true` on `DELETE /api/v1/projects/{project}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct DeleteProjectQuery {
    /// Delete the project's pipelines and repos first (else a project that has any is
    /// refused, naming them).
    #[serde(default)]
    pub force: bool,
}

/// Every project (`default` always; projects that stored repos name too).
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectInfo>), (status = 500, body = ErrorBody)))]
async fn list_projects(State(s): State<AppState>) -> ApiResult<Json<Vec<ProjectInfo>>> {
    s.blocking(|e| Ok(e.store().list_projects()?))
        .await
        .map(Json)
}

/// Creates a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectInfo), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_project(
    State(s): State<AppState>,
    Json(req): Json<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectInfo>)> {
    let info = s
        .blocking(move |e| Ok(e.store().create_project(&req.name, &req.description)?))
        .await?;
    s.notify_changed();
    Ok((StatusCode::CREATED, Json(info)))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, body = ProjectInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_project(
    State(s): State<AppState>,
    Path(project): Path<String>,
) -> ApiResult<Json<ProjectInfo>> {
    s.blocking(move |e| Ok(e.store().inspect_project(&project)?))
        .await
        .map(Json)
}

/// Sets a project's description.
#[utoipa::path(patch, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    request_body = UpdateProject,
    responses((status = 200, body = ProjectInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn update_project(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Json(req): Json<UpdateProject>,
) -> ApiResult<Json<ProjectInfo>> {
    let info = s
        .blocking(move |e| Ok(e.store().update_project(&project, &req.description)?))
        .await?;
    s.notify_changed();
    Ok(Json(info))
}

/// Deletes a project. Refused (409) for `default`, and while it has pipelines or repos
/// unless `force`, which deletes them first.
#[utoipa::path(delete, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project name"), DeleteProjectQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_project(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(q): Query<DeleteProjectQuery>,
) -> ApiResult<StatusCode> {
    let engine = s.engine().clone();
    let deleting = tokio::spawn(async move { engine.delete_project(&project, q.force).await });
    let done = deleting
        .await
        .map_err(|e| ApiError::internal(format!("delete task failed: {e}")));
    s.notify_changed();
    done??;
    Ok(StatusCode::NO_CONTENT)
}
