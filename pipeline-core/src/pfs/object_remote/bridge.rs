//! The remote store's own I/O runtime, and the blocking calls into it.
//!
//! [`super::super::object::ObjectStore`] is synchronous and is called from blocking threads
//! and from inside tokio tasks alike, while the `object_store` crate is async. Entering the
//! caller's runtime (`Handle::block_on`) panics inside a task, so the store owns a small
//! runtime of its own: futures are spawned onto it and their results come back over
//! channels that block the calling thread (a plain `std::sync::mpsc` receive, or
//! `futures::executor::block_on` on a bounded channel for streams). Neither checks or
//! needs the caller's runtime, so they work from any thread.

use std::future::Future;
use std::io;
use std::sync::mpsc;

use futures::channel::mpsc as bounded;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};

/// Threads of the store's runtime: requests are I/O bound; two keep a multipart upload's
/// parts and a streaming read's prefetch going while another request waits.
const WORKER_THREADS: usize = 2;

/// A runtime owned by one remote store; shut down without blocking when dropped.
#[derive(Debug)]
pub(super) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

/// The runtime stopped before a spawned future finished (it was shut down, or the future
/// panicked).
#[derive(Debug, thiserror::Error)]
#[error("the object store's I/O task ended without an answer (runtime shut down or task panicked)")]
pub(super) struct TaskLost;

/// The answer of a future spawned with [`Bridge::spawn`], received by blocking on it.
pub(super) struct Pending<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> Pending<T> {
    /// Blocks until the future finished.
    pub(super) fn wait(self) -> Result<T, TaskLost> {
        self.rx.recv().map_err(|_| TaskLost)
    }
}

impl Bridge {
    /// Starts the runtime (its threads are named `pipeline-objects`).
    pub(super) fn new() -> io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("pipeline-objects")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle())
    }

    /// Starts `fut` on the store's runtime; [`Pending::wait`] blocks for its output.
    pub(super) fn spawn<F>(&self, fut: F) -> Pending<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        if let Some(h) = self.handle() {
            h.spawn(async move {
                let _ = tx.send(fut.await);
            });
        }
        Pending { rx }
    }

    /// Runs `fut` on the store's runtime and blocks the calling thread for its output.
    pub(super) fn run<F>(&self, fut: F) -> Result<F::Output, TaskLost>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(fut).wait()
    }

    /// Drives `stream` on the store's runtime, at most `depth` items ahead of the consumer,
    /// and hands its items out as a blocking iterator. Dropping the iterator stops the
    /// stream at its next item. A stream cut short by the runtime stopping ends with
    /// [`TaskLost`], never with a clean end.
    pub(super) fn iter<T: Send + 'static>(
        &self,
        mut stream: BoxStream<'static, T>,
        depth: usize,
    ) -> BlockingIter<T> {
        let (mut tx, rx) = bounded::channel(depth);
        if let Some(h) = self.handle() {
            h.spawn(async move {
                while let Some(item) = stream.next().await {
                    if tx.send(Some(item)).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(None).await;
            });
        }
        BlockingIter { rx, ended: false }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks, which panics inside an async context; this does not.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The items of a stream driven on the store's runtime; each `next` blocks until one is
/// there. `None` only after the stream's own end; `Some(Err(TaskLost))` (once) when the
/// runtime stopped driving it first.
pub(super) struct BlockingIter<T> {
    /// `Some(item)` per item, then `None` at the stream's end.
    rx: bounded::Receiver<Option<T>>,
    ended: bool,
}

impl<T> Iterator for BlockingIter<T> {
    type Item = Result<T, TaskLost>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match futures::executor::block_on(self.rx.next()) {
            Some(Some(item)) => Some(Ok(item)),
            Some(None) => {
                self.ended = true;
                None
            }
            None => {
                self.ended = true;
                Some(Err(TaskLost))
            }
        }
    }
}
