//! Egress (reference §1.7, §3.7): after every datum of a job succeeded, the whole output
//! commit is pushed to the pipeline's `egress` target before the job finishes; the job is
//! EGRESSING meanwhile and its output commit stays open (downstream jobs wait for it).
//!
//! | module | concept |
//! |---|---|
//! | `target` | the target a spec names (`egress.URL`, `egress.object_storage.url`, `egress.sql_database`) and its create-time checks |
//! | `files` | `file:///DIR`: each file written to a temp file beside its place, then renamed |
//! | `objects` | `s3://`, `gs://`, `az://` through the `object_store` crate (feature `store-object`), streamed, multipart above 8 MiB |
//! | `rows` | CSV and JSON output files as rows (Pachyderm's header and `columns` rules) |
//! | `sql` | PostgreSQL (feature `store-postgres`): one transaction, each table emptied then filled by `COPY` |
//! | `run` | the engine's side: EGRESSING, attempts, backoff, the status `inspect job` shows |
//!
//! An empty output counts as done (Pachyderm's "file not found" case). Errors are retried
//! forever with exponential backoff (see [`EgressRetry`]); stopping the job or stopping or
//! deleting its pipeline ends the retries.

mod files;
#[cfg(feature = "store-object")]
mod objects;
#[cfg(feature = "store-postgres")]
mod rows;
mod run;
#[cfg(feature = "store-postgres")]
mod sql;
mod target;

use std::time::Duration;

use crate::executor::CancellationToken;
use crate::pfs::{CommitRef, PfsError, Store};

pub(crate) use target::check_spec;
pub use target::{EgressTarget, SqlFormat, SqlTarget};

/// How often a failing egress is tried again: the first retry after `first`, each later one
/// after twice the previous wait, never more than `max` (default: 1 s doubling up to 5 min).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRetry {
    /// The wait after the first failed attempt.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for EgressRetry {
    fn default() -> Self {
        EgressRetry {
            first: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl EgressRetry {
    /// The wait after `failed` failed attempts (1 = the first failure).
    pub fn wait_after(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.first
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .max(Duration::from_millis(1))
    }
}

/// Why an egress attempt failed (retried), or why a spec's egress cannot be used (refused at
/// create time). Messages name the field, file, table or URL; never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The spec's egress names no target, or one this engine cannot push to.
    #[error("{field}: {message}")]
    Target {
        /// The spec field, e.g. `egress.object_storage.url`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Reading the output commit failed.
    #[error("reading {path} of the output commit")]
    Read {
        /// The file.
        path: String,
        /// The store's error.
        #[source]
        source: PfsError,
    },
    /// Writing a file to a directory target failed.
    #[error("writing {dest}")]
    Write {
        /// The destination path.
        dest: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An object store request failed (`s3://`, `gs://`, `az://`).
    #[error("object store {url}: {message}")]
    Remote {
        /// The object's URL.
        url: String,
        /// The `object_store` crate's error.
        message: String,
    },
    /// A database request failed.
    #[error("database {url}: {message}")]
    Database {
        /// The database URL (password hidden).
        url: String,
        /// What failed, with the server's message.
        message: String,
    },
    /// An output file is not valid input for its table.
    #[error("{path}: {message}")]
    Rows {
        /// The output file.
        path: String,
        /// What is wrong (row number, column).
        message: String,
    },
    /// The secret with the database password is missing.
    #[error("egress.sql_database.secret")]
    Secret(#[from] super::secrets::SecretError),
    /// The attempt was cancelled (the job stopped, or the engine parked).
    #[error("egress cancelled")]
    Cancelled,
}

/// Pushes the output commit `commit` to `target`; returns what was written (files or rows).
/// `password` is the SQL target's secret value. Checks `cancel` between files.
///
/// Blocking: reads the store and talks to the target (its async clients run on a runtime of
/// this call's own).
pub(crate) fn push(
    target: &EgressTarget,
    store: &Store,
    commit: &CommitRef,
    password: Option<&str>,
    cancel: &CancellationToken,
) -> Result<u64, EgressError> {
    let src = Source {
        store,
        commit,
        cancel,
    };
    match target {
        EgressTarget::Directory { dir, .. } => files::push(dir, &src),
        #[cfg(feature = "store-object")]
        EgressTarget::Objects { url, options } => objects::push(url, options, &src),
        #[cfg(feature = "store-postgres")]
        EgressTarget::Sql(sql) => sql::push(sql, password.unwrap_or_default(), &src),
        #[allow(unreachable_patterns)]
        other => {
            let _ = password;
            Err(EgressError::Target {
                field: other.field().to_string(),
                message: format!("{} needs a feature this build lacks", other.display()),
            })
        }
    }
}

/// The output commit being pushed.
pub(crate) struct Source<'a> {
    store: &'a Store,
    commit: &'a CommitRef,
    cancel: &'a CancellationToken,
}

impl Source<'_> {
    /// The path of every file of the commit, in path order, streamed (memory does not grow
    /// with the number of files); read errors are named.
    fn files(
        &self,
    ) -> Result<impl Iterator<Item = Result<String, EgressError>> + Send, EgressError> {
        let read = |source| EgressError::Read {
            path: "/".into(),
            source,
        };
        let iter = self
            .store
            .list_file_recursive(self.commit, "/")
            .map_err(read)?;
        Ok(iter.map(move |f| f.map(|f| f.path).map_err(read)))
    }

    /// Opens one file for a streaming read.
    fn open(&self, path: &str) -> Result<Box<dyn std::io::Read + Send>, EgressError> {
        self.store
            .get_file(self.commit, path)
            .map(|(_, r)| r)
            .map_err(|source| EgressError::Read {
                path: path.to_string(),
                source,
            })
    }

    /// `Err(Cancelled)` once the attempt is cancelled.
    fn check_cancel(&self) -> Result<(), EgressError> {
        if self.cancel.is_cancelled() {
            return Err(EgressError::Cancelled);
        }
        Ok(())
    }
}

/// A runtime of one attempt's own for the async clients (a current-thread runtime driven by
/// the blocking thread the attempt runs on).
#[cfg(any(feature = "store-object", feature = "store-postgres"))]
fn runtime(url: &str) -> Result<tokio::runtime::Runtime, EgressError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EgressError::Remote {
            url: url.to_string(),
            message: format!("starting the I/O runtime: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = EgressRetry::default();
        assert_eq!(r.wait_after(1), Duration::from_secs(1));
        assert_eq!(r.wait_after(2), Duration::from_secs(2));
        assert_eq!(r.wait_after(5), Duration::from_secs(16));
        assert_eq!(r.wait_after(9), Duration::from_secs(256));
        assert_eq!(r.wait_after(10), Duration::from_secs(300));
        assert_eq!(r.wait_after(u32::MAX), Duration::from_secs(300));
    }
}
