//! Running one job: base job, datum plan, skip/run/delete decisions (reference §2.13),
//! datums on warm workers, batched ingestion, output merge checks (§2.14), final state.
//!
//! Everything streams: the [`planner`] walks the datum plan on a blocking thread, looks each
//! datum up in the base job's records and hands it on (to run, through a bounded queue the
//! workers of the [`pool`] pull from; or, unchanged, as a skipped record to the
//! [`collector`]), so a job holds a bounded number of datums in memory however many it has.
//! The collector receives the planner's and the workers' reports ([`messages`]) in one
//! ordered stream and commits them in batches. What stays in memory per datum is the output
//! ownership map ([`owners`]), needed to detect two datums writing one path.
//!
//! A job whose inputs changed at a few paths since its base job walks none of this:
//! [`delta`] finds the changed paths from the store's commit layers and the datums that
//! hold them by lookups, in time proportional to the change; the planner visits only those
//! and the job shows the others through its root's records, as skipped (a job none of
//! whose inputs changed visits nothing and finishes at once).
//!
//! The datums to run are cut into datum sets ([`datum_sets`]): a worker claims a whole set,
//! and the collector commits a set's results together (a set cut short by a stop or a
//! dying host is not recorded, so it runs again when the job resumes).
//!
//! Per datum ([`datum_run`]): inputs are materialised ([`materialize`]), the attempt loop
//! ([`attempt`]) runs user code on a worker, outputs are ingested, log lines collected
//! ([`datum_logs`]). A `datum_batching` pipeline's sets run in one process each instead
//! ([`batching`]). [`execution`] wires one job's pieces together; this module starts and
//! finishes the job.

mod attempt;
mod batching;
mod cluster;
mod collector;
mod datum_logs;
mod datum_run;
mod datum_sets;
mod delta;
mod execution;
mod failure_reason;
mod lazy_inputs;
mod materialize;
mod messages;
mod outage;
mod owners;
mod planner;
mod pool;
mod restart;
mod service;
mod service_port;

pub(crate) use cluster::Cluster;
pub use cluster::DEFAULT_LEASE;
pub(crate) use datum_logs::{DatumLogs, LiveGuard, LiveLogs};
pub(crate) use datum_run::secret_env;
pub(crate) use restart::RunningDatums;
pub(crate) use service::{NO_SERVICES, Services};
pub use service_port::listen_address as service_address;
pub(crate) use service_port::open as open_service_port;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::executor::CancellationToken;

use crate::datum::{DatumPlan, TreeSource};
use crate::error_chain::ErrorChain;
use crate::pfs::{CommitRef, CommitTree};

use super::error::{PpsError, Result, task_failed};
use super::inherited::RecordsView;
use super::keys::{DatumKey, KillReasonKey, RecordKey};
use super::records::{DatumInfo, DatumState, JobInfo, JobState, PipelineInfo};
use super::registry::decode;
use super::{Engine, now_ms};
use collector::RunOutcome;
use datum_sets::SetRule;
use execution::JobRun;
use owners::Owners;
use planner::{JobSources, Planner, Salvage, processed};

impl Engine {
    /// Runs one job whose inputs are finished, to a terminal state.
    pub(crate) async fn run_job(&self, mut job: JobInfo) -> Result<JobInfo> {
        let pinfo = self.pipeline_version(&job.pipeline, job.version)?;
        let spec = pinfo.effective.clone();
        if job.state == JobState::JobRunning {
            job.restarts += 1;
        } else {
            job.state = JobState::JobRunning;
            job.started_ms = Some(now_ms());
        }
        self.put_job(&job)?;
        let t_plan = Instant::now();

        // ---- plan
        let base = self.find_base(&job)?;
        job.base_job = base.as_ref().map(|b| b.id.clone());
        let (sources, input_commits) = job_inputs(self, &job);
        let secrets = match self.pipeline_secrets(&pinfo) {
            Ok(s) => s,
            // A secret deleted after the pipeline was created fails the job, naming it.
            Err(PpsError::Secret(e)) => {
                return self.finish_job(job, JobState::JobFailure, &ErrorChain(&e).to_string());
            }
            Err(e) => return Err(e),
        };
        let plan = match DatumPlan::for_spec(&spec, &sources) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("planning datums: {}", ErrorChain(&e));
                return self.finish_job(job, JobState::JobFailure, &reason);
            }
        };
        // Few input paths changed since the base: visit only their datums (see `delta`).
        let mut delta = self.delta_since(&job, &pinfo, base.as_ref(), &plan)?;
        job.datums_from = None;
        if let Some(d) = delta.take_if(|d| d.visits_nothing())
            && let Some(b) = &base
        {
            return self.finish_unvisited(job, b, d, t_plan).await;
        }
        // A service checks its single datum and opens its port first (see `service`).
        let service_port = match &spec.service {
            Some(svc) => match self.prepare_service(&pinfo, svc, &plan).await? {
                Ok(port) => Some(port),
                Err(reason) => return self.finish_job(job, JobState::JobFailure, &reason),
            },
            None => None,
        };
        // A job that was running when its host died resumes: what it recorded stays, and is
        // not run again.
        let resumed = job.restarts > 0;
        let gateway = match self
            .start_job_gateway(&pinfo, &secrets, &plan, &job, resumed)
            .await
        {
            Ok(g) => g,
            Err(reason) => return self.finish_job(job, JobState::JobFailure, &reason),
        };
        let (owners, resumed_outcome) = if resumed {
            self.recorded_so_far(&job)?
        } else {
            job.stats = Default::default();
            (Owners::default(), RunOutcome::default())
        };
        let mut planner = self.planner(&job, &pinfo, base.as_ref(), resumed, t_plan);
        if let (Some(d), Some(b)) = (delta, &base) {
            planner.delta = Some(self.start_delta(&mut job, b, d)?);
        }

        // ---- run
        let t_run = Instant::now();
        let run = JobRun {
            engine: self,
            pinfo: &pinfo,
            spec: &spec,
            plan,
            planner,
            input_commits: &input_commits,
            secrets,
            gateway_env: gateway.as_ref().map(|g| g.env()).unwrap_or_default(),
            cancel: CancellationToken::new(),
        };
        let outcome = self.run_registered(run, &mut job, owners).await;
        drop(gateway);
        if let Some(reason) = outcome.as_ref().err().and_then(refused_by_executor) {
            return self.finish_job(job, JobState::JobFailure, &reason);
        }
        let mut outcome = outcome?;
        if outcome.parked {
            // A clean stop: the job stays RUNNING with what it recorded, to be resumed.
            return Ok(job);
        }
        if let Some(port) = service_port {
            return self.finish_service(job, outcome, port).await;
        }
        outcome.first_failed = outcome.first_failed.or(resumed_outcome.first_failed);
        outcome.conflict = outcome.conflict.or(resumed_outcome.conflict);
        job.stats.process_ms = millis(t_run);

        self.finish_run(job, outcome).await
    }

    /// Finishes a job that ran to its end: its terminal state and reason from `outcome` (a
    /// job whose datums failed names them, see `failure_reason.rs`), on the blocking pool.
    async fn finish_run(&self, mut job: JobInfo, outcome: RunOutcome) -> Result<JobInfo> {
        let t_finish = Instant::now();
        let datums_failed = outcome.killed.is_none()
            && outcome.plan_failed.is_none()
            && outcome.first_failed.is_some();
        let (state, reason) = final_state(outcome);
        if state == JobState::JobSuccess
            && let Some(egressing) = self.start_egress(&job).await?
        {
            return Ok(egressing);
        }
        job.stats.finish_ms = millis(t_finish);
        let s = self.clone();
        tokio::task::spawn_blocking(move || {
            let reason = if datums_failed {
                s.failed_datums_reason(&job, &reason)
            } else {
                reason
            };
            s.finish_job(job, state, &reason)
        })
        .await
        .map_err(task_failed("finish job"))?
    }

    /// Runs the job's datums with its cancellation token registered (so that it can be
    /// stopped or killed meanwhile).
    async fn run_registered(
        &self,
        run: JobRun<'_>,
        job: &mut JobInfo,
        owners: Owners,
    ) -> Result<RunOutcome> {
        let key = (job.pipeline.clone(), job.id.clone());
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), run.cancel.clone());
        if self.is_parked() {
            // Parked between the scheduler's check and the registration above.
            run.cancel.cancel();
        }
        // Killed while it planned, before the registration above: a kill of its commit set
        // stores its reason before it looks for running jobs, and a stop that found no
        // running job ended the job itself.
        let kill = KillReasonKey::new(&job.pipeline, &job.id).encode();
        let ended = self
            .inspect_job(&job.pipeline, &job.id)
            .is_ok_and(|j| j.state.is_terminal());
        if ended || self.store().engine_get(&kill)?.is_some() {
            run.cancel.cancel();
        }
        let result = run.run(job, owners).await;
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        result
    }

    /// The planner of `job`: which datums run, against `base`'s records.
    fn planner(
        &self,
        job: &JobInfo,
        pinfo: &PipelineInfo,
        base: Option<&JobInfo>,
        resumed: bool,
        started: Instant,
    ) -> Planner {
        let spec = &pinfo.effective;
        Planner {
            store: self.store().clone(),
            pipeline: job.pipeline.clone(),
            job_id: job.id.clone(),
            // A base that shows another job's records is read through them.
            base: base.map(RecordsView::of),
            salt: pinfo.salt.clone(),
            // With `s3_out` or a service no datum is skipped: every job rewrites the output.
            every_job: delta::skips_nothing(pinfo),
            base_salt_same: self.salt_unchanged(base, pinfo),
            resumed,
            started,
            salvage: self.salvage_of(job),
            sets: SetRule::of(spec.datum_set_spec.as_ref(), self.workers_of(spec)),
            delta: None,
        }
    }

    /// The workers a job of `spec` runs on: its own, on each host sharing its sets.
    fn workers_of(&self, spec: &crate::spec::EffectiveSpec) -> u64 {
        let own = u64::try_from(spec.workers()).unwrap_or(1);
        if self.shares_sets(spec) {
            own.saturating_mul(self.hosts_sharing())
        } else {
            own
        }
    }

    /// Whether the base job's pipeline version has the salt of `pinfo` (true without a base).
    fn salt_unchanged(&self, base: Option<&JobInfo>, pinfo: &PipelineInfo) -> bool {
        base.is_none_or(|b| {
            self.pipeline_version(&b.pipeline, b.version)
                .is_ok_and(|v| v.salt == pinfo.salt)
        })
    }

    /// The job whose successful datums a failed-only rerun's job reuses (`None` for other
    /// jobs, or when that job is gone).
    fn salvage_of(&self, job: &JobInfo) -> Option<Salvage> {
        let from = self
            .inspect_job(&job.pipeline, job.salvage_from.as_deref()?)
            .ok()?;
        Some(Salvage {
            records: RecordsView::of(&from),
            commit: from.output_commit,
        })
    }

    /// The base job: the job of the nearest error-free ancestor of the output commit.
    fn find_base(&self, job: &JobInfo) -> Result<Option<JobInfo>> {
        let store = self.store();
        let mut cur = store.inspect_commit(&job.output_commit)?.parent;
        while let Some(id) = cur {
            let c = store.inspect_commit(&job.output_commit.repo.commit(&id))?;
            if c.error.is_none() {
                return Ok(self
                    .inspect_job(&job.pipeline, id.as_str())
                    .ok()
                    .filter(|j| j.state == JobState::JobSuccess));
            }
            cur = c.parent;
        }
        Ok(None)
    }

    /// What a resumed job recorded before its host died: the ownership of its outputs, its
    /// first failed datum and its first output conflict.
    fn recorded_so_far(&self, job: &JobInfo) -> Result<(Owners, RunOutcome)> {
        let mut owners = Owners::default();
        let mut outcome = RunOutcome::default();
        for kv in self
            .store()
            .engine_scan(DatumKey::of_job(&job.pipeline, &job.id).as_bytes())?
        {
            let (k, v) = kv?;
            let d: DatumInfo = decode(&k, &v)?;
            if processed(d.state) {
                for o in &d.outputs {
                    if let Some(c) = owners.claim(o, &d.id) {
                        outcome.conflict.get_or_insert(c);
                    }
                }
            }
            if d.state == DatumState::Failed {
                outcome.first_failed.get_or_insert(d.id.clone());
            }
        }
        Ok((owners, outcome))
    }
}

/// The trees of a job's input commits and the commits themselves, by repo name.
fn job_inputs(engine: &Engine, job: &JobInfo) -> (JobSources, HashMap<String, CommitRef>) {
    let mut trees: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    let mut input_commits: HashMap<String, CommitRef> = HashMap::new();
    for c in &job.inputs {
        trees.insert(
            c.repo.name.clone(),
            Arc::new(CommitTree::new(engine.store().clone(), c.clone())),
        );
        input_commits.insert(c.repo.name.clone(), c.clone());
    }
    (JobSources(trees), input_commits)
}

/// A job's terminal state and reason from what went wrong in its run.
fn final_state(outcome: RunOutcome) -> (JobState, String) {
    if let Some(r) = outcome.killed {
        (JobState::JobKilled, r)
    } else if let Some(r) = outcome.plan_failed {
        (JobState::JobFailure, r)
    } else if let Some(f) = outcome.first_failed {
        (JobState::JobFailure, format!("datum {f} failed"))
    } else if let Some(c) = outcome.conflict {
        (JobState::JobFailure, c)
    } else {
        (JobState::JobSuccess, String::new())
    }
}

/// Milliseconds since `t`.
fn millis(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Microseconds since `t`.
fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The job's failure reason when its executor refused the pipeline for good (a spec value it
/// cannot enforce, a feature it does not have): the job fails, naming the field, and other
/// pipelines' jobs run on. Other errors (a daemon down) stop `run_pending` to be retried.
fn refused_by_executor(e: &PpsError) -> Option<String> {
    use crate::executor::ExecutorError;
    match e {
        PpsError::Executor {
            source: source @ (ExecutorError::InvalidTask { .. } | ExecutorError::Unsupported { .. }),
            ..
        } => Some(format!("starting workers: {}", ErrorChain(source))),
        _ => None,
    }
}
