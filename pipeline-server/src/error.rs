//! The API's one error shape: an HTTP status, a machine-readable kind and the message (the
//! error with its sources, each once), as `{"error": {"kind": ..., "message": ...}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::PfsError;
use pipeline_core::pps::PpsError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of failure an error is; decides the HTTP status and `pipectl`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or names something invalid (a bad name, path, reference,
    /// spec, JSON body, query parameter). 400.
    Invalid,
    /// No request carried a valid token. 401.
    Unauthorized,
    /// The request is not allowed on this connection (e.g. a server-side path over TCP). 403.
    Forbidden,
    /// What the request names does not exist (repo, branch, commit, file, pipeline, job,
    /// datum, secret, route). 404.
    NotFound,
    /// Wrong method on a route. 405.
    MethodNotAllowed,
    /// The request conflicts with the current state (exists already, commit finished,
    /// branch in use, job finished). 409.
    Conflict,
    /// The request body is larger than the server accepts. 413.
    TooLarge,
    /// The server is shutting down and takes no new requests. 503.
    Unavailable,
    /// The store or the engine failed (I/O, corruption, an executor). 500.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error: its kind and its message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The error and its sources as one line, as `pipectl` prints it.
    pub message: String,
}

/// An error a handler returns; becomes an [`ErrorBody`] response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Its kind.
    pub kind: ErrorKind,
    /// Its message.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// A malformed request (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// Something named does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The store or engine failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
            },
        };
        (self.kind.status(), Json(body)).into_response()
    }
}

/// The kind of a store error.
pub fn pfs_kind(e: &PfsError) -> ErrorKind {
    use PfsError as E;
    match e {
        E::InvalidName(_) | E::InvalidPath(_) | E::InvalidRef { .. } | E::InvalidGlob { .. } => {
            ErrorKind::Invalid
        }
        E::LocalPath { .. } | E::Provenance(_) | E::OutputBranch { .. } => ErrorKind::Invalid,
        E::InvalidLocation { .. } => ErrorKind::Invalid,
        E::StoreInUse { .. } => ErrorKind::Conflict,
        E::RepoNotFound { .. }
        | E::ProjectNotFound { .. }
        | E::BranchNotFound { .. }
        | E::CommitNotFound { .. }
        | E::FileNotFound { .. }
        | E::CommitSetNotFound { .. } => ErrorKind::NotFound,
        E::RepoExists { .. }
        | E::ProjectExists { .. }
        | E::CommitFinished { .. }
        | E::ParentNotFinished { .. }
        | E::InUse { .. }
        | E::IsADirectory { .. }
        | E::Locked { .. }
        | E::SquashWithoutChildren { .. }
        | E::DropWithChildren { .. }
        | E::ChildNotFinished { .. }
        | E::SubvenantCommitSets { .. } => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    }
}

/// The kind of an engine error.
pub fn pps_kind(e: &PpsError) -> ErrorKind {
    use PpsError as E;
    match e {
        E::InvalidSpec { .. }
        | E::Usage(_)
        | E::UnknownExecutor { .. }
        | E::Unsupported { .. }
        | E::NoJobGateway { .. } => ErrorKind::Invalid,
        E::Secret(s) => secret_kind(s),
        E::PipelineNotFound(_)
        | E::JobNotFound { .. }
        | E::DatumNotFound { .. }
        | E::TransactionNotFound(_) => ErrorKind::NotFound,
        E::TransactionRequest { source, .. } => pps_kind(source),
        E::PipelineExists(_) | E::JobFinished { .. } | E::UpdatedPipeline { .. } => {
            ErrorKind::Conflict
        }
        E::Image { source, .. } => match **source {
            pipeline_core::executor::ExecutorError::Unavailable { .. } => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        },
        E::Store(s) => pfs_kind(s),
        _ => ErrorKind::Internal,
    }
}

fn secret_kind(e: &pipeline_core::pps::secrets::SecretError) -> ErrorKind {
    use pipeline_core::pps::secrets::SecretError as E;
    match e {
        E::Store(s) => pfs_kind(s),
        E::Corrupt(_) => ErrorKind::Internal,
        E::NotFound(_) => ErrorKind::NotFound,
        E::Exists(_) => ErrorKind::Conflict,
        E::Syntax { .. } | E::Manifest { .. } | E::MissingKey { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Internal,
    }
}

impl From<PfsError> for ApiError {
    fn from(e: PfsError) -> Self {
        ApiError::new(pfs_kind(&e), ErrorChain(&e).to_string())
    }
}

impl From<PpsError> for ApiError {
    fn from(e: PpsError) -> Self {
        ApiError::new(pps_kind(&e), ErrorChain(&e).to_string())
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
