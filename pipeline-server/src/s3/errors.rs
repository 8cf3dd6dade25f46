//! Store errors as S3 errors: the S3 code a client acts on, the store's message (the error
//! and its sources) as the XML `<Message>`.
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::PfsError;
use s3s::{S3Error, S3ErrorCode};

use super::bucket::BucketNameError;

/// The S3 error for a store error met while serving `bucket`.
pub fn from_pfs(e: &PfsError, bucket: &str) -> S3Error {
    use PfsError as E;
    let code = match e {
        E::RepoNotFound { .. }
        | E::ProjectNotFound { .. }
        | E::BranchNotFound { .. }
        | E::CommitNotFound { .. }
        | E::CommitSetNotFound { .. } => S3ErrorCode::NoSuchBucket,
        E::FileNotFound { .. } | E::IsADirectory { .. } => S3ErrorCode::NoSuchKey,
        E::InvalidPath(_) => S3ErrorCode::InvalidArgument,
        E::InvalidName(_) | E::InvalidRef { .. } => S3ErrorCode::InvalidBucketName,
        E::OutputBranch { .. } => S3ErrorCode::AccessDenied,
        E::RepoExists { .. } => S3ErrorCode::BucketAlreadyOwnedByYou,
        E::CommitFinished { .. }
        | E::ParentNotFinished { .. }
        | E::InUse { .. }
        | E::Locked { .. }
        | E::Provenance(_) => S3ErrorCode::OperationAborted,
        _ => S3ErrorCode::InternalError,
    };
    S3Error::with_message(code, format!("bucket {bucket:?}: {}", ErrorChain(e)))
}

/// `InvalidBucketName` for a name that names nothing.
pub fn bad_name(e: &BucketNameError) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidBucketName, e.to_string())
}

/// `AccessDenied` for a write to a bucket that names a commit.
pub fn read_only(bucket: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::AccessDenied,
        format!(
            "bucket {bucket:?} names a commit and is read-only; write to BRANCH.REPO[.PROJECT] instead"
        ),
    )
}

/// `InternalError` for a failure outside the store (a task that ended, a spool file).
pub fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, format!("{what}: {e}"))
}
