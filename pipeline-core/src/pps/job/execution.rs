//! Running a job's datums: the planner thread, the worker pool and the collector wired
//! together by two channels (datums to run, reports), then the job's stop reason if it was
//! cancelled.

use std::collections::HashMap;
use std::sync::Arc;

use crate::executor::{CancellationToken, Secrets};
use tokio::sync::mpsc;

use crate::datum::DatumPlan;
use crate::pfs::CommitRef;
use crate::spec::EffectiveSpec;

use super::super::Engine;
use super::super::error::{Result, task_failed};
use super::super::keys::{KillReasonKey, RecordKey};
use super::super::records::{JobInfo, PipelineInfo};
use super::collector::{Collector, DeltaPaths, REPORTS, RunOutcome, job_deadline};
use super::datum_run::{DatumCtx, DatumCtxParts, ScratchAccess};
use super::messages::{Msg, Todo};
use super::owners::Owners;
use super::planner::{Planner, QUEUE, TODO_BATCH};
use super::pool::Work;

/// One job's run: what its planner, workers and collector share.
pub(super) struct JobRun<'a> {
    /// The engine the job runs on.
    pub engine: &'a Engine,
    /// The pipeline version of the job.
    pub pinfo: &'a PipelineInfo,
    /// Its effective spec.
    pub spec: &'a EffectiveSpec,
    /// The job's datum plan.
    pub plan: DatumPlan,
    /// Decides per datum whether it runs.
    pub planner: Planner,
    /// The job's input commits, by repo name.
    pub input_commits: &'a HashMap<String, CommitRef>,
    /// The secrets its datums get (host-supplied and stored, see `pps::secrets`).
    pub secrets: Secrets,
    /// The job's S3 gateway variables (`S3_ENDPOINT`, ...), when it has one.
    pub gateway_env: Vec<(String, String)>,
    /// Cancelled when the job is stopped, killed or timed out.
    pub cancel: CancellationToken,
}

impl JobRun<'_> {
    /// Runs every datum of the plan that needs to run, commits their results in batches and
    /// deletes the outputs of vanished datums; `owners` holds what the job already recorded.
    pub(super) async fn run(self, job: &mut JobInfo, owners: Owners) -> Result<RunOutcome> {
        let engine = self.engine;
        let cancel = self.cancel.clone();
        let ctx = Arc::new(self.datum_ctx(job));
        let (tx, mut rx) = mpsc::channel::<Msg>(REPORTS);
        let (work_tx, work_rx) = mpsc::channel::<Vec<Todo>>(QUEUE / TODO_BATCH);
        let planner_started = self.planner.started;
        let base_records = self.planner.base.clone();
        let base_output = self.planner.delta.as_ref().map(|d| d.base_output.clone());
        let planning = {
            let (planner, plan) = (self.planner, self.plan);
            let tx = tx.clone();
            let cancel = cancel.clone();
            tokio::task::spawn_blocking(move || planner.run(&plan, &work_tx, &tx, &cancel))
        };
        // Workers start on the first datum to run, while the collector below already takes
        // the planner's reports.
        let work = Arc::new(tokio::sync::Mutex::new(Work::new(work_rx)));
        let dispatcher = if engine.shares_sets(self.spec) {
            engine.dispatch_shared(job, work, tx, cancel.clone())
        } else {
            engine.dispatch(self.pinfo, work, tx, ctx.clone())
        };

        let deadline = job_deadline(self.spec, job);
        let mut collector = Collector::new(engine, job, owners, planner_started);
        collector.delta_paths = base_output.map(|base_output| DeltaPaths {
            base_output,
            deleted: Default::default(),
            clash: None,
        });
        // A store that fails mid-job (its server away) ends the run: the planner and the
        // workers (or a shared job's publisher) are cancelled too, not left behind.
        let collected = match collector.collect(&mut rx, deadline, &cancel).await {
            Ok(()) => {
                let _ = planning.await;
                collector.flush_rest().await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = collected {
            cancel.cancel();
            return Err(e);
        }
        let Collector {
            owners,
            mut outcome,
            plan_done,
            timed_out,
            delta_paths,
            ..
        } = collector;

        if plan_done && !cancel.is_cancelled() {
            match delta_paths {
                Some(paths) => {
                    if let Some((path, datum)) = paths.clash {
                        let c = engine.conflict_message(job, &path, &datum)?;
                        outcome.conflict.get_or_insert(c);
                    }
                }
                None => engine.delete_vanished(job, base_records, owners).await?,
            }
        }
        let pool = dispatcher.await.map_err(task_failed("dispatch datums"))??;
        let _ = std::fs::remove_dir_all(&ctx.scratch);
        if !pool.is_empty() {
            engine.return_pool(self.pinfo, pool).await;
        }
        if cancel.is_cancelled() {
            if engine.parks(job, &outcome, timed_out)? {
                outcome.parked = true;
            } else {
                outcome.killed = Some(engine.stop_reason(job, timed_out)?);
            }
        }
        Ok(outcome)
    }

    /// The context every datum of the job runs in.
    fn datum_ctx(&self, job: &JobInfo) -> DatumCtx {
        DatumCtx::new(DatumCtxParts {
            store: self.engine.store().clone(),
            job,
            spec: self.spec,
            plan: &self.plan,
            input_commits: self.input_commits,
            secrets: &self.secrets,
            gateway_env: &self.gateway_env,
            cancel: self.cancel.clone(),
            echo: self.engine.inner.echo_logs,
            scratch_root: &self.engine.inner.scratch,
            live: self.engine.inner.live_logs.clone(),
            running: self.engine.inner.running_datums.clone(),
            access: ScratchAccess::of(self.engine.inner.executors.get(&self.pinfo.executor)),
        })
    }
}

impl Engine {
    /// Whether a cancelled job was cancelled by [`Engine::park`] alone (not stopped, timed
    /// out or failed meanwhile): it is then left RUNNING, to be resumed.
    fn parks(&self, job: &JobInfo, outcome: &RunOutcome, timed_out: bool) -> Result<bool> {
        if !self.is_parked() || timed_out || outcome.plan_failed.is_some() {
            return Ok(false);
        }
        let kill = KillReasonKey::new(&job.pipeline, &job.id).encode();
        Ok(self.store().engine_get(&kill)?.is_none())
    }

    /// Why a cancelled job stopped: the reason a kill stored (taken), else a timeout or a stop.
    pub(crate) fn stop_reason(&self, job: &JobInfo, timed_out: bool) -> Result<String> {
        let stored = self
            .store()
            .engine_get(&KillReasonKey::new(&job.pipeline, &job.id).encode())?;
        Ok(match stored {
            Some(r) => {
                self.store().engine_write(vec![(
                    KillReasonKey::new(&job.pipeline, &job.id).encode(),
                    None,
                )])?;
                String::from_utf8_lossy(&r).into_owned()
            }
            None if timed_out => "job timed out (job_timeout)".to_string(),
            None => "job stopped".to_string(),
        })
    }
}
