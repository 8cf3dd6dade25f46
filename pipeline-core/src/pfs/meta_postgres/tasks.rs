//! The [`WorkQueue`] of a store on PostgreSQL: table `datum_tasks` (migration 3).
//!
//! Claims use `FOR UPDATE SKIP LOCKED`, so hosts claiming at once never wait on each other
//! nor take the same row; a claim is `holder`, `claims` (its number) and `lease_until`,
//! compared on the server's clock. Renewing and completing match all three of `id`,
//! `holder` and `claims`, so a host whose lease ran out and was claimed again changes
//! nothing. Publishing checks the owner fence (as every write of the exclusive store does),
//! so a host that lost the store cannot hand out work.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::ToSql;

use super::shared::{Fence, Shared};
use super::sql;
use crate::pfs::error::{PfsError, Result};
use crate::pfs::work_queue::{Claim, Claimed, NewTask, TaskId, WorkQueue};

/// The store's task queue.
pub(super) struct PgWorkQueue {
    pub(super) shared: Arc<Shared>,
}

/// `true` where the owner session still holds the owner lock `f` (SQL; numbers we made).
fn fence_holds(f: Fence) -> String {
    let (class, obj) = sql::lock_parts(f.key);
    format!(
        "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND pid = {} AND classid = {class} AND objid = {obj} AND objsubid = 1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        f.backend_pid
    )
}

/// Seconds of `d`, as the `float8` the lease arithmetic takes.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PgWorkQueue {
    /// Runs one statement with `params` and returns its rows.
    fn query(
        &self,
        operation: &'static str,
        statement: String,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let shared = self.shared.clone();
        self.shared.call(operation, async move {
            let client = shared.clone().connection().await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client
                .query(statement.as_str(), &refs)
                .await
                .map_err(|e| shared.error(operation, e))
        })
    }
}

impl PgWorkQueue {
    /// Sets `assignments` (whose one parameter is `$4`, `value`) on `claim`'s task while the
    /// claim holds (same id, holder and claim number; not yet completed); whether it did.
    fn update_claimed(
        &self,
        operation: &'static str,
        assignments: &str,
        claim: &Claim,
        value: Box<dyn ToSql + Send + Sync>,
    ) -> Result<bool> {
        let rows = self.query(
            operation,
            format!(
                "UPDATE datum_tasks SET {assignments} WHERE id = $1 AND holder = $2 \
                 AND claims = $3 AND result IS NULL RETURNING id"
            ),
            vec![
                Box::new(claim.task),
                Box::new(claim.host.clone()),
                Box::new(claim.number),
                value,
            ],
        )?;
        Ok(!rows.is_empty())
    }
}

impl WorkQueue for PgWorkQueue {
    fn publish(&self, task: NewTask) -> Result<TaskId> {
        let guard = self
            .shared
            .fence
            .map_or_else(|| "true".to_string(), fence_holds);
        let rows = self.query(
            "publishing a datum task",
            format!(
                "INSERT INTO datum_tasks (job, pool, payload) SELECT $1, $2, $3 \
                 WHERE {guard} RETURNING id"
            ),
            vec![
                Box::new(task.job),
                Box::new(task.pool),
                Box::new(task.payload),
            ],
        )?;
        match rows.first() {
            Some(row) => Ok(row.get(0)),
            None => Err(PfsError::StoreInUse {
                store: self.shared.server.clone(),
                holder: "another process, since this one lost its connection to the server; \
                         reopen the store"
                    .into(),
            }),
        }
    }

    fn pools_waiting(&self) -> Result<Vec<String>> {
        let rows = self.query(
            "listing waiting datum tasks",
            "SELECT DISTINCT pool FROM datum_tasks WHERE result IS NULL \
             AND (holder IS NULL OR lease_until < now())"
                .into(),
            vec![],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn claim(&self, pool: &str, host: &str, lease: Duration) -> Result<Option<Claimed>> {
        let rows = self.query(
            "claiming a datum task",
            "UPDATE datum_tasks SET holder = $2, claims = claims + 1, \
             lease_until = now() + make_interval(secs => $3) \
             WHERE id = (SELECT id FROM datum_tasks WHERE pool = $1 AND result IS NULL \
             AND (holder IS NULL OR lease_until < now()) ORDER BY id LIMIT 1 \
             FOR UPDATE SKIP LOCKED) RETURNING id, claims, payload"
                .into(),
            vec![
                Box::new(pool.to_string()),
                Box::new(host.to_string()),
                Box::new(secs(lease)),
            ],
        )?;
        Ok(rows.first().map(|r| Claimed {
            claim: Claim {
                task: r.get(0),
                host: host.to_string(),
                number: r.get(1),
            },
            payload: r.get(2),
        }))
    }

    fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool> {
        self.update_claimed(
            "renewing a datum task's lease",
            "lease_until = now() + make_interval(secs => $4)",
            claim,
            Box::new(secs(lease)),
        )
    }

    fn complete(&self, claim: &Claim, result: &[u8]) -> Result<bool> {
        self.update_claimed(
            "completing a datum task",
            "result = $4, lease_until = NULL",
            claim,
            Box::new(result.to_vec()),
        )
    }

    fn take_done(&self, job: &str, limit: usize) -> Result<Vec<(TaskId, Vec<u8>)>> {
        let rows = self.query(
            "taking finished datum tasks",
            "DELETE FROM datum_tasks WHERE id IN (SELECT id FROM datum_tasks \
             WHERE job = $1 AND result IS NOT NULL ORDER BY id LIMIT $2) \
             RETURNING id, result"
                .into(),
            vec![
                Box::new(job.to_string()),
                Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )?;
        let mut done: Vec<(TaskId, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        done.sort_by_key(|(id, _)| *id);
        Ok(done)
    }

    fn outstanding(&self, job: &str) -> Result<u64> {
        let rows = self.query(
            "counting datum tasks",
            "SELECT count(*) FROM datum_tasks WHERE job = $1".into(),
            vec![Box::new(job.to_string())],
        )?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn drop_job(&self, job: &str) -> Result<()> {
        self.query(
            "dropping a job's datum tasks",
            "DELETE FROM datum_tasks WHERE job = $1".into(),
            vec![Box::new(job.to_string())],
        )
        .map(drop)
    }

    fn drop_all(&self) -> Result<()> {
        self.query(
            "dropping datum tasks",
            "DELETE FROM datum_tasks".into(),
            vec![],
        )
        .map(drop)
    }

    fn heartbeat(&self, host: &str) -> Result<()> {
        self.query(
            "recording a host's heartbeat",
            "INSERT INTO engine_hosts (name, seen) VALUES ($1, now()) \
             ON CONFLICT (name) DO UPDATE SET seen = now()"
                .into(),
            vec![Box::new(host.to_string())],
        )
        .map(drop)
    }

    fn live_hosts(&self, window: Duration) -> Result<u64> {
        let rows = self.query(
            "counting live hosts",
            "SELECT count(*) FROM engine_hosts \
             WHERE seen > now() - make_interval(secs => $1)"
                .into(),
            vec![Box::new(secs(window))],
        )?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(u64::try_from(n).unwrap_or(0).max(1))
    }
}
