//! The metadata store: an ordered, transactional key-value interface.
//!
//! The data store keeps its metadata (repos, branches, commits, commit sets and per-commit
//! file entries) in a handful of ordered tables of byte keys and byte values. Everything the
//! store needs from a database is in [`MetaStore`]: snapshot reads with streaming range scans,
//! and serialisable write transactions that commit atomically and durably. That is small
//! enough for a server database (PostgreSQL, FoundationDB, TiKV...) to implement later
//! without touching the store or the engine.
//!
//! The embedded default is [`RedbMetaStore`](super::RedbMetaStore) (feature `store-redb`).

use std::sync::Arc;

use super::error::Result;

/// The tables of the metadata store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `project/repo` → repo record.
    Repos,
    /// `project/repo \0 branch` → branch record.
    Branches,
    /// `project/repo \0 commit-id` → commit record.
    Commits,
    /// `commit-id \0 project/repo` → empty (commit-set index).
    CommitSets,
    /// `project/repo \0 commit-id \0 /path` → file entry or tombstone.
    Files,
    /// `project` → project record (`default` and projects older repos name exist without
    /// one; see `pfs/projects.rs`).
    Projects,
    /// Records of the pipeline engine (`crate::pps`): pipelines, jobs, datums, logs. Kept in
    /// the same database so that engine records and output files commit atomically.
    Engine,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 7] = [
        Table::Repos,
        Table::Branches,
        Table::Commits,
        Table::CommitSets,
        Table::Files,
        Table::Engine,
        Table::Projects,
    ];

    /// A stable name for the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Repos => "repos",
            Table::Branches => "branches",
            Table::Commits => "commits",
            Table::CommitSets => "commit_sets",
            Table::Files => "files",
            Table::Engine => "engine",
            Table::Projects => "projects",
        }
    }
}

/// A key-value pair.
pub type Kv = (Vec<u8>, Vec<u8>);

/// A streaming range scan.
pub type KvIter = Box<dyn Iterator<Item = Result<Kv>> + Send>;

/// A consistent read snapshot.
pub trait MetaRead: Send {
    /// The value at `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every pair with `start <= key < end` in key order, streamed; the iterator owns what
    /// it needs and sees this snapshot even while writers commit.
    fn scan(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter>;
    /// The same pairs as [`MetaRead::scan`], last key first (for tails of long ranges).
    fn scan_rev(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter>;
}

/// A write transaction. Nothing is visible to readers until [`MetaWrite::commit`] returns,
/// and then everything is, durably. Dropping it without committing discards it.
pub trait MetaWrite {
    /// The value at `key` as this transaction sees it.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Up to `limit` pairs with `start <= key < end`, as this transaction sees them.
    fn scan_collect(&self, table: Table, start: &[u8], end: &[u8], limit: usize)
    -> Result<Vec<Kv>>;
    /// Sets `key` to `value`.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key` (no error if absent).
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()>;
    /// Commits atomically and durably.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A transactional, ordered key-value database.
pub trait MetaStore: Send + Sync + 'static {
    /// A read snapshot.
    fn read(&self) -> Result<Box<dyn MetaRead>>;
    /// A write transaction (one at a time; a second caller waits).
    fn write(&self) -> Result<Box<dyn MetaWrite + '_>>;
    /// Whether a read snapshot kept open keeps the database from reusing the space that
    /// writes free meanwhile (copy-on-write B-trees: redb). Long scans of data that does not
    /// change are then read in chunks, each from a fresh snapshot.
    fn snapshots_hold_space(&self) -> bool {
        false
    }

    /// Whether a store opened exclusively lost its ownership since (its owner session on the
    /// server ended: every further write is refused). `false` for a store owned through a
    /// lock file, which cannot be lost.
    fn ownership_lost(&self) -> bool {
        false
    }

    /// The queue of datum sets that engine hosts sharing this store claim, when the store
    /// can be shared by several hosts (PostgreSQL); `None` for a store one process owns.
    fn work_queue(&self) -> Option<Arc<dyn super::work_queue::WorkQueue>> {
        None
    }
}

/// Opens a fresh read snapshot for a [`ChunkedRead`], first checking in it that what is
/// being read is still what the first snapshot held (else an error, which ends the scan).
pub(crate) type Reopen = Arc<dyn Fn() -> Result<Box<dyn MetaRead>> + Send + Sync>;

/// Pairs a [`ChunkedRead`] scan reads from one snapshot.
const CHUNK: usize = 512;

/// A read view for long scans of keys that do not change while they exist (the file entries
/// of a finished commit): each scan reads [`CHUNK`] pairs at a time, each chunk from a fresh
/// snapshot (going on after the last key read), and holds no snapshot between chunks.
///
/// Why: redb reuses a page freed by a write only once no snapshot older than that write is
/// alive. A scan that holds one snapshot for a whole job (the planner's walk of an input
/// commit; or one layer's cursor of that walk, waiting idle while the other layers are
/// merged) would keep every page the job's transactions copy allocated: the database would
/// grow by all of them instead of by what the job records. `reopen` checks at each chunk
/// that the data is unchanged; point reads use the first snapshot.
pub(crate) struct ChunkedRead {
    first: Box<dyn MetaRead>,
    reopen: Reopen,
}

impl ChunkedRead {
    /// A view starting at snapshot `first`.
    pub(crate) fn new(first: Box<dyn MetaRead>, reopen: Reopen) -> Self {
        ChunkedRead { first, reopen }
    }

    fn chunked(&self, table: Table, start: &[u8], end: &[u8], reverse: bool) -> Result<KvIter> {
        let mut scan = ChunkedScan {
            chunk: Vec::new().into_iter(),
            reopen: self.reopen.clone(),
            table,
            start: start.to_vec(),
            end: end.to_vec(),
            reverse,
            last: None,
            exhausted: false,
        };
        // The first chunk comes from the view's own snapshot (and fails here, as a plain
        // scan would).
        scan.read_chunk(&*self.first)?;
        Ok(Box::new(scan))
    }
}

impl MetaRead for ChunkedRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.first.get(table, key)
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.chunked(table, start, end, false)
    }

    fn scan_rev(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.chunked(table, start, end, true)
    }
}

/// A scan of a [`ChunkedRead`]; it ends after an error.
struct ChunkedScan {
    /// What is left of the chunk read last.
    chunk: std::vec::IntoIter<Kv>,
    reopen: Reopen,
    table: Table,
    start: Vec<u8>,
    end: Vec<u8>,
    /// Last key first.
    reverse: bool,
    /// The last key read (the end of the chunk).
    last: Option<Vec<u8>>,
    /// The range has no more pairs beyond the chunk (or the scan failed).
    exhausted: bool,
}

impl ChunkedScan {
    /// Reads the next chunk (after [`ChunkedScan::last`]) from `read`.
    fn read_chunk(&mut self, read: &dyn MetaRead) -> Result<()> {
        let pairs = match (&self.last, self.reverse) {
            (None, false) => read.scan(self.table, &self.start, &self.end)?,
            (None, true) => read.scan_rev(self.table, &self.start, &self.end)?,
            (Some(last), false) => {
                let mut after = last.clone();
                after.push(0);
                read.scan(self.table, &after, &self.end)?
            }
            (Some(last), true) => read.scan_rev(self.table, &self.start, last)?,
        };
        let chunk = pairs.take(CHUNK).collect::<Result<Vec<Kv>>>()?;
        self.exhausted = chunk.len() < CHUNK;
        if let Some((k, _)) = chunk.last() {
            self.last = Some(k.clone());
        }
        self.chunk = chunk.into_iter();
        Ok(())
    }
}

impl Iterator for ChunkedScan {
    type Item = Result<Kv>;

    fn next(&mut self) -> Option<Result<Kv>> {
        if let Some(kv) = self.chunk.next() {
            return Some(Ok(kv));
        }
        if self.exhausted {
            return None;
        }
        let read = (self.reopen)().and_then(|read| self.read_chunk(&*read));
        match read {
            Ok(()) => self.chunk.next().map(Ok),
            Err(e) => {
                self.exhausted = true;
                Some(Err(e))
            }
        }
    }
}

/// Removes every key in `[start, end)` of `table`, in batches.
pub(crate) fn delete_range(
    w: &mut dyn MetaWrite,
    table: Table,
    start: &[u8],
    end: &[u8],
) -> Result<()> {
    loop {
        let batch = w.scan_collect(table, start, end, 10_000)?;
        if batch.is_empty() {
            return Ok(());
        }
        for (k, _) in batch {
            w.delete(table, &k)?;
        }
    }
}

/// The exclusive upper bound of every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}
