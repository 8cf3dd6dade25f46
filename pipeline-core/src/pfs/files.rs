//! File operations: put (bytes, reader, local file, local directory), delete, copy, get,
//! list, walk, glob, diff, materialise.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::error::{PfsError, Result};
use super::meta::{ChunkedRead, MetaRead, MetaWrite, Reopen, Table};
use super::model::{CommitRef, DiffEntry, FileInfo, FileKind};
use super::names::{join, validate_file_path};
use super::object::Durability;
use super::records::get_commit;
use super::store::Store;
use super::tree::{self, Entry, ListLevel, MergedFiles, Walk, layer_prefix};
use crate::hash::ContentHash;

/// A streaming iterator over tree entries.
pub type FileIter = Box<dyn Iterator<Item = Result<FileInfo>> + Send>;

/// A streaming iterator over diff lines.
pub type DiffIter = Box<dyn Iterator<Item = Result<DiffEntry>> + Send>;

/// What a recursive put or a materialisation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Symlinks skipped (recursive put never follows symlinks).
    pub skipped_symlinks: u64,
    /// Files hard-linked from the object store (materialise only).
    pub linked: u64,
    /// Files not read because the stat cache showed them unchanged and the commit already
    /// held them ([`Store::put_dir_local`] only; counted in `files` and `bytes` too).
    pub unchanged: u64,
}

/// Files recorded per metadata transaction in a recursive put.
const PUT_BATCH: usize = 10_000;

pub(super) fn not_found(commit: &CommitRef, path: &str) -> PfsError {
    PfsError::FileNotFound {
        repo: commit.repo.to_string(),
        commit: commit.id.to_string(),
        path: path.to_string(),
    }
}

fn ensure_open(w: &dyn MetaWrite, commit: &CommitRef) -> Result<()> {
    let rec = get_commit(w, &commit.repo, commit.id.as_str())?;
    if rec.info.is_finished() {
        return Err(PfsError::CommitFinished {
            repo: commit.repo.to_string(),
            commit: commit.id.to_string(),
        });
    }
    Ok(())
}

fn file_key(commit: &CommitRef, path: &str) -> Vec<u8> {
    let mut k = layer_prefix(&commit.repo.key(), commit.id.as_str());
    k.extend_from_slice(path.as_bytes());
    k
}

/// Prefix of every path strictly below directory `path` (`/` → `/`, `/a` → `/a/`).
fn dir_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

impl Store {
    pub(super) fn check_open(&self, commit: &CommitRef) -> Result<()> {
        let r = self.inner.meta.read()?;
        let rec = get_commit(&*r, &commit.repo, commit.id.as_str())?;
        if rec.info.is_finished() {
            return Err(PfsError::CommitFinished {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
            });
        }
        Ok(())
    }

    fn record_files(&self, commit: &CommitRef, files: &[(String, Entry)]) -> Result<()> {
        let mut w = self.write_txn()?;
        ensure_open(&*w, commit)?;
        for (p, e) in files {
            w.put(Table::Files, &file_key(commit, p), &e.encode())?;
        }
        w.commit()
    }

    /// Writes (or overwrites) a file in an open commit from a stream, in bounded memory.
    /// The content is durable before the file entry is committed.
    pub fn put_file(
        &self,
        commit: &CommitRef,
        path: &str,
        reader: &mut dyn Read,
    ) -> Result<FileInfo> {
        let path = validate_file_path(path)?;
        if path == "/" {
            return Err(PfsError::IsADirectory {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
                path,
            });
        }
        self.check_open(commit)?;
        let obj = self.inner.objects.put(reader, Durability::Immediate)?;
        let lock = self.repo_lock(&commit.repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.record_files(
            commit,
            &[(
                path.clone(),
                Entry::File {
                    size: obj.size,
                    hash: obj.hash,
                },
            )],
        )?;
        Ok(FileInfo {
            path,
            kind: FileKind::File,
            size: obj.size,
            hash: obj.hash,
        })
    }

    /// [`Store::put_file`] from bytes in memory.
    pub fn put_file_bytes(&self, commit: &CommitRef, path: &str, bytes: &[u8]) -> Result<FileInfo> {
        self.put_file(commit, path, &mut &*bytes)
    }

    /// [`Store::put_file`] from a local file.
    pub fn put_file_local(&self, commit: &CommitRef, path: &str, local: &Path) -> Result<FileInfo> {
        let mut f = fs::File::open(local).map_err(|e| PfsError::io(local, e))?;
        self.put_file(commit, path, &mut f)
    }

    /// Puts many files into an open commit: each `(path, reader)` is streamed into the
    /// object store with deferred durability, and every 10,000 files one barrier makes the
    /// objects durable before one metadata transaction records them. Much faster than
    /// [`Store::put_file`] per file (which fsyncs each); the engine uploads a datum's outputs
    /// this way. An invalid path fails the call: files of batches already flushed stay
    /// recorded (the commit is still open; retry or delete), the current batch is dropped.
    pub fn put_files<R: Read>(
        &self,
        commit: &CommitRef,
        files: impl IntoIterator<Item = (String, R)>,
    ) -> Result<TransferStats> {
        self.check_open(commit)?;
        let mut stats = TransferStats::default();
        let mut batch: Vec<(String, Entry)> = Vec::new();
        for (path, mut reader) in files {
            let path = validate_file_path(&path)?;
            if path == "/" {
                return Err(PfsError::IsADirectory {
                    repo: commit.repo.to_string(),
                    commit: commit.id.to_string(),
                    path,
                });
            }
            self.stage_file(commit, &mut batch, &mut stats, path, &mut reader)?;
        }
        self.flush_batch(commit, &mut batch)?;
        Ok(stats)
    }

    /// Streams one file into the object store (deferred durability), counts it, and adds its
    /// entry to `batch`, flushing the batch when it is full. Returns its size and hash.
    pub(super) fn stage_file(
        &self,
        commit: &CommitRef,
        batch: &mut Vec<(String, Entry)>,
        stats: &mut TransferStats,
        path: String,
        reader: &mut dyn Read,
    ) -> Result<(u64, ContentHash)> {
        let obj = self.inner.objects.put(reader, Durability::Deferred)?;
        stats.files += 1;
        stats.bytes += obj.size;
        batch.push((
            path,
            Entry::File {
                size: obj.size,
                hash: obj.hash,
            },
        ));
        if batch.len() >= PUT_BATCH {
            self.flush_batch(commit, batch)?;
        }
        Ok((obj.size, obj.hash))
    }

    /// Makes the batch's objects durable, then records its entries in one transaction.
    pub(super) fn flush_batch(
        &self,
        commit: &CommitRef,
        batch: &mut Vec<(String, Entry)>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.objects.barrier()?;
        let lock = self.repo_lock(&commit.repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.record_files(commit, batch)?;
        batch.clear();
        Ok(())
    }

    /// Deletes a file, or a directory and everything below it, from an open commit.
    /// Returns the number of files deleted; a path that does not exist is an error.
    pub fn delete_file(&self, commit: &CommitRef, path: &str) -> Result<u64> {
        let path = validate_file_path(path)?;
        let lock = self.repo_lock(&commit.repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.check_open(commit)?;
        let read = self.inner.meta.read()?;
        let layers = super::commits::layers(&*read, &commit.repo, commit.id.as_str())?;
        let rk = commit.repo.key();
        let mut w = self.write_txn()?;
        ensure_open(&*w, commit)?;
        let mut n = 0u64;
        if path != "/" && tree::lookup(&*read, &rk, &layers, &path)?.is_some() {
            w.put(
                Table::Files,
                &file_key(commit, &path),
                &Entry::Tombstone.encode(),
            )?;
            n += 1;
        }
        for f in MergedFiles::new(&*read, &rk, &layers, &dir_prefix(&path))? {
            let (p, _, _) = f?;
            w.put(
                Table::Files,
                &file_key(commit, &p),
                &Entry::Tombstone.encode(),
            )?;
            n += 1;
        }
        if n == 0 && path != "/" {
            return Err(not_found(commit, &path));
        }
        w.commit()?;
        Ok(n)
    }

    /// Copies a file or directory tree from any commit into an open commit (metadata only:
    /// contents are shared). Returns the number of files copied.
    pub fn copy_file(
        &self,
        src: &CommitRef,
        src_path: &str,
        dst: &CommitRef,
        dst_path: &str,
    ) -> Result<u64> {
        let src_path = validate_file_path(src_path)?;
        let dst_path = validate_file_path(dst_path)?;
        let lock = self.repo_lock(&dst.repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let read = self.inner.meta.read()?;
        let layers = super::commits::layers(&*read, &src.repo, src.id.as_str())?;
        let rk = src.repo.key();
        let mut w = self.write_txn()?;
        ensure_open(&*w, dst)?;
        let mut n = 0u64;
        if let Some((size, hash)) = tree::lookup(&*read, &rk, &layers, &src_path)? {
            w.put(
                Table::Files,
                &file_key(dst, &dst_path),
                &Entry::File { size, hash }.encode(),
            )?;
            n += 1;
        }
        let sp = dir_prefix(&src_path);
        for f in MergedFiles::new(&*read, &rk, &layers, &sp)? {
            let (p, size, hash) = f?;
            let rel = p.get(sp.len()..).unwrap_or_default();
            w.put(
                Table::Files,
                &file_key(dst, &join(&dst_path, rel)),
                &Entry::File { size, hash }.encode(),
            )?;
            n += 1;
        }
        if n == 0 {
            return Err(not_found(src, &src_path));
        }
        w.commit()?;
        Ok(n)
    }

    fn merged(&self, commit: &CommitRef) -> Result<(Box<dyn MetaRead>, Vec<String>)> {
        let read = self.inner.meta.read()?;
        let layers = super::commits::layers(&*read, &commit.repo, commit.id.as_str())?;
        Ok((read, layers))
    }

    /// [`Store::merged`] for a listing streamed to the caller. A finished commit's entries do
    /// not change, so its scans re-open their snapshot as they go ([`ChunkedRead`]): a
    /// listing read for a long time (a job's plan) does not keep the database from reusing
    /// the space later writes free. Such a scan fails if the commit is deleted meanwhile.
    fn merged_for_stream(&self, commit: &CommitRef) -> Result<(Box<dyn MetaRead>, Vec<String>)> {
        let (read, layers) = self.merged(commit)?;
        let rec = get_commit(&*read, &commit.repo, commit.id.as_str())?;
        if !rec.info.is_finished() || !self.inner.meta.snapshots_hold_space() {
            return Ok((read, layers));
        }
        let (store, commit, expected) = (self.clone(), commit.clone(), layers.clone());
        let reopen: Reopen = Arc::new(move || {
            let read = store.inner.meta.read()?;
            let now = super::commits::layers(&*read, &commit.repo, commit.id.as_str())?;
            if now != expected {
                return Err(PfsError::Corrupt(format!(
                    "the layers of finished commit {commit} changed while it was read"
                )));
            }
            Ok(read)
        });
        Ok((Box::new(ChunkedRead::new(read, reopen)), layers))
    }

    /// A file's size and hash (or a directory's, with a trailing `/` in the path).
    pub fn inspect_file(&self, commit: &CommitRef, path: &str) -> Result<FileInfo> {
        let path = validate_file_path(path)?;
        let (read, layers) = self.merged(commit)?;
        if path != "/"
            && let Some((size, hash)) = tree::lookup(&*read, &commit.repo.key(), &layers, &path)?
        {
            return Ok(FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            });
        }
        let dp = dir_prefix(&path);
        let files = MergedFiles::new(&*read, &commit.repo.key(), &layers, &dp)?;
        let mut agg = tree::DirAggregator::new(&dp);
        let mut any = false;
        for f in files {
            let (p, s, h) = f?;
            any = true;
            agg.push(&p, s, &h, &mut |_| Ok(()), &mut |_, _, _| Ok(()))?;
        }
        if !any {
            return Err(not_found(commit, &path));
        }
        let (size, hash) = agg.finish(&mut |_, _, _| Ok(()))?;
        Ok(FileInfo {
            path: dp,
            kind: FileKind::Dir,
            size,
            hash,
        })
    }

    /// Opens a file for streaming reads. The stream is verified as it goes (see
    /// [`super::verify`]): when the stored object does not have the recorded size and hash,
    /// reading ends with an error carrying [`PfsError::ObjectCorrupt`] (see
    /// [`PfsError::from_io`]) instead of EOF, so a caller that reads to the end never
    /// mistakes damaged content for the file. A missing object fails here already.
    pub fn get_file(
        &self,
        commit: &CommitRef,
        path: &str,
    ) -> Result<(FileInfo, Box<dyn Read + Send>)> {
        let info = self.inspect_file(commit, path)?;
        if info.kind == FileKind::Dir {
            return Err(PfsError::IsADirectory {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
                path: info.path,
            });
        }
        let ctx = super::verify::FileCtx::new(commit, &info.path);
        let r = self.open_verified(ctx, info.size, &info.hash)?;
        Ok((info, Box::new(r)))
    }

    /// Lists one level: the file at `path`, or the files and directories directly in it
    /// (directories with size and hash), in path order, streamed.
    pub fn list_file(&self, commit: &CommitRef, path: &str) -> Result<FileIter> {
        let path = validate_file_path(path)?;
        let (read, layers) = self.merged_for_stream(commit)?;
        let rk = commit.repo.key();
        if path != "/"
            && let Some((size, hash)) = tree::lookup(&*read, &rk, &layers, &path)?
        {
            return Ok(Box::new(std::iter::once(Ok(FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            }))));
        }
        let dp = dir_prefix(&path);
        let mut it = ListLevel::new(MergedFiles::new(&*read, &rk, &layers, &dp)?, &dp).peekable();
        if path != "/" && it.peek().is_none() {
            return Err(not_found(commit, &path));
        }
        Ok(Box::new(it))
    }

    /// Every file (not directory) at or below `path`, in path order, streamed.
    pub fn list_file_recursive(&self, commit: &CommitRef, path: &str) -> Result<FileIter> {
        let path = validate_file_path(path)?;
        let (read, layers) = self.merged_for_stream(commit)?;
        let rk = commit.repo.key();
        if path != "/"
            && let Some((size, hash)) = tree::lookup(&*read, &rk, &layers, &path)?
        {
            return Ok(Box::new(std::iter::once(Ok(FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            }))));
        }
        let files = MergedFiles::new(&*read, &rk, &layers, &dir_prefix(&path))?;
        Ok(Box::new(files.map(|f| {
            f.map(|(path, size, hash)| FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            })
        })))
    }

    /// [`Store::list_file_recursive`] from the first file whose path is `>= from`, seeking
    /// straight to it: a page of a huge listing costs the page, not what comes before it.
    pub fn list_file_recursive_from(
        &self,
        commit: &CommitRef,
        path: &str,
        from: &str,
    ) -> Result<FileIter> {
        let path = validate_file_path(path)?;
        let (read, layers) = self.merged_for_stream(commit)?;
        let rk = commit.repo.key();
        if path != "/"
            && let Some((size, hash)) = tree::lookup(&*read, &rk, &layers, &path)?
        {
            let file = (path.as_str() >= from).then_some(Ok(FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            }));
            return Ok(Box::new(file.into_iter()));
        }
        let files = MergedFiles::starting_at(&*read, &rk, &layers, &dir_prefix(&path), from)?;
        Ok(Box::new(files.map(|f| {
            f.map(|(path, size, hash)| FileInfo {
                path,
                kind: FileKind::File,
                size,
                hash,
            })
        })))
    }

    /// The whole tree of a commit (open or finished), streamed in lexicographic path order:
    /// the root `/`, every directory (path ending in `/`, size of everything below, hash by
    /// [`crate::hash::DirectoryHasher`]) and every file (size, BLAKE3). An empty commit yields
    /// nothing. Memory: O(directories), never O(files).
    pub fn walk(&self, commit: &CommitRef) -> Result<FileIter> {
        let (read, layers) = self.merged_for_stream(commit)?;
        let rk = commit.repo.key();
        let p1 = MergedFiles::new(&*read, &rk, &layers, "/")?;
        let p2 = MergedFiles::new(&*read, &rk, &layers, "/")?;
        Ok(Box::new(Walk::new(p1, p2, "/")?))
    }

    /// [`Store::walk`] restricted to directory `dir` (a path ending in `/`): the directory
    /// itself and everything below it, seeking straight to it. Empty when it does not exist.
    pub fn walk_dir(&self, commit: &CommitRef, dir: &str) -> Result<FileIter> {
        let norm = validate_file_path(dir)?;
        let dp = dir_prefix(&norm);
        let (read, layers) = self.merged_for_stream(commit)?;
        let rk = commit.repo.key();
        let p1 = MergedFiles::new(&*read, &rk, &layers, &dp)?;
        let p2 = MergedFiles::new(&*read, &rk, &layers, &dp)?;
        Ok(Box::new(Walk::new(p1, p2, &dp)?))
    }

    /// The walk entries whose path (trailing `/` removed, except for the root) matches a
    /// glob, streamed in path order.
    pub fn glob_file(&self, commit: &CommitRef, pattern: &str) -> Result<FileIter> {
        let matcher = super::globmatch::Matcher::new(pattern)?;
        let walk = self.walk(commit)?;
        Ok(Box::new(walk.filter(move |e| match e {
            Ok(f) => {
                let p = if f.path == "/" {
                    "/"
                } else {
                    f.path.strip_suffix('/').unwrap_or(&f.path)
                };
                matcher.is_match(p)
            }
            Err(_) => true,
        })))
    }

    /// Files that differ between `new` and `old` (added, deleted, modified), in path order,
    /// streamed.
    pub fn diff_file(&self, new: &CommitRef, old: &CommitRef) -> Result<DiffIter> {
        self.diff_path(new, "/", old, "/", false)
    }

    /// Writes the file or directory tree at `path` of a commit into local directory `dest`
    /// (created if absent; `path`'s contents land directly in it; a file lands as
    /// `dest/<name>`). Files are hard-linked from the object store when it is local and on
    /// the same filesystem, else copied; either way they are read-only (mode 0444), and
    /// callers must not make them writable: a hard link shares the stored object.
    ///
    /// Every file is verified against its recorded size and hash first (a hard link only to
    /// an object that passed [`super::object::ObjectStore::verify`], a copy through the
    /// verifying reader); a damaged or missing object fails the call with
    /// [`PfsError::ObjectCorrupt`] naming the file, and a half-copied file is removed.
    pub fn materialize(
        &self,
        commit: &CommitRef,
        path: &str,
        dest: &Path,
    ) -> Result<TransferStats> {
        let path = validate_file_path(path)?;
        fs::create_dir_all(dest).map_err(|e| PfsError::io(dest, e))?;
        let mut stats = TransferStats::default();
        let files = self.list_file_recursive(commit, &path)?;
        let strip = if path == "/" {
            "/".to_string()
        } else {
            match path.rfind('/') {
                Some(i) => path.get(..=i).unwrap_or("/").to_string(),
                None => "/".to_string(),
            }
        };
        let dp = dir_prefix(&path);
        let mut any = false;
        for f in files {
            let f = f?;
            any = true;
            let rel = if let Some(r) = f.path.strip_prefix(&dp) {
                r
            } else {
                f.path.strip_prefix(&strip).unwrap_or(&f.path)
            };
            let target = dest.join(rel);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| PfsError::io(parent, e))?;
            }
            let ctx = super::verify::FileCtx::new(commit, &f.path);
            if self.link_verified(&ctx, &f, &target)? {
                stats.linked += 1;
            } else {
                self.copy_verified(ctx, &f, &target)?;
            }
            stats.files += 1;
            stats.bytes += f.size;
        }
        if !any && path != "/" {
            return Err(not_found(commit, &path));
        }
        Ok(stats)
    }

    /// Whether a *file* is at `path` in `commit`: one lookup, however large a directory
    /// there would be (see [`Store::inspect_file`] for what is there).
    pub fn is_file(&self, commit: &CommitRef, path: &str) -> Result<bool> {
        let path = validate_file_path(path)?;
        let (read, layers) = self.merged(commit)?;
        Ok(path != "/" && tree::lookup(&*read, &commit.repo.key(), &layers, &path)?.is_some())
    }

    /// The hash of the file or directory at `path` (see [`Store::inspect_file`]).
    pub fn hash_of(&self, commit: &CommitRef, path: &str) -> Result<ContentHash> {
        Ok(self.inspect_file(commit, path)?.hash)
    }
}

impl Store {
    /// Hard-links a verified object to `target`; `Ok(false)` when it is not local or the
    /// link cannot be made.
    fn link_verified(
        &self,
        ctx: &super::verify::FileCtx,
        f: &FileInfo,
        target: &Path,
    ) -> Result<bool> {
        let Some(src) = self.verified_path(ctx, f.size, &f.hash)? else {
            return Ok(false);
        };
        // A hard link moves no part of the verification stamp (not the `mtime`).
        Ok(fs::hard_link(&src, target).is_ok())
    }

    /// Copies a file's object to `target` through the verifying reader (read-only result);
    /// removes the partial copy when verification fails.
    fn copy_verified(
        &self,
        ctx: super::verify::FileCtx,
        f: &FileInfo,
        target: &Path,
    ) -> Result<()> {
        let mut r = self.open_verified(ctx, f.size, &f.hash)?;
        let mut out = fs::File::create(target).map_err(|e| PfsError::io(target, e))?;
        if let Err(e) = super::export::copy_buffered(&mut r, &mut out, target) {
            drop(out);
            let _ = fs::remove_file(target);
            return Err(e);
        }
        drop(out);
        let mut perm = fs::metadata(target)
            .map_err(|e| PfsError::io(target, e))?
            .permissions();
        perm.set_readonly(true);
        fs::set_permissions(target, perm).map_err(|e| PfsError::io(target, e))
    }
}
