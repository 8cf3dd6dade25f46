//! The engine's error type.

use crate::pfs::PfsError;
use crate::spec::Diagnostic;

/// Everything the engine can fail with. Messages name the pipeline, job or datum.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PpsError {
    /// The spec is invalid (every problem listed).
    #[error("invalid spec for pipeline {pipeline:?}: {}", summarize(.diagnostics))]
    InvalidSpec {
        /// Pipeline name (may be empty when the spec has none).
        pipeline: String,
        /// The problems.
        diagnostics: Vec<Diagnostic>,
    },
    /// A secret could not be created, read or found (the message names it, never a value).
    #[error(transparent)]
    Secret(#[from] super::secrets::SecretError),
    /// No such pipeline.
    #[error("pipeline {0:?} not found")]
    PipelineNotFound(String),
    /// Create without update on an existing pipeline.
    #[error("pipeline \"{0}\" already exists")]
    PipelineExists(String),
    /// No such job.
    #[error("job {pipeline}@{job} not found")]
    JobNotFound {
        /// Pipeline.
        pipeline: String,
        /// Job ID.
        job: String,
    },
    /// No such datum in a job.
    #[error("datum {datum} not found in job {pipeline}@{job}")]
    DatumNotFound {
        /// Pipeline.
        pipeline: String,
        /// Job ID.
        job: String,
        /// Datum ID.
        datum: String,
    },
    /// The job already reached a terminal state.
    #[error("job {pipeline}@{job} has already finished")]
    JobFinished {
        /// Pipeline.
        pipeline: String,
        /// Job ID.
        job: String,
    },
    /// The pipeline names an executor the engine was not given.
    #[error(
        "pipeline {pipeline:?} uses executor {executor:?}, which is not registered with this engine (registered: {registered})"
    )]
    UnknownExecutor {
        /// Pipeline.
        pipeline: String,
        /// Executor name.
        executor: String,
        /// Names that are registered.
        registered: String,
    },
    /// The pipeline kind is not supported by this engine (service, spout, egress...).
    #[error("pipeline {pipeline:?}: {what} is not supported by this engine")]
    Unsupported {
        /// Pipeline.
        pipeline: String,
        /// The feature.
        what: String,
    },
    /// The pipeline has S3 inputs or `s3_out`, and the engine has no job gateways
    /// ([`super::EngineBuilder::job_gateways`]).
    #[error(
        "pipeline {pipeline:?}: S3 inputs and s3_out are served by an S3 gateway per job, and \
         this engine has none: run it through pipectl (or, in a host application, install one \
         with EngineBuilder::job_gateways)"
    )]
    NoJobGateway {
        /// Pipeline.
        pipeline: String,
    },
    /// A commit set made by creating, updating or rerunning a pipeline cannot be squashed
    /// or deleted (Pachyderm's wording).
    #[error("cannot squash commit {commit} because it updated a pipeline")]
    UpdatedPipeline {
        /// `project/pipeline@id`: the output commit of the version's first job.
        commit: String,
    },
    /// A bad argument (e.g. a malformed `PIPELINE@JOB`).
    #[error("{0}")]
    Usage(String),
    /// An internal task of the engine panicked or was cancelled before it finished.
    #[error("the engine's {task} task did not finish")]
    TaskFailed {
        /// What the task was doing (`ingest`, `finish job`, ...).
        task: &'static str,
        /// How it ended: a panic (with its message) or a cancellation.
        #[source]
        source: tokio::task::JoinError,
    },
    /// No such transaction (finished, deleted or never started).
    #[error("transaction {0} not found")]
    TransactionNotFound(String),
    /// A request of a transaction failed while the transaction was finishing: nothing of the
    /// transaction was applied (it is still there, to fix or delete).
    #[error(
        "transaction {transaction}: request {index} ({request}) failed, so nothing of the transaction was applied"
    )]
    TransactionRequest {
        /// The transaction.
        transaction: String,
        /// The request's position (1 = the first queued).
        index: usize,
        /// The request, as the command that queued it.
        request: String,
        /// Why it failed.
        #[source]
        source: Box<PpsError>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PfsError),
    /// A stored record could not be decoded.
    #[error("corrupt engine record {key}: {message}")]
    Corrupt {
        /// The record key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// Local I/O (scratch directories).
    #[error("{context}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline's image cannot be used by its executor (absent and not pullable, or
    /// unable to run the workers): refused at create/update, nothing changed.
    #[error("pipeline {pipeline:?} cannot use image {image:?}")]
    Image {
        /// Pipeline.
        pipeline: String,
        /// The image as the spec names it.
        image: String,
        /// What the executor said.
        #[source]
        source: Box<crate::executor::ExecutorError>,
    },
    /// Starting workers failed.
    #[error("starting workers for pipeline {pipeline:?}")]
    Executor {
        /// Pipeline.
        pipeline: String,
        /// Underlying error.
        #[source]
        source: crate::executor::ExecutorError,
    },
}

fn summarize(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result alias of the engine.
pub type Result<T, E = PpsError> = std::result::Result<T, E>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PpsError {
    let context = context.into();
    move |source| PpsError::Io { context, source }
}

/// Maps the join error of the internal task `task` into [`PpsError::TaskFailed`].
pub(crate) fn task_failed(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> PpsError {
    move |source| PpsError::TaskFailed { task, source }
}
