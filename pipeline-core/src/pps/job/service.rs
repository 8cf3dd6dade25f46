//! Service jobs (reference §1.9, §3.6): a pipeline with `service` runs its user code over
//! exactly one datum, and that code serves until the pipeline's next job is ready.
//!
//! - A service job runs in the background ([`Engine::start_service`]): the scheduler marks
//!   it RUNNING at once and goes on; the job's single datum does not end on its own.
//! - Its input must give exactly one datum, else the job fails with "services must have a
//!   single datum". Every job runs its datum (no skipping: the service must serve).
//! - The next job of the pipeline waits for its input commits only (not for the running
//!   service's output commit). When they are finished, the running service is cancelled
//!   ([`Engine::replace_service`]), its job goes FINISHING, its output commit is finished
//!   and the job ends SUCCESS; then the new job starts. A stop, kill, update or delete ends
//!   it as any job (KILLED).
//! - **Output commit (decision).** A service's `/pfs/out` is not collected: its datum never
//!   ends normally. Its output commit is finished when the service is replaced (as
//!   Pachyderm does), holding what earlier jobs left there.
//! - **User code exiting on its own (decision).** The datum's attempts follow
//!   `datum_tries` (a failing service is started again at once, up to that many runs, and
//!   `err_cmd` runs between them), then the job FAILS with the exit status; code exiting
//!   with status 0 before being replaced also fails the job ("the service exited on its
//!   own"). The next input commit starts a new service.
//! - Where it listens: see [`super::service_port`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::datum::DatumPlan;
use crate::spec::Service;

use super::super::Engine;
use super::super::error::Result;
use super::super::records::{JobInfo, JobState, PipelineInfo};
use super::collector::RunOutcome;
use super::service_port::{self, ServicePort};

/// Why a service job waits on an engine that does not run services
/// ([`crate::pps::EngineBuilder::run_services`]).
pub(crate) const NO_SERVICES: &str = "waiting for an engine that keeps running to start the \
     service (this one runs jobs and exits; e.g. `pipectl serve` on this store)";

/// The service jobs running in this engine.
#[derive(Debug, Default)]
pub(crate) struct Services {
    /// By pipeline: the running service job's ID and its task.
    runs: Mutex<HashMap<String, (String, JoinHandle<()>)>>,
    /// (pipeline, job) of services cancelled because a newer job replaces them.
    replaced: Mutex<HashSet<(String, String)>>,
}

impl Services {
    /// Whether job `job` of `pipeline` is a service running in this engine.
    pub(crate) fn is_running(&self, pipeline: &str, job: &str) -> bool {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pipeline)
            .is_some_and(|(j, h)| j == job && !h.is_finished())
    }

    /// Whether `pipeline`'s job `job` was cancelled to be replaced (the mark is taken).
    fn take_replaced(&self, pipeline: &str, job: &str) -> bool {
        self.replaced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(pipeline.to_string(), job.to_string()))
    }
}

impl Engine {
    /// Starts service job `job` in the background and returns it RUNNING (the scheduler goes
    /// on; the job ends when replaced, stopped, or when its code exits).
    pub(crate) fn start_service(&self, mut job: JobInfo) -> Result<JobInfo> {
        let runner = job.clone();
        job.state = JobState::JobRunning;
        job.reason.clear();
        job.started_ms = Some(super::super::now_ms());
        self.put_job(&job)?;
        let engine = self.clone();
        let (pipeline, id) = (job.pipeline.clone(), job.id.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = engine.run_job(runner).await {
                tracing::error!(error = %crate::error_chain::ErrorChain(&e), "service job failed to run; it is resumed on the next round");
            }
        });
        self.inner
            .services
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pipeline, (id, task));
        Ok(job)
    }

    /// Ends `pipeline`'s running service, if any, because a newer job replaces it: cancels
    /// it and waits until its job has ended (FINISHING, then SUCCESS).
    pub(crate) async fn replace_service(&self, pipeline: &str) {
        self.end_service(pipeline, None, true).await;
    }

    /// Cancels service job `job` of `pipeline` if it runs here, in the background: its job
    /// was ended from outside (stopped, killed by a pipeline stop, update or delete) and its
    /// code must not go on serving. Called from blocking code; a no-op outside a runtime.
    pub(crate) fn cancel_service(&self, pipeline: &str, job: &str) {
        if !self.inner.services.is_running(pipeline, job) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (engine, pipeline, job) = (self.clone(), pipeline.to_string(), job.to_string());
        rt.spawn(async move { engine.end_service(&pipeline, Some(&job), false).await });
    }

    /// Ends `pipeline`'s running service (only if it is job `only`, when given), marked as
    /// replaced or not, and waits until its task has ended (several callers may wait at once).
    async fn end_service(&self, pipeline: &str, only: Option<&str>, replaced: bool) {
        let services = &self.inner.services;
        let job = services
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pipeline)
            .filter(|(j, h)| !h.is_finished() && only.is_none_or(|o| o == j))
            .map(|(j, _)| j.clone());
        let Some(job) = job else { return };
        if replaced {
            services
                .replaced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((pipeline.to_string(), job.clone()));
        }
        // The job registers its cancellation once planned: cancel it until it has ended.
        let key = (pipeline.to_string(), job);
        while services.is_running(&key.0, &key.1) {
            let token = self
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned();
            if let Some(t) = token {
                t.cancel();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why service job `job` does not progress: it serves (where, until the next job) or
    /// this engine does not run services; `None` for other jobs.
    pub(crate) fn service_waiting(&self, job: &JobInfo) -> Result<Option<String>> {
        if self.inner.services.is_running(&job.pipeline, &job.id) {
            let p = self.pipeline_version(&job.pipeline, job.version)?;
            return Ok(p.effective.service.as_ref().map(|svc| {
                format!(
                    "serving on {} until the pipeline's next job replaces it",
                    service_port::listen_address(svc)
                )
            }));
        }
        if !self.inner.run_services && self.is_service(job)? {
            return Ok(Some(NO_SERVICES.to_string()));
        }
        Ok(None)
    }

    /// Before a service job runs: its plan must give exactly one datum, and its host port
    /// must be free (relayed to its worker when needed). The error is the job's failure.
    pub(super) async fn prepare_service(
        &self,
        pinfo: &PipelineInfo,
        service: &Service,
        plan: &DatumPlan,
    ) -> Result<std::result::Result<ServicePort, String>> {
        let mut datums = 0;
        for d in plan.datums().take(2) {
            if let Err(e) = d {
                return Ok(Err(format!("planning datums: {e}")));
            }
            datums += 1;
        }
        if datums != 1 {
            return Ok(Err(format!(
                "services must have a single datum (the input gives {}; use glob \"/\")",
                if datums == 0 { "none" } else { "more than one" }
            )));
        }
        // The worker's address is known once it runs; the pool is kept for the job.
        let pool = self.take_pool(pinfo).await?;
        let worker = pool.first().map(|w| w.address());
        self.return_pool(pinfo, pool).await;
        let Some(worker) = worker else {
            return Ok(Err("the executor started no worker for the service".into()));
        };
        Ok(service_port::open(service, worker).await)
    }

    /// A service job's end from its run: replaced → FINISHING then SUCCESS; stopped or
    /// killed → KILLED; its code ended on its own → FAILURE (with the datum's failure).
    pub(super) async fn finish_service(
        &self,
        mut job: JobInfo,
        outcome: RunOutcome,
        port: ServicePort,
    ) -> Result<JobInfo> {
        drop(port);
        let replaced = self.inner.services.take_replaced(&job.pipeline, &job.id);
        // Killed from outside (a stop, update or delete) before or while being replaced: that
        // ending stands.
        if let Ok(stored) = self.inspect_job(&job.pipeline, &job.id)
            && stored.state.is_terminal()
        {
            return Ok(stored);
        }
        if replaced {
            job.state = JobState::JobFinishing;
            job.reason = "replaced by the pipeline's next job".into();
            self.put_job(&job)?;
            job.reason.clear();
            return self.finish_job(job, JobState::JobSuccess, "");
        }
        if outcome.killed.is_none()
            && outcome.plan_failed.is_none()
            && outcome.first_failed.is_none()
        {
            return self.finish_job(
                job,
                JobState::JobFailure,
                "the service exited on its own (exit code 0) before a newer job replaced it",
            );
        }
        self.finish_run(job, outcome).await
    }
}
