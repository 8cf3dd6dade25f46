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
        let (mut jobs, cut_short) = self.newest_jobs(pipeline, limit.saturating_add(1))?;
        let more = jobs.len() > limit || cut_short;
        jobs.truncate(limit);
        Ok(RecentJobs { jobs, more })
    }

    /// The newest job of `pipeline` (`None` before its first job is recorded). See
    /// [`Engine::recent_jobs`] for the cost (here: one or two reads of each kind).
    ///
    /// Blocking: store reads only.
    pub fn last_job(&self, pipeline: &str) -> Result<Option<JobInfo>> {
        Ok(self.newest_jobs(pipeline, 1)?.0.into_iter().next())
    }

    /// Up to `want` jobs from the output branch's head back, and whether the walk stopped at
    /// [`MAX_JOBLESS_COMMITS`] rather than at the first commit.
    fn newest_jobs(&self, pipeline: &str, want: usize) -> Result<(Vec<JobInfo>, bool)> {
        let info = self.inspect_pipeline(pipeline)?;
        let store = self.store();
        let repo = &info.output_branch.repo;
        let mut next = match store.inspect_branch(&info.output_branch) {
            Ok(b) => Some(b.head),
            Err(PfsError::BranchNotFound { .. } | PfsError::RepoNotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut jobs = Vec::new();
        let mut jobless = 0;
        while let Some(id) = next {
            if jobs.len() >= want {
                break;
            }
            let key = JobKey::new(pipeline, id.as_str()).encode();
            match store.engine_get(&key)? {
                Some(v) => jobs.push(decode::<JobInfo>(&key, &v)?),
                None if jobless >= MAX_JOBLESS_COMMITS => return Ok((jobs, true)),
                None => jobless += 1,
            }
            if jobs.len() >= want {
                break;
            }
            next = match store.inspect_commit(&repo.commit(&id)) {
                Ok(c) => c.parent,
                Err(PfsError::CommitNotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
        }
        Ok((jobs, false))
    }
}
