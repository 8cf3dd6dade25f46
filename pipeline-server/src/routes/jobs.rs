//! `/api/v1/jobs`: list, inspect, stop and wait for jobs; wait for the jobs of a commit.
//!
//! Wherever a path names a job, a prefix of at least 8 characters of its ID is enough
//! ([`pipeline_core::pps::Engine::resolve_job_id`]); an ambiguous or shorter prefix is a 400
//! naming the candidates or the minimum.

use std::time::Duration;

use axum::extract::State;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pps::{Engine, JobInfo};
use pipeline_core::spec::effective::DEFAULT_BRANCH;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::{AppState, JobRunner};

/// How long a waiting request sleeps between looks at the store when nothing signals a
/// change (the engine's own writes do not).
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(wait_commit))
        .routes(routes!(inspect_job))
        .routes(routes!(stop_job))
        .routes(routes!(restart_datum))
        .routes(routes!(wait_job))
}

/// `?pipeline=NAME`: only that pipeline's jobs.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ListJobsQuery {
    /// Only this pipeline's jobs.
    #[serde(default)]
    pub pipeline: Option<String>,
}

/// `?commit=REPO@COMMIT`: the commit whose commit set to wait for.
#[derive(Debug, Deserialize, IntoParams)]
pub struct WaitCommitQuery {
    /// `[PROJECT/]REPO@BRANCH|COMMIT` (a branch means its head; `^N` allowed).
    pub commit: String,
}

/// The jobs of one commit set, once none of them can progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommitSetJobs {
    /// The commit set's ID (the commit's ID).
    pub commit_set: String,
    /// Its jobs (one per downstream pipeline); unfinished ones carry in `reason` the open
    /// commit they wait for.
    pub jobs: Vec<JobInfo>,
}

/// `PIPELINE@JOB` with the job's full ID.
pub(crate) fn resolve(e: &Engine, pipeline: &str, job: &str) -> ApiResult<String> {
    Ok(e.resolve_job_id(pipeline, job)?)
}

/// A job with, when it is not finished and cannot run yet, the open commit it waits for as
/// its reason.
fn with_waiting_reason(e: &Engine, mut j: JobInfo) -> ApiResult<JobInfo> {
    if j.reason.is_empty()
        && let Some(waiting) = e.waiting_for(&j)?
    {
        j.reason = waiting;
    }
    Ok(j)
}

/// Whether a job is done or cannot progress until an open commit finishes.
fn settled(e: &Engine, j: &JobInfo) -> ApiResult<bool> {
    Ok(j.state.is_terminal() || e.waiting_for(j)?.is_some())
}

/// Jobs, newest first (every pipeline's, or one's), each unfinished one with the open commit
/// it waits for as its reason. Jobs that new commits made are recorded first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListJobsQuery),
    responses((status = 200, body = Vec<JobInfo>), (status = 404, body = ErrorBody)))]
async fn list_jobs(
    State(s): State<AppState>,
    Query(q): Query<ListJobsQuery>,
) -> ApiResult<Json<Vec<JobInfo>>> {
    let (jobs, discovered) = s
        .blocking(move |e| {
            let discovered = !e.discover_jobs()?.is_empty();
            let mut jobs = e.list_jobs(q.pipeline.as_deref())?;
            jobs.reverse();
            let jobs = jobs
                .into_iter()
                .map(|j| with_waiting_reason(e, j))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok((jobs, discovered))
        })
        .await?;
    if discovered {
        s.notify_changed();
    }
    Ok(Json(jobs))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{pipeline}/{job}", tag = "jobs",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters")),
    responses((status = 200, body = JobInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_job(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
) -> ApiResult<Json<JobInfo>> {
    s.blocking(move |e| {
        let id = resolve(e, &pipeline, &job)?;
        with_waiting_reason(e, e.inspect_job(&pipeline, &id)?)
    })
    .await
    .map(Json)
}

/// Stops a job: KILLED, its output commit finished with that error. A job the server is
/// running right now is cancelled (its datums' processes killed) and ends KILLED.
#[utoipa::path(post, path = "/api/v1/jobs/{pipeline}/{job}/stop", tag = "jobs",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters")),
    responses((status = 200, body = JobInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_job(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
) -> ApiResult<Json<JobInfo>> {
    let j = s
        .blocking(move |e| {
            let id = resolve(e, &pipeline, &job)?;
            Ok(e.stop_job(&pipeline, &id, None)?)
        })
        .await?;
    s.notify_changed();
    Ok(Json(j))
}

/// Body of `POST /api/v1/jobs/{pipeline}/{job}/restart_datum`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestartDatums {
    /// Datums to restart: datum IDs, or paths of their input files (`/dir/a.txt`).
    pub datums: Vec<String>,
}

/// The answer of `POST /api/v1/jobs/{pipeline}/{job}/restart_datum`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestartedDatums {
    /// IDs of the datums whose attempt was cancelled and started again.
    pub restarted: Vec<String>,
}

/// Restarts running datums of a running job (pachctl's `restart datum`): each one's current
/// attempt is cancelled and it starts again at once, without using up one of its
/// `datum_tries`. 400 when no running datum matches; 409 when the job is finished.
#[utoipa::path(post, path = "/api/v1/jobs/{pipeline}/{job}/restart_datum", tag = "jobs",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters")),
    request_body = RestartDatums,
    responses((status = 200, body = RestartedDatums), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restart_datum(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
    Json(req): Json<RestartDatums>,
) -> ApiResult<Json<RestartedDatums>> {
    s.blocking(move |e| {
        let id = resolve(e, &pipeline, &job)?;
        let restarted = e.restart_datum(&pipeline, &id, &req.datums)?;
        Ok(RestartedDatums { restarted })
    })
    .await
    .map(Json)
}

/// Waits until a job is finished, or cannot progress until an open commit finishes (its
/// reason names the commit); returns it. On a server that runs jobs only when asked
/// (`pipectl`'s embedded mode) runs every pending job first.
#[utoipa::path(post, path = "/api/v1/jobs/{pipeline}/{job}/wait", tag = "jobs",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters")),
    responses((status = 200, body = JobInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn wait_job(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
) -> ApiResult<Json<JobInfo>> {
    let id = {
        let (p, j) = (pipeline.clone(), job);
        s.blocking(move |e| resolve(e, &p, &j)).await?
    };
    run_pending_if_on_wait(&s).await?;
    loop {
        let (p, j) = (pipeline.clone(), id.clone());
        let (info, done) = s
            .blocking(move |e| {
                let info = with_waiting_reason(e, e.inspect_job(&p, &j)?)?;
                let done = settled(e, &info)?;
                Ok((info, done))
            })
            .await?;
        if done || s.runner() == JobRunner::OnWait {
            return Ok(Json(info));
        }
        s.changed(POLL).await;
    }
}

/// With [`JobRunner::OnWait`]: runs every pending job (and stops the workers after).
pub(crate) async fn run_pending_if_on_wait(s: &AppState) -> ApiResult<()> {
    if s.runner() != JobRunner::OnWait {
        return Ok(());
    }
    let engine = s.engine().clone();
    let ran = engine.run_pending().await;
    engine.shutdown().await;
    s.notify_changed();
    ran?;
    Ok(())
}

/// Waits until every job of a commit's commit set is finished or cannot progress until an
/// open commit finishes; returns them. On a server that runs jobs only when asked, runs every
/// pending job first.
#[utoipa::path(post, path = "/api/v1/jobs/wait", tag = "jobs", params(WaitCommitQuery),
    responses((status = 200, body = CommitSetJobs), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn wait_commit(
    State(s): State<AppState>,
    Query(q): Query<WaitCommitQuery>,
) -> ApiResult<Json<CommitSetJobs>> {
    let id = s
        .blocking(move |e| {
            let r = FileRef::parse(&q.commit)?;
            let c = e
                .store()
                .resolve_commit(&r.repo, r.commit.as_deref().unwrap_or(DEFAULT_BRANCH))?;
            e.discover_jobs()?;
            Ok(c.id.to_string())
        })
        .await?;
    run_pending_if_on_wait(&s).await?;
    loop {
        let set = id.clone();
        let (jobs, done) = s
            .blocking(move |e| {
                let mut jobs = Vec::new();
                let mut done = true;
                for j in e.jobs_of_commit_set(&set)? {
                    done &= settled(e, &j)?;
                    jobs.push(with_waiting_reason(e, j)?);
                }
                Ok((jobs, done))
            })
            .await?;
        if done || s.runner() == JobRunner::OnWait {
            return Ok(Json(CommitSetJobs {
                commit_set: id,
                jobs,
            }));
        }
        s.changed(POLL).await;
    }
}
