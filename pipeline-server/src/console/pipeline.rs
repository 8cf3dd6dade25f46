//! `/pipelines/{pipeline}`: one pipeline, and its actions.
//!
//! The page: facts, actions, why it would run again, the spec of the current version (or of
//! `?version=N`) as written and effective, its versions, and its newest jobs (at most
//! [`MAX_JOBS`], found by walking the output branch: [`Engine::recent_jobs`]).

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use pipeline_core::pps::{Engine, JobInfo, PipelineInfo, PpsError, RecentJobs, RerunMode};
use serde::Deserialize;

use super::pipeline_spec::{
    VersionRow, read_versions, requested_version, spec_section, versions_section,
};
use super::pipeline_status::{PipelineStatus, job_duration, now_ms, repo_name, stale_badges};
use super::session::ActionForm;
use super::view::{
    Crumb, Html, PageError, PageResult, action_form, live_job_state, shell, short, time, url,
};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::state::AppState;

/// How many jobs the page lists (the newest ones).
pub const MAX_JOBS: usize = 100;

/// `?version=` of the pipeline page.
#[derive(Debug, Default, Deserialize)]
pub struct PipelinePageQuery {
    /// The version whose spec is shown (default: the current one).
    #[serde(default)]
    pub version: Option<String>,
}

/// `GET /pipelines/{pipeline}` (`?version=N`: that version's spec).
pub async fn page(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<PipelinePageQuery>,
) -> PageResult {
    let csrf = s.csrf().to_string();
    let name = p.clone();
    let body = s
        .blocking(move |e| {
            Ok(read_page(e, &name, q.version.as_deref()).and_then(|d| render(&d, &csrf)))
        })
        .await??;
    let crumbs = [Crumb::link("pipelines", "/#pipelines"), Crumb::here(&p)];
    Ok(Html(shell(&p, &crumbs, body)))
}

/// Everything the page shows.
struct PipelinePage {
    status: PipelineStatus,
    /// The version whose spec is shown.
    shown: PipelineInfo,
    versions: Vec<VersionRow>,
    more_versions: bool,
    jobs: RecentJobs,
}

/// Reads the pipeline, the version asked for, its versions and newest jobs.
fn read_page(e: &Engine, name: &str, version: Option<&str>) -> Result<PipelinePage, PageError> {
    let info = e.inspect_pipeline(name)?;
    let wanted = requested_version(version, name, info.version)?;
    let shown = match wanted == info.version {
        true => info.clone(),
        false => e.pipeline_version(name, wanted)?,
    };
    let (versions, more_versions) = read_versions(e, &info)?;
    let jobs = e.recent_jobs(name, MAX_JOBS)?;
    let status = PipelineStatus::read(e, info)?;
    Ok(PipelinePage {
        status,
        shown,
        versions,
        more_versions,
        jobs,
    })
}

/// The page body.
fn render(d: &PipelinePage, csrf: &str) -> Result<Markup, PageError> {
    let info = &d.status.info;
    let name = &info.id();
    Ok(html! {
        h1 {
            (name) " "
            @if info.stopped { span.badge.killed { "stopped" } } @else { span.badge.ok { "running" } }
        }
        @if let Some(desc) = info.spec.description.as_deref().filter(|d| !d.is_empty()) {
            p.description { (desc) }
        }
        div.actions #actions { (actions(info, csrf)) }
        (facts(&d.status))
        h2 #staleness { "Would it run again?" }
        (why_rerun(&d.status))
        h2 #spec { "Spec" }
        (spec_section(&d.shown, info.version)?)
        h2 { "Versions" }
        (versions_section(name, &d.versions, d.more_versions, d.shown.version))
        h2 { "Jobs" }
        (jobs_table(name, &d.jobs, csrf))
    })
}

/// Rerun (failed datums only, or all), and stop or start.
fn actions(info: &PipelineInfo, csrf: &str) -> Markup {
    let base = url::pipeline(&info.id());
    let all_question = format!(
        "Rerun every datum of {}? Nothing is skipped: every datum runs again.",
        info.id()
    );
    let stop_question = format!("Stop {}? Its unfinished jobs are killed.", info.id());
    html! {
        (action_form(&format!("{base}/rerun"), "Rerun failed datums", csrf, None, &[("mode", "failed")]))
        (action_form(&format!("{base}/rerun"), "Rerun all datums", csrf, Some(&all_question), &[("mode", "all")]))
        @if info.stopped {
            (action_form(&format!("{base}/start"), "Start", csrf, None, &[]))
        } @else {
            (action_form(&format!("{base}/stop"), "Stop", csrf, Some(&stop_question), &[]))
        }
    }
}

/// The pipeline's facts.
fn facts(status: &PipelineStatus) -> Markup {
    let info = &status.info;
    let out = &info.output_branch;
    let out_repo = repo_name(&out.repo);
    html! {
        dl.facts #facts {
            dt { "State" } dd { @if info.stopped { "stopped" } @else { "running" } }
            dt { "Version" } dd { (info.version) }
            dt { "Executor" } dd { (info.executor) }
            @if let Some(svc) = &info.effective.service {
                dt { "Service" }
                dd { "listening on " code { (pipeline_core::pps::service_address(svc)) } }
            }
            @if let Some(pin) = &info.image {
                dt { "Image" }
                dd { code { (pin.image) } " pinned to " code.digest { (pin.digest) } }
            }
            dt { "Created" } dd { (time(info.created_ms)) }
            dt { "Updated" } dd { (time(info.updated_ms)) }
            dt { "Output branch" }
            dd { a href=(url::repo(&out_repo)) { (out_repo) "@" (out.name) } }
            dt { "Inputs" }
            dd {
                @for (i, b) in info.inputs.iter().enumerate() {
                    @if i > 0 { ", " }
                    @let repo = repo_name(&b.repo);
                    a.input href=(url::repo(&repo)) { (repo) "@" (b.name) }
                }
                @if info.inputs.is_empty() { span.muted { "none" } }
            }
            dt { "Last job" }
            dd {
                @match &status.last_job {
                    Some(j) => {
                        a.mono href=(url::job(&info.id(), &j.id)) { (short(&j.id)) } " "
                        (live_job_state(&info.id(), &j.id, j.state))
                    }
                    None => span.muted { "none yet" },
                }
            }
            @if let Some(f) = status.last_finished.as_ref().filter(|f| {
                status.last_job.as_ref().is_some_and(|j| j.id != f.id)
            }) {
                dt { "Last finished job" }
                dd {
                    a.mono href=(url::job(&info.id(), &f.id)) { (short(&f.id)) } " "
                    (live_job_state(&info.id(), &f.id, f.state))
                }
            }
        }
    }
}

/// The staleness reasons, each with its explanation.
fn why_rerun(status: &PipelineStatus) -> Markup {
    html! {
        div #why-rerun {
            p { (stale_badges(&status.stale)) }
            @if !status.stale.is_empty() {
                ul {
                    @for s in &status.stale { li { (s.explanation()) } }
                }
            }
        }
    }
}

/// The newest jobs, newest first.
fn jobs_table(pipeline: &str, jobs: &RecentJobs, csrf: &str) -> Markup {
    let now = now_ms();
    html! {
        @if jobs.jobs.is_empty() {
            p.muted { "No jobs yet." }
        } @else {
            table #jobs {
                thead { tr {
                    th { "Job" } th { "State" } th.num { "Version" } th { "Started" }
                    th.num { "Duration" } th.num { "Processed" } th.num { "Skipped" }
                    th.num { "Failed" } th.num { "Total" } th { "Reason" } th {}
                } }
                tbody {
                    @for j in &jobs.jobs { (job_row(pipeline, j, csrf, now)) }
                }
            }
            @if jobs.more {
                p.muted #older-jobs {
                    "Only the " (MAX_JOBS) " newest jobs are listed; "
                    code { "pipectl list job -p " (pipeline) } " lists them all."
                }
            }
        }
    }
}

/// One job's row, with "Stop job" while it is unfinished.
fn job_row(pipeline: &str, j: &JobInfo, csrf: &str, now: u64) -> Markup {
    let st = &j.stats;
    let started = j.started_ms.map_or_else(|| "—".to_string(), time);
    html! {
        tr data-job=(j.id) {
            td { a.mono href=(url::job(pipeline, &j.id)) { (short(&j.id)) } }
            td { (live_job_state(pipeline, &j.id, j.state)) }
            td.num { (j.version) }
            td { (started) }
            td.num { (job_duration(j, now)) }
            td.num { (st.datums_processed) }
            td.num { (st.datums_skipped) }
            td.num { (st.datums_failed) }
            td.num { (st.datums_total) }
            td.reason { (j.reason) }
            td {
                @if !j.state.is_terminal() {
                    (action_form(&format!("{}/stop", url::job(pipeline, &j.id)), "Stop job", csrf,
                        Some(&format!("Stop job {}?", short(&j.id))), &[]))
                }
            }
        }
    }
}

/// `POST /pipelines/{pipeline}/rerun` (`mode=failed` (default) or `all`): a new job over the
/// current inputs (see [`RerunMode`]); back to the pipeline's page.
pub async fn rerun(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    let mode = match f.mode.as_deref() {
        None | Some("failed") => RerunMode::FailedOnly,
        Some("all") => RerunMode::All,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "mode: expected `failed` or `all`, got {other:?}"
            ))
            .into());
        }
    };
    act(&s, &p, move |e, p| e.rerun_pipeline(p, mode).map(drop)).await
}

/// `POST /pipelines/{pipeline}/stop`: no new jobs, running ones killed.
pub async fn stop(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    act(&s, &p, |e, p| e.stop_pipeline(p).map(drop)).await
}

/// `POST /pipelines/{pipeline}/start`: a job over the current inputs.
pub async fn start(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    act(&s, &p, |e, p| e.start_pipeline(p).map(drop)).await
}

/// Runs one engine write on pipeline `p`, wakes the runner and goes back to its page (303).
async fn act(
    s: &AppState,
    p: &str,
    write: impl FnOnce(&Engine, &str) -> Result<(), PpsError> + Send + 'static,
) -> Result<Response, PageError> {
    let name = p.to_string();
    s.blocking(move |e| Ok(write(e, &name)?)).await?;
    s.notify_changed();
    Ok(Redirect::to(&url::pipeline(p)).into_response())
}
