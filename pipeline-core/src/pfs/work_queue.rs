//! [`WorkQueue`]: datum sets shared by the engine hosts of one store. The host that owns
//! the store (the leader) publishes a job's sets; any host, the leader included, claims one
//! with a lease, runs it and completes it with its result; the leader takes the results and
//! records them. Payloads and results are opaque bytes here (the engine's `pps::cluster`
//! gives them meaning).
//!
//! Guarantees every implementation gives:
//! - A task is held by at most one claim at a time; a claim whose lease ran out (its host
//!   died or was cut off) can be claimed again, and the earlier claim then can neither renew
//!   nor complete it.
//! - A task is completed at most once, and [`WorkQueue::take_done`] hands each result out
//!   once (it deletes what it returns).
//! - Lease times are the server's clock, so hosts' clocks need not agree.

use std::time::Duration;

use super::error::Result;

/// A task's row number in the queue.
pub type TaskId = i64;

/// A task to publish.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The job it belongs to (what [`WorkQueue::take_done`] and [`WorkQueue::drop_job`] name).
    pub job: String,
    /// Which warm workers run it: hosts claim per pool.
    pub pool: String,
    /// What to run.
    pub payload: Vec<u8>,
}

/// A claimed task: what to run and the claim that may renew and complete it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The claim.
    pub claim: Claim,
    /// What to run.
    pub payload: Vec<u8>,
}

/// One claim of a task by one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The task.
    pub task: TaskId,
    /// The claiming host's name.
    pub host: String,
    /// Which claim of the task this is (1 for the first).
    pub number: i32,
}

/// Datum sets shared by the engine hosts of one store (see the module docs).
pub trait WorkQueue: Send + Sync {
    /// Adds a task; the caller must still own the store (a publisher that lost it is refused
    /// with [`PfsError::StoreInUse`](super::PfsError::StoreInUse)).
    fn publish(&self, task: NewTask) -> Result<TaskId>;

    /// The pools that have tasks waiting for a host (never claimed, or whose lease ran out).
    fn pools_waiting(&self) -> Result<Vec<String>>;

    /// Claims the oldest waiting task of `pool` for `host` for `lease`, if any.
    fn claim(&self, pool: &str, host: &str, lease: Duration) -> Result<Option<Claimed>>;

    /// Extends `claim`'s lease by `lease` from now; `false` when the claim was lost (the task
    /// was claimed again, completed or dropped): its host must stop running it.
    fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool>;

    /// Completes `claim`'s task with `result`; `false` when the claim was lost (the result is
    /// then discarded: another claim runs or ran the task).
    fn complete(&self, claim: &Claim, result: &[u8]) -> Result<bool>;

    /// Removes and returns up to `limit` completed tasks of `job`, oldest first.
    fn take_done(&self, job: &str, limit: usize) -> Result<Vec<(TaskId, Vec<u8>)>>;

    /// How many tasks of `job` are not yet taken (waiting, running or completed).
    fn outstanding(&self, job: &str) -> Result<u64>;

    /// Removes every task of `job` (a stopped job, or one its leader resumes).
    fn drop_job(&self, job: &str) -> Result<()>;

    /// Removes every task (a new leader starts over: it resumes its jobs and publishes
    /// their sets again).
    fn drop_all(&self) -> Result<()>;

    /// Records that `host` is working for the store now.
    fn heartbeat(&self, host: &str) -> Result<()>;

    /// How many hosts sent a heartbeat within `window` (at least 1: the caller).
    fn live_hosts(&self, window: Duration) -> Result<u64>;
}
