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
use super::super::scratch::ScratchState;
use super::super::{Engine, Pool};
use super::datum_run::DatumCtx;
use super::messages::{Done, Msg, Todo};

/// The queue of datums to run, shared by a job's workers.
pub(super) type WorkQueue = Arc<AsyncMutex<Work>>;

/// Datums to run: the planner's batches, handed out one datum set at a time (a worker
/// claims a whole set; see `datum_sets`).
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

    /// The next datum set: datums up to one marked as its set's last, or up to the end of
    /// the plan; `None` once the planner is done and every datum was taken.
    pub(super) async fn next_set(&mut self) -> Option<Vec<Todo>> {
        let mut set = Vec::new();
        loop {
            while let Some(t) = self.ready.pop_front() {
                let end = t.set_end;
                set.push(t);
                if end {
                    return Some(set);
                }
            }
            match self.batches.recv().await {
                Some(batch) => self.ready.extend(batch),
                None => return (!set.is_empty()).then_some(set),
            }
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

    /// Starts the job's workers on the first datum set to run (a no-op re-run starts none): each
    /// takes datum sets from `work` and reports to `report` until the queue closes or the job is
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
            let first = work.lock().await.next_set().await;
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

impl DatumCtx {
    /// Runs one datum set on `worker`, in order (or in one process, with `datum_batching`);
    /// `None` when the job was cancelled before or while it ran (nothing of it is reported).
    pub(super) async fn run_set(
        &self,
        worker: &mut dyn Worker,
        set: Vec<Todo>,
        state: &mut ScratchState,
    ) -> Option<Vec<Done>> {
        if self.cancel.is_cancelled() {
            return None;
        }
        if self.transform.datum_batching {
            // The batching process readies the directory its own way.
            *state = ScratchState::default();
            return self.run_set_batched(worker, set).await;
        }
        let mut dones = Vec::with_capacity(set.len());
        for t in set {
            if self.cancel.is_cancelled() {
                return None;
            }
            let done = self.run_one(worker, t, state).await;
            if done.cancelled {
                return None;
            }
            dones.push(done);
        }
        Some(dones)
    }
}

/// One worker's loop: the set `first`, then sets from `work`, each set's datums run in
/// order and reported together to `report`; returns the worker once the queue is closed or
/// the job cancelled (a set cut short by a cancellation is not reported).
async fn work_datums(
    mut worker: Box<dyn Worker>,
    first: Option<Vec<Todo>>,
    work: WorkQueue,
    report: mpsc::Sender<Msg>,
    ctx: Arc<DatumCtx>,
) -> Box<dyn Worker> {
    let mut next_set = first;
    let mut state = ScratchState::default();
    loop {
        let next = match next_set.take() {
            Some(s) => Some(s),
            None => work.lock().await.next_set().await,
        };
        let Some(set) = next else { break };
        let Some(dones) = ctx.run_set(&mut *worker, set, &mut state).await else {
            break;
        };
        let permit = ctx.backlog.admit(dones.len()).await;
        if report.send(Msg::Set(dones, permit)).await.is_err() {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(ctx.scratch.join(format!("w{}", worker.index())));
    worker
}
