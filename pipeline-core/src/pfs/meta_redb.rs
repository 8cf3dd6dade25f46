//! [`MetaStore`] on redb: one file, MVCC snapshot readers, one writer at a time, every
//! commit fsynced (`Durability::Immediate`).
//!
//! Chosen over rusqlite after this crate's own kill -9 test (`tests/pfs_crash.rs`, ≥100
//! SIGKILLs of a writer in the middle of puts and finishes, reopen without repair, every
//! finished commit byte-identical) and because it is pure Rust with a tiny dependency tree
//! and a stable file format. redb's range iterators own their snapshot, which is exactly the
//! streaming-scan shape [`MetaRead::scan`] needs. rusqlite stays the fallback if queries turn
//! relational; sled is not an option (beta, format change pending).
//!
//! **Panics are contained here.** redb trusts its file: some damaged files (random bytes
//! flipped in `meta.redb`) make it panic (an index out of bounds, a failed assertion)
//! instead of returning an error. Every call into redb therefore runs under
//! [`std::panic::catch_unwind`], and a panic becomes [`PfsError::MetaCorrupt`] naming the
//! file, so a damaged database is an error the caller can report, never a crashed process.
//! The panic hook still prints redb's message on stderr. A transaction that panicked is
//! dropped, which discards it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::error::{PfsError, Result};
use super::meta::{Kv, KvIter, MetaRead, MetaStore, MetaWrite, Table};

/// Page cache of the database. redb's default (1 GiB) would let a scan of a huge commit
/// grow the process by the size of what it read. 32 MiB (64 MiB before) keeps memory flat
/// and low: a 1,000,000-datum job's datum records are ~1.6 GB of random-keyed leaves, far
/// beyond either size, and the time per datum did not change measurably with half of it
/// (`benches/README.md`, "Engine per datum").
const CACHE_BYTES: usize = 32 << 20;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

fn def(t: Table) -> Def {
    TableDefinition::new(t.name())
}

/// The embedded metadata database (redb).
#[derive(Debug)]
pub struct RedbMetaStore {
    /// Always `Some` until dropped (taken out to drop it under the guard).
    db: Option<redb::Database>,
    path: Arc<PathBuf>,
}

impl Drop for RedbMetaStore {
    /// redb commits its allocator state when the database closes, which can panic on a
    /// damaged file too: closing is guarded like every other call. While the thread is
    /// already unwinding, a second panic would abort the process, so then the database is
    /// leaked instead of closed (redb repairs its allocator state at the next open).
    fn drop(&mut self) {
        let Some(db) = self.db.take() else {
            return;
        };
        if std::thread::panicking() {
            std::mem::forget(db);
            return;
        }
        if let Err(e) = guard(&self.path, move || {
            drop(db);
            Ok(())
        }) {
            tracing::warn!(error = %e, "closing the metadata database failed");
        }
    }
}

/// Runs `f` (calls into redb), turning a panic into [`PfsError::MetaCorrupt`] for `path`.
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PfsError::MetaCorrupt {
                root: path.to_path_buf(),
                reason: format!(
                    "the metadata database is corrupt (the database library failed: {msg}); \
                     restore it from a backup"
                ),
            })
        }
    }
}

impl RedbMetaStore {
    /// Opens (or creates) the database file and makes sure every table exists.
    ///
    /// redb recovers by itself after a crash (it may take a moment to repair its allocator
    /// state); no manual step is ever needed.
    pub fn open(path: &Path) -> Result<Self> {
        guard(path, || Self::open_unguarded(path))
    }

    fn open_unguarded(path: &Path) -> Result<Self> {
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| PfsError::meta(format!("opening {}", path.display()), e))?;
        let txn = db
            .begin_write()
            .map_err(|e| PfsError::meta("begin write", e))?;
        for t in Table::ALL {
            txn.open_table(def(t))
                .map_err(|e| PfsError::meta(format!("creating table {}", t.name()), e))?;
        }
        txn.commit().map_err(|e| PfsError::meta("commit", e))?;
        Ok(RedbMetaStore {
            db: Some(db),
            path: Arc::new(path.to_path_buf()),
        })
    }
}

impl RedbMetaStore {
    fn db(&self) -> Result<&redb::Database> {
        self.db
            .as_ref()
            .ok_or_else(|| PfsError::Corrupt("metadata database already closed".into()))
    }
}

struct RedbRead {
    txn: redb::ReadTransaction,
    path: Arc<PathBuf>,
}

impl MetaRead for RedbRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        guard(&self.path, || {
            let t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            let v = t
                .get(key)
                .map_err(|e| PfsError::meta(format!("read {}", table.name()), e))?;
            Ok(v.map(|g| g.value().to_vec()))
        })
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.range(table, start, end, false)
    }

    fn scan_rev(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        self.range(table, start, end, true)
    }
}

impl RedbRead {
    /// A guarded range scan, forwards or last key first.
    fn range(&self, table: Table, start: &[u8], end: &[u8], reverse: bool) -> Result<KvIter> {
        let range = guard(&self.path, || {
            let t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            t.range::<&[u8]>(start..end)
                .map_err(|e| PfsError::meta(format!("scan {}", table.name()), e))
        })?;
        Ok(Box::new(GuardedScan {
            range: Some(range),
            reverse,
            name: table.name(),
            path: self.path.clone(),
        }))
    }
}

/// A range scan whose every step is guarded (see the module docs); it ends after an error.
struct GuardedScan {
    range: Option<redb::Range<'static, &'static [u8], &'static [u8]>>,
    /// Last key first.
    reverse: bool,
    name: &'static str,
    path: Arc<PathBuf>,
}

impl Iterator for GuardedScan {
    type Item = Result<Kv>;
    fn next(&mut self) -> Option<Result<Kv>> {
        let range = self.range.as_mut()?;
        let name = self.name;
        let reverse = self.reverse;
        let item = guard(&self.path, || {
            let step = if reverse {
                range.next_back()
            } else {
                range.next()
            };
            Ok(step.map(|r| {
                r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                    .map_err(|e| PfsError::meta(format!("scan {name}"), e))
            }))
        });
        match item {
            Ok(Some(Ok(kv))) => Some(Ok(kv)),
            Ok(None) => {
                self.range = None;
                None
            }
            Ok(Some(Err(e))) | Err(e) => {
                self.range = None;
                Some(Err(e))
            }
        }
    }
}

struct RedbWrite {
    txn: redb::WriteTransaction,
    path: Arc<PathBuf>,
}

impl MetaWrite for RedbWrite {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        guard(&self.path, || {
            let t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            let v = t
                .get(key)
                .map_err(|e| PfsError::meta(format!("read {}", table.name()), e))?;
            Ok(v.map(|g| g.value().to_vec()))
        })
    }

    fn scan_collect(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Kv>> {
        guard(&self.path, || {
            let t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            let mut out = Vec::new();
            for r in t
                .range::<&[u8]>(start..end)
                .map_err(|e| PfsError::meta(format!("scan {}", table.name()), e))?
            {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = r.map_err(|e| PfsError::meta(format!("scan {}", table.name()), e))?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        let path = self.path.clone();
        guard(&path, || {
            let mut t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            t.insert(key, value)
                .map_err(|e| PfsError::meta(format!("write {}", table.name()), e))?;
            Ok(())
        })
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()> {
        let path = self.path.clone();
        guard(&path, || {
            let mut t = self
                .txn
                .open_table(def(table))
                .map_err(|e| PfsError::meta(format!("open table {}", table.name()), e))?;
            t.remove(key)
                .map_err(|e| PfsError::meta(format!("delete from {}", table.name()), e))?;
            Ok(())
        })
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let path = self.path.clone();
        guard(&path, move || {
            self.txn.commit().map_err(|e| PfsError::meta("commit", e))
        })
    }
}

impl MetaStore for RedbMetaStore {
    fn read(&self) -> Result<Box<dyn MetaRead>> {
        let txn = guard(&self.path, || {
            self.db()?
                .begin_read()
                .map_err(|e| PfsError::meta("begin read", e))
        })?;
        Ok(Box::new(RedbRead {
            txn,
            path: self.path.clone(),
        }))
    }

    /// redb copies every page a write changes and frees the old one only once no snapshot
    /// older than that write is alive.
    fn snapshots_hold_space(&self) -> bool {
        true
    }

    fn write(&self) -> Result<Box<dyn MetaWrite + '_>> {
        let txn = guard(&self.path, || {
            self.db()?
                .begin_write()
                .map_err(|e| PfsError::meta("begin write", e))
        })?;
        Ok(Box::new(RedbWrite {
            txn,
            path: self.path.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::meta::{ChunkedRead, Reopen};

    /// `n` keys `k000000`... in the engine table, one transaction.
    fn fill(db: &RedbMetaStore, n: usize) {
        let mut w = db.write().expect("write");
        for i in 0..n {
            w.put(Table::Engine, format!("k{i:06}").as_bytes(), b"v")
                .expect("put");
        }
        w.commit().expect("commit");
    }

    fn chunked(db: &Arc<RedbMetaStore>) -> ChunkedRead {
        let again = db.clone();
        let reopen: Reopen = Arc::new(move || again.read());
        ChunkedRead::new(db.read().expect("read"), reopen)
    }

    /// Rewrites the same 200 records of 3,000 bytes (one per page, outside the `k` range)
    /// in one transaction: each round copies about 200 pages and frees as many.
    fn churn(db: &RedbMetaStore, round: usize) {
        let mut w = db.write().expect("write");
        for j in 0..200usize {
            w.put(
                Table::Engine,
                format!("r{j:04}").as_bytes(),
                &[round as u8; 3000],
            )
            .expect("put");
        }
        w.commit().expect("commit");
    }

    /// A chunked scan sees every key once, in order, forwards and backwards, across the
    /// snapshots it re-opens (3,000 keys: five chunks), while other keys are written.
    #[test]
    fn chunked_scans_see_every_key_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(RedbMetaStore::open(&dir.path().join("m.redb")).expect("open"));
        fill(&db, 3000);
        let read = chunked(&db);
        let keys = |it: KvIter| -> Vec<Vec<u8>> { it.map(|kv| kv.expect("kv").0).collect() };
        let mut forward = Vec::new();
        for (i, kv) in read
            .scan(Table::Engine, b"k", b"l")
            .expect("scan")
            .enumerate()
        {
            forward.push(kv.expect("kv").0);
            if i % 500 == 0 {
                churn(&db, i);
            }
        }
        let expected: Vec<Vec<u8>> = (0..3000).map(|i| format!("k{i:06}").into_bytes()).collect();
        assert_eq!(forward, expected);
        let mut backward = keys(read.scan_rev(Table::Engine, b"k", b"l").expect("scan"));
        backward.reverse();
        assert_eq!(backward, expected);
    }

    /// The reason for chunks: writes while a long scan is alive. With one snapshot held for
    /// the whole scan, every page the writes copy stays allocated and the file grows by all
    /// of them; with chunked scans (one read steadily, one idle) the database reuses them.
    #[test]
    fn a_long_chunked_scan_lets_the_database_reuse_freed_pages() {
        let grown = |chunks: bool| -> u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("m.redb");
            let db = Arc::new(RedbMetaStore::open(&path).expect("open"));
            fill(&db, 20_000);
            churn(&db, 0);
            let before = std::fs::metadata(&path).expect("size").len();
            let open = || {
                if chunks {
                    chunked(&db).scan(Table::Engine, b"k", b"l")
                } else {
                    db.read().expect("read").scan(Table::Engine, b"k", b"l")
                }
                .expect("scan")
            };
            let mut scan = open();
            // A scan left idle after its first pair (as one layer's cursor of a merge is
            // while the others are read) must not hold its snapshot either.
            let mut idle = open();
            idle.next().expect("a key").expect("kv");
            for round in 1..=40 {
                for _ in 0..500 {
                    scan.next().expect("more keys").expect("kv");
                }
                churn(&db, round);
            }
            drop(idle);
            std::fs::metadata(&path).expect("size").len() - before
        };
        let (held, resumed) = (grown(false), grown(true));
        println!("file growth: one snapshot {held} bytes, chunked {resumed} bytes");
        assert!(
            resumed * 5 < held,
            "file growth with a chunked scan {resumed} bytes, with one snapshot {held} bytes"
        );
    }
}
