//! `/repos/{repo}` and `/repos/{repo}/commits/{commit}`: branches, commits, files, diffs.
//!
//! The repo page lists one branch's history at a time (`?branch=`, default `master`), 100
//! commits per page, following parent links from the branch head or from the `?after=`
//! cursor: a page reads 100 commit records whatever the length of the history. The commit
//! page is built in [`super::commit`].

use axum::extract::{Query, State};
use maud::{Markup, html};
use pipeline_core::pfs::{BranchInfo, BranchRef, CommitId, CommitInfo, DEFAULT_PROJECT, RepoRef};
use pipeline_core::pfs::{BranchTrigger, CommitRef, Store};
use pipeline_core::pps::{Engine, PpsError};
use serde::Deserialize;

use super::view::{Crumb, Html, PageResult, bytes, enc, shell, short, time, url};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::state::AppState;

/// Commits per page of a repo's history.
pub const COMMITS_PER_PAGE: usize = 100;

/// The branch whose history the repo page shows when none is asked for (and it exists).
const DEFAULT_BRANCH: &str = "master";

/// `?path=` and `?after=` of the commit page.
#[derive(Debug, Default, Deserialize)]
pub struct CommitPageQuery {
    /// The directory shown (default `/`), or a file.
    #[serde(default)]
    pub path: Option<String>,
    /// The directory listing continues after this path (the cursor of the next page).
    #[serde(default)]
    pub after: Option<String>,
}

/// `?branch=` and `?after=` of the repo page.
#[derive(Debug, Default, Deserialize)]
pub struct RepoPageQuery {
    /// The branch whose history is listed (default `master`, else the first branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// The history continues with the parent of this commit (the cursor of the next page).
    #[serde(default)]
    pub after: Option<String>,
}

/// `GET /repos/{repo}`.
pub async fn page(
    State(s): State<AppState>,
    Path(r): Path<String>,
    Query(q): Query<RepoPageQuery>,
) -> PageResult {
    let page = s.blocking(move |e| render_repo(e, &r, &q)).await?;
    Ok(Html(page))
}

/// `GET /repos/{repo}/commits/{commit}`.
pub async fn commit_page(
    State(s): State<AppState>,
    Path((r, c)): Path<(String, String)>,
    Query(q): Query<CommitPageQuery>,
) -> PageResult {
    let page = s
        .blocking(move |e| super::commit::render(e, &r, &c, &q))
        .await?;
    Ok(Html(page))
}

/// A repo as the console names it (and as its URLs carry it): `name` in the default
/// project, `project/name` elsewhere.
pub fn repo_label(repo: &RepoRef) -> String {
    if repo.project == DEFAULT_PROJECT {
        repo.name.clone()
    } else {
        repo.to_string()
    }
}

/// The pipeline whose output `repo` is, if any.
pub fn producing_pipeline(engine: &Engine, repo: &RepoRef) -> ApiResult<Option<String>> {
    match engine.inspect_pipeline(&pipeline_core::pps::pipeline_id_of_repo(repo)) {
        Ok(p) if p.output_branch.repo == *repo => Ok(Some(p.id())),
        Ok(_) | Err(PpsError::PipelineNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A link to a commit's page, showing the short ID (the full one as the title).
pub fn commit_link(commit: &CommitRef) -> Markup {
    let id = commit.id.as_str();
    html! {
        a.mono.commit-link href=(url::commit(&repo_label(&commit.repo), id)) title=(id) {
            (short(id))
        }
    }
}

/// Links to commits of other repos (provenance), each labelled `repo@id`.
pub fn provenance_links(commits: &[CommitRef]) -> Markup {
    html! {
        @if commits.is_empty() {
            span.muted { "none" }
        }
        ul.provenance {
            @for c in commits {
                li {
                    a.mono href=(url::commit(&repo_label(&c.repo), c.id.as_str())) title=(c.id.as_str()) {
                        (repo_label(&c.repo)) "@" (short(c.id.as_str()))
                    }
                }
            }
        }
    }
}

/// The repo page's URL listing `branch`'s history, from `after`'s parent when given.
fn history_url(repo: &str, branch: &str, after: Option<&str>) -> String {
    let mut u = format!("{}?branch={}", url::repo(repo), enc(branch));
    if let Some(a) = after {
        u.push_str("&after=");
        u.push_str(&enc(a));
    }
    u
}

/// One page of a branch's history, newest first.
struct History {
    /// The branch listed.
    branch: String,
    /// Its commits on this page.
    commits: Vec<CommitInfo>,
    /// The cursor of the next page (the last commit shown), if older commits exist.
    next: Option<String>,
    /// Whether this is a later page (a link back to the newest is shown).
    later_page: bool,
}

/// Renders the repo page (blocking store reads).
fn render_repo(engine: &Engine, r: &str, q: &RepoPageQuery) -> ApiResult<Markup> {
    let repo = RepoRef::parse(r)?;
    let store = engine.store();
    let info = store.inspect_repo(&repo)?;
    let branches = store.list_branches(&repo)?;
    let producer = producing_pipeline(engine, &repo)?;
    let history = match chosen_branch(&repo, &branches, q.branch.as_deref())? {
        Some(b) => Some(history_page(store, b, q.after.as_deref())?),
        None => None,
    };
    let size = match branches.iter().find(|b| b.branch.name == DEFAULT_BRANCH) {
        Some(b) => store.inspect_commit(&repo.commit(&b.head))?.size_bytes,
        None => None,
    };
    let label = repo_label(&repo);
    let body = html! {
        h1 { "Repo " span.mono { (label) } }
        div.card {
            dl.facts.repo-facts {
                dt { "Description" }
                dd.description { @if info.description.is_empty() { span.muted { "none" } } @else { (info.description) } }
                dt { "Created" } dd { (time(info.created_ms)) }
                @if let Some(n) = size { dt { "Size (" (DEFAULT_BRANCH) " head)" } dd { (bytes(n)) } }
                dt { "Output of" }
                dd {
                    @match &producer {
                        Some(p) => { "pipeline " a.pipeline-link href=(url::pipeline(p)) { (p) } },
                        None => span.muted { "no pipeline (an input repo)" },
                    }
                }
            }
        }
        h2 { "Branches" }
        (branches_table(&label, &branches))
        @match &history {
            Some(h) => (history_section(&label, h)),
            None => { h2 { "Commits" } p.muted { "No branches, so no commits to list." } },
        }
    };
    Ok(shell(&label, &[Crumb::here(label.clone())], body))
}

/// The branch whose history is shown: the one asked for (which must exist), else `master`,
/// else the first one; `None` for a repo without branches.
fn chosen_branch<'a>(
    repo: &RepoRef,
    branches: &'a [BranchInfo],
    asked: Option<&str>,
) -> ApiResult<Option<&'a BranchInfo>> {
    if let Some(name) = asked {
        let wanted = repo.branch(name)?;
        return match branches.iter().find(|b| b.branch == wanted) {
            Some(b) => Ok(Some(b)),
            None => Err(ApiError::not_found(format!(
                "branch {name:?} not found in repo {}",
                repo_label(repo)
            ))),
        };
    }
    Ok(branches
        .iter()
        .find(|b| b.branch.name == DEFAULT_BRANCH)
        .or_else(|| branches.first()))
}

/// Up to [`COMMITS_PER_PAGE`] commits of `branch`, from its head or from `after`'s parent,
/// following parent links (one record read per commit shown).
fn history_page(store: &Store, branch: &BranchInfo, after: Option<&str>) -> ApiResult<History> {
    let repo = &branch.branch.repo;
    let mut next_id = match after {
        None => Some(branch.head.clone()),
        Some(a) => {
            let id = CommitId::parse(a)
                .map_err(|e| ApiError::invalid(format!("after: {a:?} is not a commit ID: {e}")))?;
            store.inspect_commit(&repo.commit(&id))?.parent
        }
    };
    let mut commits = Vec::new();
    while let Some(id) = next_id.take() {
        if commits.len() == COMMITS_PER_PAGE {
            next_id = Some(id);
            break;
        }
        let c = store.inspect_commit(&repo.commit(&id))?;
        next_id = c.parent.clone();
        commits.push(c);
    }
    let next = match next_id {
        Some(_) => commits.last().map(|c| c.commit.id.to_string()),
        None => None,
    };
    Ok(History {
        branch: branch.branch.name.clone(),
        commits,
        next,
        later_page: after.is_some(),
    })
}

/// `<table id="branches">`: name (its history), head, provenance, trigger.
fn branches_table(repo: &str, branches: &[BranchInfo]) -> Markup {
    html! {
        @if branches.is_empty() {
            p.muted { "This repo has no branches." }
        } @else {
            table #branches {
                thead { tr { th { "Branch" } th { "Head" } th { "Built from" } th { "Trigger" } } }
                tbody {
                    @for b in branches {
                        tr {
                            td { a.branch-link href=(history_url(repo, &b.branch.name, None)) { (b.branch.name) } }
                            td { (commit_link(&b.branch.repo.commit(&b.head))) }
                            td { (branch_links(&b.direct_provenance)) }
                            td { @match &b.trigger { Some(t) => (trigger_text(t)), None => span.muted { "none" } } }
                        }
                    }
                }
            }
        }
    }
}

/// Links to branches (provenance), each labelled `repo@branch`, to that branch's history.
fn branch_links(branches: &[BranchRef]) -> Markup {
    html! {
        @if branches.is_empty() {
            span.muted { "none" }
        }
        ul.provenance {
            @for b in branches {
                @let repo = repo_label(&b.repo);
                li { a href=(history_url(&repo, &b.name, None)) { (repo) "@" (b.name) } }
            }
        }
    }
}

/// A trigger as a sentence: `on dev: ≥ 1.0 KiB, or every 5 commits`.
fn trigger_text(t: &BranchTrigger) -> String {
    let mut conditions = Vec::new();
    if let Some(n) = t.size_bytes {
        conditions.push(format!("≥ {} more", bytes(n)));
    }
    if let Some(n) = t.commits {
        conditions.push(format!("every {n} commits"));
    }
    if let Some(s) = &t.rate_limit_spec {
        conditions.push(format!("at most on schedule {s}"));
    }
    if let Some(s) = &t.cron_spec {
        conditions.push(format!("on schedule {s}"));
    }
    let joiner = if t.all { ", and " } else { ", or " };
    if conditions.is_empty() {
        format!("on {}", t.branch)
    } else {
        format!("on {}: {}", t.branch, conditions.join(joiner))
    }
}

/// The history of one branch: `<table id="commits">` and the pager.
fn history_section(repo: &str, h: &History) -> Markup {
    html! {
        h2 { "Commits on " span.mono { (h.branch) } }
        @if h.commits.is_empty() {
            p.muted { "No older commits." }
        } @else {
            table #commits {
                thead { tr {
                    th { "Commit" } th { "Branch" } th { "Origin" } th { "Started" } th { "Finished" }
                    th.num { "Size" } th { "Description" } th { "Provenance" }
                } }
                tbody { @for c in &h.commits { (commit_row(c)) } }
            }
        }
        nav.pager {
            @if h.later_page { a.newest href=(history_url(repo, &h.branch, None)) { "Newest commits" } }
            @if let Some(next) = &h.next {
                a.next href=(history_url(repo, &h.branch, Some(next))) { "Older commits" }
            }
        }
    }
}

/// One row of the commits table.
fn commit_row(c: &CommitInfo) -> Markup {
    html! {
        tr {
            td { (commit_link(&c.commit)) }
            td { @if let Some(b) = &c.branch { (b) } }
            td { (format!("{:?}", c.origin).to_uppercase()) }
            td { (time(c.started_ms)) }
            td { @match c.finished_ms { Some(ms) => (time(ms)), None => span.badge.running { "open" } } }
            td.num { @if let Some(n) = c.size_bytes { (bytes(n)) } }
            td {
                (c.description)
                @if let Some(err) = &c.error { div.error-message { (err) } }
            }
            td { (provenance_links(&c.direct_provenance)) }
        }
    }
}
