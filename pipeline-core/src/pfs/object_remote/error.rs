//! What can go wrong opening a remote object store, and how a failed request becomes a
//! store error.

use std::io;
use std::path::PathBuf;

use crate::pfs::error::PfsError;

/// Opening a [`super::RemoteObjectStore`] failed. Every variant names the store's URL (with
/// any password in it replaced by `***`).
#[derive(Debug, thiserror::Error)]
pub enum RemoteStoreError {
    /// The URL is not one the store can use.
    #[error("object store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given (password redacted).
        url: String,
        /// What was expected.
        reason: String,
    },
    /// The backend could not be configured from the URL and the environment.
    #[error(
        "object store {url}: cannot configure it from the URL and the environment (AWS_*, GOOGLE_*, AZURE_* variables)"
    )]
    Config {
        /// The store's URL.
        url: String,
        /// The `object_store` crate's error.
        #[source]
        source: object_store::Error,
    },
    /// The first request (a listing under the prefix) failed.
    #[error(
        "object store {url}: the first listing failed; check the endpoint (AWS_ENDPOINT_URL, AWS_ALLOW_HTTP for plain http), that the bucket exists and the credentials"
    )]
    Unreachable {
        /// The store's URL.
        url: String,
        /// The `object_store` crate's error.
        #[source]
        source: object_store::Error,
    },
    /// The first request got no answer in time.
    #[error(
        "object store {url}: no answer to the first listing within {secs} s; check the endpoint (AWS_ENDPOINT_URL) and the network"
    )]
    Timeout {
        /// The store's URL.
        url: String,
        /// How long it waited.
        secs: u64,
    },
    /// A local directory (`file://` store, spool directory) could not be made.
    #[error("object store {url}: cannot create local directory {}", path.display())]
    LocalDir {
        /// The store's URL.
        url: String,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The store's I/O runtime could not start, or stopped.
    #[error("object store {url}: its I/O runtime failed")]
    Runtime {
        /// The store's URL.
        url: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl From<RemoteStoreError> for PfsError {
    fn from(e: RemoteStoreError) -> PfsError {
        let path = match &e {
            RemoteStoreError::InvalidUrl { url, .. }
            | RemoteStoreError::Config { url, .. }
            | RemoteStoreError::Unreachable { url, .. }
            | RemoteStoreError::Timeout { url, .. }
            | RemoteStoreError::LocalDir { url, .. }
            | RemoteStoreError::Runtime { url, .. } => PathBuf::from(url),
        };
        PfsError::Io {
            path,
            source: io::Error::other(e),
        }
    }
}

/// The I/O error kind that stands for an `object_store` error: `NotFound` (which the store's
/// callers test for), `AlreadyExists`, `PermissionDenied`, or `Other`.
pub(super) fn kind_of(e: &object_store::Error) -> io::ErrorKind {
    match e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    }
}

/// A failed request on the object at `key` (the key's full URL) as a store error.
pub(super) fn request_failed(key: impl Into<PathBuf>, e: object_store::Error) -> PfsError {
    PfsError::Io {
        path: key.into(),
        source: io::Error::new(kind_of(&e), e),
    }
}

/// The runtime lost a request on `key` (shut down or panicked) as a store error.
pub(super) fn task_lost(key: impl Into<PathBuf>, e: super::bridge::TaskLost) -> PfsError {
    PfsError::Io {
        path: key.into(),
        source: io::Error::other(e),
    }
}

/// Whether `e` (or an error it wraps, through `io::Error`s too) is an `object_store`
/// request that never got an answer: no connection, a request not sent, a timeout or a cut
/// connection, after the client's own retries.
pub(crate) fn is_transport_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        // `io::Error::source` skips the error it wraps: look at that one first.
        current = match err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}
