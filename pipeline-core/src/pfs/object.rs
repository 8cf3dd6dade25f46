//! The object store: file contents, named by their BLAKE3 hash, written once.
//!
//! [`ObjectStore`] is what the data store needs from a blob store; a cloud backend (the
//! `object_store` crate's S3/GCS/Azure stores, with `PutMode::Create` for write-once) can
//! implement it later. [`LocalObjectStore`] is the embedded default.
//!
//! # Local layout and durability
//!
//! `objects/<first 2 hex>/<remaining 62 hex>`, mode `0444`, never modified in place. A put
//! reads the first 1 MiB of the reader. Content that ends within it (most files) is hashed
//! first and written straight under its hash name, created exclusively (`O_EXCL`): no temp
//! file, no rename. Longer content streams into `objects/tmp/<unique>` through that buffer
//! while it is hashed (bounded memory for any file size) and is renamed to its hash name.
//! Either way:
//!
//! - [`Durability::Immediate`]: fsync the file (before the rename), fsync the fan-out
//!   directory. The object is durable when `put` returns. A large object is flushed in
//!   steps while it streams (`writeback`), so that fsync waits only for its tail.
//! - [`Durability::Deferred`]: no fsync; the caller must call
//!   [`ObjectStore::barrier`] (one `syncfs(2)` for the whole batch) **before** committing
//!   metadata that references the objects. Bulk puts (a directory of 100,000 files) use this.
//!
//! If the hash name already exists with the right size **and its content hashes to its name**
//! (checked once per store handle, see below) the new copy is dropped (dedup across repos
//! and commits). A crash while an object is written under its hash name leaves at worst a
//! short or damaged file there that nothing refers to (metadata is committed only after
//! the barrier): it fails the next put's check and is replaced as below. An existing object that fails the size or hash check (truncated by a power
//! loss before its batch's barrier, or damaged on disk) is repaired by renaming the new,
//! correct copy over it (atomic: readers see the old or the new file, never a mix). Temp files left by a
//! crash are removed when the store is opened. Metadata is only ever committed after the
//! objects it names are durable, so a crash leaves at worst unreferenced objects, which
//! [`Store::gc`](super::Store::gc) removes.
//!
//! # Verification and its memo
//!
//! [`ObjectStore::verify`] hashes an object and compares it with its name. The local store
//! remembers, per handle, each object it has verified together with the file's device,
//! inode, size and modification time (`mtime`, to the nanosecond): any write or truncation
//! through the filesystem moves the `mtime` and a rename over the file changes the inode, so
//! the memo no longer matches and the next use hashes the file again. The store's own
//! changes of the `mtime` (refreshing a reused object for gc's grace period) are followed by
//! [`ObjectStore::touched`], which re-reads the stamp of an object still verified.
//! Not the change time (`ctime`): every hard link made or removed moves it, so each datum's
//! scratch directory being cleared would force a re-hash of every input it shared (a model
//! file crossed with ten thousand images would be read ten thousand times). Writing without
//! moving the `mtime` takes setting it back explicitly, which only the store's owner (or
//! root) can do, and they can rewrite the metadata as well: outside what the store defends
//! against. User code cannot write objects at all (see the process executor's sandbox).

//! # Permissions
//!
//! Every directory is created with mode 0700; temp files and objects are created 0444 (the
//! writing handle stays writable; nobody can open them for writing later). Only the store's
//! owner can reach any of them.
//!
//! A deduplicated put sets the existing object's modification time to now: garbage
//! collection keeps objects written or reused within its grace period, so an object being
//! put for a commit that is not yet recorded is never collected under it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{PfsError, Result};
use super::private::private_dir;
use super::writeback::{self, EarlyWriteback};
use crate::hash::{ContentHash, FileHasher};

/// When an object must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Durable when the put returns.
    Immediate,
    /// Durable after the next [`ObjectStore::barrier`].
    Deferred,
}

/// The result of storing one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    /// BLAKE3 of the bytes.
    pub hash: ContentHash,
    /// Number of bytes.
    pub size: u64,
    /// `false` when an identical object was already stored (deduplicated).
    pub new: bool,
}

/// One stored object, as garbage collection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedObject {
    /// The object's hash.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written or reused by a deduplicated put.
    pub modified: std::time::SystemTime,
}

/// The state of one stored object, as [`ObjectStore::verify`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// The content hashes to the object's name.
    Intact {
        /// Its size in bytes.
        size: u64,
    },
    /// No object with that hash is stored.
    Missing,
    /// The content does not hash to the object's name.
    Corrupt {
        /// Its size in bytes.
        size: u64,
        /// BLAKE3 of what is stored.
        found: ContentHash,
    },
}

/// A content-addressed, write-once blob store.
pub trait ObjectStore: Send + Sync + 'static {
    /// Streams `reader` into the store; returns its hash and size. Memory use is bounded.
    fn put(&self, reader: &mut dyn Read, durability: Durability) -> Result<StoredObject>;
    /// Makes every earlier [`Durability::Deferred`] put durable.
    fn barrier(&self) -> Result<()>;
    /// Opens an object for streaming reads.
    fn open(&self, hash: &ContentHash) -> Result<Box<dyn Read + Send>>;
    /// Whether the object exists.
    fn contains(&self, hash: &ContentHash) -> Result<bool>;
    /// A local file holding the object, when the store is on the local disk (used to
    /// hard-link objects into scratch directories).
    fn local_path(&self, hash: &ContentHash) -> Option<PathBuf>;
    /// Every stored object, streamed (for garbage collection).
    fn list(&self) -> Box<dyn Iterator<Item = Result<ListedObject>> + '_>;
    /// Removes an object (only garbage collection calls this).
    fn remove(&self, hash: &ContentHash) -> Result<()>;
    /// Hashes an object and compares it with its name. The default streams it through
    /// [`ObjectStore::open`]; a store may remember what it verified (the local one does).
    fn verify(&self, hash: &ContentHash) -> Result<ObjectState> {
        let mut r = match self.open(hash) {
            Ok(r) => r,
            Err(PfsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(ObjectState::Missing);
            }
            Err(e) => return Err(e),
        };
        let (size, found) = hash_stream(&mut *r).map_err(|e| PfsError::io(hash.to_hex(), e))?;
        Ok(if found == *hash {
            ObjectState::Intact { size }
        } else {
            ObjectState::Corrupt { size, found }
        })
    }
    /// Tells the store that its caller moved the `mtime` of a verified object itself (a
    /// refresh for gc's grace period): the verification memo follows. Default: nothing.
    fn touched(&self, _hash: &ContentHash) {}
    /// Forgets that an object was verified, so the next [`ObjectStore::verify`] hashes it
    /// again (a full check must also catch damage that left the file's stamp unchanged,
    /// such as bit rot). Default: nothing.
    fn forget(&self, _hash: &ContentHash) {}
    /// Moves a damaged object out of the way (into the store's `lost+found`), so that a put
    /// of the right content stores it afresh; never deletes it. Returns where it went, or
    /// `None` when this store cannot move objects aside (then nothing changed).
    fn quarantine(&self, _hash: &ContentHash) -> Result<Option<PathBuf>> {
        Ok(None)
    }
}

/// Runs `f` with the thread's 1 MiB streaming buffer (reused: no allocation per file).
pub(crate) fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    BUFFER.with_borrow_mut(|buf| {
        buf.resize(BUF, 0);
        f(buf.as_mut_slice())
    })
}

/// Size and BLAKE3 of everything `r` yields.
pub(crate) fn hash_stream(r: &mut dyn Read) -> io::Result<(u64, ContentHash)> {
    // Its own buffer: a put verifies an existing object while it holds `BUFFER`.
    HASH_BUFFER.with_borrow_mut(|buf| {
        buf.resize(BUF, 0);
        let mut hasher = FileHasher::new();
        let mut size = 0u64;
        loop {
            let n = match r.read(buf.as_mut_slice()) {
                Ok(0) => return Ok((size, hasher.finish())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(buf.get(..n).unwrap_or_default());
            size += n as u64;
        }
    })
}

/// What identifies one version of a file's content on disk: a write moves its `mtime`, a
/// replacement changes its inode (see the module docs for why not `ctime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// The embedded object store on a local directory.
#[derive(Debug)]
pub struct LocalObjectStore {
    root: PathBuf,
    tmp: PathBuf,
    lost: PathBuf,
    /// Objects verified through this handle, with the stamp of the file that was verified.
    verified: Mutex<Memo>,
}

/// Most objects the verification memo remembers. A job that reads a million inputs once
/// each would otherwise keep a million entries (over 100 MB); objects read again and
/// again (a model crossed with every image) stay remembered.
const MEMO_ENTRIES: usize = 1 << 14;

/// The verification memo, bounded: two generations of at most [`MEMO_ENTRIES`] / 2 entries.
/// When the young one is full it becomes the old one (the previous old one is forgotten);
/// an entry found in the old generation moves back to the young one. Forgetting only costs
/// a re-hash at the next use.
#[derive(Debug, Default)]
struct Memo {
    young: HashMap<ContentHash, Stamp>,
    old: HashMap<ContentHash, Stamp>,
}

impl Memo {
    /// The stamp remembered for `hash`, moved to the young generation.
    fn get_mut(&mut self, hash: &ContentHash) -> Option<&mut Stamp> {
        if !self.young.contains_key(hash) {
            let s = self.old.remove(hash)?;
            self.insert(*hash, s);
        }
        self.young.get_mut(hash)
    }

    fn insert(&mut self, hash: ContentHash, stamp: Stamp) {
        if self.young.len() >= MEMO_ENTRIES / 2 && !self.young.contains_key(&hash) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&hash);
        self.young.insert(hash, stamp);
    }

    fn remove(&mut self, hash: &ContentHash) {
        self.young.remove(hash);
        self.old.remove(hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

const BUF: usize = 1 << 20;

thread_local! {
    /// One streaming buffer per thread, reused across puts (no 1 MiB allocation per file).
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The buffer [`hash_stream`] verifies objects through.
    static HASH_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LocalObjectStore {
    /// Opens (or creates) the store under `root`, removing temp files a crash left behind.
    /// Its directories are created with mode 0700 (existing ones are tightened to it); bad
    /// objects moved aside by [`ObjectStore::quarantine`] go to `lost+found` beside `root`.
    ///
    /// Only one process may use a store directory at a time (the data store's lock makes
    /// sure of that), so every file in `tmp/` at open time is garbage.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_counting(root).map(|(s, _)| s)
    }

    /// [`LocalObjectStore::open`], also returning how many directories it tightened.
    pub(crate) fn open_counting(root: &Path) -> Result<(Self, usize)> {
        let tmp = root.join("tmp");
        let mut tightened = usize::from(private_dir(root)?);
        tightened += usize::from(private_dir(&tmp)?);
        for i in 0..=255u8 {
            let d = root.join(hex::encode([i]));
            tightened += usize::from(private_dir(&d)?);
        }
        let lost = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join("lost+found"),
            _ => root.join("lost+found"),
        };
        tightened += usize::from(super::private::tighten(&lost, super::private::DIR_MODE)?);
        for entry in fs::read_dir(&tmp).map_err(|e| PfsError::io(&tmp, e))? {
            let entry = entry.map_err(|e| PfsError::io(&tmp, e))?;
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| PfsError::io(&p, e))?;
        }
        let store = LocalObjectStore {
            root: root.to_path_buf(),
            tmp,
            lost,
            verified: Mutex::new(Memo::default()),
        };
        Ok((store, tightened))
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the file now at the object's path holds exactly `hash` (the store just
    /// wrote or verified it).
    fn remember(&self, hash: &ContentHash, stamp: Stamp) {
        self.memo().insert(*hash, stamp);
    }

    /// Whether a file with this content is stored and intact; verifies it unless the memo
    /// says it was verified and has not changed since.
    fn verify_local(&self, hash: &ContentHash) -> Result<ObjectState> {
        let p = self.path_of(hash);
        // A remembered object whose stamp still matches needs one `stat`, not an open.
        if let Some(known) = self.memo().get_mut(hash).copied()
            && fs::metadata(&p).is_ok_and(|m| Stamp::of(&m) == known)
        {
            return Ok(ObjectState::Intact { size: known.size });
        }
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.memo().remove(hash);
                return Ok(ObjectState::Missing);
            }
            Err(e) => return Err(PfsError::io(&p, e)),
        };
        let before = Stamp::of(&f.metadata().map_err(|e| PfsError::io(&p, e))?);
        if self.memo().get_mut(hash).copied() == Some(before) {
            return Ok(ObjectState::Intact { size: before.size });
        }
        let (size, found) = hash_stream(&mut f).map_err(|e| PfsError::io(&p, e))?;
        if found != *hash {
            self.memo().remove(hash);
            return Ok(ObjectState::Corrupt { size, found });
        }
        let after = Stamp::of(&f.metadata().map_err(|e| PfsError::io(&p, e))?);
        if after == before && size == before.size {
            self.remember(hash, before);
        }
        Ok(ObjectState::Intact { size })
    }

    /// The path an object lives at.
    pub fn path_of(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        let (a, b) = hex.split_at(2);
        self.root.join(a).join(b)
    }

    fn temp_file(&self) -> Result<(PathBuf, File)> {
        static N: AtomicU64 = AtomicU64::new(0);
        loop {
            let name = format!(
                "{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let p = self.tmp.join(name);
            // Created 0444 (the handle is still writable): no chmod before the rename.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&p)
            {
                Ok(f) => return Ok((p, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(PfsError::io(&p, e)),
            }
        }
    }
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PfsError::io(dir, e))
}

impl ObjectStore for LocalObjectStore {
    fn put(&self, reader: &mut dyn Read, durability: Durability) -> Result<StoredObject> {
        BUFFER.with_borrow_mut(|buf| {
            buf.resize(BUF, 0);
            let n = fill(reader, buf)?;
            let head = buf.get(..n).unwrap_or_default();
            if n < BUF {
                return self.put_whole(head, durability);
            }
            let (tmp_path, mut file) = self.temp_file()?;
            let mut hasher = FileHasher::new();
            hasher.update(head);
            let result = file
                .write_all(head)
                .map_err(|e| PfsError::io(&tmp_path, e))
                .and_then(|()| {
                    stream_into(
                        reader,
                        &mut file,
                        &tmp_path,
                        buf,
                        (hasher, n as u64),
                        durability,
                    )
                })
                .and_then(|(size, hash)| self.settle(file, &tmp_path, hash, size, durability));
            if !matches!(result, Ok(StoredObject { new: true, .. })) {
                let _ = fs::remove_file(&tmp_path);
            }
            result
        })
    }

    fn barrier(&self) -> Result<()> {
        let dir = File::open(&self.root).map_err(|e| PfsError::io(&self.root, e))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            nix::unistd::syncfs(&dir)
                .map_err(|e| PfsError::io(&self.root, io::Error::from_raw_os_error(e as i32)))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = dir;
            // No syncfs: sync(2) flushes everything, which is stronger.
            nix::unistd::sync();
            Ok(())
        }
    }

    fn open(&self, hash: &ContentHash) -> Result<Box<dyn Read + Send>> {
        let p = self.path_of(hash);
        // Unbuffered: callers read in large chunks (a 1 MiB buffer per open cost an
        // allocation and its page faults per file of an export).
        let f = File::open(&p).map_err(|e| PfsError::io(&p, e))?;
        Ok(Box::new(f))
    }

    fn contains(&self, hash: &ContentHash) -> Result<bool> {
        let p = self.path_of(hash);
        match fs::metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PfsError::io(&p, e)),
        }
    }

    fn local_path(&self, hash: &ContentHash) -> Option<PathBuf> {
        Some(self.path_of(hash))
    }

    fn list(&self) -> Box<dyn Iterator<Item = Result<ListedObject>> + '_> {
        let fanout = (0..=255u8).map(|i| self.root.join(hex::encode([i])));
        Box::new(fanout.flat_map(|dir| {
            let prefix = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let entries: Box<dyn Iterator<Item = Result<ListedObject>>> = match fs::read_dir(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Box::new(std::iter::empty()),
                Err(e) => Box::new(std::iter::once(Err(PfsError::io(&dir, e)))),
                Ok(rd) => Box::new(rd.filter_map(move |entry| {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => return Some(Err(PfsError::io(&dir, e))),
                    };
                    // Names that are not the rest of a hash are not objects (left alone).
                    let name = entry.file_name();
                    let mut bytes = [0u8; 32];
                    let full = format!("{prefix}{}", name.to_string_lossy());
                    hex::decode_to_slice(&full, &mut bytes).ok()?;
                    Some(
                        entry
                            .metadata()
                            .and_then(|m| Ok((m.len(), m.modified()?)))
                            .map(|(size, modified)| ListedObject {
                                hash: ContentHash(bytes),
                                size,
                                modified,
                            })
                            .map_err(|e| PfsError::io(entry.path(), e)),
                    )
                })),
            };
            entries
        }))
    }

    fn remove(&self, hash: &ContentHash) -> Result<()> {
        let p = self.path_of(hash);
        self.memo().remove(hash);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PfsError::io(&p, e)),
        }
    }

    fn verify(&self, hash: &ContentHash) -> Result<ObjectState> {
        self.verify_local(hash)
    }

    fn forget(&self, hash: &ContentHash) {
        self.memo().remove(hash);
    }

    fn touched(&self, hash: &ContentHash) {
        let p = self.path_of(hash);
        let mut memo = self.memo();
        if let Some(old) = memo.get_mut(hash)
            && let Ok(meta) = fs::metadata(&p)
        {
            let new = Stamp::of(&meta);
            if new.dev == old.dev && new.ino == old.ino && new.size == old.size {
                *old = new;
            } else {
                memo.remove(hash);
            }
        }
    }

    fn quarantine(&self, hash: &ContentHash) -> Result<Option<PathBuf>> {
        let p = self.path_of(hash);
        private_dir(&self.lost)?;
        let hex = hash.to_hex();
        let mut dest = self.lost.join(&hex);
        let mut n = 0u32;
        while dest.exists() {
            n += 1;
            dest = self.lost.join(format!("{hex}.{n}"));
        }
        self.memo().remove(hash);
        match fs::rename(&p, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PfsError::io(&p, e)),
        }
        fsync_dir(&self.lost)?;
        if let Some(dir) = p.parent() {
            fsync_dir(dir)?;
        }
        Ok(Some(dest))
    }
}

/// Reads `reader` into `buf` until it is full or the input ends; returns the bytes read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PfsError::io("<input stream>", e)),
        }
    }
    Ok(n)
}

/// Copies the rest of `reader` into `file` through `buf`, hashing it after what `hasher`
/// and `size` already hold; returns the total size and the BLAKE3. A durable put of a large
/// object flushes it to disk as it goes ([`EarlyWriteback`]).
fn stream_into(
    reader: &mut dyn Read,
    file: &mut File,
    path: &Path,
    buf: &mut [u8],
    (mut hasher, mut size): (FileHasher, u64),
    durability: Durability,
) -> Result<(u64, ContentHash)> {
    let mut writeback: Option<EarlyWriteback> = None;
    let copied = loop {
        let n = match reader.read(buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(PfsError::io("<input stream>", e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        if let Err(e) = file.write_all(chunk) {
            break Err(PfsError::io(path, e));
        }
        size += n as u64;
        if durability == Durability::Immediate && size >= writeback::STEP {
            match &mut writeback {
                Some(w) => w.wrote(size),
                None => writeback = EarlyWriteback::start(file),
            }
        }
    };
    let flushed = writeback.map_or(Ok(()), |w| w.finish().map_err(|e| PfsError::io(path, e)));
    copied.and(flushed).map(|()| (size, hasher.finish()))
}

impl LocalObjectStore {
    /// Stores content that is whole in memory (anything under 1 MiB): its name is known
    /// before a byte is written, so a new object is written straight under it (created
    /// exclusively, mode 0444), without a temp file and a rename. Crash-safe like the
    /// rename: nothing refers to the object before it is durable (see the module docs), and
    /// a half-written one left by a crash fails the size or hash check of the next put of
    /// that content, which then replaces it through a temp file.
    fn put_whole(&self, data: &[u8], durability: Durability) -> Result<StoredObject> {
        let hash = ContentHash::of_bytes(data);
        let size = data.len() as u64;
        let dest = self.path_of(&hash);
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&dest);
        let mut file = match created {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // The same content stored before (small outputs repeat: markers, empty
                // files): reused as it is, without writing a copy first.
                if self.reusable(&dest, &hash, size)? {
                    return Ok(self.reused(&dest, hash, size));
                }
                let (tmp_path, mut file) = self.temp_file()?;
                let result = file
                    .write_all(data)
                    .map_err(|e| PfsError::io(&tmp_path, e))
                    .and_then(|()| self.settle(file, &tmp_path, hash, size, durability));
                if !matches!(result, Ok(StoredObject { new: true, .. })) {
                    let _ = fs::remove_file(&tmp_path);
                }
                return result;
            }
            Err(e) => return Err(PfsError::io(&dest, e)),
        };
        let written = file.write_all(data).map_err(|e| PfsError::io(&dest, e));
        let synced = written.and_then(|()| match durability {
            Durability::Immediate => file
                .sync_all()
                .map_err(|e| PfsError::io(&dest, e))
                .and_then(|()| fsync_dir(dest.parent().unwrap_or(&self.root))),
            Durability::Deferred => Ok(()),
        });
        let stamp = file.metadata().map(|m| Stamp::of(&m));
        if let Err(e) = synced {
            // Only our own file: another put may have replaced it meanwhile.
            if let (Ok(ours), Ok(there)) = (&stamp, fs::metadata(&dest))
                && (ours.dev, ours.ino) == (there.dev(), there.ino())
            {
                let _ = fs::remove_file(&dest);
            }
            return Err(e);
        }
        // Written from the bytes just hashed: verified.
        if let Ok(stamp) = stamp {
            self.remember(&hash, stamp);
        }
        Ok(StoredObject {
            hash,
            size,
            new: true,
        })
    }

    /// Puts a streamed temp file in place: reuses an intact existing object (dedup), or
    /// makes the temp file read-only and renames it to its hash name (over a damaged one).
    fn settle(
        &self,
        file: File,
        tmp_path: &Path,
        hash: ContentHash,
        size: u64,
        durability: Durability,
    ) -> Result<StoredObject> {
        let dest = self.path_of(&hash);
        if self.reusable(&dest, &hash, size)? {
            return Ok(self.reused(&dest, hash, size));
        }
        // The temp file was created 0444: no write bit for anyone (the 0700 directories
        // keep others out).
        if durability == Durability::Immediate {
            file.sync_all().map_err(|e| PfsError::io(tmp_path, e))?;
        }
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::rename(tmp_path, &dest).map_err(|e| PfsError::io(&dest, e))?;
        if durability == Durability::Immediate {
            fsync_dir(&dir)?;
        }
        // Written from the stream just hashed: verified (the handle is the renamed file).
        if let Ok(meta) = file.metadata() {
            self.remember(&hash, Stamp::of(&meta));
        }
        Ok(StoredObject {
            hash,
            size,
            new: true,
        })
    }

    /// The intact object at `dest` standing for a put of its content: not garbage for
    /// another grace period (see the module docs).
    fn reused(&self, dest: &Path, hash: ContentHash, size: u64) -> StoredObject {
        let _ = File::open(dest).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        self.touched(&hash);
        StoredObject {
            hash,
            size,
            new: false,
        }
    }

    /// Whether an existing object at `dest` can stand for content of `size` bytes hashing
    /// to `hash`: it exists, has that size and passes verification. A damaged one is
    /// logged; the caller then renames its new copy over it.
    fn reusable(&self, dest: &Path, hash: &ContentHash, size: u64) -> Result<bool> {
        let state = match fs::metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(PfsError::io(dest, e)),
            Ok(meta) if meta.len() != size => ObjectState::Corrupt {
                size: meta.len(),
                found: *hash,
            },
            Ok(_) => self.verify_local(hash)?,
        };
        match state {
            ObjectState::Intact { .. } => Ok(true),
            ObjectState::Missing => Ok(false),
            ObjectState::Corrupt { size: found, .. } => {
                tracing::warn!(object = %hash, expected_size = size, found_size = found,
                    "stored object failed its size or hash check; replacing it with the content being put");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datum's scratch directory being cleared removes hard links (moving the object's
    /// `ctime`): the verification memo must survive it, or a file crossed with every datum
    /// would be hashed once per datum. A write (which moves the `mtime`) still invalidates it.
    #[test]
    fn memo_survives_hard_links_coming_and_going_but_not_a_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = LocalObjectStore::open(&dir.path().join("objects")).unwrap();
        let a = s.put(&mut &b"model"[..], Durability::Immediate).unwrap();
        let p = s.path_of(&a.hash);
        assert!(matches!(
            s.verify(&a.hash).unwrap(),
            ObjectState::Intact { .. }
        ));
        for i in 0..3 {
            let link = dir.path().join(format!("link{i}"));
            fs::hard_link(&p, &link).unwrap();
            fs::remove_file(&link).unwrap();
        }
        let now = Stamp::of(&fs::metadata(&p).unwrap());
        assert_eq!(
            s.memo().get_mut(&a.hash).copied(),
            Some(now),
            "links moved the stamp"
        );

        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"MODEL").unwrap();
        assert_ne!(
            s.memo().get_mut(&a.hash).copied(),
            Some(Stamp::of(&fs::metadata(&p).unwrap()))
        );
        assert!(matches!(
            s.verify(&a.hash).unwrap(),
            ObjectState::Corrupt { .. }
        ));
    }

    /// The memo stays bounded however many objects are verified once, and an object used
    /// again and again stays remembered meanwhile.
    #[test]
    fn memo_is_bounded_and_keeps_what_is_used_again() {
        let stamp = |i: u64| Stamp {
            dev: 1,
            ino: i,
            size: 1,
            mtime: 0,
            mtime_nsec: 0,
        };
        let hash = |i: u64| ContentHash::of_bytes(&i.to_le_bytes());
        let mut m = Memo::default();
        let hot = ContentHash::of_bytes(b"model");
        m.insert(hot, stamp(0));
        for i in 1..=(4 * MEMO_ENTRIES as u64) {
            m.insert(hash(i), stamp(i));
            assert!(m.len() <= MEMO_ENTRIES, "memo grew to {}", m.len());
            if i % 1000 == 0 {
                assert_eq!(m.get_mut(&hot).copied(), Some(stamp(0)), "at {i}");
            }
        }
        assert_eq!(m.get_mut(&hash(1)), None, "an entry used once is forgotten");
        let last = hash(4 * MEMO_ENTRIES as u64);
        assert!(m.get_mut(&last).is_some());
        m.remove(&last);
        assert!(m.get_mut(&last).is_none());
    }

    #[test]
    fn put_dedups_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalObjectStore::open(dir.path()).unwrap();
        let a = s.put(&mut &b"hello"[..], Durability::Immediate).unwrap();
        assert!(a.new);
        assert_eq!(a.hash, ContentHash::of_bytes(b"hello"));
        let b = s.put(&mut &b"hello"[..], Durability::Deferred).unwrap();
        assert!(!b.new);
        s.barrier().unwrap();
        let mut out = String::new();
        s.open(&a.hash).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(
            fs::metadata(s.path_of(&a.hash))
                .unwrap()
                .permissions()
                .readonly()
        );
    }

    /// A crash while a small object was written under its own name leaves a short file
    /// there: the next put of that content must replace it, never reuse it.
    #[test]
    fn a_half_written_small_object_is_replaced_by_the_next_put() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalObjectStore::open(dir.path()).unwrap();
        let hash = ContentHash::of_bytes(b"hello world");
        fs::write(s.path_of(&hash), b"hello").unwrap();
        let b = s
            .put(&mut &b"hello world"[..], Durability::Deferred)
            .unwrap();
        assert!(b.new && b.hash == hash);
        assert_eq!(fs::read(s.path_of(&hash)).unwrap(), b"hello world");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // Large contents take the temp-file path and land intact too.
        let big: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
        let o = s.put(&mut &big[..], Durability::Immediate).unwrap();
        assert_eq!(o.size, big.len() as u64);
        assert_eq!(fs::read(s.path_of(&o.hash)).unwrap(), big);
        assert!(
            fs::metadata(s.path_of(&o.hash))
                .unwrap()
                .permissions()
                .readonly()
        );
    }

    #[test]
    fn truncated_object_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalObjectStore::open(dir.path()).unwrap();
        let a = s.put(&mut &b"hello"[..], Durability::Immediate).unwrap();
        let p = s.path_of(&a.hash);
        let mut perm = fs::metadata(&p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(&p, perm).unwrap();
        fs::write(&p, b"").unwrap();
        let b = s.put(&mut &b"hello"[..], Durability::Immediate).unwrap();
        assert!(b.new);
        assert_eq!(fs::read(&p).unwrap(), b"hello");
    }
}
