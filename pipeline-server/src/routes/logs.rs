//! `/api/v1/pipelines/{pipeline}/logs`: user-code log lines (secret values already
//! redacted when stored), read or followed, as NDJSON.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use pipeline_core::pps::{Engine, LogLine};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::datums::{ndjson_channel, ndjson_line};
use super::jobs::{POLL, resolve};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::state::{AppState, JobRunner};

/// The log routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(logs))
}

/// Which lines, and whether to follow.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct LogsQuery {
    /// Only this job's lines (a prefix of 8+ characters is enough).
    #[serde(default)]
    pub job: Option<String>,
    /// Only this datum's lines (needs `job`).
    #[serde(default)]
    pub datum: Option<String>,
    /// Keep the stream open and send lines as they are stored, until the job (`job`, or
    /// else the pipeline's newest job) is finished.
    #[serde(default)]
    pub follow: bool,
}

/// What a stream has sent: per (job, datum), how many lines. Lines of one datum are stored
/// in order and never rewritten, so this is a cursor over the whole log.
#[derive(Default)]
struct Cursor(HashMap<(String, String), usize>);

impl Cursor {
    /// The lines of `all` (in store order) not sent yet; advances past them.
    fn fresh(&mut self, all: Vec<LogLine>) -> Vec<LogLine> {
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut out = Vec::new();
        for line in all {
            let key = (line.job.clone(), line.datum.clone());
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            if *n > self.0.get(&key).copied().unwrap_or(0) {
                out.push(line);
            }
        }
        for (k, n) in seen {
            self.0.insert(k, n);
        }
        out
    }
}

/// A request's filter with the job's full ID.
#[derive(Clone)]
struct Filter {
    pipeline: String,
    job: Option<String>,
    datum: Option<String>,
}

impl Filter {
    fn read(&self, e: &Engine) -> ApiResult<Vec<LogLine>> {
        Ok(e.logs(&self.pipeline, self.job.as_deref(), self.datum.as_deref())?)
    }
}

/// Log lines of a pipeline (optionally one job, one datum) in (job, datum, time) order, as
/// NDJSON `LogLine`s. With `follow=true` the stream stays open and sends lines as they are
/// stored, and ends when the job is finished (on a server that runs jobs only when asked,
/// it runs the pending jobs meanwhile).
#[utoipa::path(get, path = "/api/v1/pipelines/{pipeline}/logs", tag = "logs",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"), LogsQuery),
    responses((status = 200, description = "NDJSON, one `LogLine` per line", body = LogLine,
            content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn logs(
    State(s): State<AppState>,
    Path(pipeline): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    if q.datum.is_some() && q.job.is_none() {
        return Err(ApiError::invalid("datum needs job"));
    }
    let follow = q.follow;
    let (filter, target, first) = s
        .blocking(move |e| {
            let job = match &q.job {
                Some(j) => Some(resolve(e, &pipeline, j)?),
                None => None,
            };
            let filter = Filter {
                pipeline: pipeline.clone(),
                job: job.clone(),
                datum: q.datum,
            };
            let first = filter.read(e)?;
            let target = match job {
                Some(j) => Some(j),
                None if follow => e.list_jobs(Some(&pipeline))?.pop().map(|j| j.id),
                None => None,
            };
            Ok((filter, target, first))
        })
        .await?;
    let (tx, response) = ndjson_channel();
    tokio::spawn(async move {
        let mut cursor = Cursor::default();
        if !send(&tx, cursor.fresh(first)).await || !follow {
            return;
        }
        let runner = (s.runner() == JobRunner::OnWait).then(|| {
            let s = s.clone();
            tokio::spawn(async move { super::jobs::run_pending_if_on_wait(&s).await })
        });
        let job = match target {
            Some(job) => Some(job),
            None => first_job(&s, &tx, &filter.pipeline, runner.as_ref()).await,
        };
        if let Some(job) = job {
            follow_job(&s, &tx, &filter, &job, &mut cursor, runner.as_ref()).await;
        }
    });
    Ok(response)
}

/// The job of a pipeline that has none yet, once it has one: a pipeline's first job is
/// recorded by the scheduler a moment after `create pipeline` returns. `None` when the
/// pipeline is gone, the client went away, or (when this request runs the jobs) the jobs
/// ran without making one.
async fn first_job(
    s: &AppState,
    tx: &mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    pipeline: &str,
    runner: Option<&tokio::task::JoinHandle<ApiResult<()>>>,
) -> Option<String> {
    loop {
        let ran_out = runner.is_some_and(|r| r.is_finished());
        let p = pipeline.to_string();
        let newest = s
            .blocking(move |e| Ok(e.list_jobs(Some(&p))?.pop().map(|j| j.id)))
            .await;
        match newest {
            Ok(Some(job)) => return Some(job),
            Ok(None) if !ran_out => {}
            Ok(None) => return None,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.message))).await;
                return None;
            }
        }
        tokio::select! {
            _ = s.changed(POLL) => {}
            _ = tx.closed() => return None,
        }
    }
}

/// Sends `lines`; false once the client went away.
async fn send(
    tx: &mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    lines: Vec<LogLine>,
) -> bool {
    for l in lines {
        if tx.send(Ok(ndjson_line(&l))).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends new lines until `job` is finished (or gone), the client goes away, or (when this
/// request runs the jobs) the jobs ran and `job` cannot progress.
async fn follow_job(
    s: &AppState,
    tx: &mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    filter: &Filter,
    job: &str,
    cursor: &mut Cursor,
    runner: Option<&tokio::task::JoinHandle<ApiResult<()>>>,
) {
    loop {
        // The state first: lines stored before it turned final are read below.
        let ran_out = runner.is_some_and(|r| r.is_finished());
        let (f, j) = (filter.clone(), job.to_string());
        let read = s
            .blocking(move |e| {
                let done = e
                    .inspect_job(&f.pipeline, &j)
                    .map_or(true, |info| info.state.is_terminal());
                Ok((done, f.read(e)?))
            })
            .await;
        let Ok((done, lines)) = read else {
            if let Err(e) = read {
                let _ = tx.send(Err(std::io::Error::other(e.message))).await;
            }
            return;
        };
        if !send(tx, cursor.fresh(lines)).await || done || ran_out {
            return;
        }
        tokio::select! {
            _ = s.changed(POLL) => {}
            _ = tx.closed() => return,
        }
    }
}
