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
    /// Records of the pipeline engine (`crate::pps`): pipelines, jobs, datums, logs. Kept in
    /// the same database so that engine records and output files commit atomically.
    Engine,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 6] = [
        Table::Repos,
        Table::Branches,
        Table::Commits,
        Table::CommitSets,
        Table::Files,
        Table::Engine,
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
