//! `/api/v1/commit_sets/{id}/wait` and `/api/v1/jobs/settle`: waiting for the jobs a write
//! started.

use axum::extract::State;
use pipeline_core::pps::JobInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::{AppState, JobRunner};

/// The commit set routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wait_commit_set))
        .routes(routes!(settle_jobs))
}

/// Waits until every job of commit set `id` (the jobs a commit with that ID started
/// downstream) is done or waits for an open commit; returns them. On a server that runs jobs
/// only when asked (`pipectl`'s embedded mode) runs every pending job first and returns the
/// jobs that finished.
#[utoipa::path(post, path = "/api/v1/commit_sets/{id}/wait", tag = "jobs",
    params(("id" = String, Path, description = "Commit ID (the commit set's ID)")),
    responses((status = 200, body = Vec<JobInfo>), (status = 400, body = ErrorBody),
        (status = 500, body = ErrorBody)))]
async fn wait_commit_set(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<JobInfo>>> {
    let jobs = s.settle(&id).await?;
    s.notify_changed();
    Ok(Json(jobs))
}

/// Runs every pending job and returns those that finished, on a server that runs jobs only
/// when asked; on a server that runs them in the background, returns at once with none.
#[utoipa::path(post, path = "/api/v1/jobs/settle", tag = "jobs",
    responses((status = 200, body = Vec<JobInfo>), (status = 500, body = ErrorBody)))]
async fn settle_jobs(State(s): State<AppState>) -> ApiResult<Json<Vec<JobInfo>>> {
    if s.runner() == JobRunner::Background {
        return Ok(Json(Vec::new()));
    }
    let engine = s.engine().clone();
    let jobs = engine.run_pending().await?;
    engine.shutdown().await;
    s.notify_changed();
    Ok(Json(jobs))
}
