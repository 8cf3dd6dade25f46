//! Jobs: discovering them from open output commits, the state machine, running every
//! runnable job upstream first, stopping and waiting; datum and log queries.

use tokio_util::sync::CancellationToken;

use crate::error_chain::ErrorChain;
use crate::pfs::{CommitInfo, CommitRef, FinishOptions, PfsError};

use super::datum_index::indexed_from_start;
use super::error::{PpsError, Result};
use super::inherited::RecordsView;
use super::keys::{DatumKey, JobKey, KillReasonKey, LogKey, RecordKey, RerunKey};
use super::records::{DatumInfo, JobInfo, JobState, LogLine, PipelineInfo, enc};
use super::registry::{RerunRequest, decode};
use super::{Engine, now_ms};

/// What a job's inputs allow (see `Engine::readiness`).
enum Readiness {
    /// Wait: this open commit must finish first.
    Wait(String),
    /// Never: an input failed or is gone.
    Unrunnable(String),
    /// Run now.
    Ready,
}

/// A CREATED job for the open output commit `c` of pipeline `p`.
fn new_job(p: &PipelineInfo, c: CommitInfo, salvage_from: Option<String>) -> JobInfo {
    JobInfo {
        pipeline: p.id(),
        id: c.commit.id.to_string(),
        version: p.version,
        state: JobState::JobCreated,
        reason: String::new(),
        output_commit: c.commit,
        inputs: c.direct_provenance,
        base_job: None,
        salvage_from,
        datums_from: None,
        stats: Default::default(),
        planned: false,
        restarts: 0,
        created_ms: super::mono_ms(),
        started_ms: None,
        finished_ms: None,
        egress: None,
    }
}

impl Engine {
    /// Creates a CREATED job for every open output commit of every pipeline that has none
    /// (what a new input commit, a pipeline create/update/start made). Returns the new jobs.
    ///
    /// Blocking: store I/O only.
    pub fn discover_jobs(&self) -> Result<Vec<JobInfo>> {
        let _one_at_a_time = self
            .inner
            .discovering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let store = self.store();
        let mut created = Vec::new();
        let mut writes = Vec::new();
        for p in self.list_pipelines()? {
            // Spouts have no jobs: their commits are their user code's.
            if super::spout::is_spout(&p) {
                continue;
            }
            let Ok(branch) = store.inspect_branch(&p.output_branch) else {
                continue;
            };
            let mut chain: Vec<CommitInfo> = Vec::new();
            let mut cur = Some(branch.head);
            while let Some(id) = cur {
                let c = store.inspect_commit(&p.output_branch.repo.commit(&id))?;
                if c.is_finished()
                    || store
                        .engine_get(&JobKey::new(&p.id(), id.as_str()).encode())?
                        .is_some()
                {
                    break;
                }
                cur = c.parent.clone();
                chain.push(c);
            }
            if chain.is_empty() {
                continue;
            }
            let mut salvage = self.pending_rerun(&p, &mut writes)?;
            for c in chain.into_iter().rev() {
                let job = new_job(&p, c, salvage.take());
                writes.push((JobKey::new(&p.id(), &job.id).encode(), Some(enc(&job))));
                writes.push(indexed_from_start(&p.id(), &job.id));
                created.push(job);
            }
        }
        if !writes.is_empty() {
            store.engine_write(writes)?;
            self.publish(created.iter().cloned().map(super::events::Event::Job));
        }
        Ok(created)
    }

    /// The salvage job of a failed-only rerun of `p` waiting for its job, taken (its record's
    /// removal added to `writes`); a request left by an earlier version is dropped.
    fn pending_rerun(
        &self,
        p: &PipelineInfo,
        writes: &mut crate::pfs::EngineWrite,
    ) -> Result<Option<String>> {
        let key = RerunKey::new(&p.id()).encode();
        let Some(v) = self.store().engine_get(&key)? else {
            return Ok(None);
        };
        let rerun: RerunRequest = decode(&key, &v)?;
        writes.push((key, None));
        Ok((rerun.version == p.version).then_some(rerun.job))
    }

    /// Jobs of one pipeline (or all), oldest first.
    ///
    /// Blocking: store reads only.
    pub fn list_jobs(&self, pipeline: Option<&str>) -> Result<Vec<JobInfo>> {
        let prefix = match pipeline {
            Some(p) => {
                self.inspect_pipeline(p)?;
                JobKey::of(p)
            }
            None => JobKey::all(),
        };
        let mut out: Vec<JobInfo> = Vec::new();
        for kv in self.store().engine_scan(prefix.as_bytes())? {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        out.sort_by_key(|j| j.created_ms);
        Ok(out)
    }

    /// One job.
    ///
    /// Blocking: store reads only.
    pub fn inspect_job(&self, pipeline: &str, job: &str) -> Result<JobInfo> {
        let key = JobKey::new(pipeline, job).encode();
        match self.store().engine_get(&key)? {
            Some(v) => decode(&key, &v),
            None => Err(PpsError::JobNotFound {
                pipeline: pipeline.to_string(),
                job: job.to_string(),
            }),
        }
    }

    /// Every job of a commit set (one per downstream pipeline).
    ///
    /// Blocking: store reads only.
    pub fn jobs_of_commit_set(&self, id: &str) -> Result<Vec<JobInfo>> {
        Ok(self
            .list_jobs(None)?
            .into_iter()
            .filter(|j| j.id == id)
            .collect())
    }

    /// The datums of a job (skipped ones included), by datum ID.
    ///
    /// Blocking: store reads only.
    pub fn list_datums(&self, pipeline: &str, job: &str) -> Result<Vec<DatumInfo>> {
        let info = self.inspect_job(pipeline, job)?;
        RecordsView::of(&info).scan(self.store())?.collect()
    }

    /// One datum of a job.
    ///
    /// Blocking: store reads only.
    pub fn inspect_datum(&self, pipeline: &str, job: &str, datum: &str) -> Result<DatumInfo> {
        let key = DatumKey::new(pipeline, job, datum).encode();
        let shown = match self.store().engine_get(&key)? {
            Some(v) => return decode(&key, &v),
            None => match self.inspect_job(pipeline, job) {
                Ok(info) => RecordsView::of(&info).record(|k| self.store().engine_get(k), datum)?,
                Err(_) => None,
            },
        };
        match shown {
            Some(d) => Ok(d),
            None => Err(PpsError::DatumNotFound {
                pipeline: pipeline.to_string(),
                job: job.to_string(),
                datum: datum.to_string(),
            }),
        }
    }

    /// User-code log lines of a pipeline, optionally of one job and one datum: the stored
    /// lines in (job, datum, time) order, then the lines so far of the datums running now in
    /// this engine (a running datum's lines are stored with its record when it ends; until
    /// then they are only here).
    ///
    /// Blocking: store reads only.
    pub fn logs(
        &self,
        pipeline: &str,
        job: Option<&str>,
        datum: Option<&str>,
    ) -> Result<Vec<LogLine>> {
        let pipeline = self.inspect_pipeline(pipeline)?.id();
        let pipeline = pipeline.as_str();
        let mut out = Vec::new();
        for kv in self
            .store()
            .engine_scan(LogKey::of(pipeline, job, datum).as_bytes())?
        {
            let (k, v) = kv?;
            let line: LogLine = decode(&k, &v)?;
            if datum.is_none_or(|d| line.datum == d) {
                out.push(line);
            }
        }
        out.extend(self.inner.live_logs.lines(pipeline, job, datum));
        Ok(out)
    }

    /// Stops a job: KILLED with `reason` (default "job stopped"); its output commit is
    /// finished with that error. A running job is cancelled (its datums' processes killed).
    ///
    /// Blocking: store I/O only; a running job notices the stop and ends its datums.
    pub fn stop_job(&self, pipeline: &str, job: &str, reason: Option<&str>) -> Result<JobInfo> {
        let info = self.inspect_job(pipeline, job)?;
        if info.state.is_terminal() {
            return Err(PpsError::JobFinished {
                pipeline: pipeline.to_string(),
                job: job.to_string(),
            });
        }
        let token = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(info.pipeline.clone(), job.to_string()))
            .cloned();
        match token {
            Some(t) => {
                // The runner finishes the job as KILLED when its datums return.
                self.store().engine_write(vec![(
                    KillReasonKey::new(pipeline, job).encode(),
                    Some(reason.unwrap_or("job stopped").as_bytes().to_vec()),
                )])?;
                t.cancel();
                Ok(info)
            }
            None => {
                let killed =
                    self.finish_job(info, JobState::JobKilled, reason.unwrap_or("job stopped"))?;
                // A service between its start and its first datum has no token yet.
                self.cancel_service(&killed.pipeline, &killed.id);
                Ok(killed)
            }
        }
    }

    /// Moves a job to a terminal state: finishes its output commit (with `reason` as error
    /// unless SUCCESS), then records the state. Refused for a `job` given as finished; when
    /// another finisher ended it meanwhile, returns the job as that one recorded it.
    pub(crate) fn finish_job(
        &self,
        mut job: JobInfo,
        state: JobState,
        reason: &str,
    ) -> Result<JobInfo> {
        let _one_at_a_time = self
            .inner
            .finishing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if job.state.is_terminal() {
            return Err(PpsError::JobFinished {
                pipeline: job.pipeline,
                job: job.id,
            });
        }
        // Read again under the lock: another finisher (the runner, or a stop, update or
        // delete) may have ended the job meanwhile; its ending stands.
        if let Ok(stored) = self.inspect_job(&job.pipeline, &job.id)
            && stored.state.is_terminal()
        {
            return Ok(stored);
        }
        let store = self.store();
        let commit = store.inspect_commit(&job.output_commit)?;
        let (state, reason) = if commit.is_finished() {
            match commit.error {
                Some(e) if state == JobState::JobSuccess => (JobState::JobFailure, e),
                _ => (state, reason.to_string()),
            }
        } else {
            let error = (state != JobState::JobSuccess).then(|| reason.to_string());
            let done = store.finish_commit(
                &job.output_commit,
                FinishOptions {
                    error,
                    description: None,
                },
            )?;
            match done.error {
                Some(e) if state == JobState::JobSuccess => (JobState::JobFailure, e),
                _ => (state, reason.to_string()),
            }
        };
        job.state = state;
        job.reason = reason;
        job.finished_ms = Some(now_ms());
        self.put_job(&job)?;
        Ok(job)
    }

    /// Runs every job that can run, upstream first, until none is left; returns the jobs
    /// that reached a terminal state in this call. Jobs whose inputs are still open (a user
    /// commit not finished) stay STARTING. Jobs a dead host left RUNNING are resumed.
    ///
    /// Async: runs user code; returns when no job can run any more.
    pub async fn run_pending(&self) -> Result<Vec<JobInfo>> {
        self.reconcile_spouts()?;
        let _guard = self.inner.scheduler.lock().await;
        if self.is_parked() {
            return Ok(Vec::new());
        }
        self.tick_crons()?;
        self.store().tick_trigger_crons(now_ms() / 1000)?;
        let mut done = Vec::new();
        while !self.is_parked() {
            self.discover_jobs()?;
            let mut progressed = false;
            for job in self.list_jobs(None)? {
                if job.state.is_terminal() {
                    continue;
                }
                if let Some(finished) = self.step(job).await? {
                    progressed = true;
                    let terminal = finished.state.is_terminal();
                    if terminal {
                        done.push(finished);
                    }
                    break;
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(done)
    }

    /// Runs the engine in the background until `shutdown` is cancelled: pending jobs, cron
    /// ticks as they fall due (every schedule [`crate::schedule::Schedule`] reads), and the
    /// jobs that commits made meanwhile (through this engine's store, by this or another task)
    /// start, found by looking every `poll`. An error of the engine itself (not of user code,
    /// which fails jobs) is logged (`tracing`, error) and tried again after `poll`; jobs a
    /// failed attempt left running are resumed.
    ///
    /// ```no_run
    /// # async fn demo(engine: pipeline_core::pps::Engine) {
    /// let stop = tokio_util::sync::CancellationToken::new();
    /// let serving = tokio::spawn({
    ///     let (engine, stop) = (engine.clone(), stop.clone());
    ///     async move { engine.serve(std::time::Duration::from_secs(1), stop).await }
    /// });
    /// // ... commit input data through engine.store() ...
    /// stop.cancel();
    /// serving.await.unwrap();
    /// # }
    /// ```
    ///
    /// Async: runs until `shutdown` is cancelled.
    pub async fn serve(&self, poll: std::time::Duration, shutdown: CancellationToken) {
        let poll = poll.max(std::time::Duration::from_millis(10));
        while !shutdown.is_cancelled() {
            let wait = match self.serve_once().await {
                Ok(Some(due)) => {
                    let now = now_ms();
                    let until = due.saturating_mul(1000).saturating_sub(now);
                    poll.min(std::time::Duration::from_millis(until))
                }
                Ok(None) => poll,
                Err(e) => {
                    tracing::error!(error = %ErrorChain(&e), "engine: running pending jobs failed; retrying");
                    poll
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round of [`Engine::serve`]: pending jobs, then when the next cron tick is due.
    async fn serve_once(&self) -> Result<Option<u64>> {
        self.run_pending().await?;
        let cron = self.next_cron_due()?;
        // Egress retries are due in ms; rounded up to the second the loop counts in.
        let egress = self.next_egress_due()?.map(|ms| ms.div_ceil(1000));
        Ok(match (cron, egress) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Advances one job if it can: UNRUNNABLE, or runs it. `None` when it must wait.
    async fn step(&self, mut job: JobInfo) -> Result<Option<JobInfo>> {
        if self.inner.services.is_running(&job.pipeline, &job.id) {
            // A service serves until a newer job replaces it (`job::service`).
            return Ok(None);
        }
        let store = self.store();
        let out = store.inspect_commit(&job.output_commit);
        let out = match out {
            Ok(c) => c,
            Err(PfsError::CommitNotFound { .. }) | Err(PfsError::RepoNotFound { .. }) => {
                job.state = JobState::JobKilled;
                job.reason = "output commit missing".into();
                job.finished_ms = Some(now_ms());
                self.put_job(&job)?;
                return Ok(Some(job));
            }
            Err(e) => return Err(e.into()),
        };
        if out.is_finished() {
            // The host died between finishing the commit and recording the state.
            let (state, reason) = match &out.error {
                None => (JobState::JobSuccess, String::new()),
                Some(e) => (JobState::JobFailure, e.clone()),
            };
            job.state = state;
            job.reason = reason;
            job.finished_ms = Some(now_ms());
            self.put_job(&job)?;
            return Ok(Some(job));
        }
        if job.state == JobState::JobEgressing {
            return self.step_egressing(job).await;
        }
        match self.readiness(&job, &out)? {
            Readiness::Wait(reason) => {
                self.mark_starting(&mut job, reason)?;
                Ok(None)
            }
            Readiness::Unrunnable(reason) => Ok(Some(self.finish_job(
                job,
                JobState::JobUnrunnable,
                &reason,
            )?)),
            Readiness::Ready => {
                if job.state == JobState::JobStarting {
                    job.reason.clear();
                }
                if self.is_service(&job)? {
                    if !self.inner.run_services {
                        self.mark_starting(&mut job, super::job::NO_SERVICES.to_string())?;
                        return Ok(None);
                    }
                    self.replace_service(&job.pipeline).await;
                    return Ok(Some(self.start_service(job)?));
                }
                Ok(Some(self.run_job(job).await?))
            }
        }
    }

    /// Whether a job whose output commit `out` is open can run: the previous job of its
    /// pipeline first, then every input commit finished without an error.
    fn readiness(&self, job: &JobInfo, out: &CommitInfo) -> Result<Readiness> {
        let store = self.store();
        if let Some(parent) = &out.parent {
            let pc = store.inspect_commit(&job.output_commit.repo.commit(parent))?;
            // A running service's commit is finished when this job replaces it.
            if !pc.is_finished()
                && !self
                    .inner
                    .services
                    .is_running(&job.pipeline, &parent.to_string())
            {
                return Ok(Readiness::Wait(format!(
                    "waiting for the previous job's output commit {} (open)",
                    pc.commit
                )));
            }
        }
        let mut failed_inputs = Vec::new();
        for input in &job.inputs {
            let c = match store.inspect_commit(input) {
                Ok(c) => c,
                Err(PfsError::CommitNotFound { .. }) | Err(PfsError::RepoNotFound { .. }) => {
                    return Ok(Readiness::Unrunnable(format!(
                        "input commit {input} no longer exists"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            if !c.is_finished() {
                return Ok(Readiness::Wait(format!(
                    "waiting for input commit {input} (open)"
                )));
            }
            if c.error.is_some() {
                failed_inputs.push(super::pipeline_id_of_repo(&input.repo));
            }
        }
        if failed_inputs.is_empty() {
            return Ok(Readiness::Ready);
        }
        Ok(Readiness::Unrunnable(format!(
            "unrunnable because the following upstream pipelines failed: {}",
            failed_inputs.join(", ")
        )))
    }

    /// Whether `job` belongs to a pipeline version with `service` set.
    pub(crate) fn is_service(&self, job: &JobInfo) -> Result<bool> {
        Ok(self
            .pipeline_version(&job.pipeline, job.version)?
            .effective
            .service
            .is_some())
    }

    /// Why a job that is not terminal cannot run yet, e.g. `waiting for input commit
    /// data@<id> (open)` (the open commit it waits for: an input, or the previous job's
    /// output; for an EGRESSING job whose last attempt failed, that error and the next
    /// try; for a service, where it serves until the next job replaces it, or that this
    /// engine does not run services); `None` when nothing holds it back. Computed now, nothing is written.
    ///
    /// Blocking: store reads only.
    pub fn waiting_for(&self, job: &JobInfo) -> Result<Option<String>> {
        if job.state.is_terminal() {
            return Ok(None);
        }
        if let Some(serving) = self.service_waiting(job)? {
            return Ok(Some(serving));
        }
        // A failing egress waits for its next try (its reason says when and why).
        if job.state == JobState::JobEgressing
            && let Some(e) = &job.egress
            && let (Some(error), Some(next)) = (&e.last_error, e.next_try_ms)
        {
            return Ok(Some(format!(
                "egress to {} failed (attempt {}): {error}; next try at {}",
                e.target,
                e.attempts,
                super::format_ms(next)
            )));
        }
        let out = match self.store().inspect_commit(&job.output_commit) {
            Ok(c) if !c.is_finished() => c,
            Ok(_) | Err(PfsError::CommitNotFound { .. }) | Err(PfsError::RepoNotFound { .. }) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match self.readiness(job, &out)? {
            Readiness::Wait(reason) => Some(reason),
            _ => None,
        })
    }

    /// A job that must wait: STARTING, with `reason` naming the commit it waits for (stored
    /// only when the state or the reason changed).
    fn mark_starting(&self, job: &mut JobInfo, reason: String) -> Result<()> {
        if job.state == JobState::JobCreated
            || (job.state == JobState::JobStarting && job.reason != reason)
        {
            job.state = JobState::JobStarting;
            job.reason = reason;
            self.put_job(job)?;
        }
        Ok(())
    }

    /// Runs pending jobs until `pipeline@job` is terminal (or cannot progress); returns it.
    ///
    /// Async: runs pending jobs until this one has finished.
    pub async fn wait_job(&self, pipeline: &str, job: &str) -> Result<JobInfo> {
        self.run_pending().await?;
        self.inspect_job(pipeline, job)
    }

    /// The output commit of a job.
    ///
    /// Blocking: store reads only.
    pub fn job_output(&self, pipeline: &str, job: &str) -> Result<CommitRef> {
        Ok(self.inspect_job(pipeline, job)?.output_commit)
    }
}
