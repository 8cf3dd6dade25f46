//! Running one job: base job, datum plan, skip/run/delete decisions (reference §2.13),
//! datums on warm workers, batched ingestion, output merge checks (§2.14), final state.
//!
//! Everything streams: a planner thread walks the datum plan, looks each datum up in the base
//! job's records and hands it on (to run, through a bounded queue the workers pull from; or,
//! unchanged, as a skipped record to the collector), so a job holds a bounded number of
//! datums in memory however many it has. One collector task receives the planner's and the
//! workers' reports in one ordered stream and commits them in batches. What stays in memory
//! per datum is the output ownership map (16-byte path hash → 32-byte datum ID per output
//! file and parent directory), needed to detect two datums writing one path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::executor::CancellationToken;
use tokio::sync::mpsc;

use crate::datum::{Datum, DatumPlan, JobEnv, Sources, TreeSource};
use crate::executor::output::{OutputEntry, OutputScanner};
use crate::executor::{DatumTask, LogStream, ProgramKind, Worker, WorkerPoolSpec};
use crate::pfs::{CommitRef, CommitTree, EngineReader, OutputBatch, Store};

use super::attempt::{self, AttemptPolicy, DatumLogs};
use super::error::{PpsError, Result};
use super::records::{
    DatumFailure, DatumInfo, DatumInputInfo, DatumReason, DatumState, DatumStats, JobInfo,
    JobState, LogLine, PipelineInfo, datum_key, datum_prefix, enc, job_key, log_key,
};
use super::registry::decode;
use super::{Engine, Pool, now_ms};

/// Datums committed per metadata transaction (at most; a batch is also flushed every
/// [`FLUSH_EVERY`]).
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Skipped datums' records committed per transaction at most (they carry no output files).
const SKIPPED_BATCH: usize = 16384;

/// Trees of a job's input commits, by repo name.
struct JobSources(HashMap<String, Arc<dyn TreeSource>>);

impl Sources for JobSources {
    fn source(&self, leaf: &crate::datum::PfsLeaf) -> Option<Arc<dyn TreeSource>> {
        self.0.get(&leaf.repo).cloned()
    }
}

/// An output file to record: path, size, content hash.
type Put = (String, u64, crate::hash::ContentHash);

/// A datum to run.
struct Todo {
    datum: Datum,
    id: String,
    hash: String,
    reason: DatumReason,
}

/// What a worker reports for one datum.
struct Done {
    info: DatumInfo,
    puts: Vec<(String, u64, crate::hash::ContentHash)>,
    logs: Vec<(u64, LogStream, String)>,
    cancelled: bool,
}

/// Datums planned ahead of the workers (the queue between planner and workers).
const QUEUE: usize = 256;

/// Paths per transaction when deleting the outputs of vanished datums.
const DELETE_CHUNK: usize = 4096;

/// What the planner and the workers report to a job's collector, in one ordered stream.
enum Msg {
    /// Nothing arrived for [`FLUSH_EVERY`]: time to flush what is pending.
    Tick,
    /// A worker finished a datum.
    Done(Done),
    /// An unchanged datum: recorded as skipped, its outputs kept (and claimed).
    Skipped(DatumInfo),
    /// Outputs of the base job's version of a datum that runs again: deleted unless this job
    /// already wrote the path.
    Deletes(Vec<String>),
    /// Datums planned so far; `done` once the plan was walked to its end.
    Planned { total: u64, done: bool },
    /// The plan could not be walked (the job fails).
    PlanFailed(String),
}

/// Walks a job's datum plan on a blocking thread and decides, per datum, against the base
/// job's record of it (reference §2.13): skip (unchanged), or run (new, changed, failed
/// before, new salt, `every_job`) after deleting its old outputs.
struct Planner {
    store: Store,
    pipeline: String,
    job_id: String,
    base_job: Option<String>,
    salt: String,
    every_job: bool,
    base_salt_same: bool,
    /// Datums this job already recorded (before its host died) are passed over.
    resumed: bool,
    started: Instant,
}

/// Datums planned per read view of the records (a long-lived view keeps the store from
/// reusing pages freed meanwhile).
const READER_REFRESH: u64 = 4096;

/// How often the planner reports its running count.
const PLANNED_EVERY: u64 = 1024;

impl Planner {
    fn run(
        self,
        plan: &DatumPlan,
        work: &mpsc::Sender<Todo>,
        report: &mpsc::Sender<Msg>,
        cancel: &CancellationToken,
    ) {
        if let Err(reason) = self.walk(plan, work, report, cancel) {
            let _ = report.blocking_send(Msg::PlanFailed(reason));
        }
    }

    /// `Err` is a reason for the job to fail; a closed channel (the job is ending) is `Ok`.
    fn walk(
        &self,
        plan: &DatumPlan,
        work: &mpsc::Sender<Todo>,
        report: &mpsc::Sender<Msg>,
        cancel: &CancellationToken,
    ) -> std::result::Result<(), String> {
        let mut total = 0u64;
        let reader = |store: &Store| {
            store
                .engine_reader()
                .map_err(|e| format!("reading datum records: {e}"))
        };
        let mut records = reader(&self.store)?;
        for d in plan.datums() {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if total.is_multiple_of(READER_REFRESH) && total > 0 {
                records = reader(&self.store)?;
            }
            let d = d.map_err(|e| format!("planning datums: {e}"))?;
            total += 1;
            if total.is_multiple_of(PLANNED_EVERY)
                && report
                    .blocking_send(Msg::Planned { total, done: false })
                    .is_err()
            {
                return Ok(());
            }
            let id = d.id().to_hex();
            if self.resumed && self.record(&records, &self.job_id, &id)?.is_some() {
                continue;
            }
            let hash = d.hash(&self.salt).to_hex();
            let base = match &self.base_job {
                Some(b) => self.record(&records, b, &id)?,
                None => None,
            };
            let reason = match base {
                Some(b) => {
                    if !self.every_job && b.hash == hash && processed(b.state) {
                        let skipped = DatumInfo {
                            state: DatumState::Skipped,
                            reason: DatumReason::Unchanged {
                                from_job: b.job.clone(),
                            },
                            failure: None,
                            attempts: 0,
                            stats: DatumStats::default(),
                            ..b
                        };
                        if report.blocking_send(Msg::Skipped(skipped)).is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    if processed(b.state)
                        && !b.outputs.is_empty()
                        && report.blocking_send(Msg::Deletes(b.outputs)).is_err()
                    {
                        return Ok(());
                    }
                    if self.every_job {
                        DatumReason::ReprocessEveryJob
                    } else if !reason_of(b.state) {
                        DatumReason::PreviousFailure
                    } else if !self.base_salt_same {
                        DatumReason::SaltChanged
                    } else {
                        DatumReason::Changed
                    }
                }
                None => DatumReason::New,
            };
            let todo = Todo {
                datum: d,
                id,
                hash,
                reason,
            };
            if work.blocking_send(todo).is_err() {
                return Ok(());
            }
        }
        let _ = report.blocking_send(Msg::Planned { total, done: true });
        Ok(())
    }

    /// The record `job` kept of datum `id`.
    fn record(
        &self,
        records: &EngineReader,
        job: &str,
        id: &str,
    ) -> std::result::Result<Option<DatumInfo>, String> {
        let key = datum_key(&self.pipeline, job, id);
        match records.get(&key) {
            Ok(None) => Ok(None),
            Ok(Some(v)) => decode(&key, &v)
                .map(Some)
                .map_err(|e| format!("reading datum records: {e}")),
            Err(e) => Err(format!("reading datum records: {e}")),
        }
    }
}

fn processed(s: DatumState) -> bool {
    matches!(s, DatumState::Success | DatumState::Skipped)
}

/// Output ownership, to detect two datums writing one path or a file/directory clash. Keys
/// are 128-bit hashes of paths, values binary datum IDs (hex IDs are 64 characters).
#[derive(Default)]
struct Owners {
    files: HashMap<u128, DatumId>,
    dirs: HashMap<u128, DatumId>,
}

/// A datum ID in binary (IDs are BLAKE2b-256 hex; anything else is kept by its hash).
#[derive(Clone, Copy, PartialEq, Eq)]
struct DatumId([u8; 32]);

impl DatumId {
    fn of(hex_id: &str) -> DatumId {
        let mut b = [0u8; 32];
        if hex::decode_to_slice(hex_id, &mut b).is_err() {
            b = *blake3::hash(hex_id.as_bytes()).as_bytes();
        }
        DatumId(b)
    }
}

impl std::fmt::Display for DatumId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

fn path_key(path: &str) -> u128 {
    let h = blake3::hash(path.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.as_bytes()[..16]);
    u128::from_le_bytes(k)
}

impl Owners {
    /// Records `path` for `datum`; returns a conflict message naming both datums.
    fn claim(&mut self, path: &str, datum: &str) -> Option<String> {
        let me = DatumId::of(datum);
        let key = path_key(path);
        if let Some(other) = self.files.get(&key)
            && *other != me
        {
            return Some(format!(
                "duplicate path output by different datums ({path} from {other} and {path} from {datum})"
            ));
        }
        if let Some(other) = self.dirs.get(&key)
            && *other != me
        {
            return Some(format!(
                "file / directory path collision ({path}): a file from datum {datum}, a directory from datum {other}"
            ));
        }
        let mut dir = path;
        while let Some(i) = dir.rfind('/') {
            dir = &dir[..i];
            if dir.is_empty() {
                break;
            }
            let dkey = path_key(dir);
            if let Some(other) = self.files.get(&dkey)
                && *other != me
            {
                return Some(format!(
                    "file / directory path collision ({dir}): a file from datum {other}, a directory from datum {datum}"
                ));
            }
            self.dirs.entry(dkey).or_insert(me);
        }
        self.files.insert(key, me);
        None
    }

    /// Whether some datum of this job wrote `path`.
    fn owns(&self, path: &str) -> bool {
        self.files.contains_key(&path_key(path))
    }
}

fn reason_of(state: DatumState) -> bool {
    processed(state)
}

impl Engine {
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

    async fn take_pool(&self, p: &PipelineInfo) -> Result<Pool> {
        let mut pools = self.inner.pools.lock().await;
        if let Some(pool) = pools.remove(&(p.name.clone(), p.version)) {
            return Ok(pool);
        }
        let old: Vec<_> = pools
            .keys()
            .filter(|(n, _)| *n == p.name)
            .cloned()
            .collect();
        for k in old {
            if let Some(mut pool) = pools.remove(&k) {
                for w in pool.iter_mut() {
                    let _ = w.stop().await;
                }
            }
        }
        let executor =
            self.inner
                .executors
                .get(&p.executor)
                .ok_or_else(|| PpsError::UnknownExecutor {
                    pipeline: p.name.clone(),
                    executor: p.executor.clone(),
                    registered: self.executor_names().join(", "),
                })?;
        let spec = p.effective();
        let workers = spec
            .parallelism_spec
            .as_ref()
            .map_or(1, |s| s.constant.max(1) as usize);
        let pool_spec = WorkerPoolSpec {
            project: p.project.clone(),
            pipeline: p.name.clone(),
            version: p.version,
            workers,
            spec: Arc::new(spec),
            secrets: self.inner.secrets.clone(),
        };
        executor
            .start_workers(&pool_spec)
            .await
            .map_err(|source| PpsError::Executor {
                pipeline: p.name.clone(),
                source,
            })
    }

    async fn return_pool(&self, p: &PipelineInfo, pool: Pool) {
        self.inner
            .pools
            .lock()
            .await
            .insert((p.name.clone(), p.version), pool);
    }

    /// Runs one job whose inputs are finished, to a terminal state.
    pub(crate) async fn run_job(&self, mut job: JobInfo) -> Result<JobInfo> {
        let store = self.store().clone();
        let pinfo = self.pipeline_version(&job.pipeline, job.version)?;
        let spec = pinfo.effective();
        if job.state == JobState::JobRunning {
            job.restarts += 1;
        } else {
            job.state = JobState::JobRunning;
            job.started_ms = Some(now_ms());
        }
        store.engine_write(vec![(job_key(&job.pipeline, &job.id), Some(enc(&job)))])?;
        let t_plan = Instant::now();

        // ---- plan
        let base = self.find_base(&job)?;
        job.base_job = base.as_ref().map(|b| b.id.clone());
        let mut trees: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
        let mut input_commits: HashMap<String, CommitRef> = HashMap::new();
        for c in &job.inputs {
            trees.insert(
                c.repo.name.clone(),
                Arc::new(CommitTree::new(store.clone(), c.clone())),
            );
            input_commits.insert(c.repo.name.clone(), c.clone());
        }
        let sources = JobSources(trees);
        let plan = match DatumPlan::for_spec(&spec, &sources) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("planning datums: {e}");
                return self.finish_job(job, JobState::JobFailure, &reason);
            }
        };
        let base_salt_same = match &base {
            Some(b) => self
                .pipeline_version(&job.pipeline, b.version)
                .map(|v| v.salt == pinfo.salt)
                .unwrap_or(false),
            None => true,
        };
        // A job that was running when its host died resumes: what it recorded stays, and is
        // not run again.
        let resumed = job.restarts > 0;
        let mut owners = Owners::default();
        let mut resumed_outcome = RunOutcome::default();
        if resumed {
            for kv in store.engine_scan(&datum_prefix(&job.pipeline, &job.id))? {
                let (k, v) = kv?;
                let d: DatumInfo = decode(&k, &v)?;
                if processed(d.state) {
                    for o in &d.outputs {
                        if let Some(c) = owners.claim(o, &d.id) {
                            resumed_outcome.conflict.get_or_insert(c);
                        }
                    }
                }
                if d.state == DatumState::Failed {
                    resumed_outcome.first_failed.get_or_insert(d.id.clone());
                }
            }
        } else {
            job.stats = Default::default();
        }
        let planner = Planner {
            store: store.clone(),
            pipeline: job.pipeline.clone(),
            job_id: job.id.clone(),
            base_job: base.as_ref().map(|b| b.id.clone()),
            salt: pinfo.salt.clone(),
            every_job: spec.reprocess_spec.as_deref() == Some("every_job"),
            base_salt_same,
            resumed,
            started: t_plan,
        };

        // ---- run
        let t_run = Instant::now();
        let cancel = CancellationToken::new();
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((job.pipeline.clone(), job.id.clone()), cancel.clone());
        let result = self
            .run_datums(
                &mut job,
                &pinfo,
                plan,
                planner,
                &input_commits,
                owners,
                &cancel,
            )
            .await;
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(job.pipeline.clone(), job.id.clone()));
        let mut outcome = result?;
        if outcome.first_failed.is_none() {
            outcome.first_failed = resumed_outcome.first_failed;
        }
        if outcome.conflict.is_none() {
            outcome.conflict = resumed_outcome.conflict;
        }

        job.stats.process_ms = millis(t_run);

        // ---- finish
        let t_finish = Instant::now();
        let (state, reason) = if let Some(r) = outcome.killed {
            (JobState::JobKilled, r)
        } else if let Some(r) = outcome.plan_failed {
            (JobState::JobFailure, r)
        } else if let Some(f) = outcome.first_failed {
            (JobState::JobFailure, format!("datum {f} failed"))
        } else if let Some(c) = outcome.conflict {
            (JobState::JobFailure, c)
        } else {
            (JobState::JobSuccess, String::new())
        };
        job.stats.finish_ms = millis(t_finish);
        let s = self.clone();
        tokio::task::spawn_blocking(move || s.finish_job(job, state, &reason))
            .await
            .map_err(|e| PpsError::Usage(format!("finishing task failed: {e}")))?
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_datums(
        &self,
        job: &mut JobInfo,
        pinfo: &PipelineInfo,
        plan: DatumPlan,
        planner: Planner,
        input_commits: &HashMap<String, CommitRef>,
        mut owners: Owners,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let mut outcome = RunOutcome::default();
        let planner_started = planner.started;
        let base_job = planner.base_job.clone();
        let spec = pinfo.effective();
        let transform = spec.transform.clone().unwrap_or_default();
        let policy = AttemptPolicy {
            tries: u32::try_from(spec.datum_tries.unwrap_or(3).max(1)).unwrap_or(3),
            err_cmd: (!transform.err_cmd.is_empty()).then(|| {
                attempt::program(
                    ProgramKind::ErrCmd,
                    &transform.err_cmd,
                    &transform.err_stdin,
                )
            }),
        };
        let program = attempt::program(ProgramKind::Cmd, &transform.cmd, &transform.stdin);
        let mut base_env: Vec<(String, String)> = transform
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut redact = Vec::new();
        for s in &transform.secrets {
            if let (Some(var), Some(key)) = (&s.env_var, &s.key)
                && let Some(v) = self.inner.secrets.get(&s.name, key)
            {
                let v = String::from_utf8_lossy(&v.0).into_owned();
                base_env.push((var.clone(), v.clone()));
                redact.push(v);
            }
        }
        for keys in self.inner.secrets.0.values() {
            for v in keys.values() {
                redact.push(String::from_utf8_lossy(&v.0).into_owned());
            }
        }
        let mut job_env = JobEnv::new(job.id.clone());
        job_env.pipeline_name = Some(job.pipeline.clone());
        for leaf in plan.leaves() {
            if let Some(c) = input_commits.get(&leaf.repo) {
                job_env
                    .input_commits
                    .insert(leaf.name.clone(), c.id.to_string());
            }
        }
        let ctx = Arc::new(DatumCtx {
            store: self.store().clone(),
            pipeline: job.pipeline.clone(),
            job_id: job.id.clone(),
            input_commits: input_commits.clone(),
            job_env,
            base_env,
            program,
            policy,
            transform,
            timeout: attempt::dur(spec.datum_timeout.as_ref()),
            cancel: cancel.clone(),
            redact: Arc::new(redact),
            echo: self.inner.echo_logs,
            scratch: self.inner.scratch.join(&job.id),
        });
        let (tx, mut rx) = mpsc::channel::<Msg>(BATCH * 2);
        let (work_tx, work_rx) = mpsc::channel::<Todo>(QUEUE);
        let planning = {
            let tx = tx.clone();
            let cancel = cancel.clone();
            tokio::task::spawn_blocking(move || planner.run(&plan, &work_tx, &tx, &cancel))
        };
        let work = Arc::new(tokio::sync::Mutex::new(work_rx));
        // Workers start on the first datum to run (a no-op re-run starts none), while the
        // collector below already takes the planner's reports.
        let dispatcher = {
            let engine = self.clone();
            let pinfo = pinfo.clone();
            let work = work.clone();
            let tx = tx.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let first = work.lock().await.recv().await;
                let Some(first) = first else {
                    return Ok(Vec::new());
                };
                let pool = match engine.take_pool(&pinfo).await {
                    Ok(p) => p,
                    Err(e) => {
                        ctx.cancel.cancel();
                        return Err(e);
                    }
                };
                let mut first = Some(first);
                let mut handles = Vec::new();
                for mut worker in pool {
                    let work = work.clone();
                    let tx = tx.clone();
                    let ctx = ctx.clone();
                    let mut next_todo = first.take();
                    handles.push(tokio::spawn(async move {
                        loop {
                            let next = match next_todo.take() {
                                Some(t) => Some(t),
                                None => work.lock().await.recv().await,
                            };
                            let Some(t) = next else { break };
                            if ctx.cancel.is_cancelled() {
                                break;
                            }
                            let done = ctx.run_one(&mut *worker, t).await;
                            if tx.send(Msg::Done(done)).await.is_err() {
                                break;
                            }
                        }
                        let _ = std::fs::remove_dir_all(
                            ctx.scratch.join(format!("w{}", worker.index())),
                        );
                        worker
                    }));
                }
                drop((work, tx));
                let mut pool = Vec::new();
                for h in handles {
                    if let Ok(w) = h.await {
                        pool.push(w);
                    }
                }
                Ok::<_, PpsError>(pool)
            })
        };
        drop(work);
        drop(tx);
        let deadline = spec
            .job_timeout
            .as_ref()
            .and_then(|d| job.started_ms.map(|s| (s, d.as_std())))
            .map(|(started, d)| {
                let elapsed = now_ms().saturating_sub(started);
                tokio::time::Instant::now() + d.saturating_sub(Duration::from_millis(elapsed))
            });
        let mut batch = OutputBatch::default();
        let mut in_batch = 0usize;
        let mut last_flush = Instant::now();
        let mut log_seq = 0u64;
        let mut timed_out = false;
        let mut plan_done = false;
        let mut skipped_in_batch = 0usize;
        loop {
            let next = match deadline {
                Some(dl) if !timed_out => tokio::select! {
                    d = rx.recv() => d,
                    _ = tokio::time::sleep_until(dl) => {
                        timed_out = true;
                        cancel.cancel();
                        continue;
                    }
                },
                _ => tokio::time::timeout(FLUSH_EVERY, rx.recv())
                    .await
                    .unwrap_or(Some(Msg::Tick)),
            };
            let Some(msg) = next else { break };
            match msg {
                Msg::Tick => {}
                Msg::Done(done) => {
                    if !done.cancelled {
                        self.absorb(
                            job,
                            done,
                            &mut owners,
                            &mut outcome,
                            &mut batch,
                            &mut log_seq,
                        );
                        in_batch += 1;
                    }
                }
                Msg::Skipped(info) => {
                    for o in &info.outputs {
                        owners.claim(o, &info.id);
                    }
                    job.stats.datums_skipped += 1;
                    batch.records.push((
                        datum_key(&job.pipeline, &job.id, &info.id),
                        Some(enc(&info)),
                    ));
                    skipped_in_batch += 1;
                }
                Msg::Deletes(paths) => {
                    // A path this job already wrote stays (deletes come first in a batch,
                    // but an earlier batch may hold the new file).
                    batch
                        .deletes
                        .extend(paths.into_iter().filter(|p| !owners.owns(p)));
                }
                Msg::Planned { total, done } => {
                    // While a resumed job re-walks its plan, the count from before stays.
                    job.stats.datums_total = if done {
                        total
                    } else {
                        job.stats.datums_total.max(total)
                    };
                    if done {
                        plan_done = true;
                        job.planned = true;
                        job.stats.plan_ms = millis(planner_started);
                    }
                }
                Msg::PlanFailed(reason) => {
                    outcome.plan_failed.get_or_insert(reason);
                    cancel.cancel();
                }
            }
            let pending = in_batch + skipped_in_batch > 0;
            if in_batch >= BATCH
                || skipped_in_batch >= SKIPPED_BATCH
                || (pending && last_flush.elapsed() >= FLUSH_EVERY)
            {
                self.flush(job, &mut batch).await?;
                in_batch = 0;
                skipped_in_batch = 0;
                last_flush = Instant::now();
            }
        }
        let _ = planning.await;
        if in_batch > 0 || !batch.is_empty() {
            self.flush(job, &mut batch).await?;
        }
        if plan_done && !cancel.is_cancelled() {
            self.delete_vanished(job, base_job.as_deref(), owners)
                .await?;
        }
        let pool = dispatcher
            .await
            .map_err(|e| PpsError::Usage(format!("worker task failed: {e}")))??;
        let _ = std::fs::remove_dir_all(&ctx.scratch);
        if !pool.is_empty() {
            self.return_pool(pinfo, pool).await;
        }
        if cancel.is_cancelled() {
            let stored = self
                .store()
                .engine_get(format!("K/{}/{}", job.pipeline, job.id).as_bytes())?;
            outcome.killed = Some(match stored {
                Some(r) => {
                    self.store().engine_write(vec![(
                        format!("K/{}/{}", job.pipeline, job.id).into_bytes(),
                        None,
                    )])?;
                    String::from_utf8_lossy(&r).into_owned()
                }
                None if timed_out => "job timed out (job_timeout)".to_string(),
                None => "job stopped".to_string(),
            });
        }
        Ok(outcome)
    }

    fn absorb(
        &self,
        job: &mut JobInfo,
        done: Done,
        owners: &mut Owners,
        outcome: &mut RunOutcome,
        batch: &mut OutputBatch,
        log_seq: &mut u64,
    ) {
        let mut info = done.info;
        let stats = &mut job.stats;
        stats.bytes_in += info.stats.bytes_in;
        match info.state {
            DatumState::Success => {
                stats.datums_processed += 1;
                stats.bytes_out += info.stats.bytes_out;
                let mut conflict = None;
                for (p, _, _) in &done.puts {
                    if let Some(c) = owners.claim(p, &info.id) {
                        conflict.get_or_insert(c);
                    }
                }
                if let Some(c) = conflict {
                    outcome.conflict.get_or_insert(c);
                } else {
                    batch.puts.extend(done.puts);
                }
            }
            DatumState::Recovered => stats.datums_recovered += 1,
            DatumState::Failed => {
                stats.datums_failed += 1;
                outcome.first_failed.get_or_insert(info.id.clone());
            }
            DatumState::Skipped => stats.datums_skipped += 1,
        }
        for (ts, stream, line) in done.logs {
            *log_seq += 1;
            let l = LogLine {
                ts_ms: ts,
                pipeline: job.pipeline.clone(),
                job: job.id.clone(),
                datum: info.id.clone(),
                stream: match stream {
                    LogStream::Stdout => "stdout".into(),
                    LogStream::Stderr => "stderr".into(),
                },
                message: line,
            };
            batch.records.push((
                log_key(&job.pipeline, &job.id, &info.id, *log_seq),
                Some(enc(&l)),
            ));
        }
        info.job = job.id.clone();
        batch.records.push((
            datum_key(&job.pipeline, &job.id, &info.id),
            Some(enc(&info)),
        ));
    }

    /// Deletes the outputs of datums the base job processed that are no longer in the plan
    /// (reference §2.13), except paths this job wrote. Both record lists are walked in datum
    /// ID order side by side; deletions are committed in chunks.
    async fn delete_vanished(
        &self,
        job: &JobInfo,
        base: Option<&str>,
        owners: Owners,
    ) -> Result<()> {
        let Some(base) = base else { return Ok(()) };
        let store = self.store().clone();
        let commit = job.output_commit.clone();
        let base_prefix = datum_prefix(&job.pipeline, base);
        let job_prefix = datum_prefix(&job.pipeline, &job.id);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut current = store.engine_scan(&job_prefix)?.peekable();
            let mut deletes = Vec::new();
            for kv in store.engine_scan(&base_prefix)? {
                let (k, v) = kv?;
                let id = k.get(base_prefix.len()..).unwrap_or_default();
                // Advance the current job's records to `id`.
                let mut present = false;
                while let Some(Ok((ck, _))) = current.peek() {
                    let cid = ck.get(job_prefix.len()..).unwrap_or_default();
                    match cid.cmp(id) {
                        std::cmp::Ordering::Less => {
                            current.next();
                        }
                        std::cmp::Ordering::Equal => {
                            present = true;
                            break;
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                }
                if let Some(Err(_)) = current.peek()
                    && let Some(Err(e)) = current.next()
                {
                    return Err(e.into());
                }
                if present {
                    continue;
                }
                let d: DatumInfo = decode(&k, &v)?;
                if processed(d.state) {
                    deletes.extend(d.outputs.into_iter().filter(|p| !owners.owns(p)));
                }
                if deletes.len() >= DELETE_CHUNK {
                    let batch = OutputBatch {
                        deletes: std::mem::take(&mut deletes),
                        ..Default::default()
                    };
                    store.commit_batch(Some(&commit), &batch)?;
                }
            }
            if !deletes.is_empty() {
                let batch = OutputBatch {
                    deletes,
                    ..Default::default()
                };
                store.commit_batch(Some(&commit), &batch)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| PpsError::Usage(format!("deleting vanished outputs failed: {e}")))?
    }

    async fn flush(&self, job: &JobInfo, batch: &mut OutputBatch) -> Result<()> {
        let mut b = std::mem::take(batch);
        b.records
            .push((job_key(&job.pipeline, &job.id), Some(enc(job))));
        let s = self.store().clone();
        let c = job.output_commit.clone();
        tokio::task::spawn_blocking(move || s.commit_batch(Some(&c), &b))
            .await
            .map_err(|e| PpsError::Usage(format!("ingest task failed: {e}")))??;
        Ok(())
    }
}

#[derive(Default)]
struct RunOutcome {
    /// The plan could not be walked to its end (the job fails with this reason).
    plan_failed: Option<String>,
    first_failed: Option<String>,
    conflict: Option<String>,
    killed: Option<String>,
}

fn millis(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Everything a worker task needs to run datums of one job.
struct DatumCtx {
    store: Store,
    pipeline: String,
    job_id: String,
    input_commits: HashMap<String, CommitRef>,
    job_env: JobEnv,
    base_env: Vec<(String, String)>,
    program: crate::executor::Program,
    policy: AttemptPolicy,
    transform: crate::spec::Transform,
    timeout: Option<Duration>,
    cancel: CancellationToken,
    redact: Arc<Vec<String>>,
    echo: bool,
    scratch: PathBuf,
}

impl DatumCtx {
    async fn run_one(&self, worker: &mut dyn Worker, t: Todo) -> Done {
        let scratch = self.scratch.join(format!("w{}", worker.index()));
        let inputs: Vec<DatumInputInfo> = t
            .datum
            .inputs
            .iter()
            .map(|i| DatumInputInfo {
                name: i.leaf.name.clone(),
                repo: i.leaf.repo.clone(),
                path: i.path.clone(),
            })
            .collect();
        let mut info = DatumInfo {
            id: t.id.clone(),
            hash: t.hash.clone(),
            state: DatumState::Failed,
            reason: t.reason.clone(),
            failure: None,
            job: self.job_id.clone(),
            attempts: 0,
            inputs,
            outputs: Vec::new(),
            stats: DatumStats::default(),
        };
        let logs = Arc::new(DatumLogs::new(self.redact.clone(), self.echo));
        let t_dl = Instant::now();
        let prepared = self.materialize(&scratch, &t.datum);
        info.stats.download_us = micros(t_dl);
        match prepared {
            Ok(bytes) => info.stats.bytes_in = bytes,
            Err(e) => {
                info.failure = Some(DatumFailure::Executor {
                    message: attempt::redact(&self.redact, &e.to_string()),
                });
                return Done {
                    info,
                    puts: Vec::new(),
                    logs: logs.take(),
                    cancelled: false,
                };
            }
        }
        let mut env = self.base_env.clone();
        env.extend(t.datum.env(&self.job_env));
        let task = DatumTask {
            job_id: self.job_id.clone(),
            datum_id: t.id.clone(),
            scratch: scratch.clone(),
            inputs: t
                .datum
                .inputs
                .iter()
                .map(|i| i.leaf.name.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            program: self.program.clone(),
            env,
            user: self.transform.user.clone(),
            working_dir: self.transform.working_dir.clone(),
            accept_return_code: self.transform.accept_return_code.clone(),
            timeout: self.timeout,
            cancel: self.cancel.clone(),
            logs: logs.clone(),
        };
        // The output check of a successful attempt also stores the files (one scan).
        let ingested: Mutex<Option<(Vec<Put>, u64)>> = Mutex::new(None);
        let check = |out: &Path| {
            let t_up = Instant::now();
            let puts = self.ingest(out)?;
            *ingested.lock().unwrap_or_else(|e| e.into_inner()) = Some((puts, micros(t_up)));
            Ok(())
        };
        let r = attempt::run_with_policy(worker, &task, &self.policy, &check).await;
        info.attempts = r.attempts;
        info.stats.process_us = r.process_us;
        let cancelled = matches!(r.failure, Some(DatumFailure::Cancelled)) && !r.success;
        let mut puts = Vec::new();
        if r.success {
            let (p, upload_us) = ingested
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            info.stats.upload_us = upload_us;
            info.stats.bytes_out = p.iter().map(|(_, s, _)| *s).sum();
            info.outputs = p.iter().map(|(p, _, _)| p.clone()).collect();
            puts = p;
            info.state = if r.recovered {
                // Pachyderm quirk kept: an earlier recovered attempt stays RECOVERED.
                DatumState::Recovered
            } else {
                DatumState::Success
            };
            info.failure = r.failure.clone().filter(|_| r.recovered);
            if info.state == DatumState::Recovered {
                puts.clear();
                info.outputs.clear();
            }
        } else {
            info.state = if r.recovered {
                DatumState::Recovered
            } else {
                DatumState::Failed
            };
            info.failure = r.failure.map(|f| match f {
                DatumFailure::Executor { message } => DatumFailure::Executor {
                    message: attempt::redact(&self.redact, &message),
                },
                other => other,
            });
        }
        Done {
            info,
            puts,
            logs: logs.take(),
            cancelled,
        }
    }

    /// Lays out `/pfs/<input>/<path>` and an empty `/pfs/out`; returns bytes materialised.
    fn materialize(&self, scratch: &Path, datum: &Datum) -> std::result::Result<u64, String> {
        let keep: Vec<&str> = std::iter::once("out")
            .chain(datum.inputs.iter().map(|i| i.leaf.name.as_str()))
            .collect();
        super::scratch::reset(scratch, &keep, &self.scratch)
            .and_then(|()| std::fs::create_dir_all(scratch.join("out")))
            .map_err(|e| format!("preparing {}: {e}", scratch.display()))?;
        let mut bytes = 0;
        for input in &datum.inputs {
            let leaf = &input.leaf;
            let commit = self
                .input_commits
                .get(&leaf.repo)
                .ok_or_else(|| format!("no input commit for repo {}", leaf.repo))?;
            let base = scratch.join(&leaf.name);
            let rel = input.path.trim_start_matches('/').trim_end_matches('/');
            let is_dir = input.path.ends_with('/') || input.path == "/";
            if is_dir {
                let dest = if rel.is_empty() {
                    base.clone()
                } else {
                    base.join(rel)
                };
                if leaf.empty_files {
                    for f in self
                        .store
                        .list_file_recursive(commit, &input.path)
                        .map_err(|e| e.to_string())?
                    {
                        let f = f.map_err(|e| e.to_string())?;
                        let target = base.join(f.path.trim_start_matches('/'));
                        if let Some(p) = target.parent() {
                            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                        }
                        std::fs::write(&target, b"").map_err(|e| e.to_string())?;
                    }
                } else {
                    let st = self
                        .store
                        .materialize(commit, &input.path, &dest)
                        .map_err(|e| e.to_string())?;
                    bytes += st.bytes;
                }
                std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            } else {
                let target = base.join(rel);
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
                }
                if leaf.empty_files {
                    std::fs::write(&target, b"").map_err(|e| e.to_string())?;
                    continue;
                }
                let linked = self
                    .store
                    .object_local_path(&input.hash)
                    .is_some_and(|src| std::fs::hard_link(src, &target).is_ok());
                if !linked {
                    let parent = target.parent().unwrap_or(scratch);
                    self.store
                        .materialize(commit, &input.path, parent)
                        .map_err(|e| e.to_string())?;
                }
                bytes += input.size;
            }
        }
        Ok(bytes)
    }

    /// Stores every file under `out` (symlinks inside `out` are stored as the file they
    /// point to); returns `(path, size, hash)` per file.
    fn ingest(&self, out: &Path) -> std::result::Result<Vec<Put>, String> {
        let mut puts = Vec::new();
        for e in OutputScanner::new(out).map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            let (path, local) = match &e {
                OutputEntry::File { path, .. } => (path.clone(), out.join(path)),
                OutputEntry::Symlink { path, target } => {
                    let t = out.join(target);
                    if !t.is_file() {
                        return Err(format!(
                            "output symlink {path:?} does not point to a regular file"
                        ));
                    }
                    (path.clone(), t)
                }
                OutputEntry::Dir { .. } => continue,
            };
            let (size, hash) = self
                .store
                .put_object_deferred(&local)
                .map_err(|e| e.to_string())?;
            puts.push((format!("/{path}"), size, hash));
        }
        let _ = &self.pipeline;
        Ok(puts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::SyntheticTree;

    /// The planner streams: with nobody taking datums it stops [`QUEUE`] datums ahead, and a
    /// million-path input goes through it one datum at a time, the count reported at the end.
    #[test]
    fn planner_streams_a_million_paths_through_a_bounded_queue() {
        const N: usize = 1_000_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let spec = crate::spec::parse_str(
            r#"{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
                "input": {"pfs": {"repo": "big", "glob": "/*"}}}"#,
            "p.json",
        )
        .expect("spec")
        .remove(0)
        .spec;
        let sources: HashMap<String, Arc<dyn TreeSource>> = [(
            "big".to_string(),
            Arc::new(SyntheticTree::flat(N)) as Arc<dyn TreeSource>,
        )]
        .into();
        let plan = DatumPlan::for_spec(&spec.effective(), &sources).expect("plan");
        let planner = Planner {
            store,
            pipeline: "p".into(),
            job_id: "j".into(),
            base_job: None,
            salt: "salt".into(),
            every_job: false,
            base_salt_same: true,
            resumed: false,
            started: Instant::now(),
        };
        let (work_tx, mut work_rx) = mpsc::channel(QUEUE);
        let (report_tx, mut report_rx) = mpsc::channel(4 * N / PLANNED_EVERY as usize);
        let cancel = CancellationToken::new();
        let walker = std::thread::spawn(move || planner.run(&plan, &work_tx, &report_tx, &cancel));

        let deadline = Instant::now() + Duration::from_secs(60);
        while work_rx.len() < QUEUE {
            assert!(Instant::now() < deadline, "the queue never filled");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(work_rx.len(), QUEUE, "the planner ran ahead of the workers");
        assert!(
            report_rx.try_recv().is_err(),
            "the planner reported datums beyond the queue"
        );

        let mut taken = 0usize;
        while let Some(t) = work_rx.blocking_recv() {
            assert_eq!(t.reason, DatumReason::New);
            taken += 1;
        }
        walker.join().expect("planner thread");
        assert_eq!(taken, N);
        let mut planned = None;
        while let Ok(m) = report_rx.try_recv() {
            match m {
                Msg::Planned { total, done: true } => planned = Some(total),
                Msg::Planned { .. } => {}
                _ => panic!("only counts are reported for new datums"),
            }
        }
        assert_eq!(planned, Some(N as u64));
    }
}
