//! Recursive put of a local directory ([`Store::put_dir_local`]) that reads only the files
//! that changed since the last put of the same directory to the same place.
//!
//! One pass merges three streams in path order: the local walk ([`super::local_tree`]),
//! the stat cache of the last put ([`super::stat_cache`]) and the files the commit already
//! holds below the destination. A file whose `lstat` matches its cached record, and whose
//! cached hash is what the commit already holds at its path, is neither opened nor written
//! again: the commit's tree comes out identical to a put that reads everything.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::{PfsError, Result};
use super::files::{FileIter, TransferStats};
use super::local_tree::{LocalFile, LocalTree};
use super::model::CommitRef;
use super::names::{join, validate_file_path};
use super::stat_cache::{CacheReader, CacheWriter, LocalStat, cache_path};
use super::store::Store;
use super::tree::Entry;
use crate::hash::ContentHash;

impl Store {
    /// Puts every regular file below local directory `local` under `path` in the commit.
    ///
    /// Symlinks are **never followed** (not even ones pointing inside the directory): they
    /// are skipped and counted in [`TransferStats::skipped_symlinks`], so nothing outside
    /// `local` can be read through them. Names that are not valid file names are an error
    /// naming the local path. Objects are written with deferred durability and made durable
    /// by one barrier per batch of 10,000 files, before that batch's metadata commits.
    /// `progress` is called with the bytes put so far.
    ///
    /// Re-puts read only what changed: for a store in a directory ([`Store::open`]), a stat
    /// cache per (repo, branch, `path`, `local`) remembers which hash each local file had
    /// at which size, mtime, ctime, inode and device; a file that still has them, and whose
    /// hash the commit already holds at its path, is not read (counted in
    /// [`TransferStats::unchanged`]). See [`super::stat_cache`] for exactly what that
    /// trusts and why a damaged cache can only cost a re-read.
    pub fn put_dir_local(
        &self,
        commit: &CommitRef,
        path: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<TransferStats> {
        let base = validate_file_path(path)?;
        self.check_open(commit)?;
        let meta = fs::symlink_metadata(local).map_err(|e| PfsError::io(local, e))?;
        if !meta.is_dir() {
            return Err(PfsError::LocalPath {
                path: local.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let mut cache = self.sync_cache(commit, &base, local)?;
        let mut held = HeldFiles::new(self.list_file_recursive(commit, &base)?);
        let mut walk = LocalTree::new(local)?;
        let mut stats = TransferStats::default();
        let mut batch: Vec<(String, Entry)> = Vec::new();
        for file in walk.by_ref() {
            let file = file?;
            let path = join(&base, &file.rel);
            let stat = LocalStat::of(&file.meta);
            let cached = cache.hash_if_unchanged(&file.rel, &stat);
            if let Some(hash) = cached
                && held.holds(&path, stat.size, &hash)?
            {
                stats.unchanged += 1;
                stats.files += 1;
                stats.bytes += stat.size;
                cache.record(&file.rel, &stat, &hash);
            } else if let Some((read_stat, hash)) =
                self.put_local_file(commit, &mut batch, &mut stats, path, &file)?
            {
                cache.record(&file.rel, &read_stat, &hash);
            }
            progress(stats.bytes);
        }
        stats.skipped_symlinks = walk.skipped_symlinks();
        self.flush_batch(commit, &mut batch)?;
        cache.commit();
        Ok(stats)
    }

    /// Reads one local file into the batch. Returns the stat of what was read (taken on the
    /// open file, before reading) and its hash when the whole file was read as it was
    /// stat-ed; `None` when it is no longer a regular file (skipped like one) or changed
    /// size while it was read (put as read, not cached).
    fn put_local_file(
        &self,
        commit: &CommitRef,
        batch: &mut Vec<(String, Entry)>,
        stats: &mut TransferStats,
        path: String,
        file: &LocalFile,
    ) -> Result<Option<(LocalStat, ContentHash)>> {
        let local = file.path();
        let mut f = open_no_follow(&local)?;
        let meta = f.metadata().map_err(|e| PfsError::io(&local, e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let stat = LocalStat::of(&meta);
        let (size, hash) = self.stage_file(commit, batch, stats, path, &mut f)?;
        Ok((size == stat.size).then_some((stat, hash)))
    }

    /// The stat cache of a put of `local` to `base` in `commit`: none for a store that is
    /// not in a directory, or when it cannot be set up (logged; every file is then read).
    fn sync_cache(&self, commit: &CommitRef, base: &str, local: &Path) -> Result<SyncCache> {
        let Some(root) = self.inner.root.as_deref() else {
            return Ok(SyncCache::none());
        };
        let local = fs::canonicalize(local).map_err(|e| PfsError::io(local, e))?;
        let target = self
            .inspect_commit(commit)?
            .branch
            .unwrap_or_else(|| commit.id.to_string());
        let key = format!(
            "{}\0{target}\0{base}\0{}",
            commit.repo.key(),
            local.to_string_lossy()
        );
        let dest = cache_path(root, &key);
        let writer = match CacheWriter::create(&dest, &key) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a stat cache; every file is read");
                return Ok(SyncCache::none());
            }
        };
        Ok(SyncCache {
            reader: CacheReader::open(&dest, &key),
            writer: Some(writer),
        })
    }
}

/// Opens a local file for reading without following a symlink (one may have replaced it
/// since the walk) and without blocking on a FIFO.
fn open_no_follow(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| PfsError::io(path, e))
}

/// The last put's stat cache (to read) and the next one (being written).
struct SyncCache {
    reader: Option<CacheReader>,
    writer: Option<CacheWriter>,
}

impl SyncCache {
    fn none() -> Self {
        SyncCache {
            reader: None,
            writer: None,
        }
    }

    /// The cached hash of `rel` when its record has exactly `stat`.
    fn hash_if_unchanged(&mut self, rel: &str, stat: &LocalStat) -> Option<ContentHash> {
        let (cached, hash) = self.reader.as_mut()?.find(rel)?;
        (cached == *stat).then_some(hash)
    }

    fn record(&mut self, rel: &str, stat: &LocalStat, hash: &ContentHash) {
        if let Some(w) = self.writer.as_mut() {
            w.record(rel, stat, hash);
        }
    }

    /// Replaces the last put's cache with the one written now (after a successful put).
    fn commit(self) {
        if let Some(w) = self.writer {
            w.commit();
        }
    }
}

/// The files a commit holds below the destination, looked up in path order.
struct HeldFiles {
    files: std::iter::Peekable<FileIter>,
}

impl HeldFiles {
    fn new(files: FileIter) -> Self {
        HeldFiles {
            files: files.peekable(),
        }
    }

    /// Whether the commit holds `path` with this size and hash. Calls must come in
    /// increasing path order.
    fn holds(&mut self, path: &str, size: u64, hash: &ContentHash) -> Result<bool> {
        loop {
            match self.files.peek() {
                None => return Ok(false),
                Some(Ok(f)) if f.path.as_str() < path => {}
                Some(Ok(f)) => return Ok(f.path == path && f.size == size && f.hash == *hash),
                Some(Err(_)) => {
                    return match self.files.next() {
                        Some(Err(e)) => Err(e),
                        _ => Ok(false),
                    };
                }
            }
            self.files.next();
        }
    }
}
