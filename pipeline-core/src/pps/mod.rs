//! The pipeline engine: pipelines, jobs, incremental processing, DAGs, logs.
//!
//! An [`Engine`] sits on a [`Store`] and one or more [`Executor`]s. Creating a pipeline
//! registers it in the store, creates its output repo and branch (with the input branches as
//! provenance), and so — through the store's propagation — an open output commit, which is a
//! **job**. Every later commit on an input branch makes a commit set with an open output
//! commit (a job, same ID) on every downstream pipeline. [`Engine::run_pending`] runs every job
//! that can run, upstream first, until none is left.
//!
//! ```no_run
//! # async fn demo(executor: std::sync::Arc<dyn pipeline_core::executor::Executor>) -> Result<(), Box<dyn std::error::Error>> {
//! use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
//! use pipeline_core::pps::{CreateOptions, Engine};
//!
//! let store = Store::open("/tmp/demo-store")?;
//! let engine = Engine::builder(store.clone()).executor(executor).build()?;
//! let data = RepoRef::new("data")?;
//! store.create_repo(&data, "")?;
//! let c = store.start_commit(&data.branch("master")?, "")?.commit;
//! store.put_file_bytes(&c, "/a.txt", b"hello")?;
//! store.finish_commit(&c, FinishOptions::default())?;
//! let spec = pipeline_core::spec::parse_str(r#"{"pipeline": {"name": "upper"},
//!   "transform": {"cmd": ["sh", "-c", "tr a-z A-Z < $data > /pfs/out/$(basename $data)"]},
//!   "input": {"pfs": {"repo": "data", "glob": "/*"}}}"#, "upper.json")?;
//! engine.create_pipeline(&spec[0].spec, &CreateOptions::default())?;
//! let jobs = engine.run_pending().await?;
//! assert_eq!(jobs[0].stats.datums_processed, 1);
//! # Ok(()) }
//! ```
//!
//! # Semantics (reference §2.13–2.15, §3, §4.5–4.7)
//!
//! - **Incremental**: the base of a job is the job of the nearest error-free ancestor of its
//!   output commit (so the last successful job). A datum whose ID and hash match a datum the
//!   base processed is **skipped**; outputs of datums that vanished or changed are deleted
//!   (exactly the paths recorded for them); `reprocess_spec: every_job` skips nothing; a new
//!   salt (`update --reprocess`) reprocesses everything. A job whose input trees changed at a
//!   few paths since its base visits only the datums holding them and shows the others
//!   through an earlier job's records as skipped ([`JobInfo::datums_from`]; O(change), not
//!   O(datums)).
//! - **Failures**: `datum_tries` total attempts; `err_cmd` after each failed attempt makes the
//!   datum RECOVERED; any FAILED datum fails the job (`datum <id> failed`); failed and
//!   recovered datums' outputs are not committed. Two datums writing one path, or a file/
//!   directory clash, fail the job naming both datums and the path. A failed job's output
//!   commit is finished **with an error**: its tree (the successful datums' outputs) stays
//!   browsable at `<pipeline>@<job>` but is never inherited.
//! - **Rerun** ([`Engine::rerun_pipeline`]): the current spec registered again as an update.
//!   [`RerunMode::All`] takes a new salt, so every datum runs. [`RerunMode::FailedOnly`] makes
//!   the new job (and only that job: it carries [`JobInfo::salvage_from`]) reuse the
//!   pipeline's **last** job, even a failed or killed one: every datum that succeeded there
//!   with the same datum hash is SKIPPED with reason `unchanged` from that job, and the file
//!   entries of the outputs that job recorded for it (in its errored output commit) are copied
//!   into the new output commit (content-addressed: entries, not bytes). Everything else runs
//!   as usual. Ordinary jobs keep Pachyderm's rule: a failed job is never a base.
//! - **DAG**: a job waits until its input commits are finished; an input commit finished with
//!   an error makes it UNRUNNABLE, and its own output commit errored, so it cascades.
//! - **Beyond Pachyderm**: every datum records a machine-readable [`DatumReason`] and, when it
//!   failed, a [`DatumFailure`]; per-datum logs with timestamps ([`Engine::logs`]); job
//!   [`JobStats`] with bytes and time per phase; secret values are redacted from logs and
//!   datum errors, also when a line is cut ([`crate::executor::redact`]).
//! - **Defaults**: cluster and project defaults ([`Engine::set_defaults`]) are merged under
//!   every spec at create and update (RFC 7386: spec beats project beats cluster), and the
//!   effective spec is stored with the version ([`PipelineInfo::effective`]).
//! - **Egress** ([`egress`]): a job whose datums all succeeded is EGRESSING while its open
//!   output commit is pushed to the spec's `egress` target (a directory, an object store, a
//!   PostgreSQL database); failures are retried with backoff and shown on the job
//!   ([`JobInfo::egress`]).
//! - **Secrets**: Kubernetes `Secret` manifests stored in the store ([`secrets`],
//!   [`Engine::create_secret`]); `create pipeline` checks that the secrets a spec names exist.
//! - **Transactions** ([`Engine::start_transaction`], [`Engine::finish_transaction`]):
//!   queued [`TransactionRequest`]s applied together in one store transaction with one
//!   commit set, so changing several input repos gives each downstream pipeline one job.
//!
//! # Storage
//!
//! Records live in the store's metadata database (engine table) next to the commits: a
//! pipeline per name and per version, a job per commit set, a datum record per datum per job
//! (with the output paths it wrote, which is what lets later jobs delete exactly those), and
//! log lines; their keys are laid out in one module (`keys`). Each datum record has an entry
//! in its job's order index, written in the same transaction, so [`Engine::datum_page`] reads
//! a page of a million-datum job with one short range scan. Datum results are committed in
//! **batches**: one transaction (one fsync) holds the output file entries, datum records and
//! log lines of many datums.
//!
//! Creating, updating and deleting a pipeline are **one transaction** each
//! ([`crate::pfs::Store::transact`]): the pipeline record, its output repo and branch, its cron
//! repos, its input branches and the first job's commits appear (or disappear) together, so a
//! crash never leaves an output repo without its pipeline or a pipeline without its repo. What
//! happens outside that transaction is idempotent (killing an updated or deleted pipeline's
//! jobs, stopping its workers), and running the same create or delete again after a crash
//! succeeds (`tests/pps_pipeline_kill.rs` SIGKILLs both at random moments).
//!
//! # Durability (decision: **resume**)
//!
//! If the host dies mid-job, the next [`Engine::run_pending`] **resumes** the job: datums whose
//! records were committed are not run again (their outputs are in the open output commit,
//! committed in the same transaction as the record); the others run. A job whose output commit
//! was already finished takes its final state from that commit. Nothing is finished before all
//! datums are recorded, so partial output is never committed as success, and finished commits
//! are never touched.

mod commit_history;
mod cron;
mod datum_index;
mod datum_pages;
mod defaults;
pub mod egress;
pub mod error;
mod events;
mod executors_in_use;
mod images;
mod inherited;
mod job;
pub mod job_gateway;
mod job_ids;
mod keys;
mod last_job;
mod output_guard;
mod pipeline_id;
mod pool_spec;
mod preview;
mod projects;
mod records;
mod registry;
pub mod reproduce;
mod scheduler;
mod scratch;
pub mod secrets;
mod spout;
mod transaction_finish;
mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::executor::CancellationToken;

pub use commit_history::RemovedCommitSet;
pub use datum_pages::{DatumPage, DatumQuery, MAX_DATUM_PAGE, datum_time_us, state_rank};
pub use defaults::{DefaultsChange, DefaultsRecord, DefaultsScope, SetDefaultsOptions};
pub use error::{PpsError, Result};
pub use events::{DatumEvent, Event, Events};
pub use executors_in_use::executors_in_use;
pub use images::ImagePins;
pub use job::{DEFAULT_LEASE, service_address};
pub use job_ids::MIN_JOB_PREFIX;
pub use last_job::{LastJobs, MAX_JOBLESS_COMMITS, MAX_UNFINISHED_JOBS, RecentJobs};
pub use pipeline_id::{canonical_pipeline_id, pipeline_id, pipeline_id_of_repo, split_pipeline_id};
pub use pool_spec::{dry_run_pool_spec, pool_spec, worker_count};
pub use preview::{MissingInput, PreviewError, preview_datums};
pub use records::{
    DatumAttempt, DatumFailure, DatumInfo, DatumInputInfo, DatumReason, DatumState, DatumStats,
    EgressStatus, JobInfo, JobState, JobStats, LogLine, PipelineInfo, RunEnd,
};
pub use registry::{CreateOptions, EngineCheck, RerunMode};
pub use spout::{
    SPOUT_LOG_NAME, SpoutAccess, SpoutAccessRequest, SpoutHost, SpoutRestart, SpoutState,
    SpoutStatus,
};
pub use transactions::{
    TransactionFinished, TransactionInfo, TransactionRequest, TransactionResponse,
};

use crate::executor::{Executor, Secrets, Worker};
use crate::pfs::Store;

/// The pipeline engine over one store. Cheap to clone.
///
/// **Blocking and async.** Each method's doc says which kind it is. Plain `fn`s touch only
/// the store (reads, or a metadata transaction with its fsync: milliseconds) and never wait
/// for user code; from async code on a runtime that must not block, call them through
/// `tokio::task::spawn_blocking`. `async fn`s are the ones that run or wait for user code and
/// workers ([`Engine::run_pending`], [`Engine::serve`], [`Engine::wait_job`],
/// [`Engine::delete_pipeline`], [`Engine::shutdown`]).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field("executors", &self.inner.executors.keys())
            .finish_non_exhaustive()
    }
}

type Pool = Vec<Box<dyn Worker>>;

struct Inner {
    store: Store,
    executors: BTreeMap<String, Arc<dyn Executor>>,
    default_executor: String,
    scratch: PathBuf,
    secrets: Secrets,
    echo_logs: bool,
    /// Warm workers per (pipeline, version), reused across jobs.
    pools: tokio::sync::Mutex<HashMap<(String, u64), Pool>>,
    /// Cancellation tokens of running jobs.
    running: Mutex<HashMap<(String, String), CancellationToken>>,
    /// The log lines of the datums running now ([`Engine::logs`] shows them).
    live_logs: job::LiveLogs,
    /// The datums running now, for `restart datum`.
    running_datums: job::RunningDatums,
    /// The service jobs running in this engine (`job::Services`).
    services: job::Services,
    /// Whether this engine starts service jobs ([`EngineBuilder::run_services`]).
    run_services: bool,
    /// Whether a job whose inputs did not change skips its datum walk
    /// ([`EngineBuilder::skip_unchanged_jobs`]).
    skip_unchanged: bool,
    /// Serialises [`Engine::run_pending`].
    scheduler: tokio::sync::Mutex<()>,
    /// Serialises [`Engine::discover_jobs`] (it reads then writes job records; two callers,
    /// e.g. a server's runner and a `list job`, must not both create the same job).
    discovering: Mutex<()>,
    /// Serialises [`Engine::finish_job`]: the runner finishing a job and a stop, update or
    /// delete killing it at the same moment must not both finish its output commit.
    finishing: Mutex<()>,
    /// Newest tick per cron repo, by the repo's head commit when it was read (listing a cron
    /// repo that keeps every tick costs one entry per tick).
    cron_latest: Mutex<HashMap<String, (String, u64)>>,
    /// The engine's change feed ([`Engine::subscribe`]).
    events: tokio::sync::broadcast::Sender<Event>,
    /// Set by [`Engine::park`]: no job starts any more, running ones are left resumable.
    parked: std::sync::atomic::AtomicBool,
    /// `object_store` configuration keys for object-storage egress, over the environment.
    egress_options: Vec<(String, String)>,
    /// The backoff of failing egress attempts.
    egress_retry: egress::EgressRetry,
    /// Starts the S3 gateways of jobs with S3 inputs or `s3_out`, when the host has one.
    job_gateways: Option<Arc<dyn job_gateway::JobGateways>>,
    /// The spouts this engine runs, and how they reach its host.
    spouts: spout::Spouts,
    /// Set when this engine is one of several hosts sharing its store (`job::cluster`).
    cluster: Option<job::Cluster>,
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    store: Store,
    executors: Vec<Arc<dyn Executor>>,
    default_executor: Option<String>,
    scratch: Option<PathBuf>,
    secrets: Secrets,
    echo_logs: bool,
    egress_options: Vec<(String, String)>,
    egress_retry: egress::EgressRetry,
    job_gateways: Option<Arc<dyn job_gateway::JobGateways>>,
    run_services: bool,
    skip_unchanged: bool,
    cluster_host: Option<(String, std::time::Duration)>,
}

impl EngineBuilder {
    /// Registers an executor under its [`Executor::name`]. The first one registered is the
    /// default for new pipelines unless [`EngineBuilder::default_executor`] says otherwise.
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executors.push(executor);
        self
    }

    /// The executor new pipelines use when [`CreateOptions::executor`] is unset.
    pub fn default_executor(mut self, name: &str) -> Self {
        self.default_executor = Some(name.to_string());
        self
    }

    /// Where datum scratch directories go (default: `<store root>/scratch`, or the system
    /// temp dir for a store without a root). On the store's filesystem inputs are hard links.
    ///
    /// Does not block.
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch = Some(dir.into());
        self
    }

    /// Values of secrets supplied by the host application. Pipelines also read secrets
    /// stored with [`Engine::create_secret`]; a name given here wins over the stored secret
    /// of that name (see [`secrets`]).
    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Whether this engine starts service jobs (pipelines with `service`; default true). A
    /// service serves until the pipeline's next job, so it needs an engine that keeps running
    /// ([`Engine::serve`]); a short-lived engine (one command, then exit) turns this off, and
    /// its service jobs wait (STARTING, saying why) for a long-lived engine on the same store.
    pub fn run_services(mut self, on: bool) -> Self {
        self.run_services = on;
        self
    }

    /// Makes this engine host `name` of several sharing its store (a server store, opened
    /// by the leader with [`Store::connect`] and by the others with
    /// [`Store::connect_shared`]): the leader hands datum sets to the store's work queue,
    /// and [`Engine::run_host`] runs them on this host's executors, each claimed with a
    /// lease of `lease` (see [`DEFAULT_LEASE`]). `name` must be unique among the hosts.
    /// [`EngineBuilder::build`] refuses it for a store directory.
    pub fn cluster_host(mut self, name: impl Into<String>, lease: std::time::Duration) -> Self {
        self.cluster_host = Some((name.into(), lease));
        self
    }

    /// Also print user-code output on the host's stderr as it comes.
    pub fn echo_logs(mut self, on: bool) -> Self {
        self.echo_logs = on;
        self
    }

    /// `object_store` configuration keys (such as `aws_endpoint`, `aws_allow_http`) for
    /// pipelines' object-storage egress (`s3://`, `gs://`, `az://`), applied over the
    /// environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), which alone configures it otherwise.
    pub fn egress_options(mut self, options: Vec<(String, String)>) -> Self {
        self.egress_options = options;
        self
    }

    /// The backoff of failing egress attempts (default: 1 s, doubling up to 5 min).
    pub fn egress_retry(mut self, retry: egress::EgressRetry) -> Self {
        self.egress_retry = retry;
        self
    }

    /// What starts the S3 gateway of each job whose pipeline has `s3: true` inputs or
    /// `s3_out` (see [`job_gateway`]); without it such pipelines are refused at create.
    pub fn job_gateways(mut self, gateways: Arc<dyn job_gateway::JobGateways>) -> Self {
        self.job_gateways = Some(gateways);
        self
    }

    /// Whether a job whose inputs changed at a few paths since its base job visits only the
    /// datums holding them, showing an earlier job's records for the others as skipped
    /// (default: on; see `pps/job/delta.rs`). Off, every job walks its datums: the same
    /// results, in time proportional to the datums (what benchmarks and tests compare
    /// against).
    pub fn skip_unchanged_jobs(mut self, on: bool) -> Self {
        self.skip_unchanged = on;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Result<Engine> {
        let scratch = match self.scratch {
            Some(s) => s,
            None => match self.store.root() {
                Some(r) => r.join("scratch"),
                None => scratch::temp_scratch(),
            },
        };
        // Leftovers of a host that died mid-datum.
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(error::io(format!(
            "creating scratch dir {}",
            scratch.display()
        )))?;
        let mut executors = BTreeMap::new();
        let mut first = None;
        for e in self.executors {
            first.get_or_insert_with(|| e.name().to_string());
            executors.insert(e.name().to_string(), e);
        }
        let default_executor = self
            .default_executor
            .or(first)
            .unwrap_or_else(|| "process".to_string());
        let cluster = match self.cluster_host {
            None => None,
            Some((host, lease)) => match self.store.work_queue() {
                Some(queue) => Some(job::Cluster { host, queue, lease }),
                None => {
                    return Err(PpsError::Usage(format!(
                        "engine host {host}: the store is owned by one process (a store \
                         directory); several engine hosts share a server store \
                         (postgres://...)"
                    )));
                }
            },
        };
        let events = events::channel();
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store,
                executors,
                default_executor,
                scratch,
                secrets: self.secrets,
                echo_logs: self.echo_logs,
                pools: tokio::sync::Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
                live_logs: job::LiveLogs::new(events.clone()),
                running_datums: job::RunningDatums::default(),
                services: job::Services::default(),
                run_services: self.run_services,
                skip_unchanged: self.skip_unchanged,
                scheduler: tokio::sync::Mutex::new(()),
                discovering: Mutex::new(()),
                finishing: Mutex::new(()),
                cron_latest: Mutex::new(HashMap::new()),
                events,
                parked: std::sync::atomic::AtomicBool::new(false),
                egress_options: self.egress_options,
                egress_retry: self.egress_retry,
                job_gateways: self.job_gateways,
                spouts: spout::Spouts::default(),
                cluster,
            }),
        })
    }
}

impl Engine {
    /// Starts building an engine over `store`.
    pub fn builder(store: Store) -> EngineBuilder {
        EngineBuilder {
            store,
            executors: Vec::new(),
            default_executor: None,
            scratch: None,
            secrets: Secrets::default(),
            echo_logs: false,
            egress_options: Vec::new(),
            egress_retry: egress::EgressRetry::default(),
            job_gateways: None,
            run_services: true,
            skip_unchanged: true,
            cluster_host: None,
        }
    }

    /// The store.
    ///
    /// Does not block.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The scratch directory root.
    pub fn scratch_dir(&self) -> &Path {
        &self.inner.scratch
    }

    /// Names of the registered executors.
    ///
    /// Does not block.
    pub fn executor_names(&self) -> Vec<String> {
        self.inner.executors.keys().cloned().collect()
    }

    /// Parks the engine for a clean stop: no job starts any more, and running jobs have their
    /// datums cancelled and stay RUNNING (nothing of theirs is finished or marked killed), so
    /// the next engine on the store resumes them exactly as after a host crash: recorded
    /// datums are kept, the others run again. [`Engine::run_pending`] returns once the running
    /// job has wound down; call [`Engine::shutdown`] after it. A park cannot be undone.
    ///
    /// Does not block: the running job notices the cancellation.
    pub fn park(&self) {
        self.inner
            .parked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        for token in running.values() {
            token.cancel();
        }
        drop(running);
        self.inner.spouts.cancel_all();
    }

    /// Whether [`Engine::park`] was called.
    pub fn is_parked(&self) -> bool {
        self.inner.parked.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops every warm worker (call before dropping the engine for a clean shutdown; workers
    /// are also killed when dropped).
    ///
    /// Async: waits until every warm worker is stopped.
    pub async fn shutdown(&self) {
        self.stop_spouts(None).await;
        let mut pools = self.inner.pools.lock().await;
        for (_, mut pool) in pools.drain() {
            for w in pool.iter_mut() {
                let _ = w.stop().await;
            }
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the epoch, strictly increasing within the process (orders jobs).
pub(crate) fn mono_ms() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = now_ms();
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds, for log lines.
///
/// ```
/// assert_eq!(pipeline_core::pps::format_ms(1_714_557_600_123), "2024-05-01T10:00:00.123Z");
/// ```
pub fn format_ms(ms: u64) -> String {
    let s = crate::civil_time::rfc3339(ms / 1000);
    format!("{}.{:03}Z", s.trim_end_matches('Z'), ms % 1000)
}
