//! `/api/v1/repos/{repo}/commits`: start, finish, list, inspect and diff commits. Wherever a
//! path names a commit, it is a commit-ish resolved by the server: an ID, a branch (its head)
//! or `BRANCH^N` (the head's Nth ancestor).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use pipeline_core::pfs::{CommitInfo, DiffEntry, FinishOptions, RepoRef};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::files::ndjson;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The commit routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_commits, start_commit))
        .routes(routes!(inspect_commit))
        .routes(routes!(finish_commit))
        .routes(routes!(diff_commit))
}

/// Body of `POST /api/v1/repos/{repo}/commits`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartCommit {
    /// The branch to start it on (created when missing).
    pub branch: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `?branch=&number=` of the commit list.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct ListCommitsQuery {
    /// Only this branch's history (otherwise every commit of the repo).
    #[serde(default)]
    pub branch: Option<String>,
    /// At most this many (0: all).
    #[serde(default)]
    pub number: usize,
}

/// `?error=` of finishing a commit.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct FinishQuery {
    /// Finish with this error: the commit is kept but never inherited from.
    #[serde(default)]
    pub error: Option<String>,
}

/// `?old=&path=&old_path=&shallow=` of a diff.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct DiffQuery {
    /// The commit to compare with: a commit-ish of the same repo, or `[PROJECT/]REPO@COMMIT`
    /// (default: the new commit's parent).
    #[serde(default)]
    pub old: Option<String>,
    /// Only what is at or below this path of the new commit (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The path of the old commit it is compared with (default: `path`); files are matched
    /// by their path below each.
    #[serde(default)]
    pub old_path: Option<String>,
    /// Compare one level only: the entries directly in the directories, a sub-directory as
    /// one entry (by its hash).
    #[serde(default)]
    pub shallow: bool,
}

const REPO_DOC: &str = "`[PROJECT/]NAME` (`/` percent-encoded)";

/// Commits, newest first: a branch's history, or every commit of the repo.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC), ListCommitsQuery),
    responses((status = 200, body = Vec<CommitInfo>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_commits(
    State(s): State<AppState>,
    Path(repo): Path<String>,
    Query(q): Query<ListCommitsQuery>,
) -> ApiResult<Json<Vec<CommitInfo>>> {
    s.blocking(move |e| {
        let repo = RepoRef::parse(&repo)?;
        Ok(e.store()
            .list_commits(&repo, q.branch.as_deref(), q.number)?)
    })
    .await
    .map(Json)
}

/// Starts a commit on a branch (puts go into it until it is finished).
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits", tag = "commits",
    request_body = StartCommit, params(("repo" = String, Path, description = REPO_DOC)),
    responses((status = 201, body = CommitInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_commit(
    State(s): State<AppState>,
    Path(repo): Path<String>,
    Json(req): Json<StartCommit>,
) -> ApiResult<(StatusCode, Json<CommitInfo>)> {
    let info = s
        .blocking(move |e| {
            let branch = RepoRef::parse(&repo)?.branch(&req.branch)?;
            Ok(e.store().start_commit(&branch, &req.description)?)
        })
        .await?;
    s.notify_changed();
    Ok((StatusCode::CREATED, Json(info)))
}

/// One commit.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = "ID, branch or `BRANCH^N`")),
    responses((status = 200, body = CommitInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_commit(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
) -> ApiResult<Json<CommitInfo>> {
    s.blocking(move |e| {
        let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        Ok(e.store().inspect_commit(&c)?)
    })
    .await
    .map(Json)
}

/// Finishes an open commit (with `?error=`, finishes it with that error).
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits/{commit}/finish", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = "ID, branch or `BRANCH^N`"), FinishQuery),
    responses((status = 200, body = CommitInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn finish_commit(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<FinishQuery>,
) -> ApiResult<Json<CommitInfo>> {
    let info = s
        .blocking(move |e| {
            let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
            let opts = FinishOptions {
                error: q.error,
                description: None,
            };
            Ok(e.store().finish_commit(&c, opts)?)
        })
        .await?;
    s.notify_changed();
    Ok(Json(info))
}

/// Files added, deleted or modified between two commits (or below a path of each, or one
/// level deep with `shallow`), streamed as NDJSON (one `DiffEntry` per line, in path order; a last line `{"error": ...}` when the store failed
/// mid-way).
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/diff", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = "The new commit: ID, branch or `BRANCH^N`"),
        DiffQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = DiffEntry),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn diff_commit(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Response> {
    ndjson(&s, move |e| {
        let store = e.store();
        let repo = RepoRef::parse(&repo)?;
        let new = store.resolve_commit(&repo, &commit)?;
        let old = match &q.old {
            Some(o) => match o.split_once('@') {
                Some((r, c)) => store.resolve_commit(&RepoRef::parse(r)?, c)?,
                None => store.resolve_commit(&repo, o)?,
            },
            None => match store.inspect_commit(&new)?.parent {
                Some(p) => repo.commit(&p),
                None => {
                    return Err(ApiError::not_found(format!(
                        "{new} has no parent; name the old commit"
                    )));
                }
            },
        };
        let path = q.path.as_deref().unwrap_or("/");
        let old_path = q.old_path.as_deref().unwrap_or(path);
        Ok(store.diff_path(&new, path, &old, old_path, q.shallow)?)
    })
    .await
}
