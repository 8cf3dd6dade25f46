//! Squashing and deleting a commit set with its jobs (pachctl's `squash commit` and
//! `delete commit`): the store's history operation (`pfs` module `history`) and the engine's
//! side of it in **one** store transaction.
//!
//! The engine's side: every job of the set (one per pipeline whose output commit was
//! removed) that has not ended is KILLED, with a reason naming the set and what happened to
//! it; every job of the set loses its datum records, their order entries and its log lines
//! (what they describe no longer exists), and keeps its job record (as Pachyderm keeps its
//! job infos). A job of the set that is running in this engine is cancelled first and ends
//! KILLED with that reason, and the transaction runs while no job runs (the scheduler's
//! lock), so no runner writes to a commit as it disappears.
//!
//! A set that creating, updating or rerunning a pipeline made (no user commit in it, and its
//! job is the first of a pipeline version) is refused, as Pachyderm refuses a set holding a
//! pipeline's spec commit: "cannot squash commit ... because it updated a pipeline".
//!
//! Later jobs plan against the right base afterwards: a job's base is the job of the nearest
//! error-free ancestor of its output commit. A squash merges a removed output commit into
//! the finished commits built on it (whose jobs are done, their records complete), and
//! leaves an open output commit built on it through errored commits to be rebuilt: its job
//! then finds the nearest remaining successful job as its base, and its output starts from
//! that job's output. Such a job must not have started (refused otherwise).

use serde::{Deserialize, Serialize};

use crate::pfs::{
    CommitId, CommitInfo, CommitRef, CommitSetRemoval, HistoryOp, Origin, PfsError, StoreTxn,
};

use super::error::{PpsError, Result, task_failed};
use super::keys::{DatumKey, DatumOrderKey, GoneKey, JobKey, KillReasonKey, LogKey, RecordKey};
use super::records::{JobInfo, JobState, enc};
use super::registry::decode;
use super::{Engine, now_ms};

/// What [`Engine::squash_commit_set`] or [`Engine::delete_commit_set`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemovedCommitSet {
    /// The commits removed, merged into, left to be rebuilt, and the heads moved.
    pub commits: CommitSetRemoval,
    /// The jobs of the set, as recorded afterwards (those that had not ended are KILLED).
    pub jobs: Vec<JobInfo>,
}

/// How a dry run of the operation ends (the transaction is always discarded).
enum Probe {
    /// It would succeed.
    Passes,
    /// It is refused.
    Refused(PpsError),
}

impl From<PfsError> for Probe {
    fn from(e: PfsError) -> Self {
        Probe::Refused(e.into())
    }
}

impl From<PpsError> for Probe {
    fn from(e: PpsError) -> Self {
        Probe::Refused(e)
    }
}

/// The kill reason of the set's jobs.
fn kill_reason(id: &CommitId, op: HistoryOp) -> String {
    let what = match op {
        HistoryOp::Squash => "squashed",
        HistoryOp::Drop => "deleted",
    };
    format!("output commit removed: commit set {id} was {what}")
}

impl Engine {
    /// Squashes commit set `id` (pachctl's `squash commit`): its commits are deleted and their
    /// changes kept in their children, and its jobs are stopped and lose their datum records,
    /// in one store transaction (see the module docs and [`crate::pfs::Store::squash_commit_set`]
    /// for the rules and refusals).
    ///
    /// Async: a running job of the set is cancelled first, and the transaction waits until no
    /// job runs.
    pub async fn squash_commit_set(&self, id: &CommitId) -> Result<RemovedCommitSet> {
        self.remove_commit_set(id, HistoryOp::Squash).await
    }

    /// Deletes (drops) commit set `id` (pachctl's `delete commit`): its commits are deleted
    /// (none may have children), branch heads move to their parents, and its jobs are
    /// stopped and lose their datum records, in one store transaction.
    ///
    /// Async: as [`Engine::squash_commit_set`].
    pub async fn delete_commit_set(&self, id: &CommitId) -> Result<RemovedCommitSet> {
        self.remove_commit_set(id, HistoryOp::Drop).await
    }

    async fn remove_commit_set(&self, id: &CommitId, op: HistoryOp) -> Result<RemovedCommitSet> {
        let reason = kill_reason(id, op);
        // Refusals come before anything is stopped.
        let (s, set) = (self.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            // The set's jobs are recorded before they are judged.
            s.discover_jobs()?;
            s.probe_removal(&set, op)
        })
        .await
        .map_err(task_failed("check commit set removal"))??;
        self.cancel_running_of_set(id, &reason)?;
        let _no_job_runs = self.inner.scheduler.lock().await;
        let (s, set) = (self.clone(), id.clone());
        let done = tokio::task::spawn_blocking(move || {
            s.store().transact(|txn| remove_in(txn, &set, op, &reason))
        })
        .await
        .map_err(task_failed("remove commit set"))??;
        self.store().history_changed();
        self.publish(done.jobs.iter().cloned().map(super::events::Event::Job));
        Ok(done)
    }

    /// Runs the whole operation in a transaction that is then discarded: `Err` when it
    /// would be refused.
    fn probe_removal(&self, id: &CommitId, op: HistoryOp) -> Result<()> {
        let reason = kill_reason(id, op);
        let probed = self
            .store()
            .transact(|txn| -> std::result::Result<(), Probe> {
                remove_in(txn, id, op, &reason)?;
                Err(Probe::Passes)
            });
        match probed {
            Ok(()) | Err(Probe::Passes) => Ok(()),
            Err(Probe::Refused(e)) => Err(e),
        }
    }

    /// Asks the jobs of set `id` to stop with `reason` (they end KILLED once their datums
    /// return). The reason is stored for every unfinished job of the set first, then the
    /// running ones are cancelled: a job still planning, not yet registered as running,
    /// finds the reason when it registers (`run_registered`).
    fn cancel_running_of_set(&self, id: &CommitId, reason: &str) -> Result<()> {
        let mut kills = Vec::new();
        for c in self.store().inspect_commit_set(id)? {
            let key = JobKey::new(&c.commit.repo.name, id.as_str()).encode();
            if let Some(v) = self.store().engine_get(&key)? {
                let job: JobInfo = decode(&key, &v)?;
                if !job.state.is_terminal() {
                    let kill = KillReasonKey::new(&job.pipeline, &job.id).encode();
                    kills.push((kill, Some(reason.as_bytes().to_vec())));
                }
            }
        }
        if !kills.is_empty() {
            self.store().engine_write(kills)?;
        }
        let running: Vec<_> = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((_, job), _)| job == id.as_str())
            .map(|((pipeline, job), token)| (pipeline.clone(), job.clone(), token.clone()))
            .collect();
        for (pipeline, job, token) in running {
            self.store().engine_write(vec![(
                KillReasonKey::new(&pipeline, &job).encode(),
                Some(reason.as_bytes().to_vec()),
            )])?;
            token.cancel();
        }
        Ok(())
    }
}

/// The store's operation and the engine's records, in `txn`.
fn remove_in(
    txn: &mut StoreTxn<'_>,
    id: &CommitId,
    op: HistoryOp,
    reason: &str,
) -> Result<RemovedCommitSet> {
    refuse_pipeline_update(txn, &txn.inspect_commit_set(id)?)?;
    let commits = match op {
        HistoryOp::Squash => txn.squash_commit_set(id)?,
        HistoryOp::Drop => txn.drop_commit_set(id)?,
    };
    for c in &commits.rebuilt {
        refuse_started_job(txn, c)?;
    }
    let mut jobs = Vec::new();
    for removed in &commits.removed {
        if let Some(job) = stop_job_of(txn, &removed.commit, reason)? {
            jobs.push(job);
        }
    }
    Ok(RemovedCommitSet { commits, jobs })
}

/// The job whose output commit is `c`, if recorded.
fn job_of(txn: &StoreTxn<'_>, c: &CommitRef) -> Result<Option<JobInfo>> {
    let key = JobKey::new(&c.repo.name, c.id.as_str()).encode();
    let Some(v) = txn.engine_get(&key)? else {
        return Ok(None);
    };
    let job: JobInfo = decode(&key, &v)?;
    Ok((job.output_commit == *c).then_some(job))
}

/// A set that no user commit made, whose job is the first of its pipeline's version (the
/// output commit's parent has no job of that version), was made by creating, updating or
/// rerunning the pipeline: refused, as Pachyderm refuses a set holding a spec commit.
fn refuse_pipeline_update(txn: &StoreTxn<'_>, set: &[CommitInfo]) -> Result<()> {
    if set.iter().any(|c| c.origin == Origin::User) {
        return Ok(());
    }
    for c in set {
        let Some(job) = job_of(txn, &c.commit)? else {
            continue;
        };
        let previous = match &c.parent {
            Some(p) => job_of(txn, &c.commit.repo.commit(p))?,
            None => None,
        };
        if previous.is_none_or(|p| p.version != job.version) {
            return Err(PpsError::UpdatedPipeline {
                commit: c.commit.to_string(),
            });
        }
    }
    Ok(())
}

/// An open output commit left to be rebuilt must belong to a job that has not started: a
/// started one planned against the removed job.
fn refuse_started_job(txn: &StoreTxn<'_>, c: &CommitRef) -> Result<()> {
    let started = job_of(txn, c)?.is_some_and(|j| {
        matches!(
            j.state,
            JobState::JobRunning | JobState::JobEgressing | JobState::JobFinishing
        )
    });
    if started {
        return Err(PfsError::ChildNotFinished {
            commit: c.to_string(),
        }
        .into());
    }
    Ok(())
}

/// The job whose output commit `c` was removed: KILLED with `reason` unless it had ended,
/// its datum records, their order entries, its logs and its kill request removed.
fn stop_job_of(txn: &mut StoreTxn<'_>, c: &CommitRef, reason: &str) -> Result<Option<JobInfo>> {
    let (pipeline, id) = (c.repo.name.as_str(), c.id.as_str());
    let key = JobKey::new(pipeline, id).encode();
    let Some(v) = txn.engine_get(&key)? else {
        return Ok(None);
    };
    let mut job: JobInfo = decode(&key, &v)?;
    if job.output_commit != *c {
        return Ok(None);
    }
    if !job.state.is_terminal() {
        job.state = JobState::JobKilled;
        job.reason = reason.to_string();
        job.finished_ms = Some(now_ms());
        txn.engine_put(&key, &enc(&job))?;
    }
    super::inherited::hand_records_on(txn, pipeline, id)?;
    txn.engine_delete_prefix(DatumKey::of_job(pipeline, id).as_bytes())?;
    txn.engine_delete_prefix(DatumOrderKey::of_job(pipeline, id).as_bytes())?;
    txn.engine_delete_prefix(GoneKey::of_job(pipeline, id).as_bytes())?;
    txn.engine_delete_prefix(LogKey::of(pipeline, Some(id), None).as_bytes())?;
    txn.engine_delete(&KillReasonKey::new(pipeline, id).encode())?;
    Ok(Some(job))
}
