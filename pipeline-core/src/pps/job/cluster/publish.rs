//! The leader's side of a shared job: datum sets go from the planner to the store's work
//! queue (at most [`WINDOW`] of them not yet taken back), and the hosts' results come back
//! to the job's collector, in the order they were completed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::error_chain::ErrorChain;
use crate::executor::CancellationToken;
use crate::pfs::PfsError;
use crate::pfs::work_queue::{NewTask, WorkQueue as TaskQueue};

use super::super::super::error::{PpsError, Result, task_failed};
use super::super::super::records::JobInfo;
use super::super::super::{Engine, Pool};
use super::super::messages::Msg;
use super::super::pool::WorkQueue;
use super::wire::{SetResult, SetTask, WireTodo};
use super::{job_key, pool_key};

/// Datum sets of one job in the queue at once (published, not yet taken back).
const WINDOW: usize = 64;

/// How often the leader looks for completed sets while none arrive.
const POLL: Duration = Duration::from_millis(40);

/// The longest wait between two tries of a queue call that failed (the database away).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counts shared by the publishing and the taking half of one job.
#[derive(Default)]
struct Progress {
    published: AtomicU64,
    all_published: AtomicBool,
}

impl Engine {
    /// Hands the job's datum sets from `work` to the hosts sharing the store and reports
    /// their results to `report` (see the module docs); the task yields no pool (this
    /// host's workers take part through [`Engine::run_host`]).
    pub(in crate::pps::job) fn dispatch_shared(
        &self,
        job: &JobInfo,
        work: WorkQueue,
        report: mpsc::Sender<Msg>,
        cancel: CancellationToken,
    ) -> JoinHandle<Result<Pool>> {
        let Some(queue) = self.inner.cluster.as_ref().map(|c| c.queue.clone()) else {
            return tokio::spawn(async {
                Err(PpsError::Usage(
                    "this engine shares no store with other hosts".into(),
                ))
            });
        };
        let job_key = job_key(&job.pipeline, &job.id);
        let head = SetTask {
            pipeline: job.pipeline.clone(),
            version: job.version,
            job: job.id.clone(),
            datums: Vec::new(),
        };
        tokio::spawn(async move {
            // A resumed job's sets from before are published again from its plan.
            retry(&cancel, "dropping the job's earlier datum sets", {
                let (q, k) = (queue.clone(), job_key.clone());
                move || q.drop_job(&k)
            })
            .await?;
            let window = Arc::new(Semaphore::new(WINDOW));
            let progress = Arc::new(Progress::default());
            let publishing = tokio::spawn(publish_sets(
                queue.clone(),
                head,
                job_key.clone(),
                work,
                window.clone(),
                progress.clone(),
                cancel.clone(),
            ));
            let taken = take_results(&queue, &job_key, &window, &progress, &report, &cancel).await;
            let published = publishing
                .await
                .map_err(task_failed("publish datum sets"))?;
            if cancel.is_cancelled() {
                let (q, k) = (queue.clone(), job_key.clone());
                let _ = tokio::task::spawn_blocking(move || q.drop_job(&k)).await;
            }
            published.and(taken).map(|()| Vec::new())
        })
    }
}

/// Publishes each datum set of `work` (waiting for room in `window`) until the plan ends
/// or the job is cancelled. Losing the store's owner lock cancels the job.
async fn publish_sets(
    queue: Arc<dyn TaskQueue>,
    head: SetTask,
    job_key: String,
    work: WorkQueue,
    window: Arc<Semaphore>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<()> {
    let pool = pool_key(&head.pipeline, head.version);
    let result = loop {
        let room = tokio::select! {
            p = window.acquire() => p,
            () = cancel.cancelled() => break Ok(()),
        };
        let Ok(permit) = room else { break Ok(()) };
        permit.forget();
        let set = tokio::select! {
            s = async { work.lock().await.next_set().await } => s,
            () = cancel.cancelled() => break Ok(()),
        };
        let Some(set) = set else { break Ok(()) };
        let task = SetTask {
            pipeline: head.pipeline.clone(),
            version: head.version,
            job: head.job.clone(),
            datums: set.iter().map(WireTodo::of).collect(),
        };
        let payload = match serde_json::to_vec(&task) {
            Ok(p) => p,
            Err(e) => break Err(PpsError::Usage(format!("encoding a datum set: {e}"))),
        };
        let new = NewTask {
            job: job_key.clone(),
            pool: pool.clone(),
            payload,
        };
        let q = queue.clone();
        if let Err(e) = retry(&cancel, "publishing a datum set", move || {
            q.publish(new.clone())
        })
        .await
        {
            cancel.cancel();
            break Err(e);
        }
        progress.published.fetch_add(1, Ordering::SeqCst);
    };
    progress.all_published.store(true, Ordering::SeqCst);
    result
}

/// Takes the job's completed sets from the queue to `report` until every published set
/// came back, the job is cancelled or the collector is gone.
async fn take_results(
    queue: &Arc<dyn TaskQueue>,
    job_key: &str,
    window: &Semaphore,
    progress: &Progress,
    report: &mpsc::Sender<Msg>,
    cancel: &CancellationToken,
) -> Result<()> {
    let mut taken = 0u64;
    loop {
        let all = progress.all_published.load(Ordering::SeqCst);
        if cancel.is_cancelled() || (all && taken == progress.published.load(Ordering::SeqCst)) {
            return Ok(());
        }
        let (q, k) = (queue.clone(), job_key.to_string());
        let done = retry(cancel, "taking completed datum sets", move || {
            q.take_done(&k, 16)
        })
        .await?;
        if done.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cancel.cancelled() => {}
            }
            continue;
        }
        for (_, bytes) in done {
            taken += 1;
            window.add_permits(1);
            if report.send(decode_result(&bytes)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The collector's message for a set's result bytes: its datums' reports, or the job's
/// failure when a host could not run it or the bytes do not decode.
fn decode_result(bytes: &[u8]) -> Msg {
    let result: SetResult = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => return Msg::PlanFailed(format!("a datum set's result does not decode: {e}")),
    };
    if let Some(e) = result.error {
        return Msg::PlanFailed(e);
    }
    let mut dones = Vec::with_capacity(result.datums.len());
    for d in result.datums {
        match d.into_done() {
            Ok(done) => dones.push(done),
            Err(e) => return Msg::PlanFailed(format!("a datum set's result: {e}")),
        }
    }
    Msg::Set(dones, None)
}

/// Runs the blocking queue call `f` until it succeeds, waiting 1 s doubling to
/// [`MAX_BACKOFF`] between tries and saying so in the log; a lost owner lock is returned at
/// once, and a cancelled job ends the tries with what the last one said.
pub(super) async fn retry<T, F>(cancel: &CancellationToken, what: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: Fn() -> crate::pfs::Result<T> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let mut wait = Duration::from_secs(1);
    loop {
        let call = f.clone();
        let outcome = tokio::task::spawn_blocking(move || call())
            .await
            .map_err(task_failed("work queue call"))?;
        match outcome {
            Ok(v) => return Ok(v),
            Err(e @ PfsError::StoreInUse { .. }) => return Err(e.into()),
            Err(e) if cancel.is_cancelled() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(
                    error = %ErrorChain(&e),
                    "{what} failed; trying again in {} s", wait.as_secs()
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}
