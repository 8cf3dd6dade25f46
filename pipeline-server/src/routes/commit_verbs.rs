//! pachctl's `copy file`, `find commit` and `wait commit` over one repo's commits:
//! `POST .../commits/{commit}/copy`, `GET .../commits/{commit}/find`,
//! `POST .../commits/{commit}/wait`.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use pipeline_core::pfs::{
    CommitInfo, FoundCommit, PfsError, RepoRef, TransferStats, validate_file_path,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::files::{WriteResult, auto_write, ndjson};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorKind};
use crate::extract::{Json, Path, Query};
use crate::state::{AppState, JobRunner};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(copy_file))
        .routes(routes!(find_commits))
        .routes(routes!(wait_commit))
}

const REPO_DOC: &str = "`[PROJECT/]NAME` (`/` percent-encoded)";
const AT_DOC: &str = "Where the copy goes: a branch (its open head, or a new commit for \
    this write alone) or the ID of an open commit";

/// Body of `POST .../commits/{commit}/copy`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CopyFile {
    /// The source repo (`[PROJECT/]NAME`).
    pub src_repo: String,
    /// The source commit-ish: ID, branch or `BRANCH^N`.
    pub src_commit: String,
    /// The source file or directory.
    pub src_path: String,
    /// Where it lands in the destination commit (a directory's files land below it).
    pub path: String,
}

/// `?path=&limit=` of `find`.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
pub struct FindQuery {
    /// The file or directory to look for.
    pub path: String,
    /// At most this many commits (0 or absent: all).
    #[serde(default)]
    pub limit: usize,
}

/// `?timeout_ms=` of `wait`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct WaitQuery {
    /// Give up after this many milliseconds and answer with the commit as it is (absent:
    /// wait as long as it takes).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Copies a file or directory from any commit into this repo (pachctl's `copy file`), with
/// the auto-commit rule. Only entries are written: the copy shares the source's stored
/// contents, so it costs the same whatever the files' size. `bytes` is 0.
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits/{commit}/copy", tag = "files",
    request_body = CopyFile,
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = AT_DOC)),
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn copy_file(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Json(req): Json<CopyFile>,
) -> ApiResult<Json<WriteResult>> {
    let dst = validate_file_path(&req.path).map_err(PfsError::from)?;
    let src_path = validate_file_path(&req.src_path).map_err(PfsError::from)?;
    let res = s
        .blocking(move |e| {
            let src = e
                .store()
                .resolve_commit(&RepoRef::parse(&req.src_repo)?, &req.src_commit)?;
            auto_write(e, &repo, &commit, |store, c| {
                let files = store.copy_file(&src, &src_path, c, &dst)?;
                Ok(TransferStats {
                    files,
                    ..TransferStats::default()
                })
            })
        })
        .await?;
    s.notify_changed();
    Ok(Json(res))
}

/// The commits of a commit's history (it, its parent, ...) that added, modified or deleted
/// a path, newest first, streamed as NDJSON (one `FoundCommit` per line; a last line
/// `{"error": ...}` when the store failed mid-way).
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/find", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = "Where the history starts: ID, branch or `BRANCH^N`"),
        FindQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = FoundCommit),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn find_commits(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<FindQuery>,
) -> ApiResult<Response> {
    ndjson(&s, move |e| {
        let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        let found = e.store().find_commits(&c, &q.path)?;
        let limit = if q.limit == 0 { usize::MAX } else { q.limit };
        Ok(Box::new(found.take(limit)))
    })
    .await
}

/// Waits until a commit is finished and answers with it. A branch names its head at the
/// time of the request. On a server that runs jobs only when asked (`pipectl`'s embedded
/// mode) it runs the pending jobs first and answers at once, finished or not (nothing else
/// could finish it); with `timeout_ms`, an open commit is answered as it is when the time
/// is up. The caller checks `state`.
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits/{commit}/wait", tag = "commits",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = "ID, branch (its head now) or `BRANCH^N`"),
        WaitQuery),
    responses((status = 200, body = CommitInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn wait_commit(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Json<CommitInfo>> {
    let c = s
        .blocking(move |e| Ok(e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?))
        .await?;
    if s.runner() == JobRunner::OnWait {
        s.settle(c.id.as_str()).await?;
        let info = s
            .blocking(move |e| Ok(e.store().inspect_commit(&c)?))
            .await?;
        return Ok(Json(info));
    }
    let store = s.engine().store().clone();
    let wait = store.wait_commit_async(&c);
    let limit = q.timeout_ms.map(Duration::from_millis);
    let waited = tokio::select! {
        _ = s.stopping().cancelled() => {
            return Err(ApiError::new(ErrorKind::Unavailable, "the server is stopping"));
        }
        r = async {
            match limit {
                Some(d) => tokio::time::timeout(d, wait).await.ok(),
                None => Some(wait.await),
            }
        } => r,
    };
    match waited {
        Some(r) => Ok(Json(r?)),
        None => s
            .blocking(move |e| Ok(e.store().inspect_commit(&c)?))
            .await
            .map(Json),
    }
}
