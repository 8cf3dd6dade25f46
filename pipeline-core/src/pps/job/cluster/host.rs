//! A host's side: [`Engine::run_host`] watches the store's work queue for pools with
//! waiting datum sets, starts those pools' warm workers here, and has each worker claim
//! sets with a lease (renewed while it runs), run them and complete them with their
//! datums' records; a pool goes back to the warm pools once no set waited for it for
//! [`IDLE`]. A claim found lost while its set runs (the lease ran out and another host
//! took the set, or the leader dropped the job) stops that run; its result is discarded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::datum::DatumPlan;
use crate::error_chain::ErrorChain;
use crate::executor::{CancellationToken, Secrets, Worker};
use crate::pfs::CommitRef;
use crate::pfs::work_queue::{Claim, Claimed};

use super::super::super::Engine;
use super::super::super::error::{PpsError, Result, task_failed};
use super::super::super::records::{JobInfo, PipelineInfo};
use super::super::super::scratch::ScratchState;
use super::super::datum_run::{DatumCtx, DatumCtxParts, ScratchAccess};
use super::super::job_inputs;
use super::publish::retry;
use super::wire::{SetResult, SetTask, WireDone};
use super::{Cluster, parse_pool_key};

/// How often a host looks for waiting sets, and a worker for its next one.
const POLL: Duration = Duration::from_millis(100);

/// How long a pool's workers stay on the queue with nothing to claim.
const IDLE: Duration = Duration::from_secs(3);

/// How often a host says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// What every set of one job needs on this host, built once per job.
struct JobParts {
    job: JobInfo,
    pinfo: PipelineInfo,
    plan: DatumPlan,
    input_commits: HashMap<String, CommitRef>,
    secrets: Secrets,
}

/// The jobs of one pool this host ran sets of.
type Jobs = Arc<Mutex<HashMap<String, Arc<JobParts>>>>;

impl Engine {
    /// Runs datum sets from the store's work queue on this host's executors until `stop`
    /// is cancelled (see the module docs). An engine built without
    /// [`EngineBuilder::cluster_host`](crate::pps::EngineBuilder::cluster_host) has no
    /// queue: [`PpsError::Usage`]. Queue errors (the database away) are logged and retried
    /// with backoff, never returned.
    pub async fn run_host(&self, stop: CancellationToken) -> Result<()> {
        let Some(cluster) = self.inner.cluster.clone() else {
            return Err(PpsError::Usage(
                "this engine shares no store with other hosts (EngineBuilder::cluster_host)".into(),
            ));
        };
        let active: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut last_beat: Option<Instant> = None;
        while !stop.is_cancelled() {
            if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
                let (q, h) = (cluster.queue.clone(), cluster.host.clone());
                retry(&stop, "recording this host's heartbeat", move || {
                    q.heartbeat(&h)
                })
                .await
                .ok();
                last_beat = Some(Instant::now());
            }
            let q = cluster.queue.clone();
            let pools = retry(&stop, "looking for waiting datum sets", move || {
                q.pools_waiting()
            })
            .await
            .unwrap_or_default();
            for key in pools {
                if lock(&active).insert(key.clone()) {
                    tokio::spawn(self.clone().serve_pool(key, active.clone(), stop.clone()));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = stop.cancelled() => {}
            }
        }
        Ok(())
    }

    /// Runs pool `key`'s waiting sets on its warm workers here until none waited for
    /// [`IDLE`]; then leaves `active`.
    async fn serve_pool(
        self,
        key: String,
        active: Arc<Mutex<HashSet<String>>>,
        stop: CancellationToken,
    ) {
        if let Err(e) = self.claim_with_pool(&key, &stop).await {
            tracing::warn!(pool = %key, error = %ErrorChain(&e), "running shared datum sets failed");
            tokio::time::sleep(IDLE).await;
        }
        lock(&active).remove(&key);
    }

    /// The claiming part of [`Engine::serve_pool`].
    async fn claim_with_pool(&self, key: &str, stop: &CancellationToken) -> Result<()> {
        let Some((pipeline, version)) = parse_pool_key(key) else {
            return Err(PpsError::Usage(format!(
                "malformed pool key {key:?} in the work queue"
            )));
        };
        let (s, p) = (self.clone(), pipeline.to_string());
        let pinfo = tokio::task::spawn_blocking(move || s.pipeline_version(&p, version))
            .await
            .map_err(task_failed("read pipeline version"))??;
        let pool = self.take_pool(&pinfo).await?;
        let jobs: Jobs = Arc::default();
        let handles: Vec<_> = pool
            .into_iter()
            .map(|w| {
                tokio::spawn(self.clone().claim_loop(
                    w,
                    key.to_string(),
                    jobs.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let mut pool = Vec::with_capacity(handles.len());
        for h in handles {
            if let Ok(w) = h.await {
                pool.push(w);
            }
        }
        self.return_pool(&pinfo, pool).await;
        Ok(())
    }

    /// One worker claiming and running sets of pool `key` until none waited for [`IDLE`].
    async fn claim_loop(
        self,
        mut worker: Box<dyn Worker>,
        key: String,
        jobs: Jobs,
        stop: CancellationToken,
    ) -> Box<dyn Worker> {
        let Some(cluster) = self.inner.cluster.clone() else {
            return worker;
        };
        let mut idle_since = Instant::now();
        while !stop.is_cancelled() {
            let (q, k, h, lease) = (
                cluster.queue.clone(),
                key.clone(),
                cluster.host.clone(),
                cluster.lease,
            );
            match tokio::task::spawn_blocking(move || q.claim(&k, &h, lease)).await {
                Ok(Ok(Some(claimed))) => {
                    self.run_claimed(&cluster, &mut *worker, &jobs, claimed, &stop)
                        .await;
                    idle_since = Instant::now();
                    continue;
                }
                Ok(Ok(None)) if idle_since.elapsed() >= IDLE => break,
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %ErrorChain(&e), "claiming a datum set failed; trying again");
                    idle_since = Instant::now();
                }
                Err(_) => break,
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = stop.cancelled() => {}
            }
        }
        worker
    }

    /// Runs one claimed set on `worker` with its lease renewed meanwhile, and completes it
    /// (a set this host cannot run completes with the reason, which fails the job).
    async fn run_claimed(
        &self,
        cluster: &Cluster,
        worker: &mut dyn Worker,
        jobs: &Jobs,
        claimed: Claimed,
        stop: &CancellationToken,
    ) {
        let cancel = CancellationToken::new();
        let renewing = tokio::spawn(keep_claim(
            cluster.clone(),
            claimed.claim.clone(),
            cancel.clone(),
            stop.clone(),
        ));
        let result = match self.prepare_set(jobs, &claimed.payload, &cancel).await {
            Ok((ctx, set)) => {
                let mut state = ScratchState::default();
                let dones = ctx.run_set(worker, set, &mut state).await;
                let _ = std::fs::remove_dir_all(ctx.scratch.join(format!("w{}", worker.index())));
                dones.map(|d| SetResult {
                    datums: d
                        .into_iter()
                        .map(|d| {
                            let mut w = WireDone::of(d);
                            w.ran_on(&cluster.host);
                            w
                        })
                        .collect(),
                    error: None,
                })
            }
            Err(e) => Some(SetResult {
                datums: Vec::new(),
                error: Some(format!("host {}: {e}", cluster.host)),
            }),
        };
        renewing.abort();
        let Some(result) = result else { return };
        let bytes = match serde_json::to_vec(&result) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "encoding a datum set's result failed");
                return;
            }
        };
        let (q, claim) = (cluster.queue.clone(), claimed.claim.clone());
        match retry(&cancel, "completing a datum set", move || {
            q.complete(&claim, &bytes)
        })
        .await
        {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                task = claimed.claim.task,
                "a datum set's lease was lost: its result is discarded"
            ),
            Err(e) => tracing::warn!(error = %ErrorChain(&e), "completing a datum set failed"),
        }
    }

    /// The context and datums of a claimed set: its job's parts (read once per job), the
    /// datums rebuilt against the job's plan.
    async fn prepare_set(
        &self,
        jobs: &Jobs,
        payload: &[u8],
        cancel: &CancellationToken,
    ) -> std::result::Result<(DatumCtx, Vec<super::super::messages::Todo>), String> {
        let task: SetTask = serde_json::from_slice(payload)
            .map_err(|e| format!("a datum set does not decode: {e}"))?;
        let cached = lock(jobs).get(&task.job).cloned();
        let parts = match cached {
            Some(p) => p,
            None => {
                let s = self.clone();
                let (p, v, j) = (task.pipeline.clone(), task.version, task.job.clone());
                let parts = tokio::task::spawn_blocking(move || s.job_parts(&p, v, &j))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| ErrorChain(&e).to_string())?;
                let parts = Arc::new(parts);
                lock(jobs).insert(task.job.clone(), parts.clone());
                parts
            }
        };
        let n = task.datums.len();
        let set = task
            .datums
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.into_todo(&parts.plan, i + 1 == n))
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok((self.shared_ctx(&parts, cancel.clone()), set))
    }

    /// Reads what the sets of job `job` of `pipeline` at `version` need.
    fn job_parts(&self, pipeline: &str, version: u64, job: &str) -> Result<JobParts> {
        let job = self.inspect_job(pipeline, job)?;
        let pinfo = self.pipeline_version(pipeline, version)?;
        let (sources, input_commits) = job_inputs(self, &job);
        let plan = DatumPlan::for_spec(&pinfo.effective, &sources)
            .map_err(|e| PpsError::Usage(format!("planning datums: {}", ErrorChain(&e))))?;
        let secrets = self.pipeline_secrets(&pinfo)?;
        Ok(JobParts {
            job,
            pinfo,
            plan,
            input_commits,
            secrets,
        })
    }

    /// The datum context of a shared set of the job of `parts` on this host.
    fn shared_ctx(&self, parts: &JobParts, cancel: CancellationToken) -> DatumCtx {
        DatumCtx::new(DatumCtxParts {
            store: self.store().clone(),
            job: &parts.job,
            spec: &parts.pinfo.effective,
            plan: &parts.plan,
            input_commits: &parts.input_commits,
            secrets: &parts.secrets,
            gateway_env: &[],
            cancel,
            echo: self.inner.echo_logs,
            scratch_root: &self.inner.scratch,
            live: self.inner.live_logs.clone(),
            running: self.inner.running_datums.clone(),
            access: ScratchAccess::of(self.inner.executors.get(&parts.pinfo.executor)),
        })
    }
}

/// Renews `claim` every third of the lease until aborted; cancels `cancel` once the claim
/// is lost or the host stops.
async fn keep_claim(
    cluster: Cluster,
    claim: Claim,
    cancel: CancellationToken,
    stop: CancellationToken,
) {
    let every = cluster.lease / 3;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => {
                cancel.cancel();
                return;
            }
        }
        let (q, c, lease) = (cluster.queue.clone(), claim.clone(), cluster.lease);
        match tokio::task::spawn_blocking(move || q.renew(&c, lease)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::info!(
                    task = claim.task,
                    "a datum set's claim was lost; stopping its run"
                );
                cancel.cancel();
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %ErrorChain(&e), "renewing a datum set's lease failed; trying again")
            }
            Err(_) => return,
        }
    }
}

/// `m` locked, even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
