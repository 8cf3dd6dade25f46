//! A pipeline's newest jobs without reading all of its jobs: every job is an output commit on
//! the pipeline's output branch (job ID = commit ID), so walking that branch from its head
//! finds the jobs newest first, one commit and one job record per step.

use super::Engine;
use super::error::Result;
use super::keys::{JobKey, RecordKey};
use super::records::JobInfo;
use super::registry::decode;
use crate::pfs::PfsError;

/// How many output commits without a job record [`Engine::recent_jobs`] steps over (the open
/// commits of input commits that no runner has looked at yet) before it stops looking.
pub const MAX_JOBLESS_COMMITS: usize = 64;

/// The newest jobs of a pipeline, from [`Engine::recent_jobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecentJobs {
    /// Newest first.
    pub jobs: Vec<JobInfo>,
    /// Whether older jobs may exist beyond `jobs`.
    pub more: bool,
}

/// A pipeline's newest job and its newest finished one, from [`Engine::last_jobs`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LastJobs {
    /// The newest job, whatever its state.
    pub newest: Option<JobInfo>,
    /// The newest job in a terminal state (the same as `newest` when that one is finished);
    /// `None` when none of the newest [`MAX_UNFINISHED_JOBS`] jobs is finished.
    pub finished: Option<JobInfo>,
}

/// How many unfinished jobs [`Engine::last_jobs`] steps over looking for a finished one.
pub const MAX_UNFINISHED_JOBS: usize = 64;

impl Engine {
    /// The `limit` newest jobs of `pipeline`, newest first, found by walking its output branch
    /// back from the head: the cost is about `limit` commit and job reads (plus at most
    /// [`MAX_JOBLESS_COMMITS`] output commits that have no job yet), whatever the number of
    /// jobs the pipeline has. A job made on a branch the pipeline no longer writes to is not
    /// found.
    ///
    /// Blocking: store reads only.
    pub fn recent_jobs(&self, pipeline: &str, limit: usize) -> Result<RecentJobs> {
        // One job more than asked tells whether older jobs exist.
        let want = limit.saturating_add(1);
        let mut jobs = Vec::new();
        let cut_short = self.walk_jobs(pipeline, |job| {
            jobs.push(job);
            jobs.len() < want
        })?;
        let more = jobs.len() > limit || cut_short;
        jobs.truncate(limit);
        Ok(RecentJobs { jobs, more })
    }

    /// The newest job of `pipeline` (`None` before its first job is recorded). See
    /// [`Engine::recent_jobs`] for the cost (here: one or two reads of each kind).
    ///
    /// Blocking: store reads only.
    pub fn last_job(&self, pipeline: &str) -> Result<Option<JobInfo>> {
        let mut newest = None;
        self.walk_jobs(pipeline, |job| {
            newest = Some(job);
            false
        })?;
        Ok(newest)
    }

    /// The newest job of `pipeline` and its newest finished job: what the pipeline is doing,
    /// and what its output last came from. Usually one or two reads of each kind (see
    /// [`Engine::recent_jobs`]).
    ///
    /// Blocking: store reads only.
    pub fn last_jobs(&self, pipeline: &str) -> Result<LastJobs> {
        let mut last = LastJobs::default();
        let mut seen = 0;
        self.walk_jobs(pipeline, |job| {
            seen += 1;
            let finished = job.state.is_terminal();
            if last.newest.is_none() {
                last.newest = Some(job.clone());
            }
            if finished {
                last.finished = Some(job);
            }
            !finished && seen < MAX_UNFINISHED_JOBS
        })?;
        Ok(last)
    }

    /// Calls `visit` with each job of `pipeline` from its output branch's head back, while it
    /// returns `true`. Returns whether the walk stopped at [`MAX_JOBLESS_COMMITS`] output
    /// commits without a job.
    fn walk_jobs(&self, pipeline: &str, mut visit: impl FnMut(JobInfo) -> bool) -> Result<bool> {
        let info = self.inspect_pipeline(pipeline)?;
        let store = self.store();
        let repo = &info.output_branch.repo;
        // `resolve_commit` reads the branch record alone (`inspect_branch` would also work
        // out the branch's provenance from every branch of the store).
        let mut next = match store.resolve_commit(repo, &info.output_branch.name) {
            Ok(c) => Some(c.id),
            Err(PfsError::CommitNotFound { .. } | PfsError::RepoNotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut jobless = 0;
        while let Some(id) = next {
            let key = JobKey::new(pipeline, id.as_str()).encode();
            match store.engine_get(&key)? {
                Some(v) => {
                    if !visit(decode::<JobInfo>(&key, &v)?) {
                        return Ok(false);
                    }
                }
                None if jobless >= MAX_JOBLESS_COMMITS => return Ok(true),
                None => jobless += 1,
            }
            next = match store.inspect_commit(&repo.commit(&id)) {
                Ok(c) => c.parent,
                Err(PfsError::CommitNotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
        }
        Ok(false)
    }
}
