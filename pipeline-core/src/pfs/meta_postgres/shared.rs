//! What every read snapshot and write transaction of one store shares: the connection pool,
//! the driver's runtime, the server's name for errors, and the lock keys; and
//! [`TxnConn`], a pooled connection inside a transaction.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};

use super::bridge::Bridge;
use crate::pfs::error::{PfsError, Result};

/// The state shared by a store's snapshots and transactions.
pub(super) struct Shared {
    /// The server as errors name it (no password).
    pub(super) server: String,
    /// Pooled connections for snapshots and writes. Declared before `bridge` so that it is
    /// dropped first.
    pub(super) pool: Pool,
    /// The advisory lock every write transaction of this store takes first.
    pub(super) writer_key: i64,
    /// Set when this store was opened exclusively: what each write checks first.
    pub(super) fence: Option<Fence>,
    /// One write transaction per process at a time, before it takes a pooled connection (so
    /// waiting writers never use up the pool that the writer holding the lock may need).
    pub(super) writer: std::sync::Mutex<()>,
    /// The driver's runtime.
    pub(super) bridge: Bridge,
}

/// The owner lock an exclusive store holds (see `owner`): each write checks, in its own
/// transaction, that the owner's session still holds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fence {
    /// The owner lock's key.
    pub(super) key: i64,
    /// The server process (backend pid) of the session holding it.
    pub(super) backend_pid: i32,
}

impl Shared {
    /// A driver error as [`PfsError::MetaServer`].
    pub(super) fn error(
        &self,
        operation: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> PfsError {
        server_error(&self.server, operation, source)
    }

    /// Runs `fut` on the driver's runtime and waits for it.
    pub(super) fn call<T, F>(&self, operation: &str, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.bridge
            .run(fut)
            .unwrap_or_else(|| Err(self.error(operation, Stopped)))
    }

    /// A pooled connection (waits for one while all are in use, up to the pool's timeout).
    pub(super) async fn connection(self: Arc<Self>) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => self.error(
                format!(
                    "waiting for one of the {} pooled connections (all held by open read \
                     snapshots or writes; raise ?pool_size=N)",
                    self.pool.status().max_size
                ),
                e,
            ),
            PoolError::Backend(e) => self.error("connecting", e),
            e => self.error("connecting", e),
        })
    }
}

/// [`PfsError::MetaServer`] for `server`.
pub(super) fn server_error(
    server: &str,
    operation: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> PfsError {
    PfsError::MetaServer {
        server: server.to_string(),
        operation: operation.into(),
        source: Box::new(source),
    }
}

/// The driver's runtime stopped (the store is being dropped) before a call finished.
#[derive(Debug, thiserror::Error)]
#[error("the store was closed while the call ran")]
pub(super) struct Stopped;

/// A write transaction is committed after one of its statements failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "an earlier statement of the transaction failed, so the server aborted it; nothing was committed"
)]
pub(super) struct Aborted;

/// A pooled connection inside a transaction. Dropped before [`TxnConn::finished`], it rolls
/// the transaction back (on the driver's runtime, without waiting) before the connection goes
/// back to the pool; a connection whose rollback fails is closed instead.
pub(super) struct TxnConn {
    /// Always `Some` until dropped.
    client: Option<Object>,
    /// The transaction was committed (or rolled back): nothing to undo.
    done: AtomicBool,
    /// Where the rollback runs.
    shared: Arc<Shared>,
}

impl TxnConn {
    /// A connection on which `BEGIN` has run.
    pub(super) fn new(client: Object, shared: Arc<Shared>) -> TxnConn {
        TxnConn {
            client: Some(client),
            done: AtomicBool::new(false),
            shared,
        }
    }

    /// The connection.
    pub(super) fn client(&self) -> Result<&Object> {
        self.client
            .as_ref()
            .ok_or_else(|| self.shared.error("using a connection", Stopped))
    }

    /// Marks the transaction as ended (committed): dropping returns the connection as is.
    pub(super) fn finished(&self) {
        self.done.store(true, Ordering::SeqCst);
    }

    /// The store's shared state.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for TxnConn {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        self.shared.bridge.spawn(async move {
            if client.batch_execute("ROLLBACK").await.is_err() {
                // Not returned to the pool in an unknown state: closed.
                drop(Object::take(client));
            }
        });
    }
}
