//! Worker pools: warm workers per pipeline version, taken for a job and returned after it,
//! and the tasks that run a job's datums on them.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinHandle;

use crate::executor::Worker;
use crate::executor::policy::StopGuard;

use super::super::error::{PpsError, Result};
use super::super::records::PipelineInfo;
use super::super::{Engine, Pool};
use super::datum_run::DatumCtx;
use super::messages::{Msg, Todo};

/// The queue of datums to run, shared by a job's workers.
pub(super) type WorkQueue = Arc<AsyncMutex<Work>>;

/// Datums to run: the planner's batches, handed out one datum at a time (so a slow datum
/// never holds others back while another worker is free).
pub(super) struct Work {
    batches: mpsc::Receiver<Vec<Todo>>,
    ready: VecDeque<Todo>,
}

impl Work {
    /// The datums that arrive on `batches`.
    pub(super) fn new(batches: mpsc::Receiver<Vec<Todo>>) -> Self {
        Work {
            batches,
            ready: VecDeque::new(),
        }
    }

    /// The next datum; `None` once the planner is done and every datum was taken.
    async fn next(&mut self) -> Option<Todo> {
        loop {
            if let Some(t) = self.ready.pop_front() {
                return Some(t);
            }
            self.ready.extend(self.batches.recv().await?);
        }
    }
}

impl Engine {
    /// The warm workers of pipeline version `p`: its pool if one is kept, else a new one
    /// (stopping the pools of its older versions).
    pub(super) async fn take_pool(&self, p: &PipelineInfo) -> Result<Pool> {
        let mut pools = self.inner.pools.lock().await;
        if let Some(pool) = pools.remove(&(p.id(), p.version)) {
            return Ok(pool);
        }
        let old: Vec<_> = pools
            .keys()
            .filter(|(n, _)| *n == p.id())
            .cloned()
            .collect();
        for k in old {
            if let Some(mut pool) = pools.remove(&k) {
                for w in pool.iter_mut() {
                    let _ = w.stop().await;
                }
            }
        }
        let executor =
            self.inner
                .executors
                .get(&p.executor)
                .ok_or_else(|| PpsError::UnknownExecutor {
                    pipeline: p.id(),
                    executor: p.executor.clone(),
                    registered: self.executor_names().join(", "),
                })?;
        let secrets = self.pipeline_secrets(p)?;
        let pool_spec = super::super::pool_spec::pool_spec(p, &secrets);
        let workers =
            executor
                .start_workers(&pool_spec)
                .await
                .map_err(|source| PpsError::Executor {
                    pipeline: p.id(),
                    source,
                })?;
        Ok(workers
            .into_iter()
            .map(|w| Box::new(StopGuard::new(p.id(), w)) as Box<dyn Worker>)
            .collect())
    }

    /// Keeps `pool` warm for the next job of pipeline version `p`.
    pub(super) async fn return_pool(&self, p: &PipelineInfo, pool: Pool) {
        self.inner
            .pools
            .lock()
            .await
            .insert((p.id(), p.version), pool);
    }

    /// Starts the job's workers on the first datum to run (a no-op re-run starts none): each
    /// takes datums from `work` and reports to `report` until the queue closes or the job is
    /// cancelled. The task yields the pool back, to be returned.
    pub(super) fn dispatch(
        &self,
        pinfo: &PipelineInfo,
        work: WorkQueue,
        report: mpsc::Sender<Msg>,
        ctx: Arc<DatumCtx>,
    ) -> JoinHandle<Result<Pool>> {
        let engine = self.clone();
        let pinfo = pinfo.clone();
        tokio::spawn(async move {
            let first = work.lock().await.next().await;
            let Some(first) = first else {
                return Ok(Vec::new());
            };
            let pool = match engine.take_pool(&pinfo).await {
                Ok(p) => p,
                Err(e) => {
                    ctx.cancel.cancel();
                    return Err(e);
                }
            };
            let mut first = Some(first);
            let handles: Vec<_> = pool
                .into_iter()
                .map(|worker| {
                    tokio::spawn(work_datums(
                        worker,
                        first.take(),
                        work.clone(),
                        report.clone(),
                        ctx.clone(),
                    ))
                })
                .collect();
            drop((work, report));
            let mut pool = Vec::new();
            for h in handles {
                if let Ok(w) = h.await {
                    pool.push(w);
                }
            }
            Ok::<_, PpsError>(pool)
        })
    }
}

/// One worker's loop: `first`, then datums from `work`, each reported to `report`; returns
/// the worker once the queue is closed or the job cancelled.
async fn work_datums(
    mut worker: Box<dyn Worker>,
    first: Option<Todo>,
    work: WorkQueue,
    report: mpsc::Sender<Msg>,
    ctx: Arc<DatumCtx>,
) -> Box<dyn Worker> {
    let mut next_todo = first;
    let mut out_clean = false;
    loop {
        let next = match next_todo.take() {
            Some(t) => Some(t),
            None => work.lock().await.next().await,
        };
        let Some(t) = next else { break };
        if ctx.cancel.is_cancelled() {
            break;
        }
        let done = ctx.run_one(&mut *worker, t, &mut out_clean).await;
        if report.send(Msg::Done(done)).await.is_err() {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(ctx.scratch.join(format!("w{}", worker.index())));
    worker
}
