//! Write transactions: `READ COMMITTED` behind one advisory lock per store, so that writers
//! run one at a time across processes and hosts; puts and deletes are buffered and sent in
//! batches.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, MutexGuard};

use tokio_postgres::SimpleQueryMessage;

use super::read::{get_on, range_on};
use super::shared::{Aborted, Fence, Shared, TxnConn};
use super::sql;
use crate::pfs::error::{PfsError, Result};
use crate::pfs::meta::{Kv, MetaWrite, Table};

/// Buffered bytes (keys and values) that make a write send what it holds.
const FLUSH_BYTES: usize = 8 << 20;
/// Keys per statement when sending.
const BATCH_KEYS: usize = 2_000;

/// Changes not sent yet: per table, key → new value (`None`: delete). The last change of a
/// key wins, so no statement names a key twice.
type Pending = HashMap<Table, Changes>;

/// The buffered changes of one table: key → new value (`None`: delete).
type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A write transaction.
pub(super) struct PgWrite<'a> {
    conn: Arc<TxnConn>,
    pending: RefCell<Pending>,
    pending_bytes: Cell<usize>,
    /// A statement failed: the server has aborted the transaction, and a `COMMIT` would
    /// quietly roll it back, so [`MetaWrite::commit`] refuses.
    failed: Cell<bool>,
    /// Held for the transaction's life (see [`Shared::writer`]).
    _turn: MutexGuard<'a, ()>,
}

impl<'a> PgWrite<'a> {
    /// Waits for this process's turn, then for the store's advisory lock, in a new
    /// transaction; for an exclusive store, checks that it still owns the store.
    pub(super) fn begin(shared: &'a Arc<Shared>) -> Result<PgWrite<'a>> {
        let turn = shared.writer.lock().unwrap_or_else(|e| e.into_inner());
        let owner = shared.clone();
        let conn = shared.call("starting a write", async move {
            // Wrapped first: if BEGIN fails half-way, dropping it rolls back.
            let conn = TxnConn::new(owner.clone().connection().await?, owner.clone());
            let begin = begin_sql(owner.writer_key, owner.fence);
            let replies = conn
                .client()?
                .simple_query(&begin)
                .await
                .map_err(|e| owner.error("starting a write", e))?;
            if owner.fence.is_some() && !fence_held(&replies) {
                return Err(PfsError::StoreInUse {
                    store: owner.server.clone(),
                    holder: "another process, since this one lost its connection to the \
                             server; reopen the store"
                        .into(),
                });
            }
            Ok(conn)
        })?;
        Ok(PgWrite {
            conn: Arc::new(conn),
            pending: RefCell::new(HashMap::new()),
            pending_bytes: Cell::new(0),
            failed: Cell::new(false),
            _turn: turn,
        })
    }

    /// Sends the buffered changes of `table` (all tables when `None`).
    fn flush(&self, table: Option<Table>) -> Result<()> {
        let taken: Vec<(Table, Changes)> = {
            let mut pending = self.pending.borrow_mut();
            let tables: Vec<Table> = match table {
                Some(t) => vec![t],
                None => pending.keys().copied().collect(),
            };
            tables
                .into_iter()
                .filter_map(|t| pending.remove(&t).map(|c| (t, c)))
                .collect()
        };
        if self.pending.borrow().is_empty() {
            self.pending_bytes.set(0);
        }
        for (t, changes) in taken {
            let (mut puts, mut deletes) = (Vec::new(), Vec::new());
            for (k, v) in changes {
                match v {
                    Some(v) => puts.push((k, v)),
                    None => deletes.push(k),
                }
            }
            for chunk in deletes.chunks(BATCH_KEYS) {
                self.send(t, chunk.to_vec(), None)?;
            }
            for chunk in puts.chunks(BATCH_KEYS) {
                let (keys, values) = chunk.iter().cloned().unzip();
                self.send(t, keys, Some(values))?;
            }
        }
        Ok(())
    }

    /// `r`, remembering a failure (see [`PgWrite::failed`]).
    fn watch<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed.set(true);
        }
        r
    }

    /// One statement: upserts `keys` with `values`, or deletes `keys`.
    fn send(&self, table: Table, keys: Vec<Vec<u8>>, values: Option<Vec<Vec<u8>>>) -> Result<()> {
        let c = self.conn.clone();
        let op = format!("writing {}", table.name());
        let sent = self.conn.shared().call(&op.clone(), async move {
            let client = c.client()?;
            let text = match values {
                Some(_) => sql::upsert(table),
                None => sql::delete(table),
            };
            let stmt = client
                .prepare_cached(&text)
                .await
                .map_err(|e| c.shared().error(op.clone(), e))?;
            let done = match &values {
                Some(values) => client.execute(&stmt, &[&keys, values]).await,
                None => client.execute(&stmt, &[&keys]).await,
            };
            done.map_err(|e| c.shared().error(op.clone(), e))?;
            Ok(())
        });
        self.watch(sent)
    }

    fn buffer(&mut self, table: Table, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.pending_bytes
            .set(self.pending_bytes.get() + key.len() + value.map_or(0, <[u8]>::len));
        self.pending
            .borrow_mut()
            .entry(table)
            .or_default()
            .insert(key.to_vec(), value.map(<[u8]>::to_vec));
        if self.pending_bytes.get() >= FLUSH_BYTES {
            self.flush(None)?;
        }
        Ok(())
    }
}

/// `BEGIN` in `READ COMMITTED`, durable commit, the writer lock, and for an exclusive store
/// the check that its owner session still holds the owner lock (one round trip; every value
/// is a number we made).
fn begin_sql(writer_key: i64, fence: Option<Fence>) -> String {
    let mut q = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO on; \
         SELECT pg_advisory_xact_lock({writer_key});"
    );
    if let Some(f) = fence {
        let (class, obj) = sql::lock_parts(f.key);
        q.push_str(&format!(
            " SELECT count(*) AS held FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = {} AND classid = {class} AND objid = {obj} AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database());",
            f.backend_pid
        ));
    }
    q
}

/// Whether the fence query of [`begin_sql`] found the owner lock held.
fn fence_held(replies: &[SimpleQueryMessage]) -> bool {
    replies.iter().rev().any(|m| match m {
        SimpleQueryMessage::Row(row) => row.get("held").is_some_and(|n| n != "0"),
        _ => false,
    })
}

impl MetaWrite for PgWrite<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(change) = self.pending.borrow().get(&table).and_then(|t| t.get(key)) {
            return Ok(change.clone());
        }
        self.watch(get_on(&self.conn, table, key))
    }

    fn scan_collect(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Kv>> {
        // Changes of this table go to the database first, so the scan sees them.
        self.flush(Some(table))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.watch(range_on(&self.conn, table, (start, end), false, limit))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.buffer(table, key, Some(value))
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()> {
        self.buffer(table, key, None)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.flush(None)?;
        if self.failed.get() {
            return Err(self.conn.shared().error("committing", Aborted));
        }
        let c = self.conn.clone();
        self.conn.shared().call("committing", async move {
            c.client()?
                .batch_execute("COMMIT")
                .await
                .map_err(|e| c.shared().error("committing", e))?;
            c.finished();
            Ok(())
        })
    }
}
