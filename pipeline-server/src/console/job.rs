//! `/pipelines/{pipeline}/jobs/{job}`: one job and its datums, one page at a time.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use pipeline_core::pfs::CommitRef;
use pipeline_core::pps::{DatumQuery, Engine, JobInfo};
use serde::Deserialize;

use super::job_datums::{self, PAGE_SIZE};
use super::log_lines::{self, LogSource, SHOWN_LINES};
use super::session::ActionForm;
use super::view::{
    Crumb, Html, PageError, action_form, bytes, duration_ms, enc, live_job_state, shell, short,
    time, url,
};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::state::AppState;

/// `?state=&after=` of the job page.
#[derive(Debug, Default, Deserialize)]
pub struct JobPageQuery {
    /// Only datums in this state (`FAILED`, `RECOVERED`, `SUCCESS`, `SKIPPED`).
    #[serde(default)]
    pub state: Option<String>,
    /// The page after this position (a page's `next`).
    #[serde(default)]
    pub after: Option<String>,
}

/// `GET /pipelines/{pipeline}/jobs/{job}`: the job; a job-ID prefix redirects to the full ID
/// (keeping the query).
pub async fn page(
    State(s): State<AppState>,
    Path((p, j)): Path<(String, String)>,
    Query(q): Query<JobPageQuery>,
) -> Result<Response, PageError> {
    let state = job_datums::parse_state(q.state.as_deref())?;
    let csrf = s.csrf().to_string();
    let shown = s
        .blocking(move |e| {
            let id = e.resolve_job_id(&p, &j)?;
            if id != j {
                return Ok(Err(redirect_url(&p, &id, &q)));
            }
            Ok(Ok(render(e, &p, &id, state, q.after.as_deref(), &csrf)?))
        })
        .await?;
    Ok(match shown {
        Ok(markup) => Html(markup).into_response(),
        Err(to) => Redirect::to(&to).into_response(),
    })
}

/// The full job page's URL, with the query of the request.
fn redirect_url(p: &str, id: &str, q: &JobPageQuery) -> String {
    let mut u = url::job(p, id);
    let params: Vec<String> = [("state", &q.state), ("after", &q.after)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if !params.is_empty() {
        u.push('?');
        u.push_str(&params.join("&"));
    }
    u
}

/// Reads the job, one page of its datums and its last log lines, and renders the page.
fn render(
    e: &Engine,
    p: &str,
    id: &str,
    state: Option<pipeline_core::pps::DatumState>,
    after: Option<&str>,
    csrf: &str,
) -> ApiResult<Markup> {
    let mut job = e.inspect_job(p, id)?;
    if job.reason.is_empty()
        && !job.state.is_terminal()
        && let Some(waiting) = e.waiting_for(&job)?
    {
        job.reason = waiting;
    }
    let query = DatumQuery {
        state,
        after: after.map(str::to_string),
        limit: PAGE_SIZE,
        reverse: false,
    };
    let datums = e.datum_page(p, id, &query)?;
    let (lines, earlier) = e.log_tail(p, id, None, SHOWN_LINES)?;
    let src = LogSource {
        pipeline: p,
        job: id,
        datum: None,
    };
    let crumbs = [
        Crumb::link(p, url::pipeline(p)),
        Crumb::here(format!("job {}", short(id))),
    ];
    let body = html! {
        h1 { "Job " span.mono title=(id) { (short(id)) } " of " (p) " " (live_job_state(p, id, job.state)) }
        (facts(&job))
        @if !job.state.is_terminal() {
            (action_form(&format!("{}/stop", url::job(p, id)), "Stop job", csrf,
                Some("Stop this job? Its running datums are killed."), &[]))
        }
        h2 { "Stats" }
        (stats(&job))
        h2 { "Datums" }
        (job_datums::section(&job, state, after, &datums))
        h2 { "Logs" }
        (log_lines::block(&src, &lines, earlier))
    };
    Ok(shell(&format!("{p} job {}", short(id)), &crumbs, body))
}

/// A link to an input or output commit's page.
fn commit_link(c: &CommitRef) -> Markup {
    let id = c.id.as_str();
    html! {
        a.mono href=(url::commit(&super::repo::repo_label(&c.repo), id)) title=(id) { (super::repo::repo_label(&c.repo)) "@" (short(id)) }
    }
}

/// State, reason, times, base job, commits and restarts.
fn facts(job: &JobInfo) -> Markup {
    let end = job.finished_ms.unwrap_or_else(now_ms);
    let duration = job.started_ms.map(|s| duration_ms(end.saturating_sub(s)));
    html! {
        dl.facts.card {
            dt { "State" } dd { (live_job_state(&job.pipeline, &job.id, job.state)) }
            @if !job.reason.is_empty() {
                dt { "Reason" } dd.reason { (job.reason) }
            }
            dt { "Job ID" } dd.mono { (job.id) }
            dt { "Pipeline version" } dd { (job.version) }
            dt { "Created" } dd { (time(job.created_ms)) }
            dt { "Started" } dd { (job.started_ms.map(time).unwrap_or_else(|| "not yet".into())) }
            dt { "Finished" } dd { (job.finished_ms.map(time).unwrap_or_else(|| "not yet".into())) }
            @if let Some(d) = duration {
                dt { "Duration" } dd { (d) @if job.finished_ms.is_none() { " so far" } }
            }
            dt { "Base job" }
            dd {
                @match &job.base_job {
                    Some(b) => a.mono href=(url::job(&job.pipeline, b)) title=(b) { (short(b)) },
                    None => span.muted { "none (every datum ran)" },
                }
            }
            dt { "Input commits" }
            dd { @for c in &job.inputs { (commit_link(c)) " " } }
            dt { "Output commit" } dd { (commit_link(&job.output_commit)) }
            dt { "Restarts" } dd { (job.restarts) }
            @if let Some(e) = &job.egress {
                dt { "Egress" }
                dd {
                    span.mono { (e.target) } ", " (e.attempts) " attempt(s)"
                    @if let Some(err) = &e.last_error { br; "last error: " span.reason { (err) } }
                    @if let Some(next) = e.next_try_ms { br; "next try: " (time(next)) }
                    @if e.last_error.is_none() && e.attempts > 0 { ", " (e.written) " written" }
                }
            }
        }
    }
}

/// The job's counters and phase times.
fn stats(job: &JobInfo) -> Markup {
    let s = &job.stats;
    html! {
        table.stats {
            thead { tr {
                th.num { "Total" } th.num { "Processed" } th.num { "Skipped" } th.num { "Failed" }
                th.num { "Recovered" } th.num { "Bytes in" } th.num { "Bytes out" }
                th.num { "Plan" } th.num { "Process" } th.num { "Finish" }
            } }
            tbody { tr {
                td.num { (s.datums_total) } td.num { (s.datums_processed) }
                td.num { (s.datums_skipped) } td.num { (s.datums_failed) }
                td.num { (s.datums_recovered) } td.num { (bytes(s.bytes_in)) }
                td.num { (bytes(s.bytes_out)) } td.num { (duration_ms(s.plan_ms)) }
                td.num { (duration_ms(s.process_ms)) } td.num { (duration_ms(s.finish_ms)) }
            } }
        }
    }
}

/// Now, ms since the epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `POST /pipelines/{pipeline}/jobs/{job}/stop`: KILLED with "job stopped"; back to its page.
pub async fn stop(
    State(s): State<AppState>,
    Path((p, j)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    let (pipeline, prefix) = (p.clone(), j.clone());
    let id = s
        .blocking(move |e| {
            let id = e.resolve_job_id(&pipeline, &prefix)?;
            e.stop_job(&pipeline, &id, None)?;
            Ok(id)
        })
        .await?;
    s.notify_changed();
    Ok(Redirect::to(&url::job(&p, &id)).into_response())
}
