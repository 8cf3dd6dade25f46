//! The engine's side of egress: a job whose datums all succeeded goes EGRESSING (its output
//! commit still open), each scheduler round makes one attempt when the next one is due, and
//! a failed attempt records its error and the time of the next try on the job
//! ([`EgressStatus`]) and in its reason, so `list job` and `inspect job` show them. The job
//! stays EGRESSING until an attempt succeeds (then it finishes as SUCCESS), or it is
//! stopped or its pipeline is stopped, updated or deleted (KILLED). An engine restarted
//! while a job is EGRESSING makes the next attempt on its first round.

use std::time::Duration;

use crate::error_chain::ErrorChain;
use crate::executor::CancellationToken;

use super::super::error::{Result, task_failed};
use super::super::records::{EgressStatus, JobInfo, JobState};
use super::super::{Engine, format_ms, now_ms};
use super::{EgressError, EgressTarget, push};

impl Engine {
    /// A job whose datums all succeeded: EGRESSING when its pipeline has `egress` (one
    /// attempt is made now), else `None` (the caller finishes it).
    pub(crate) async fn start_egress(&self, job: &JobInfo) -> Result<Option<JobInfo>> {
        let pinfo = self.pipeline_version(&job.pipeline, job.version)?;
        let Some(egress) = &pinfo.effective.egress else {
            return Ok(None);
        };
        let mut job = job.clone();
        let target = EgressTarget::of_spec(egress, &self.inner.egress_options)
            .map(|t| t.display())
            .unwrap_or_default();
        job.state = JobState::JobEgressing;
        job.egress = Some(Box::new(EgressStatus {
            target,
            ..Default::default()
        }));
        self.put_job(&job)?;
        Ok(Some(self.egress_attempt(job).await?))
    }

    /// One scheduler round for an EGRESSING job: an attempt when one is due. Returns the job
    /// when it reached a terminal state.
    pub(crate) async fn step_egressing(&self, job: JobInfo) -> Result<Option<JobInfo>> {
        let due = job
            .egress
            .as_ref()
            .and_then(|e| e.next_try_ms)
            .is_none_or(|t| t <= now_ms());
        if !due {
            return Ok(None);
        }
        let job = self.egress_attempt(job).await?;
        Ok(job.state.is_terminal().then_some(job))
    }

    /// When the earliest EGRESSING job's next attempt is due (ms since the epoch).
    ///
    /// Blocking: store reads only.
    pub(crate) fn next_egress_due(&self) -> Result<Option<u64>> {
        Ok(self
            .list_jobs(None)?
            .iter()
            .filter(|j| j.state == JobState::JobEgressing)
            .map(|j| j.egress.as_ref().and_then(|e| e.next_try_ms).unwrap_or(0))
            .min())
    }

    /// One attempt: push the output commit, then finish the job (success), leave it
    /// EGRESSING with the error and the next try (failure or park), or end it KILLED (stopped
    /// meanwhile).
    async fn egress_attempt(&self, job: JobInfo) -> Result<JobInfo> {
        let pinfo = self.pipeline_version(&job.pipeline, job.version)?;
        let Some(egress) = pinfo.effective.egress.clone() else {
            return self.finish_job(job, JobState::JobSuccess, "");
        };
        let target = match EgressTarget::of_spec(&egress, &self.inner.egress_options) {
            Ok(t) => t,
            // The spec passed create-time checks on an engine that could push to it; this one
            // cannot (another build): waiting would not help.
            Err(e) => {
                let reason = format!("egress: {}", ErrorChain(&e));
                return self.finish_job(job, JobState::JobFailure, &reason);
            }
        };
        let cancel = CancellationToken::new();
        let key = (job.pipeline.clone(), job.id.clone());
        running(self).insert(key.clone(), cancel.clone());
        if self.is_parked() {
            cancel.cancel();
        }
        let outcome = self.push_output(&job, target, cancel.clone()).await;
        running(self).remove(&key);
        if cancel.is_cancelled() && !self.is_parked() {
            let reason = self.stop_reason(&job, false)?;
            return self.finish_job(job, JobState::JobKilled, &reason);
        }
        match outcome? {
            Ok(written) => {
                let mut job = job;
                if let Some(status) = &mut job.egress {
                    status.attempts += 1;
                    status.last_error = None;
                    status.last_try_ms = Some(now_ms());
                    status.next_try_ms = None;
                    status.written = written;
                }
                self.finish_job(job, JobState::JobSuccess, "")
            }
            Err(EgressError::Cancelled) => Ok(job),
            Err(e) => self.record_failed_attempt(job, &e),
        }
    }

    /// Runs [`push`] on the blocking pool, the SQL password read from its secret first.
    async fn push_output(
        &self,
        job: &JobInfo,
        target: EgressTarget,
        cancel: CancellationToken,
    ) -> Result<std::result::Result<u64, EgressError>> {
        let engine = self.clone();
        let commit = job.output_commit.clone();
        tokio::task::spawn_blocking(move || {
            let password = match &target {
                EgressTarget::Sql(sql) => {
                    match engine.secret_value(&sql.secret.name, &sql.secret.key) {
                        Ok(p) => Some(p),
                        Err(e) => return Err(EgressError::Secret(e)),
                    }
                }
                _ => None,
            };
            push(
                &target,
                engine.store(),
                &commit,
                password.as_deref(),
                &cancel,
            )
        })
        .await
        .map_err(task_failed("egress"))
    }

    /// Records a failed attempt on the job (unless it ended meanwhile): its error, the next
    /// try after the backoff, and both in the job's reason.
    fn record_failed_attempt(&self, mut job: JobInfo, e: &EgressError) -> Result<JobInfo> {
        let _one_at_a_time = self
            .inner
            .finishing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(stored) = self.inspect_job(&job.pipeline, &job.id)
            && stored.state.is_terminal()
        {
            return Ok(stored);
        }
        let now = now_ms();
        let status = job.egress.get_or_insert_with(Default::default);
        status.attempts += 1;
        let wait = self.inner.egress_retry.wait_after(status.attempts);
        let next = now.saturating_add(millis(wait));
        let error = ErrorChain(e).to_string();
        status.last_error = Some(error.clone());
        status.last_try_ms = Some(now);
        status.next_try_ms = Some(next);
        job.reason = format!(
            "egress to {} failed (attempt {}): {error}; next try at {}",
            status.target,
            status.attempts,
            format_ms(next)
        );
        tracing::warn!(pipeline = %job.pipeline, job = %job.id, error = %error, "egress failed; retrying");
        self.put_job(&job)?;
        Ok(job)
    }
}

/// The engine's running-job tokens (`stop job` and `park` cancel them).
fn running(
    engine: &Engine,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), CancellationToken>> {
    engine
        .inner
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
