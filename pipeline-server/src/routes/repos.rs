//! `/api/v1/repos`: create, list, inspect and delete repos.

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::pfs::{RepoInfo, RepoRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ForceQuery;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The repo routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_repos, create_repo))
        .routes(routes!(inspect_repo, delete_repo))
}

/// Body of `POST /api/v1/repos`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRepo {
    /// `[PROJECT/]NAME`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// Every repo.
#[utoipa::path(get, path = "/api/v1/repos", tag = "repos",
    responses((status = 200, body = Vec<RepoInfo>), (status = 500, body = ErrorBody)))]
async fn list_repos(State(s): State<AppState>) -> ApiResult<Json<Vec<RepoInfo>>> {
    s.blocking(|e| Ok(e.store().list_repos()?)).await.map(Json)
}

/// Creates a repo.
#[utoipa::path(post, path = "/api/v1/repos", tag = "repos", request_body = CreateRepo,
    responses((status = 201, body = RepoInfo), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_repo(
    State(s): State<AppState>,
    Json(req): Json<CreateRepo>,
) -> ApiResult<(StatusCode, Json<RepoInfo>)> {
    let info = s
        .blocking(move |e| {
            let repo = RepoRef::parse(&req.name)?;
            Ok(e.store().create_repo(&repo, &req.description)?)
        })
        .await?;
    s.notify_changed();
    Ok((StatusCode::CREATED, Json(info)))
}

/// One repo.
#[utoipa::path(get, path = "/api/v1/repos/{repo}", tag = "repos",
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = RepoInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_repo(
    State(s): State<AppState>,
    Path(repo): Path<String>,
) -> ApiResult<Json<RepoInfo>> {
    s.blocking(move |e| Ok(e.store().inspect_repo(&RepoRef::parse(&repo)?)?))
        .await
        .map(Json)
}

/// Deletes a repo and all its commits.
#[utoipa::path(delete, path = "/api/v1/repos/{repo}", tag = "repos",
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)"),
        ForceQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_repo(
    State(s): State<AppState>,
    Path(repo): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    s.blocking(move |e| Ok(e.store().delete_repo(&RepoRef::parse(&repo)?, q.force)?))
        .await?;
    s.notify_changed();
    Ok(StatusCode::NO_CONTENT)
}
