//! The commit page (`/repos/{repo}/commits/{commit}`): the commit's facts, the file browser
//! ([`super::file_browser`]) and, on the root view, the diff against its parent
//! ([`super::commit_diff`]).

use maud::{Markup, html};
use pipeline_core::pfs::{CommitInfo, CommitRef, PfsError, RepoRef, validate_file_path};
use pipeline_core::pps::{Engine, PpsError};

use super::repo::{CommitPageQuery, commit_link, producing_pipeline, provenance_links, repo_label};
use super::view::{Crumb, bytes, shell, short, time, url};
use super::{commit_diff, file_browser};
use crate::error::ApiResult;

/// Renders the commit page (blocking store reads). `spec` is a commit ID or a branch name
/// (or anything [`pipeline_core::pfs::Store::resolve_commit`] takes).
pub fn render(engine: &Engine, r: &str, spec: &str, q: &CommitPageQuery) -> ApiResult<Markup> {
    let repo = RepoRef::parse(r)?;
    let path = match q.path.as_deref() {
        Some(p) => validate_file_path(p).map_err(PfsError::from)?,
        None => "/".to_string(),
    };
    let store = engine.store();
    let commit = store.resolve_commit(&repo, spec)?;
    let info = store.inspect_commit(&commit)?;
    let job = producing_job(engine, &commit)?;
    let label = repo_label(&repo);
    let browser = file_browser::render(store, &commit, &path, q.after.as_deref())?;
    let root_view = path == "/" && q.after.is_none();
    let diff = if root_view {
        commit_diff::render(store, &info)?
    } else {
        html! {
            h2 { "Changes" }
            p { a.diff-link href=(url::commit(&label, commit.id.as_str())) { "Changes against the parent" } }
        }
    };
    let id = commit.id.as_str();
    let body = html! {
        h1 { "Commit " span.mono { (id) } }
        @if spec != id {
            p.resolved { span.mono { (spec) } " resolves to this commit; the links below use its ID." }
        }
        (facts(&info, job.as_ref()))
        (browser)
        (diff)
    };
    let crumbs = [
        Crumb::link(label.clone(), url::repo(&label)),
        Crumb::here(short(id).to_string()),
    ];
    Ok(shell(&format!("{label}@{}", short(id)), &crumbs, body))
}

/// The job that wrote `commit`: when its repo is a pipeline's output, the job with the
/// commit's ID (a commit set's ID is its jobs' ID).
fn producing_job(engine: &Engine, commit: &CommitRef) -> ApiResult<Option<(String, String)>> {
    let Some(pipeline) = producing_pipeline(engine, &commit.repo)? else {
        return Ok(None);
    };
    match engine.inspect_job(&pipeline, commit.id.as_str()) {
        Ok(j) => Ok(Some((j.pipeline, j.id))),
        Err(PpsError::JobNotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The facts card: branch, parent, origin, state and times, size, description, error,
/// provenance, producing job.
fn facts(info: &CommitInfo, job: Option<&(String, String)>) -> Markup {
    let repo = repo_label(&info.commit.repo);
    html! {
        div.card {
            dl.facts.commit-facts {
                dt { "Repo" } dd { a href=(url::repo(&repo)) { (repo) } }
                dt { "Branch" }
                dd { @match &info.branch { Some(b) => span.mono { (b) }, None => span.muted { "none" } } }
                dt { "Parent" }
                dd {
                    @match &info.parent {
                        Some(p) => (commit_link(&info.commit.repo.commit(p))),
                        None => span.muted { "none (the first commit)" },
                    }
                }
                dt { "Origin" } dd { (format!("{:?}", info.origin).to_uppercase()) }
                dt { "Started" } dd { (time(info.started_ms)) }
                dt { "Finished" }
                dd { @match info.finished_ms { Some(ms) => (time(ms)), None => span.badge.running { "open" } } }
                dt { "Size" }
                dd { @match info.size_bytes { Some(n) => (bytes(n)), None => span.muted { "known once finished" } } }
                dt { "Description" }
                dd.description { @if info.description.is_empty() { span.muted { "none" } } @else { (info.description) } }
                @if let Some(err) = &info.error { dt { "Error" } dd.error-message { (err) } }
                dt { "Provenance" } dd { (provenance_links(&info.direct_provenance)) }
                @if let Some((p, j)) = job {
                    dt { "Written by" }
                    dd { "job " a.job-link.mono href=(url::job(p, j)) { (short(j)) } " of pipeline " a href=(url::pipeline(p)) { (p) } }
                }
            }
        }
    }
}
