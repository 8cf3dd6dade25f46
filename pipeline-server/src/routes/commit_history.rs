//! pachctl's `squash commit`, `delete commit` and `wait commitset` over a commit set:
//! `POST /api/v1/commit_sets/{id}/squash`, `DELETE /api/v1/commit_sets/{id}` and
//! `GET /api/v1/commit_sets/{id}`.

use std::time::Duration;

use axum::extract::State;
use pipeline_core::pfs::{CommitId, CommitInfo, PfsError};
use pipeline_core::pps::RemovedCommitSet;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorKind};
use crate::extract::{Json, Path, Query};
use crate::state::{AppState, JobRunner};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inspect_commit_set, delete_commit_set))
        .routes(routes!(squash_commit_set))
}

const ID_DOC: &str = "The commit set's ID (32 hexadecimal characters)";

/// `?wait=&timeout_ms=` of `GET /api/v1/commit_sets/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct CommitSetQuery {
    /// Answer once every commit of the set is finished.
    #[serde(default)]
    pub wait: bool,
    /// With `wait`: give up after this many milliseconds and answer with the commits as they
    /// are (absent: wait as long as it takes).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn commit_set_id(id: &str) -> ApiResult<CommitId> {
    Ok(CommitId::parse(id)?)
}

/// Squashes a commit set (pachctl's `squash commit`): every commit of the set, in every
/// repo, is deleted and its changes kept in its children; the set's jobs are KILLED (those
/// that had not ended) and lose their datum records; one transaction. Refused (409) when a
/// commit of the set has no children (drop it instead), a child is still open, or commits
/// of other sets were derived from the set.
#[utoipa::path(post, path = "/api/v1/commit_sets/{id}/squash", tag = "commits",
    params(("id" = String, Path, description = ID_DOC)),
    responses((status = 200, body = RemovedCommitSet), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn squash_commit_set(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RemovedCommitSet>> {
    let id = commit_set_id(&id)?;
    let done = s.engine().squash_commit_set(&id).await?;
    s.notify_changed();
    Ok(Json(done))
}

/// Deletes (drops) a commit set (pachctl's `delete commit`): every commit of the set is
/// deleted and branch heads at them move to their parents; the set's jobs are KILLED (those
/// that had not ended) and lose their datum records; one transaction. Refused (409) when a
/// commit of the set has children or commits of other sets were derived from the set.
#[utoipa::path(delete, path = "/api/v1/commit_sets/{id}", tag = "commits",
    params(("id" = String, Path, description = ID_DOC)),
    responses((status = 200, body = RemovedCommitSet), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_commit_set(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RemovedCommitSet>> {
    let id = commit_set_id(&id)?;
    let done = s.engine().delete_commit_set(&id).await?;
    s.notify_changed();
    Ok(Json(done))
}

/// The commits of a commit set, sorted by repo (pachctl's `wait commitset` with `wait`). With
/// `wait`, answers once every one is finished; on a server that runs jobs only when asked
/// (`pipectl`'s embedded mode) it runs the pending jobs first and answers at once, finished
/// or not (nothing else could finish them). The caller checks each commit's `state`.
#[utoipa::path(get, path = "/api/v1/commit_sets/{id}", tag = "commits",
    params(("id" = String, Path, description = ID_DOC), CommitSetQuery),
    responses((status = 200, body = Vec<CommitInfo>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn inspect_commit_set(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CommitSetQuery>,
) -> ApiResult<Json<Vec<CommitInfo>>> {
    let id = commit_set_id(&id)?;
    let commits = read_set(&s, &id).await?;
    if !q.wait || commits.iter().all(CommitInfo::is_finished) {
        return Ok(Json(commits));
    }
    if s.runner() == JobRunner::OnWait {
        s.settle(id.as_str()).await?;
        return read_set(&s, &id).await.map(Json);
    }
    let store = s.engine().store().clone();
    let wait_all = async {
        for c in commits.iter().filter(|c| !c.is_finished()) {
            match store.wait_commit_async(&c.commit).await {
                // A commit removed meanwhile (its set was deleted) is not waited for.
                Ok(_) | Err(PfsError::CommitNotFound { .. }) => {}
                Err(e) => return Err(ApiError::from(e)),
            }
        }
        Ok(())
    };
    let limit = q.timeout_ms.map(Duration::from_millis);
    tokio::select! {
        _ = s.stopping().cancelled() => {
            return Err(ApiError::new(ErrorKind::Unavailable, "the server is stopping"));
        }
        r = async {
            match limit {
                Some(d) => tokio::time::timeout(d, wait_all).await.unwrap_or(Ok(())),
                None => wait_all.await,
            }
        } => r?,
    }
    read_set(&s, &id).await.map(Json)
}

/// The commits of set `id` now; 404 when there are none.
async fn read_set(s: &AppState, id: &CommitId) -> ApiResult<Vec<CommitInfo>> {
    let id = id.clone();
    s.blocking(move |e| {
        let commits = e.store().inspect_commit_set(&id)?;
        if commits.is_empty() {
            return Err(PfsError::CommitSetNotFound { id: id.to_string() }.into());
        }
        Ok(commits)
    })
    .await
}
