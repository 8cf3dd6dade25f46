//! A pipeline's status as the overview and the pipeline page show it: its last job and why it
//! would run again, read with a handful of store reads whatever the number of jobs; and the
//! small pieces of markup both pages draw from it.

use maud::{Markup, html};
use pipeline_core::pfs::{BranchRef, CommitInfo, PfsError, RepoRef, Store};
use pipeline_core::pps::{Engine, JobInfo, JobStats, PipelineInfo, PpsError};

use super::staleness::{Stale, staleness};
use super::view::duration_ms;

/// A pipeline, its newest job and its staleness reasons.
#[derive(Debug, Clone)]
pub struct PipelineStatus {
    /// The pipeline's ID (`name`, or `project/name` outside the default project): what
    /// the console shows and links.
    pub id: String,
    /// The pipeline's current version.
    pub info: PipelineInfo,
    /// Its newest job, if any ([`Engine::last_jobs`]).
    pub last_job: Option<JobInfo>,
    /// Its newest finished job (what its output came from), if any.
    pub last_finished: Option<JobInfo>,
    /// Why it would run again (empty: up to date).
    pub stale: Vec<Stale>,
}

impl PipelineStatus {
    /// Reads the last jobs and the input branch heads of `info`.
    ///
    /// Blocking: store reads only.
    pub fn read(engine: &Engine, info: PipelineInfo) -> Result<Self, PpsError> {
        let last = engine.last_jobs(&info.id())?;
        let mut heads = Vec::with_capacity(info.inputs.len());
        for branch in &info.inputs {
            let head = branch_head(engine.store(), branch)?.map(|c| c.commit.id);
            heads.push((branch.clone(), head));
        }
        let stale = staleness(&info, &last, &heads);
        Ok(PipelineStatus {
            id: info.id(),
            info,
            last_job: last.newest,
            last_finished: last.finished,
            stale,
        })
    }
}

/// The head commit of `branch` (`None` when the branch or its repo does not exist). Reads
/// the branch and the commit only: `Store::inspect_branch` would also work out the branch's
/// provenance from every branch of the store, too slow for a page that asks per pipeline.
///
/// Blocking: store reads only.
pub fn branch_head(store: &Store, branch: &BranchRef) -> Result<Option<CommitInfo>, PfsError> {
    match store.list_commits(&branch.repo, Some(&branch.name), 1) {
        Ok(mut commits) => Ok(commits.pop()),
        Err(PfsError::BranchNotFound { .. } | PfsError::RepoNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How a repo is named in URLs and labels: its name, with its project when it is not the
/// default one (`RepoRef::parse` reads both).
pub fn repo_name(r: &RepoRef) -> String {
    if r.project == "default" {
        r.name.clone()
    } else {
        format!("{}/{}", r.project, r.name)
    }
}

/// How long a job ran (until now while it runs); `None` before it started.
pub fn job_duration_ms(job: &JobInfo, now_ms: u64) -> Option<u64> {
    let start = job.started_ms?;
    Some(job.finished_ms.unwrap_or(now_ms).saturating_sub(start))
}

/// A job's duration as text (`—` before it started).
pub fn job_duration(job: &JobInfo, now_ms: u64) -> String {
    job_duration_ms(job, now_ms).map_or_else(|| "—".into(), duration_ms)
}

/// `processed/skipped/failed of total`, the datum counts of a job.
pub fn datum_counts(stats: &JobStats) -> String {
    format!(
        "{}/{}/{} of {}",
        stats.datums_processed, stats.datums_skipped, stats.datums_failed, stats.datums_total
    )
}

/// The staleness reasons as badges (the explanation in each one's tooltip); "up to date" when
/// there are none.
pub fn stale_badges(stale: &[Stale]) -> Markup {
    html! {
        @if stale.is_empty() {
            span.muted { "up to date" }
        }
        @for s in stale {
            span.badge.stale title=(s.explanation()) { (s.detail()) } " "
        }
    }
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
