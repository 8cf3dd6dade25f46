//! Batched writes for the pipeline engine: many output files, exact-path deletions and engine
//! records committed to one open commit in **one** metadata transaction (one fsync), after
//! one object-store barrier. This is what keeps the per-datum cost of the engine low: a job
//! of 10,000 datums commits its outputs in a handful of transactions, not 10,000.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::error::{PfsError, Result};
use super::meta::{KvIter, MetaRead, Table, prefix_end};
use super::model::CommitRef;
use super::names::validate_file_path;
use super::object::Durability;
use super::records::get_commit;
use super::store::Store;
use super::tree::{Entry, layer_prefix};
use crate::hash::ContentHash;

/// Changes to one open commit plus engine records, applied atomically by
/// [`Store::commit_batch`]. Deletions are applied before puts, so a path deleted and put in
/// the same batch ends up present.
#[derive(Debug, Default, Clone)]
pub struct OutputBatch {
    /// Exact file paths to hide (tombstones); no directory recursion.
    pub deletes: Vec<String>,
    /// Files to record: normalised path, size, content hash (the object must exist).
    pub puts: Vec<(String, u64, ContentHash)>,
    /// Engine-table writes: key → `Some(value)` to set, `None` to delete.
    pub records: EngineWrite,
    /// Engine records that have a secondary-index entry derived from their value: when one
    /// of `records` writes such a key, the index key of its **previous** value (as `IndexOf`
    /// computes it) is deleted first, so that writing a record again leaves no stale index
    /// entry. Write the new index entry after the record, as an ordinary write in `records`.
    pub reindex: Vec<(Vec<u8>, IndexOf)>,
}

/// The secondary-index key of an engine record, from its key and value (`None`: none).
pub type IndexOf = fn(&[u8], &[u8]) -> Option<Vec<u8>>;

/// A read view of the engine records, from [`Store::engine_reader`].
pub struct EngineReader(Box<dyn MetaRead>);

impl EngineReader {
    /// One engine record, as of when the view was made.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(Table::Engine, key)
    }

    /// Every engine record with `start <= key < end`, in key order, streamed from this view:
    /// a page that starts after a cursor costs the page, not what precedes it.
    pub fn scan_range(&self, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.0.scan(Table::Engine, start, end)
    }

    /// [`EngineReader::scan_range`], last key first.
    pub fn scan_range_rev(&self, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.0.scan_rev(Table::Engine, start, end)
    }
}

impl std::fmt::Debug for EngineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineReader")
    }
}

/// A list of engine-table writes (`None` deletes the key).
pub type EngineWrite = Vec<(Vec<u8>, Option<Vec<u8>>)>;

impl OutputBatch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty()
            && self.puts.is_empty()
            && self.records.is_empty()
            && self.reindex.is_empty()
    }
}

impl Store {
    /// Stores the contents of a local file as an object with **deferred** durability (made
    /// durable by the barrier of the next [`Store::commit_batch`]). Returns size and hash.
    pub fn put_object_deferred(&self, local: &Path) -> Result<(u64, ContentHash)> {
        let mut f = fs::File::open(local).map_err(|e| PfsError::io(local, e))?;
        let obj = self.inner.objects.put(&mut f, Durability::Deferred)?;
        Ok((obj.size, obj.hash))
    }

    /// Applies a batch: one object barrier, then one transaction that checks `commit` is
    /// open (when it has deletes or puts) and writes tombstones, file entries and engine
    /// records. Paths are validated; a bad one fails the whole batch.
    pub fn commit_batch(&self, commit: Option<&CommitRef>, batch: &OutputBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let touches_files = !batch.deletes.is_empty() || !batch.puts.is_empty();
        if !batch.puts.is_empty() {
            self.inner.objects.barrier()?;
        }
        let lock = commit.map(|c| self.repo_lock(&c.repo));
        let _g = lock
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()));
        let mut w = self.write_txn()?;
        if touches_files {
            let commit = commit.ok_or_else(|| {
                PfsError::Corrupt("a batch with file changes needs a commit".into())
            })?;
            let rec = get_commit(&*w, &commit.repo, commit.id.as_str())?;
            if rec.info.is_finished() {
                return Err(PfsError::CommitFinished {
                    repo: commit.repo.to_string(),
                    commit: commit.id.to_string(),
                });
            }
            let prefix = layer_prefix(&commit.repo.key(), commit.id.as_str());
            let key = |p: &str| {
                let mut k = prefix.clone();
                k.extend_from_slice(p.as_bytes());
                k
            };
            for p in &batch.deletes {
                let p = validate_file_path(p)?;
                w.put(Table::Files, &key(&p), &Entry::Tombstone.encode())?;
            }
            for (p, size, hash) in &batch.puts {
                let p = validate_file_path(p)?;
                let e = Entry::File {
                    size: *size,
                    hash: *hash,
                };
                w.put(Table::Files, &key(&p), &e.encode())?;
            }
        }
        let reindexed: HashMap<&[u8], IndexOf> = batch
            .reindex
            .iter()
            .map(|(k, f)| (k.as_slice(), *f))
            .collect();
        for (k, v) in &batch.records {
            // Read in the transaction, so a record written twice in one batch is handled.
            if let Some(index_of) = reindexed.get(k.as_slice())
                && let Some(old) = w.get(Table::Engine, k)?
                && let Some(stale) = index_of(k, &old)
            {
                w.delete(Table::Engine, &stale)?;
            }
            match v {
                Some(v) => w.put(Table::Engine, k, v)?,
                None => w.delete(Table::Engine, k)?,
            }
        }
        w.commit()
    }

    /// Writes engine records in one transaction.
    pub fn engine_write(&self, records: EngineWrite) -> Result<()> {
        self.commit_batch(
            None,
            &OutputBatch {
                records,
                ..Default::default()
            },
        )
    }

    /// One engine record.
    pub fn engine_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.meta.read()?.get(Table::Engine, key)
    }

    /// A consistent view of the engine records (one read transaction) for many lookups.
    /// Hold it briefly: while it lives, pages freed by later writes cannot be reused.
    pub fn engine_reader(&self) -> Result<EngineReader> {
        Ok(EngineReader(self.inner.meta.read()?))
    }

    /// Every engine record whose key starts with `prefix`, in key order, streamed.
    pub fn engine_scan(&self, prefix: &[u8]) -> Result<KvIter> {
        self.inner
            .meta
            .read()?
            .scan(Table::Engine, prefix, &prefix_end(prefix))
    }

    /// Every engine record whose key starts with `prefix`, last key first, streamed.
    pub fn engine_scan_rev(&self, prefix: &[u8]) -> Result<KvIter> {
        self.inner
            .meta
            .read()?
            .scan_rev(Table::Engine, prefix, &prefix_end(prefix))
    }
}
