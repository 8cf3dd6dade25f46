//! The driver's runtime: a small tokio runtime owned by the store, so that the store's
//! blocking calls work from any thread, including the worker threads of the caller's own
//! tokio runtime (where blocking on a future of that runtime would panic).

use std::future::Future;

use crate::pfs::error::{PfsError, Result};

/// Threads of the driver's runtime: connection I/O and encoding only, never user work.
const THREADS: usize = 2;

/// A tokio runtime of our own; a blocking call sends its future there and waits on a plain
/// channel (never `block_on`), which is allowed on any thread.
pub(super) struct Bridge {
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    /// Starts the runtime's threads.
    pub(super) fn start(server: &str) -> Result<Bridge> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("pfs-postgres")
            .enable_all()
            .build()
            .map_err(|e| PfsError::MetaServer {
                server: server.to_string(),
                operation: "starting the driver's threads".into(),
                source: Box::new(e),
            })?;
        Ok(Bridge { rt: Some(rt) })
    }

    /// Runs `fut` on the driver's runtime and waits for it; `None` when the runtime stopped
    /// (or the future panicked) before it finished.
    pub(super) fn run<T, F>(&self, fut: F) -> Option<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let rt = self.rt.as_ref()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }

    /// Starts `fut` on the driver's runtime without waiting for it (a rollback on drop).
    pub(super) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = self.rt.as_ref() {
            rt.spawn(fut);
        }
    }
}

impl Drop for Bridge {
    /// Stops the runtime without waiting (allowed in async contexts, unlike dropping it):
    /// open connections close, and the server rolls back whatever they had open.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
