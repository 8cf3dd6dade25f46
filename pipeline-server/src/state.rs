//! What every handler shares: the engine (and through it the store), whether jobs run in the
//! background, and the signal that something changed.

use std::sync::Arc;
use std::time::Duration;

use pipeline_core::pps::{Engine, JobInfo, JobState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult, ErrorKind};

/// Who runs the jobs that writes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRunner {
    /// The server runs them in the background ([`Engine::serve`]), as `pipectl serve` does;
    /// `wait` endpoints wait for it.
    Background,
    /// Nobody runs them until a client waits: a `wait` endpoint runs every pending job
    /// ([`Engine::run_pending`]) before it answers. This is `pipectl`'s embedded mode, where
    /// the server lives for one command.
    OnWait,
}

/// The state every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    local_paths: bool,
}

struct Inner {
    engine: Engine,
    runner: JobRunner,
    /// Bumped by every write ([`AppState::notify_changed`]); a watcher never misses one.
    changed: watch::Sender<u64>,
    /// Cancelled when the server starts stopping.
    stopping: CancellationToken,
    /// The console's CSRF token (random per process): every console form carries it.
    csrf: String,
}

impl AppState {
    /// The state over `engine`. `local_paths` allows requests naming a path on the server's
    /// own file system (uploading a local directory): true for in-process clients and the
    /// owner-only Unix socket, false for TCP.
    pub fn new(engine: Engine, runner: JobRunner, local_paths: bool) -> Self {
        AppState {
            inner: Arc::new(Inner {
                engine,
                runner,
                changed: watch::channel(0).0,
                stopping: CancellationToken::new(),
                csrf: crate::console::session::new_csrf_token(),
            }),
            local_paths,
        }
    }

    /// The same state (engine, change signal, stop) for another listener, with its own
    /// `local_paths` (the Unix socket allows them, TCP does not).
    pub fn with_local_paths(&self, local_paths: bool) -> Self {
        AppState {
            inner: self.inner.clone(),
            local_paths,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The console's CSRF token: console forms carry it, console actions require it.
    pub fn csrf(&self) -> &str {
        &self.inner.csrf
    }

    /// Who runs jobs.
    pub fn runner(&self) -> JobRunner {
        self.inner.runner
    }

    /// Whether requests may name paths on the server's file system.
    pub fn local_paths(&self) -> bool {
        self.local_paths
    }

    /// Wakes everyone waiting in [`AppState::changed`] and the background runner; call after
    /// every write.
    pub fn notify_changed(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until [`AppState::notify_changed`] is called or `max` passes.
    pub async fn changed(&self, max: Duration) {
        let mut rx = self.inner.changed.subscribe();
        let _ = tokio::time::timeout(max, rx.changed()).await;
    }

    /// A watcher of writes: `changed()` returns once a write happened after the last
    /// `mark_unchanged()` (none is missed in between).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Starts stopping: new requests get 503 `unavailable`, event streams and waits end.
    pub fn begin_stop(&self) {
        self.inner.stopping.cancel();
    }

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.is_cancelled()
    }

    /// Cancelled when the server starts stopping.
    pub fn stopping(&self) -> &CancellationToken {
        &self.inner.stopping
    }

    /// Runs `f` (blocking store work) on the blocking pool with a clone of the engine.
    pub async fn blocking<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    {
        let engine = self.inner.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("request task failed: {e}")))?
    }

    /// Waits until every job of commit set `id` is done or waits for an open commit; returns
    /// the ones that are done. With [`JobRunner::OnWait`], runs every pending job first and
    /// returns the jobs that finished in that run, as embedded `pipectl` always has.
    pub async fn settle(&self, id: &str) -> ApiResult<Vec<JobInfo>> {
        let engine = self.engine().clone();
        if self.runner() == JobRunner::OnWait {
            let jobs = engine.run_pending().await?;
            engine.shutdown().await;
            return Ok(jobs);
        }
        loop {
            // Subscribed before looking, so a job that ends meanwhile still wakes us.
            let mut events = engine.subscribe();
            let id = id.to_string();
            let (jobs, settled) = self
                .blocking(move |e| {
                    // The runner may not have recorded the commit set's jobs yet.
                    e.discover_jobs()?;
                    let jobs = without_superseded(e, e.jobs_of_commit_set(&id)?)?;
                    let mut settled = true;
                    for j in &jobs {
                        if !j.state.is_terminal() && e.waiting_for(j)?.is_none() {
                            settled = false;
                        }
                    }
                    Ok((jobs, settled))
                })
                .await?;
            if settled {
                // As in embedded mode, a job that waits for an open commit is not reported:
                // it has not run yet, and the write itself succeeded.
                return Ok(jobs.into_iter().filter(|j| j.state.is_terminal()).collect());
            }
            tokio::select! {
                _ = events.recv() => {}
                _ = self.changed(Duration::from_secs(1)) => {}
                _ = self.stopping().cancelled() => {
                    return Err(ApiError::new(
                        ErrorKind::Unavailable,
                        "the server is stopping; the jobs resume when it starts again",
                    ));
                }
            }
        }
    }
}

/// `jobs` without those an update of their pipeline killed (a newer version's job replaced
/// them): they are not failures of the write being waited for, and embedded mode never
/// reports them either.
fn without_superseded(engine: &Engine, jobs: Vec<JobInfo>) -> ApiResult<Vec<JobInfo>> {
    let mut kept = Vec::with_capacity(jobs.len());
    for j in jobs {
        if j.state == JobState::JobKilled
            && engine
                .inspect_pipeline(&j.pipeline)
                .is_ok_and(|p| p.version > j.version)
        {
            continue;
        }
        kept.push(j);
    }
    Ok(kept)
}
