//! `/`: the overview. The DAG as a picture ([`dag_svg`]), then the same pipelines and the
//! repos as tables, which work without the picture and for screen readers.
//!
//! Pipelines and their output repos are **one box** in the picture: they share a name, are
//! created and deleted together, and the pipeline's box already says what its output holds;
//! two boxes per pipeline would double the picture's width and its edges for nothing. Repos
//! that no pipeline writes (the DAG's inputs) are boxes of their own. The repo table lists
//! every repo, outputs included.
//!
//! Cost: per pipeline a few store reads ([`PipelineStatus::read`]: its last job by its output
//! branch's head, never a scan of its jobs), per repo a branch and a commit read.

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use maud::{Markup, html};
use pipeline_core::pfs::{BranchRef, CommitInfo, PfsError, RepoRef, Store};
use pipeline_core::pps::Engine;

use super::dag_svg::{DagNode, dag_svg};
use super::pipeline_status::{
    PipelineStatus, branch_head, datum_counts, job_duration, now_ms, repo_name, stale_badges,
};
use super::view::{Html, PageError, PageResult, bytes, live_job_state, shell, short, url};
use crate::state::AppState;

/// `GET /`: the DAG of repos and pipelines.
pub async fn page(State(s): State<AppState>) -> PageResult {
    let body = s
        .blocking(|e| Ok(read_overview(e).map(|o| render(&o))))
        .await??;
    Ok(Html(shell("Overview", &[], body)))
}

/// A repo and where its head is.
struct RepoRow {
    repo: RepoRef,
    description: String,
    /// The pipeline writing it, if any.
    output_of: Option<String>,
    /// The branch shown (the pipeline's output branch, the branch pipelines read, or
    /// `master`) and its head commit.
    head: Option<(String, CommitInfo)>,
}

/// Everything the page shows.
struct Overview {
    pipelines: Vec<PipelineStatus>,
    repos: Vec<RepoRow>,
}

/// Reads the pipelines with their status and the repos with their heads.
fn read_overview(e: &Engine) -> Result<Overview, PageError> {
    let mut pipelines = Vec::new();
    for info in e.list_pipelines()? {
        pipelines.push(PipelineStatus::read(e, info)?);
    }
    let mut shown_branch: HashMap<RepoRef, (BranchRef, Option<String>)> = HashMap::new();
    for p in &pipelines {
        for input in &p.info.inputs {
            shown_branch
                .entry(input.repo.clone())
                .or_insert_with(|| (input.clone(), None));
        }
    }
    for p in &pipelines {
        let out = &p.info.output_branch;
        shown_branch.insert(out.repo.clone(), (out.clone(), Some(p.info.id())));
    }
    let mut repos = Vec::new();
    for r in e.store().list_repos()? {
        let (branch, output_of) = match shown_branch.remove(&r.repo) {
            Some((b, p)) => (Some(b), p),
            None => (r.repo.branch("master").ok(), None),
        };
        let head = head_of(e.store(), &r.repo, branch.as_ref())?;
        repos.push(RepoRow {
            repo: r.repo,
            description: r.description,
            output_of,
            head,
        });
    }
    Ok(Overview { pipelines, repos })
}

/// The head commit of `branch`, or of the repo's first branch when `branch` does not exist;
/// `None` for a repo without branches.
fn head_of(
    store: &Store,
    repo: &RepoRef,
    branch: Option<&BranchRef>,
) -> Result<Option<(String, CommitInfo)>, PfsError> {
    if let Some(b) = branch
        && let Some(head) = branch_head(store, b)?
    {
        return Ok(Some((b.name.clone(), head)));
    }
    // Rare (a repo without the branch asked for): listing branches reads them all.
    let Some(first) = store.list_branches(repo)?.into_iter().next() else {
        return Ok(None);
    };
    let commit = store.inspect_commit(&repo.commit(&first.head))?;
    Ok(Some((first.branch.name, commit)))
}

/// The page body.
fn render(o: &Overview) -> Markup {
    let now = now_ms();
    html! {
        h1 { "Overview" }
        @if o.repos.is_empty() && o.pipelines.is_empty() {
            p.muted { "Nothing here yet: create a repo and a pipeline (" code { "pipectl create repo" }
                ", " code { "pipectl create pipeline -f spec.yaml" } ")." }
        } @else {
            div.dag-frame { (picture(o, now)) }
        }
        h2 #pipelines { "Pipelines" }
        (pipeline_table(&o.pipelines, now))
        h2 #repos { "Repos" }
        (repo_table(&o.repos))
    }
}

/// The DAG: input repos and pipelines as boxes, an edge per (input repo, pipeline).
fn picture(o: &Overview, now: u64) -> Markup {
    let mut nodes = Vec::new();
    let mut node_of: HashMap<&RepoRef, usize> = HashMap::new();
    for r in o.repos.iter().filter(|r| r.output_of.is_none()) {
        node_of.insert(&r.repo, nodes.len());
        nodes.push(DagNode::Repo {
            name: repo_name(&r.repo),
            size: r.head.as_ref().and_then(|(_, c)| c.size_bytes),
        });
    }
    for p in &o.pipelines {
        node_of.insert(&p.info.output_branch.repo, nodes.len());
        nodes.push(DagNode::Pipeline(p));
    }
    let mut edges = BTreeSet::new();
    for p in &o.pipelines {
        let to = node_of.get(&p.info.output_branch.repo);
        for input in &p.info.inputs {
            if let (Some(&from), Some(&to)) = (node_of.get(&input.repo), to) {
                edges.insert((from, to));
            }
        }
    }
    let edges: Vec<(usize, usize)> = edges.into_iter().collect();
    dag_svg(&nodes, &edges, now)
}

/// Every pipeline with its last job and staleness.
fn pipeline_table(pipelines: &[PipelineStatus], now: u64) -> Markup {
    html! {
        @if pipelines.is_empty() {
            p.muted { "No pipelines." }
        } @else {
            table #pipeline-table {
                thead { tr {
                    th { "Pipeline" } th { "State" } th { "Last job" }
                    th.num { "Datums (processed/skipped/failed of total)" } th.num { "Duration" }
                    th { "Would re-run because" }
                } }
                tbody {
                    @for p in pipelines {
                        (pipeline_row(p, now))
                    }
                }
            }
        }
    }
}

/// One row of the pipeline table.
fn pipeline_row(p: &PipelineStatus, now: u64) -> Markup {
    let name = &p.info.id();
    html! {
        tr data-pipeline=(name) {
            td { a href=(url::pipeline(name)) { (name) } }
            @match &p.last_job {
                Some(j) => {
                    td { (live_job_state(name, &j.id, j.state)) }
                    td { a.mono href=(url::job(name, &j.id)) { (short(&j.id)) } }
                    td.num { (datum_counts(&j.stats)) }
                    td.num { (job_duration(j, now)) }
                }
                None => { td.muted { "no job" } td {} td {} td {} }
            }
            td { (stale_badges(&p.stale)) }
        }
    }
}

/// Every repo: what writes it, its head commit and size.
fn repo_table(repos: &[RepoRow]) -> Markup {
    html! {
        @if repos.is_empty() {
            p.muted { "No repos." }
        } @else {
            table #repo-table {
                thead { tr {
                    th { "Repo" } th { "Written by" } th { "Branch" } th { "Head commit" }
                    th.num { "Size" } th { "Description" }
                } }
                tbody {
                    @for r in repos {
                        @let name = repo_name(&r.repo);
                        tr data-repo=(name) {
                            td { a href=(url::repo(&name)) { (name) } }
                            td {
                                @match &r.output_of {
                                    Some(p) => { "pipeline " a href=(url::pipeline(p)) { (p) } },
                                    None => span.muted { "input" },
                                }
                            }
                            @match &r.head {
                                Some((branch, c)) => {
                                    td { (branch) }
                                    td { a.mono href=(url::commit(&name, c.commit.id.as_str())) {
                                        (short(c.commit.id.as_str()))
                                    } }
                                    td.num { (c.size_bytes.map_or_else(|| "—".into(), bytes)) }
                                }
                                None => { td.muted { "no branch" } td {} td {} }
                            }
                            td { (r.description) }
                        }
                    }
                }
            }
        }
    }
}
