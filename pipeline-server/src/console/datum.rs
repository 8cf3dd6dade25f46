//! `/pipelines/{pipeline}/jobs/{job}/datums/{datum}`: one datum: what it read and wrote,
//! how it ran, its logs, and how to run it again by hand.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use pipeline_core::pps::{DatumInfo, Engine, JobInfo};

use super::datum_fields as fields;
use super::log_lines::{self, LogSource, SHOWN_LINES};
use super::reproduce;
use super::view::{
    Crumb, Html, PageError, copyable, datum_state, live_job_state, shell, short, url,
};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::state::AppState;

/// Output files listed on the page; the rest are counted.
pub const SHOWN_OUTPUTS: usize = 500;

/// `GET /pipelines/{pipeline}/jobs/{job}/datums/{datum}`: the datum; prefixes of the job
/// and datum IDs redirect to the full IDs.
pub async fn page(
    State(s): State<AppState>,
    Path((p, j, d)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let shown = s
        .blocking(move |e| {
            let job = e.resolve_job_id(&p, &j)?;
            let datum = e.resolve_datum_id(&p, &job, &d)?;
            if job != j || datum != d {
                return Ok(Err(url::datum(&p, &job, &datum)));
            }
            Ok(Ok(render(e, &p, &job, &datum)?))
        })
        .await?;
    Ok(match shown {
        Ok(markup) => Html(markup).into_response(),
        Err(to) => Redirect::to(&to).into_response(),
    })
}

/// Reads the job, the datum, the spec of the job's version and the datum's last log lines,
/// and renders the page.
fn render(e: &Engine, p: &str, j: &str, id: &str) -> ApiResult<Markup> {
    let job = e.inspect_job(p, j)?;
    let d = e.inspect_datum(p, j, id)?;
    let (lines, earlier) = e.log_tail(p, j, Some(id), SHOWN_LINES)?;
    let pipeline = e.pipeline_version(p, job.version)?;
    // The spec the workers ran: the version's pinned image reference, if it has one.
    let ran = pipeline_core::pps::pool_spec(&pipeline, &Default::default()).spec;
    let repro = reproduce::commands(&ran, &pipeline.executor, &job, &d);
    let src = LogSource {
        pipeline: p,
        job: j,
        datum: Some(id),
    };
    let crumbs = [
        Crumb::link(p, url::pipeline(p)),
        Crumb::link(format!("job {}", short(j)), url::job(p, j)),
        Crumb::here(format!("datum {}", short(id))),
    ];
    let body = html! {
        h1 { "Datum " span.mono title=(id) { (short(id)) } " " (datum_state(d.state)) }
        (facts(&job, &d))
        h2 { "Attempts" }
        (fields::attempt_table(&d))
        h2 { "Inputs" }
        (inputs(&job, &d))
        h2 { "Outputs" }
        (outputs(&job, &d))
        h2 { "Logs" }
        (log_lines::block(&src, &lines, earlier))
        h2 { "Reproduce locally" }
        @match &repro {
            Some(text) => {
                (copyable("reproduce", text))
                p.muted.not-reproduced { (reproduce::NOT_REPRODUCED) }
            }
            None => p.muted { "This pipeline has no command to run." },
        }
    };
    Ok(shell(&format!("{p} datum {}", short(id)), &crumbs, body))
}

/// State, reason, failure, attempts, timings and sizes.
fn facts(job: &JobInfo, d: &DatumInfo) -> Markup {
    html! {
        dl.facts.card {
            dt { "Datum ID" } dd.mono { (d.id) }
            dt { "Hash" } dd.mono { (d.hash) }
            dt { "State" } dd { (datum_state(d.state)) }
            dt { "Reason" } dd { (fields::reason(&job.pipeline, &d.reason)) }
            @if d.failure.is_some() {
                dt { "Failure" } dd { (fields::failure(d)) }
            }
            dt { "Attempts" } dd { (fields::attempts(d)) }
            dt { "Timings" } dd { (fields::timings(d)) " (download / process / upload)" }
            dt { "Bytes" } dd { (fields::sizes(d)) }
            dt { "Job" }
            dd {
                a.mono href=(url::job(&job.pipeline, &job.id)) title=(job.id) { (short(&job.id)) }
                " " (live_job_state(&job.pipeline, &job.id, job.state))
            }
            @if d.job != job.id {
                dt { "Outputs made by" }
                dd { a.mono href=(url::job(&job.pipeline, &d.job)) title=(d.job) { (short(&d.job)) } }
            }
        }
    }
}

/// The inputs, each linked to its directory in the input commit's file browser.
fn inputs(job: &JobInfo, d: &DatumInfo) -> Markup {
    html! {
        table.datum-inputs {
            thead { tr { th { "Input" } th { "Repo" } th { "Commit" } th { "Path" } th { "Details" } } }
            tbody {
                @for i in &d.inputs {
                    tr {
                        td { (i.name) }
                        td { a href=(url::repo(&i.repo)) { (i.repo) } }
                        @match fields::input_commit(job, &i.repo) {
                            Some(c) => {
                                td { a.mono href=(url::commit(&i.repo, c.id.as_str())) { (short(c.id.as_str())) } }
                                td { a.mono href=(url::commit_dir(&i.repo, c.id.as_str(), fields::dir_of(&i.path))) { (i.path) } }
                            }
                            None => { td.muted { "?" } td.mono { (i.path) } }
                        }
                        td { (fields::input_details(i)) }
                    }
                }
            }
        }
    }
}

/// The output files (the first [`SHOWN_OUTPUTS`]), linked to the output commit's browser.
fn outputs(job: &JobInfo, d: &DatumInfo) -> Markup {
    let repo = &super::repo::repo_label(&job.output_commit.repo);
    let commit = job.output_commit.id.as_str();
    let more = d.outputs.len().saturating_sub(SHOWN_OUTPUTS);
    html! {
        @if d.outputs.is_empty() {
            p.muted { "No output files." }
        } @else {
            ul.datum-outputs {
                @for o in d.outputs.iter().take(SHOWN_OUTPUTS) {
                    li { a.mono href=(url::commit_dir(repo, commit, fields::dir_of(o))) { (o) } }
                }
            }
            @if more > 0 {
                p.muted { (more) " more output files (see the " a href=(url::commit(repo, commit)) { "output commit" } ")." }
            }
        }
    }
}
