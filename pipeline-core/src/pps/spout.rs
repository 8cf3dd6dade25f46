//! Spouts (reference §1.9, §3.6): pipelines with no input whose user code runs for as long
//! as the pipeline runs and writes its own output commits through the engine's host.
//!
//! - **No jobs.** A spout's output branch has no provenance; its commits are made by the user
//!   code (`pipectl put file`, `start commit` / `finish commit`, or the HTTP API), so
//!   [`Engine::discover_jobs`] skips spouts, and downstream pipelines see those commits as
//!   they see any other input commit.
//! - **One worker, one never-ending datum.** The engine starts one worker of the pipeline's
//!   executor and runs `transform.cmd` there with no `/pfs` inputs, an empty `/pfs/out` that
//!   is never read, and the worker environment: `transform.env`, secret env vars,
//!   `PPS_PIPELINE_NAME`, and what the host grants ([`SpoutHost::grant`]: `PIPECTL_SERVER`,
//!   `PIPECTL_TOKEN`, ...). Its output lines go to the pipeline's logs (job `spout`, datum
//!   `spout`), kept in memory while the engine runs it (its first 10,000 lines across runs,
//!   never stored), with its secrets and each run's credential redacted.
//! - **Restarts.** When the user code exits (or the worker cannot be started), the reason is
//!   logged and shown ([`SpoutStatus`]) and it is started again after a backoff
//!   ([`SpoutRestart`]: 1 s doubling to 1 min by default, back to 1 s after a run that lasted
//!   a minute).
//! - **Life cycle.** A spout runs while its pipeline exists and is not stopped, on the engine
//!   of a host that installed a [`SpoutHost`] (`pipectl serve` does). Stopping, deleting or
//!   updating the pipeline cancels the run (update starts the new version); parking or
//!   shutting down the engine stops every spout.
//! - **Who may write.** Only the credential the host granted to a spout may write to its
//!   output branch ([`Engine::check_output_write`], which the host's write paths and the
//!   engine's transactions ask; everyone else gets "cannot start a commit on an output
//!   branch"). An engine without a host refuses to start spouts:
//!   [`SpoutStatus::last_error`] then says they need `pipectl serve`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error_chain::ErrorChain;
use crate::executor::policy::StopGuard;
use crate::executor::redact::Redactor;
use crate::executor::{
    CancellationToken, DatumOutcome, DatumTask, LogSink, LogStream, Program, ProgramKind, Worker,
};
use crate::pfs::BranchRef;

use super::job::{DatumLogs, LiveGuard, secret_env};
use super::records::PipelineInfo;
use super::{Engine, now_ms};

/// The job and datum name a spout's log lines are shown under.
pub const SPOUT_LOG_NAME: &str = "spout";

/// Why an engine without a [`SpoutHost`] does not run spouts.
const NO_HOST: &str = "not started: spouts need a server their user code can reach; run them \
    under `pipectl serve` (this engine has no spout host)";

/// What a host needs to let one spout reach it.
#[derive(Debug, Clone)]
pub struct SpoutAccessRequest {
    /// The pipeline's ID (`name`, or `project/name`).
    pub pipeline: String,
    /// The one branch the spout may write.
    pub output_branch: BranchRef,
    /// The executor that runs the spout (`process`, `docker`, ...).
    pub executor: String,
    /// Where that executor's user code reaches the host
    /// ([`Executor::host_address`](crate::executor::Executor::host_address)).
    pub host: IpAddr,
}

/// A host's grant to one spout run: the environment that tells the user code where and as
/// whom to write, and the credential to revoke when the run ends.
#[derive(Clone)]
pub struct SpoutAccess {
    /// Added to the spout's environment (e.g. `PIPECTL_SERVER`, `PIPECTL_TOKEN`).
    pub env: Vec<(String, String)>,
    /// The credential, as the host knows it ([`SpoutHost::revoke`] takes it back); redacted
    /// from the spout's logs.
    pub credential: String,
}

impl std::fmt::Debug for SpoutAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoutAccess")
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// How spouts reach the host that runs the engine: installed by a server
/// ([`Engine::set_spout_host`]) that serves the API to user code.
#[async_trait::async_trait]
pub trait SpoutHost: Send + Sync + std::fmt::Debug {
    /// Grants one run of a spout a credential that may write only `request.output_branch`,
    /// reachable at `request.host`; `Err` says why not (shown on the pipeline).
    async fn grant(&self, request: &SpoutAccessRequest) -> Result<SpoutAccess, String>;

    /// Takes a grant back (the run ended). Idempotent.
    fn revoke(&self, access: &SpoutAccess);

    /// Whether a write to `branch` comes from the spout whose grant holds `credential`.
    fn is_granted(&self, credential: &str, branch: &BranchRef) -> bool;
}

/// The restart backoff of spouts whose user code exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoutRestart {
    /// The wait before the first restart.
    pub initial: Duration,
    /// The longest wait (each failed run doubles it up to this).
    pub max: Duration,
    /// A run that lasted this long resets the wait to `initial`.
    pub reset_after: Duration,
}

impl Default for SpoutRestart {
    /// 1 s doubling up to 1 min; reset after a run of 1 min.
    fn default() -> Self {
        SpoutRestart {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Where a spout's supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpoutState {
    /// Getting a worker and a grant.
    Starting,
    /// The user code runs.
    Running,
    /// The last run ended; the next starts at [`SpoutStatus::next_try_ms`].
    Restarting,
    /// Not started: the engine answering has no [`SpoutHost`] (spouts run under
    /// `pipectl serve`); [`SpoutStatus::last_error`] says so.
    Waiting,
}

/// How a spout runs now (shown by `inspect pipeline`; kept in memory by the engine that
/// runs it, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpoutStatus {
    /// Starting, running or waiting to restart.
    pub state: SpoutState,
    /// The pipeline version running.
    pub version: u64,
    /// Runs that ended (each was followed by a restart).
    pub restarts: u64,
    /// When the current run started, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// Why the last run ended (exit code, signal, or why it could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last run ended, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_ms: Option<u64>,
    /// When the next run starts, ms since the epoch (while restarting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try_ms: Option<u64>,
}

/// A spout's log across its runs: shown as job and datum [`SPOUT_LOG_NAME`] while the
/// supervisor lives, renewed per run (each run redacts its own credential), lines kept.
struct SpoutLog {
    logs: Arc<DatumLogs>,
    live: Option<LiveGuard>,
}

impl SpoutLog {
    /// An empty log of spout `id`, shown at once.
    fn new(engine: &Engine, id: &str) -> Self {
        let logs = Arc::new(DatumLogs::new(
            Arc::new(Redactor::default()),
            engine.inner.echo_logs,
        ));
        let live =
            engine
                .inner
                .live_logs
                .register(id, SPOUT_LOG_NAME, SPOUT_LOG_NAME, logs.clone());
        SpoutLog {
            logs,
            live: Some(live),
        }
    }

    /// Continues the log with lines redacted by `redact` from now on.
    fn renew(&mut self, engine: &Engine, id: &str, redact: Redactor) {
        let next = Arc::new(DatumLogs::continuing(
            Arc::new(redact),
            engine.inner.echo_logs,
            &self.logs,
        ));
        // The old registration goes first: dropping it removes the key.
        self.live = None;
        self.live = Some(engine.inner.live_logs.register(
            id,
            SPOUT_LOG_NAME,
            SPOUT_LOG_NAME,
            next.clone(),
        ));
        self.logs = next;
    }
}

/// One supervised spout: its version, cancellation and status.
struct Supervised {
    version: u64,
    cancel: CancellationToken,
    status: Arc<Mutex<SpoutStatus>>,
    done: tokio::task::JoinHandle<()>,
}

/// The spouts an engine runs, by pipeline ID.
#[derive(Default)]
pub(crate) struct Spouts {
    host: Mutex<Option<Arc<dyn SpoutHost>>>,
    running: Mutex<HashMap<String, Supervised>>,
    /// Runs cancelled by [`Engine::reconcile_spouts`] that may still be winding down, by
    /// pipeline ID: [`Engine::stop_spouts`] waits for them too.
    retiring: Mutex<Vec<(String, tokio::task::JoinHandle<()>)>>,
    restart: Mutex<SpoutRestart>,
}

impl Spouts {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Supervised>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels every run (they wind down on their own).
    pub(crate) fn cancel_all(&self) {
        for s in self.running().values() {
            s.cancel.cancel();
        }
    }

    fn retiring(&self) -> std::sync::MutexGuard<'_, Vec<(String, tokio::task::JoinHandle<()>)>> {
        self.retiring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn host(&self) -> Option<Arc<dyn SpoutHost>> {
        self.host.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Whether pipeline version `p` runs as a spout (a spout with a service waits for services).
pub(crate) fn is_spout(p: &PipelineInfo) -> bool {
    p.effective.spout.is_some()
}

impl Engine {
    /// Installs how spouts reach this engine's host (a server does, when it starts); spouts
    /// start at the next [`Engine::run_pending`]. Replaces an earlier host.
    ///
    /// Does not block.
    pub fn set_spout_host(&self, host: Arc<dyn SpoutHost>) {
        *self
            .inner
            .spouts
            .host
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(host);
    }

    /// Sets the restart backoff of spouts (default [`SpoutRestart::default`]).
    ///
    /// Does not block.
    pub fn set_spout_restart(&self, restart: SpoutRestart) {
        *self
            .inner
            .spouts
            .restart
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = restart;
    }

    /// Whether a write to `branch` with `credential` comes from the spout that owns it (the
    /// installed [`SpoutHost`] decides; no host: never).
    pub fn spout_may_write(&self, credential: &str, branch: &BranchRef) -> bool {
        self.inner
            .spouts
            .host()
            .is_some_and(|h| h.is_granted(credential, branch))
    }

    /// The running status of spout `pipeline` (its ID), when this engine runs it.
    ///
    /// Does not block.
    pub fn spout_status(&self, pipeline: &str) -> Option<SpoutStatus> {
        let running = self.inner.spouts.running();
        let s = running.get(pipeline)?;
        Some(s.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// `info` with its [`PipelineInfo::spout_status`] filled in (for a spout this engine runs).
    ///
    /// Does not block.
    pub fn with_spout_status(&self, mut info: PipelineInfo) -> PipelineInfo {
        info.spout_status = self.spout_status(&info.id());
        if info.spout_status.is_none()
            && is_spout(&info)
            && !info.stopped
            && self.inner.spouts.host().is_none()
        {
            info.spout_status = Some(SpoutStatus {
                state: SpoutState::Waiting,
                version: info.version,
                restarts: 0,
                started_ms: None,
                last_error: Some(NO_HOST.into()),
                last_exit_ms: None,
                next_try_ms: None,
            });
        }
        info
    }

    /// Starts the spouts that should run and are not running (new, started, updated: the
    /// old version's run is cancelled first) and cancels those whose pipeline is gone or
    /// stopped. Called by [`Engine::run_pending`] and after pipeline changes.
    ///
    /// Blocking: store reads only; the spouts run on the current tokio runtime.
    pub fn reconcile_spouts(&self) -> super::Result<()> {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Ok(());
        };
        if self.inner.spouts.host().is_none() {
            // Nothing to start them with: `with_spout_status` says so.
            return Ok(());
        }
        let wanted: HashMap<String, PipelineInfo> = if self.is_parked() {
            HashMap::new()
        } else {
            self.list_pipelines()?
                .into_iter()
                .filter(|p| is_spout(p) && !p.stopped)
                .map(|p| (p.id(), p))
                .collect()
        };
        let mut running = self.inner.spouts.running();
        let gone: Vec<String> = running
            .iter()
            .filter(|(id, s)| {
                !wanted
                    .get(*id)
                    .is_some_and(|p| p.version == s.version && !s.done.is_finished())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut retiring = self.inner.spouts.retiring();
        retiring.retain(|(_, done)| !done.is_finished());
        for id in gone {
            if let Some(s) = running.remove(&id) {
                s.cancel.cancel();
                retiring.push((id, s.done));
            }
        }
        drop(retiring);
        for (id, p) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let cancel = CancellationToken::new();
            let status = Arc::new(Mutex::new(SpoutStatus {
                state: SpoutState::Starting,
                version: p.version,
                restarts: 0,
                started_ms: None,
                last_error: None,
                last_exit_ms: None,
                next_try_ms: None,
            }));
            let done = rt.spawn(
                self.clone()
                    .supervise(p.clone(), cancel.clone(), status.clone()),
            );
            let version = p.version;
            running.insert(
                id,
                Supervised {
                    version,
                    cancel,
                    status,
                    done,
                },
            );
        }
        Ok(())
    }

    /// Stops every spout this engine runs (or only `only`, a pipeline ID), and waits until
    /// their workers are stopped, also those of runs cancelled earlier.
    ///
    /// Async: waits for the runs to wind down.
    pub(crate) async fn stop_spouts(&self, only: Option<&str>) {
        let stopped: Vec<Supervised> = {
            let mut running = self.inner.spouts.running();
            let ids: Vec<String> = running
                .keys()
                .filter(|id| only.is_none_or(|o| o == id.as_str()))
                .cloned()
                .collect();
            ids.iter().filter_map(|id| running.remove(id)).collect()
        };
        let retired: Vec<tokio::task::JoinHandle<()>> = {
            let mut retiring = self.inner.spouts.retiring();
            let (mine, others) = std::mem::take(&mut *retiring)
                .into_iter()
                .partition(|(id, _)| only.is_none_or(|o| o == id.as_str()));
            *retiring = others;
            mine.into_iter().map(|(_, done)| done).collect()
        };
        for s in &stopped {
            s.cancel.cancel();
        }
        for s in stopped {
            let _ = s.done.await;
        }
        for done in retired {
            let _ = done.await;
        }
    }

    /// Runs spout `p` until `cancel`: one run after another, with backoff in between.
    async fn supervise(
        self,
        p: PipelineInfo,
        cancel: CancellationToken,
        status: Arc<Mutex<SpoutStatus>>,
    ) {
        let id = p.id();
        let restart = *self
            .inner
            .spouts
            .restart
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut log = SpoutLog::new(&self, &id);
        let mut delay = restart.initial;
        while !cancel.is_cancelled() {
            let began = Instant::now();
            let ended = self.run_spout_once(&p, &cancel, &status, &mut log).await;
            let logs = &log.logs;
            if cancel.is_cancelled() {
                break;
            }
            if began.elapsed() >= restart.reset_after {
                delay = restart.initial;
            }
            let now = now_ms();
            let next = now + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let restarts = {
                let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                s.state = SpoutState::Restarting;
                s.restarts += 1;
                s.started_ms = None;
                s.last_error = Some(ended.clone());
                s.last_exit_ms = Some(now);
                s.next_try_ms = Some(next);
                s.restarts
            };
            let note = format!(
                "spout {id}: {ended}; restart {restarts} in {} ms",
                delay.as_millis()
            );
            tracing::warn!("{note}");
            logs.line(LogStream::Stderr, &note);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(restart.max);
        }
    }

    /// One run of spout `p`: a worker, a grant, the user code until it exits or `cancel`.
    /// Returns why it ended.
    async fn run_spout_once(
        &self,
        p: &PipelineInfo,
        cancel: &CancellationToken,
        status: &Mutex<SpoutStatus>,
        log: &mut SpoutLog,
    ) -> String {
        let Some(host) = self.inner.spouts.host() else {
            return NO_HOST.to_string();
        };
        let Some(executor) = self.inner.executors.get(&p.executor).cloned() else {
            return format!(
                "executor {:?} is not registered (registered: {})",
                p.executor,
                self.executor_names().join(", ")
            );
        };
        let secrets = match self.pipeline_secrets(p) {
            Ok(s) => s,
            Err(e) => return format!("reading its secrets: {}", ErrorChain(&e)),
        };
        let mut pool = super::pool_spec::pool_spec(p, &secrets);
        pool.workers = 1;
        let address = match executor.host_address(&pool).await {
            Ok(a) => a,
            Err(e) => return format!("finding the host address: {}", ErrorChain(&e)),
        };
        let request = SpoutAccessRequest {
            pipeline: p.id(),
            output_branch: p.output_branch.clone(),
            executor: p.executor.clone(),
            host: address,
        };
        let access = match host.grant(&request).await {
            Ok(a) => a,
            Err(e) => return format!("the host refused access: {e}"),
        };
        // This run's lines hide its secrets and its credential.
        let mut hidden: Vec<Vec<u8>> = secrets
            .0
            .values()
            .flat_map(|keys| keys.values().map(|v| v.0.clone()))
            .collect();
        hidden.push(access.credential.clone().into_bytes());
        log.renew(self, &p.id(), Redactor::new(hidden));
        let logs = &log.logs;
        let ended = self
            .run_granted(p, &pool, executor.as_ref(), &access, cancel, status, logs)
            .await;
        host.revoke(&access);
        ended
    }

    /// The part of a run that holds a grant: start the worker, run, stop it.
    #[allow(clippy::too_many_arguments)]
    async fn run_granted(
        &self,
        p: &PipelineInfo,
        pool: &crate::executor::WorkerPoolSpec,
        executor: &dyn crate::executor::Executor,
        access: &SpoutAccess,
        cancel: &CancellationToken,
        status: &Mutex<SpoutStatus>,
        logs: &Arc<DatumLogs>,
    ) -> String {
        let mut workers = match executor.start_workers(pool).await {
            Ok(w) => w,
            Err(e) => return format!("starting its worker: {}", ErrorChain(&e)),
        };
        let Some(worker) = workers.pop() else {
            return "the executor started no worker".into();
        };
        for mut extra in workers {
            let _ = extra.stop().await;
        }
        let mut worker: Box<dyn Worker> = Box::new(StopGuard::new(p.id(), worker));
        // `spout.service`: its port is reached on the host for as long as the run lasts.
        let _port = match p.effective.spout.as_ref().and_then(|s| s.service.as_ref()) {
            Some(svc) => match super::job::open_service_port(svc, worker.address()).await {
                Ok(port) => Some(port),
                Err(reason) => {
                    let _ = worker.stop().await;
                    return reason;
                }
            },
            None => None,
        };
        let scratch = self.scratch_dir().join(format!(
            "spout-{}-v{}",
            p.id().replace('/', "--"),
            p.version
        ));
        let _ = std::fs::remove_dir_all(&scratch);
        if let Err(e) = std::fs::create_dir_all(scratch.join("out")) {
            let _ = worker.stop().await;
            return format!("creating its scratch directory {}: {e}", scratch.display());
        }
        let task = self.spout_task(p, &pool.secrets, access, scratch.clone(), cancel, logs);
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.state = SpoutState::Running;
            s.started_ms = Some(now_ms());
            s.next_try_ms = None;
        }
        let outcome = worker.run(task).await;
        let _ = worker.stop().await;
        let _ = std::fs::remove_dir_all(&scratch);
        match outcome {
            Ok(DatumOutcome::Exited { exit_code }) => format!("exited with code {exit_code}"),
            Ok(DatumOutcome::Signaled { signal }) => format!("killed by signal {signal}"),
            Ok(DatumOutcome::OutOfMemory) => "killed: out of memory".into(),
            Ok(DatumOutcome::Cancelled) => "cancelled".into(),
            Err(e) => format!("the worker failed: {}", ErrorChain(&e)),
        }
    }

    /// The never-ending datum of a spout: no inputs, the worker environment and the grant.
    fn spout_task(
        &self,
        p: &PipelineInfo,
        secrets: &crate::executor::Secrets,
        access: &SpoutAccess,
        scratch: std::path::PathBuf,
        cancel: &CancellationToken,
        logs: &Arc<DatumLogs>,
    ) -> DatumTask {
        let transform = &p.effective.transform;
        let (mut env, _) = secret_env(transform, secrets, &[]);
        env.push(("PPS_PIPELINE_NAME".into(), p.name.clone()));
        env.extend(access.env.iter().cloned());
        DatumTask {
            job_id: SPOUT_LOG_NAME.into(),
            datum_id: SPOUT_LOG_NAME.into(),
            scratch,
            inputs: Vec::new(),
            program: Program::new(ProgramKind::Cmd, transform.cmd.clone(), &transform.stdin),
            env,
            user: transform.user.clone(),
            working_dir: transform.working_dir.clone(),
            cancel: cancel.clone(),
            logs: logs.clone(),
        }
    }
}
