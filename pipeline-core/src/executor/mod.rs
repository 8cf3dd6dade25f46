//! The seam between the engine and whatever runs user code.
//!
//! An [`Executor`] starts **warm workers** for one pipeline version ([`WorkerPoolSpec`]); the
//! engine then hands each [`Worker`] one [`DatumTask`] at a time and finally stops it. Local
//! processes, Docker containers and Kubernetes pods all implement the same two traits, and one
//! conformance suite (`pipeline_core::testkit`, feature `testkit`) checks every backend.
//! [`output`] holds the check of `/pfs/out` that every backend and the engine share.
//!
//! # Contract
//!
//! The contract is written from the engine's side (the caller) and the backend's side (the
//! implementer). Everything here is checked by the conformance suite unless marked otherwise.
//!
//! ## Scratch directory: who owns what
//!
//! - The **engine owns** [`DatumTask::scratch`]: it creates it, fills it, and deletes it after
//!   `run` returns (whatever the outcome). Before the call it holds
//!   `<input name>/<full repo path>` for each input in [`DatumTask::inputs`] and an **empty**
//!   `out/`; the executor must not delete or rename it.
//! - The executor makes it appear to user code as `/pfs` (mount namespace, bind mount, tar copy,
//!   path substitution: backend's choice, documented by the backend). Code written for
//!   Pachyderm, with hard-coded `/pfs/<input>/...` and `/pfs/out/...` paths, must run unchanged.
//! - When [`Worker::run`] returns (any `Ok` outcome), whatever the user code wrote to `/pfs/out`
//!   is in `scratch/out` on the host, **symlinks kept as symlinks** (never followed, never
//!   copied through), empty files and directories included. A backend that copies (tar over
//!   exec, archive API) streams: memory stays bounded whatever the output size.
//! - Backends **do not validate** names or symlinks: the engine does, with
//!   [`output::scan_output`], and fails the datum naming the offending path.
//! - Whatever the backend created for the datum on its side (a copy of the scratch directory in
//!   a container or pod, temporary files) it removes before `run` returns. Only `scratch` may
//!   remain, for the engine.
//!
//! ## Isolation between datums
//!
//! - **Inputs are read-only** to user code where the backend allows it (a backend documents
//!   when it cannot enforce this).
//! - **One datum at a time per worker** (`&mut self`). Nothing of one datum (files under `/pfs`,
//!   processes, environment variables) may be visible to the next one. Files the user code
//!   wrote outside `/pfs` (e.g. `/tmp`) may persist in a warm worker, as in Pachyderm.
//! - The environment is **exactly** [`DatumTask::env`] on top of the backend's base environment
//!   (the image's, or the host's for local processes); nothing from an earlier datum.
//!
//! ## Datum batching
//!
//! - For `transform.datum_batching` one [`Worker::run`] spans a whole datum set: the engine
//!   swaps each datum's inputs into the scratch directory under the running program and
//!   collects its `out` while it runs ([`batch`]). Only a worker that names a scratch
//!   directory its user code sees change live ([`Worker::batch_scratch`]) can run such code;
//!   other backends keep the default `None` and the engine fails those datums saying why.
//!   Named pipes in that directory must be usable by user code (the control channel).
//!
//! ## Process lifetime, drop and cancel
//!
//! - `argv[0]` is executed directly (no shell). A program that cannot be executed is a user-code
//!   failure: `Ok(Exited { exit_code: 127 })` when not found, `126` when not executable.
//! - The user process runs in its own process group. When it exits or is cancelled
//!   ([`DatumTask::cancel`]), the **whole group is killed** (SIGKILL), so background children
//!   never outlive the datum, even on success.
//! - **Dropping** the future returned by [`Worker::run`] kills the process group too; the worker
//!   stays usable for the next datum (or reports [`ExecutorError::WorkerLost`] then).
//! - Cancellation is cooperative from the engine's side (it fires the token) and immediate from
//!   the backend's: `run` returns `Ok(Cancelled)` promptly (within about a second) after the
//!   token fires, even if it fired before the call.
//! - [`Worker::stop`] kills anything still running and releases the worker (container, pod,
//!   namespace); it is idempotent. Dropping a worker without `stop` must not leak processes
//!   (backends kill what they can synchronously, and [`Executor::remove_pipeline`] finds the
//!   rest by label).
//!
//! ## Outcomes vs errors
//!
//! - Anything the user code did (exit code, signal, cancel) is an
//!   `Ok(`[`DatumOutcome`]`)`. An `Err(`[`ExecutorError`]`)` means the infrastructure failed
//!   (worker lost, image missing, daemon unreachable, an invalid `user`); the engine may retry
//!   it elsewhere when [`ExecutorError::is_retryable`] says so.
//! - **Timeouts (`datum_timeout`), `accept_return_code`, retries, `datum_tries`, `err_cmd`
//!   sequencing, concurrency limits** belong to the engine, wrapped around any executor (tower
//!   style, [`policy`]), never to the executor itself: a backend reports the raw
//!   [`DatumOutcome`] (exited with a code, signalled, cancelled). A timeout reaches the
//!   backend as a cancellation of the task's token.
//!
//! ## Logs and secrets
//!
//! - stdout and stderr reach [`DatumTask::logs`] **line by line**, streams kept apart, without
//!   the trailing newline; a final line without newline is delivered too. Every backend splits
//!   with [`lines::LineSplitter`], so a very long line arrives in pieces of at most
//!   [`lines::MAX_LINE`] bytes, no byte dropped (invalid UTF-8 is replaced lossily).
//! - **Secrets** ([`WorkerPoolSpec::secrets`]) never appear in logs, errors, labels or
//!   `Debug` output. A sink that knows secret values says so through
//!   [`LogSink::redactor`]; the [`lines::LineSplitter`] then hides them in the raw byte
//!   stream **before** cutting lines ([`redact`]), so a value split across reads or across
//!   the line limit is hidden whole.

#[cfg(feature = "engine")]
pub mod batch;
mod cancel;
pub mod lines;
pub mod output;
#[cfg(feature = "engine")]
pub mod policy;
pub mod redact;

pub use cancel::{CancellationToken, WaitForCancellation};

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::spec::EffectiveSpec;

/// A backend that can start workers for pipelines.
///
/// Object-safe: the engine holds executors as `Arc<dyn Executor>`.
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// Short backend name, e.g. `"process"`, `"docker"`, `"kubernetes"`.
    fn name(&self) -> &'static str;

    /// Starts `spec.workers` warm workers for one pipeline version.
    ///
    /// Fails with [`ExecutorError::ImageNotFound`], [`ExecutorError::Unavailable`], ... when
    /// the workers cannot be started; a partially started pool is torn down before returning.
    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError>;

    /// Removes everything this backend left for a pipeline (all versions), including leftovers
    /// of a crashed host (found by label). Idempotent. Returns how many objects were removed.
    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError>;

    /// Resolves the image a pipeline version names (`spec.transform.image`) to the immutable
    /// reference its workers will run, checking that it can run them; called when a pipeline
    /// is created or updated, so a missing or unusable image is refused then, naming it,
    /// instead of a job that never starts.
    ///
    /// `Ok(None)` for backends that run no images (local processes, the default). A backend
    /// that pins returns [`ExecutorError::ImageNotFound`] for an image it cannot obtain and
    /// [`ExecutorError::Unsupported`] for one its workers cannot run (e.g. without `sh`).
    async fn pin_image(&self, spec: &EffectiveSpec) -> Result<Option<PinnedImage>, ExecutorError> {
        let _ = spec;
        Ok(None)
    }

    /// The address at which user code on this backend's workers of `spec` reaches a server
    /// the engine starts on its own host for them (a spout's API endpoint, a job's S3
    /// gateway); such a server listens on this address. Called only for specs that
    /// [talk to the host](EffectiveSpec::talks_to_host).
    ///
    /// The default, loopback, is right for backends whose user code shares the host's
    /// network (local processes). A backend that cannot connect its workers to the host
    /// returns [`ExecutorError::Unsupported`] naming why.
    async fn host_address(&self, spec: &WorkerPoolSpec) -> Result<IpAddr, ExecutorError> {
        let _ = spec;
        Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Whether user code opens the datum's scratch directory on this host's kernel (used in
    /// place or bind-mounted), so a named pipe the engine makes there is one it can read.
    /// Then `lazy` inputs are pipes fed from the store when opened; otherwise (the default)
    /// they are materialised like any other input.
    fn serves_named_pipes(&self) -> bool {
        false
    }

    /// Whether user code can change nothing in the datum's scratch directory but `out`
    /// (it sees the rest read-only) and the backend changes nothing there either. Then the
    /// engine readies the directory for the next datum by removing what it laid out itself,
    /// without reading it back; otherwise (the default) it reads every directory there.
    fn keeps_inputs_read_only(&self) -> bool {
        false
    }
}

/// An image resolved at create/update time: the tag a spec names and the content digest the
/// pipeline version runs, so rebuilding a floating tag (`latest`) never changes the code of
/// running pipelines; `update pipeline` resolves it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinnedImage {
    /// The image as the spec names it (`transform.image`), e.g. `edges:latest`.
    pub image: String,
    /// Its content digest (`sha256:…`): the registry manifest digest when the image came from
    /// or went to a registry, otherwise the local image ID.
    pub digest: String,
    /// What the workers run: `repo@sha256:…` when a registry digest is known (portable to
    /// any host that can pull), else the local image ID.
    pub reference: String,
}

/// One warm worker: runs datums one at a time until stopped.
#[async_trait]
pub trait Worker: Send + fmt::Debug {
    /// The worker's index in its pool (`0..workers`).
    fn index(&self) -> usize;

    /// Runs one datum to completion: makes `task.scratch` appear as `/pfs`, runs
    /// `task.program`, streams its output to `task.logs`, and returns once the program's whole
    /// process group is gone and `/pfs/out` is back in `task.scratch/out`.
    ///
    /// User-code results (exit code, signal, cancel) are `Ok`; `Err` is for the
    /// infrastructure and for tasks this backend cannot run ([`ExecutorError::InvalidTask`]
    /// naming the field, e.g. an unknown `transform.user`). Dropping the returned future kills
    /// the datum's processes. See the module docs for the full contract.
    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError>;

    /// The address at which the engine's host reaches a port that this worker's user code
    /// listens on (a service's `internal_port`). Default: loopback (user code on the host's
    /// network).
    fn address(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    /// For datum batching (`transform.datum_batching`, [`batch`]), where one program spans
    /// many datums: the scratch directory to run such a program in, whose contents user code
    /// sees change while it runs. `Some` when what the engine changes in
    /// [`LiveScratch::dir`] during [`Worker::run`] (a datum's inputs swapped in, named pipes,
    /// files) is seen at once by the running program at [`LiveScratch::pfs`], and what it
    /// writes there under `out` is in `dir/out` at once. `engine_scratch` is the directory
    /// the engine would use; a backend may name its own instead (the engine then fills and
    /// empties that one). `None` (the default): the backend shows a scratch directory only as
    /// it was when `run` started, so it cannot run datum-batching code.
    fn batch_scratch(&self, engine_scratch: &std::path::Path) -> Option<LiveScratch> {
        let _ = engine_scratch;
        None
    }

    /// Stops the worker and releases its resources (container, pod, namespace). Idempotent;
    /// the engine never calls `run` after `stop` (it holds every worker in a
    /// [`policy::StopGuard`], which refuses with [`ExecutorError::WorkerLost`]).
    async fn stop(&mut self) -> Result<(), ExecutorError>;
}

/// A scratch directory that user code sees change while it runs ([`Worker::batch_scratch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveScratch {
    /// The directory on this host the engine fills (given as [`DatumTask::scratch`]).
    pub dir: PathBuf,
    /// Where user code sees it: `/pfs`, or `dir` itself where paths are substituted.
    pub pfs: PathBuf,
}

/// What an executor needs to start the workers of one pipeline version.
#[derive(Clone)]
pub struct WorkerPoolSpec {
    /// Project of the pipeline.
    pub project: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Pipeline version (1 on create, +1 per update); part of worker identity and labels.
    pub version: u64,
    /// Number of workers to start (`parallelism_spec.constant`, at least 1).
    pub workers: usize,
    /// The **effective** spec of this version (image, resources, scheduling, ...).
    pub spec: Arc<EffectiveSpec>,
    /// Values of the secrets named in `transform.secrets`, supplied by the host application.
    pub secrets: Secrets,
}

impl fmt::Debug for WorkerPoolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPoolSpec")
            .field("project", &self.project)
            .field("pipeline", &self.pipeline)
            .field("version", &self.version)
            .field("workers", &self.workers)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// Secret values by secret name, then key. `Debug` never shows the values.
#[derive(Clone, Default)]
pub struct Secrets(pub BTreeMap<String, BTreeMap<String, SecretValue>>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, keys)| (name, keys.keys().collect::<Vec<_>>())),
            )
            .finish()
    }
}

impl Secrets {
    /// The value of `key` in secret `name`, if supplied.
    pub fn get(&self, name: &str, key: &str) -> Option<&SecretValue> {
        self.0.get(name)?.get(key)
    }
}

/// A secret's bytes. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub Vec<u8>);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One datum handed to a worker.
#[derive(Clone)]
pub struct DatumTask {
    /// Job (commit set) ID.
    pub job_id: String,
    /// Datum ID (64 hex).
    pub datum_id: String,
    /// Host directory that user code sees as `/pfs`. Owned by the engine: created and filled
    /// before the call, deleted after it (see the module docs).
    pub scratch: PathBuf,
    /// Input names present under `scratch` (each `scratch/<name>` is read-only to user code).
    /// Each is one path part (no `/`, not `.`, `..` or `out`).
    pub inputs: Vec<String>,
    /// What to run: `transform.cmd` + `stdin`, or `err_cmd` + `err_stdin`.
    pub program: Program,
    /// The full environment for this datum, in order: `transform.env`, secret env vars, then
    /// the per-datum variables (`<input>`, `<input>_COMMIT`, `PACH_DATUM_ID`, ...). Paths in
    /// values refer to `/pfs/...` as user code sees it.
    pub env: Vec<(String, String)>,
    /// `transform.user` (`user[:group]` or `uid[:gid]`).
    pub user: Option<String>,
    /// `transform.working_dir`.
    pub working_dir: Option<String>,
    /// Cancelled by the engine (job stopped, pipeline updated, `datum_timeout` expired): kill
    /// and return `Cancelled`.
    pub cancel: CancellationToken,
    /// Where stdout/stderr lines go.
    pub logs: Arc<dyn LogSink>,
}

impl fmt::Debug for DatumTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatumTask")
            .field("job_id", &self.job_id)
            .field("datum_id", &self.datum_id)
            .field("scratch", &self.scratch)
            .field("inputs", &self.inputs)
            .field("program", &self.program)
            .field(
                "env_names",
                &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A program to run: argv (no shell) and the bytes fed to its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Which of the transform's programs this is.
    pub kind: ProgramKind,
    /// `argv[0]` is exec'ed directly.
    pub argv: Vec<String>,
    /// Stdin bytes (`lines.join("\n") + "\n"`), or `None` for an empty stdin.
    pub stdin: Option<Vec<u8>>,
}

/// Whether a [`Program`] is the main command or the recovery command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramKind {
    /// `transform.cmd`.
    Cmd,
    /// `transform.err_cmd`.
    ErrCmd,
}

impl Program {
    /// Builds a program from argv and stdin lines as Pachyderm does (lines joined with `\n`
    /// plus a final `\n`; no lines means empty stdin).
    pub fn new(kind: ProgramKind, argv: Vec<String>, stdin_lines: &[String]) -> Self {
        let stdin = (!stdin_lines.is_empty()).then(|| {
            let mut s = stdin_lines.join("\n");
            s.push('\n');
            s.into_bytes()
        });
        Program { kind, argv, stdin }
    }
}

/// How a datum's run ended, as the backend saw it. Whether that is a success (exit 0,
/// `accept_return_code`) and whether it was a timeout is the engine's call
/// ([`policy::DatumPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatumOutcome {
    /// The program exited with a code.
    Exited {
        /// The exit code.
        exit_code: i32,
    },
    /// Killed by a signal it did not get from the backend.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// The task's cancellation token fired; the process group was killed.
    Cancelled,
    /// The kernel killed the program because the datum's memory limit
    /// (`resource_limits.memory`) was exceeded.
    OutOfMemory,
}

impl DatumOutcome {
    /// Whether the program exited with 0 (success under any `accept_return_code`).
    pub fn is_success(&self) -> bool {
        matches!(self, DatumOutcome::Exited { exit_code: 0 })
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The user code's stdout.
    Stdout,
    /// The user code's stderr.
    Stderr,
}

/// Receives user-code output line by line (without the trailing newline).
pub trait LogSink: Send + Sync {
    /// One line of output.
    fn line(&self, stream: LogStream, line: &str);

    /// The secret values to hide from this sink's output, if any: a
    /// [`lines::LineSplitter`] feeding the sink hides them in the byte stream before it cuts
    /// lines. The default hides nothing.
    fn redactor(&self) -> Option<redact::Redactor> {
        None
    }
}

/// A log sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullLogSink;

impl LogSink for NullLogSink {
    fn line(&self, _stream: LogStream, _line: &str) {}
}

/// Infrastructure failures (not user-code failures, which are [`DatumOutcome`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The backend cannot be reached.
    #[error("{backend} executor unavailable at {address}: {message}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// The address tried (socket path, URL, kubeconfig context).
        address: String,
        /// What went wrong.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The image is absent and could not be pulled.
    #[error("image {image:?} not found: {message}")]
    ImageNotFound {
        /// The image reference.
        image: String,
        /// Why it could not be obtained.
        message: String,
    },
    /// A worker died or disappeared; the datum may be retried on a fresh worker.
    #[error("worker {worker} of pipeline {pipeline:?} lost: {reason}")]
    WorkerLost {
        /// Pipeline name.
        pipeline: String,
        /// Worker index.
        worker: usize,
        /// Backend's reason (e.g. `OOMKilled`, `Evicted`, container exited).
        reason: String,
    },
    /// The task or spec asks for something invalid for this backend (names the field).
    #[error("{field}: {message}")]
    InvalidTask {
        /// Field path, e.g. `transform.user`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The backend cannot do this at all.
    #[error("{backend} executor does not support {what}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// The unsupported feature.
        what: String,
    },
    /// Local I/O failed (scratch directory, spawning, copying).
    #[error("{context}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other backend error.
    #[error("{backend} executor: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ExecutorError {
    /// Whether the engine may retry the datum on a fresh worker.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExecutorError::WorkerLost { .. } | ExecutorError::Io { .. }
        )
    }
}
