//! [`StoreTxn`]: one metadata transaction in which repos, branches, commits and engine records
//! change together.
//!
//! [`Store::transact`] opens the metadata store's write transaction (the same one every store
//! call uses), hands it to a closure as a [`StoreTxn`], and commits it when the closure
//! returns `Ok`: either every change the closure made becomes visible, durably, or none does.
//! The engine creates and deletes a pipeline this way, so a crash never leaves an output repo
//! without its pipeline or a pipeline without its repo.
//!
//! The typed operations live beside the concept they change: repos and branches in `store`,
//! commits in `commits`, triggers in `trigger`; engine records (opaque keys and values owned
//! by `crate::pps`) are here.

use super::error::{PfsError, Result};
use super::meta::{Kv, MetaWrite, Table, delete_range, prefix_end};
use super::model::CommitId;
use super::store::Store;

/// A write transaction over the store's metadata, from [`Store::transact`].
///
/// Reads see the transaction's own writes. Nothing is visible to other readers until the
/// closure given to [`Store::transact`] returns `Ok`; an `Err` (or a panic, or a crash)
/// discards everything. File contents are not written here (objects are written before the
/// transaction that records them).
pub struct StoreTxn<'s> {
    pub(crate) w: Box<dyn MetaWrite + 's>,
    /// The commit-set ID every commit this transaction starts gets (set by
    /// [`StoreTxn::use_commit_set`]); `None`: a new ID per operation.
    pub(crate) commit_set: Option<CommitId>,
}

impl std::fmt::Debug for StoreTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTxn")
    }
}

impl Store {
    /// Runs `f` in one metadata transaction and commits it when `f` returns `Ok`.
    ///
    /// One writer at a time: a second `transact` (or any other metadata write of this store)
    /// waits. Keep `f` short and free of slow I/O; do not call other `Store` methods that write
    /// from inside it (they would wait for this transaction).
    ///
    /// ```
    /// use pipeline_core::pfs::{RepoRef, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// let (a, b) = (RepoRef::new("a").unwrap(), RepoRef::new("b").unwrap());
    /// store
    ///     .transact(|txn| -> pipeline_core::pfs::Result<()> {
    ///         txn.create_repo(&a, "")?;
    ///         txn.create_branch(&a.branch("master")?, None, &[])?;
    ///         txn.create_repo(&b, "")?;
    ///         txn.create_branch(&b.branch("master")?, None, &[a.branch("master")?])?;
    ///         txn.engine_put(b"my/record", b"{}")
    ///     })
    ///     .unwrap();
    /// assert_eq!(store.list_repos().unwrap().len(), 2);
    ///
    /// // An error discards everything the closure did.
    /// let c = RepoRef::new("c").unwrap();
    /// let failed = store.transact(|txn| {
    ///     txn.create_repo(&c, "")?;
    ///     txn.create_repo(&a, "") // exists: RepoExists
    /// });
    /// assert!(failed.is_err());
    /// assert!(store.inspect_repo(&c).is_err());
    /// ```
    pub fn transact<T, E>(
        &self,
        f: impl FnOnce(&mut StoreTxn<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<PfsError>,
    {
        let mut txn = StoreTxn {
            w: self.write_txn()?,
            commit_set: None,
        };
        let out = f(&mut txn)?;
        txn.w.commit()?;
        Ok(out)
    }
}

impl StoreTxn<'_> {
    /// From now on, every commit this transaction starts (`start_commit`, a branch's new
    /// provenance, `propagate_branches`) belongs to commit set `id`, so several operations
    /// make **one** commit set: a branch downstream of several changed branches gets one
    /// commit whose provenance names each of their new heads (what a Pachyderm transaction
    /// does). A repo can still have only one commit in the set.
    pub fn use_commit_set(&mut self, id: CommitId) {
        self.commit_set = Some(id);
    }

    /// The ID for a commit set this transaction starts: the one of
    /// [`StoreTxn::use_commit_set`], else a new one.
    pub(crate) fn next_commit_set(&self) -> CommitId {
        self.commit_set.clone().unwrap_or_else(CommitId::generate)
    }

    /// One engine record, as this transaction sees it.
    pub fn engine_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.w.get(Table::Engine, key)
    }

    /// Up to `limit` engine records whose key starts with `prefix`, in key order.
    pub fn engine_scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<Kv>> {
        self.w
            .scan_collect(Table::Engine, prefix, &prefix_end(prefix), limit)
    }

    /// Up to `limit` engine records with `start <= key < end`, in key order (to walk a long
    /// range in bounded batches, one transaction each).
    pub fn engine_scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Kv>> {
        self.w.scan_collect(Table::Engine, start, end, limit)
    }

    /// Sets an engine record.
    pub fn engine_put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.w.put(Table::Engine, key, value)
    }

    /// Removes an engine record (no error if absent).
    pub fn engine_delete(&mut self, key: &[u8]) -> Result<()> {
        self.w.delete(Table::Engine, key)
    }

    /// Removes every engine record whose key starts with `prefix`.
    pub fn engine_delete_prefix(&mut self, prefix: &[u8]) -> Result<()> {
        delete_range(&mut *self.w, Table::Engine, prefix, &prefix_end(prefix))
    }
}
