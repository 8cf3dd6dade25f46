//! `/api/v1/repos/{repo}/branches`: create or update, list, inspect, delete branches.

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pfs::{BranchInfo, BranchRef, RepoRef};
use pipeline_core::spec::effective::DEFAULT_BRANCH;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ForceQuery;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The branch routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_branches))
        .routes(routes!(inspect_branch, put_branch, delete_branch))
}

/// Body of `PUT /api/v1/repos/{repo}/branches/{branch}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PutBranch {
    /// The head: a commit of the same repo (`ID`, `BRANCH`, `BRANCH^N`); none keeps the
    /// current head (a new branch gets an empty commit).
    #[serde(default)]
    pub head: Option<String>,
    /// Direct provenance, each `[PROJECT/]REPO@BRANCH` (a missing `@BRANCH` is `@master`).
    #[serde(default)]
    pub provenance: Vec<String>,
}

/// `REPO@BRANCH` (default branch when `@` is missing) as a branch.
pub(crate) fn parse_branch(s: &str) -> ApiResult<BranchRef> {
    let r = FileRef::parse(s)?;
    Ok(r.repo
        .branch(r.commit.as_deref().unwrap_or(DEFAULT_BRANCH))?)
}

/// The branches of a repo.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/branches", tag = "branches",
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = Vec<BranchInfo>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_branches(
    State(s): State<AppState>,
    Path(repo): Path<String>,
) -> ApiResult<Json<Vec<BranchInfo>>> {
    s.blocking(move |e| Ok(e.store().list_branches(&RepoRef::parse(&repo)?)?))
        .await
        .map(Json)
}

/// One branch: head, provenance, subvenance.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/branches/{branch}", tag = "branches",
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)"),
        ("branch" = String, Path, description = "Branch name")),
    responses((status = 200, body = BranchInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_branch(
    State(s): State<AppState>,
    Path((repo, branch)): Path<(String, String)>,
) -> ApiResult<Json<BranchInfo>> {
    s.blocking(move |e| {
        let b = RepoRef::parse(&repo)?.branch(&branch)?;
        Ok(e.store().inspect_branch(&b)?)
    })
    .await
    .map(Json)
}

/// Creates a branch or updates its head and provenance (as `pipectl create branch`).
#[utoipa::path(put, path = "/api/v1/repos/{repo}/branches/{branch}", tag = "branches",
    request_body = PutBranch,
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)"),
        ("branch" = String, Path, description = "Branch name")),
    responses((status = 200, body = BranchInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_branch(
    State(s): State<AppState>,
    Path((repo, branch)): Path<(String, String)>,
    Json(req): Json<PutBranch>,
) -> ApiResult<Json<BranchInfo>> {
    let info = s
        .blocking(move |e| {
            let repo = RepoRef::parse(&repo)?;
            let b = repo.branch(&branch)?;
            let head = match &req.head {
                Some(h) => Some(e.store().resolve_commit(&repo, h)?.id),
                None => None,
            };
            let prov = req
                .provenance
                .iter()
                .map(|p| parse_branch(p))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(e.store().create_branch(&b, head.as_ref(), &prov)?)
        })
        .await?;
    s.notify_changed();
    Ok(Json(info))
}

/// Deletes a branch (its commits stay).
#[utoipa::path(delete, path = "/api/v1/repos/{repo}/branches/{branch}", tag = "branches",
    params(("repo" = String, Path, description = "`[PROJECT/]NAME` (`/` percent-encoded)"),
        ("branch" = String, Path, description = "Branch name"), ForceQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_branch(
    State(s): State<AppState>,
    Path((repo, branch)): Path<(String, String)>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    s.blocking(move |e| {
        let b = RepoRef::parse(&repo)?.branch(&branch)?;
        Ok(e.store().delete_branch(&b, q.force)?)
    })
    .await?;
    s.notify_changed();
    Ok(StatusCode::NO_CONTENT)
}
