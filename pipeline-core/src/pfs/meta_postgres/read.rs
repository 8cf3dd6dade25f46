//! Read snapshots: one pooled connection in a `REPEATABLE READ, READ ONLY` transaction, and
//! range scans that read it a page at a time (keyset pagination).

use std::sync::Arc;

use tokio_postgres::types::ToSql;

use super::shared::{Shared, TxnConn};
use super::sql;
use crate::pfs::error::Result;
use crate::pfs::meta::{Kv, KvIter, MetaRead, Table};

/// Pairs the first page of a scan reads (many scans stop after a few pairs).
const FIRST_PAGE: i64 = 64;
/// Pairs each later page reads.
const PAGE: i64 = 512;

/// A consistent snapshot of the store.
pub(super) struct PgRead {
    conn: Arc<TxnConn>,
}

impl PgRead {
    /// Starts a snapshot. The `SELECT 1` takes the snapshot now: a `REPEATABLE READ`
    /// transaction takes it at its first statement, not at `BEGIN`.
    pub(super) fn begin(shared: &Arc<Shared>) -> Result<PgRead> {
        let owner = shared.clone();
        let conn = shared.call("starting a read snapshot", async move {
            // Wrapped first: if BEGIN fails half-way, dropping it rolls back.
            let conn = TxnConn::new(owner.clone().connection().await?, owner.clone());
            conn.client()?
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1")
                .await
                .map_err(|e| owner.error("starting a read snapshot", e))?;
            Ok(conn)
        })?;
        Ok(PgRead {
            conn: Arc::new(conn),
        })
    }
}

/// The value at `key` of `table` on a connection inside a transaction.
pub(super) fn get_on(conn: &Arc<TxnConn>, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let (c, key) = (conn.clone(), key.to_vec());
    let op = format!("reading {}", table.name());
    conn.shared().call(&op.clone(), async move {
        let client = c.client()?;
        let stmt = client
            .prepare_cached(&sql::get(table))
            .await
            .map_err(|e| c.shared().error(op.clone(), e))?;
        let row = client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(|e| c.shared().error(op.clone(), e))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    })
}

/// Up to `limit` pairs with `start <= key < end` (last key first when `reverse`).
pub(super) fn range_on(
    conn: &Arc<TxnConn>,
    table: Table,
    (start, end): (&[u8], &[u8]),
    reverse: bool,
    limit: i64,
) -> Result<Vec<Kv>> {
    let (c, start, end) = (conn.clone(), start.to_vec(), end.to_vec());
    let op = format!("scanning {}", table.name());
    conn.shared().call(&op.clone(), async move {
        let client = c.client()?;
        let stmt = client
            .prepare_cached(&sql::range(table, reverse))
            .await
            .map_err(|e| c.shared().error(op.clone(), e))?;
        let params: [&(dyn ToSql + Sync); 3] = [&start, &end, &limit];
        let rows = client
            .query(&stmt, &params)
            .await
            .map_err(|e| c.shared().error(op.clone(), e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    })
}

impl MetaRead for PgRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_on(&self.conn, table, key)
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        Ok(Box::new(PgScan::new(
            self.conn.clone(),
            table,
            start,
            end,
            false,
        )))
    }

    fn scan_rev(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        Ok(Box::new(PgScan::new(
            self.conn.clone(),
            table,
            start,
            end,
            true,
        )))
    }
}

/// A range scan of a snapshot, a page at a time: each page starts after the last key of the
/// one before (keyset pagination), so memory holds one page, never the range. It keeps its
/// snapshot (and connection) alive until dropped, and ends after an error.
struct PgScan {
    conn: Arc<TxnConn>,
    table: Table,
    /// What is left of the range: `[start, end)`.
    start: Vec<u8>,
    end: Vec<u8>,
    reverse: bool,
    page: std::vec::IntoIter<Kv>,
    next_page: i64,
    exhausted: bool,
}

impl PgScan {
    fn new(conn: Arc<TxnConn>, table: Table, start: &[u8], end: &[u8], reverse: bool) -> Self {
        PgScan {
            conn,
            table,
            start: start.to_vec(),
            end: end.to_vec(),
            reverse,
            page: Vec::new().into_iter(),
            next_page: FIRST_PAGE,
            exhausted: start >= end,
        }
    }

    /// Reads the next page and narrows the range past it.
    fn fetch(&mut self) -> Result<()> {
        let limit = self.next_page;
        self.next_page = PAGE;
        let rows = range_on(
            &self.conn,
            self.table,
            (&self.start, &self.end),
            self.reverse,
            limit,
        )?;
        self.exhausted = (rows.len() as i64) < limit;
        if let Some((last, _)) = rows.last() {
            if self.reverse {
                self.end = last.clone();
            } else {
                let mut after = last.clone();
                after.push(0);
                self.start = after;
            }
        }
        self.page = rows.into_iter();
        Ok(())
    }
}

impl Iterator for PgScan {
    type Item = Result<Kv>;

    fn next(&mut self) -> Option<Result<Kv>> {
        loop {
            if let Some(kv) = self.page.next() {
                return Some(Ok(kv));
            }
            if self.exhausted {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.exhausted = true;
                return Some(Err(e));
            }
        }
    }
}
