//! The object store: file contents, named by their BLAKE3 hash, written once.
//!
//! [`ObjectStore`] is what the data store needs from a blob store; a cloud backend (the
//! `object_store` crate's S3/GCS/Azure stores, with `PutMode::Create` for write-once) can
//! implement it later. [`LocalObjectStore`] is the embedded default.
//!
//! # Local layout and durability
//!
//! `objects/<first 2 hex>/<remaining 62 hex>`, mode `0444`, never modified in place. A put
//! streams the reader into `objects/tmp/<unique>` through a 1 MiB buffer while hashing it
//! (bounded memory for any file size), then:
//!
//! - [`Durability::Immediate`]: fsync the temp file, rename it to its hash name, fsync the
//!   fan-out directory. The object is durable when `put` returns.
//! - [`Durability::Deferred`]: rename without fsync; the caller must call
//!   [`ObjectStore::barrier`] (one `syncfs(2)` for the whole batch) **before** committing
//!   metadata that references the objects. Bulk puts (a directory of 100,000 files) use this.
//!
//! If the hash name already exists with the right size the temp file is dropped (dedup
//! across repos and commits). A size mismatch (an object truncated by a power loss before
//! its batch's barrier) is repaired by renaming the new copy over it. Temp files left by a
//! crash are removed when the store is opened. Metadata is only ever committed after the
//! objects it names are durable, so a crash leaves at worst unreferenced objects, which
//! [`Store::gc`](super::Store::gc) removes.
//!
//! A deduplicated put sets the existing object's modification time to now: garbage
//! collection keeps objects written or reused within its grace period, so an object being
//! put for a commit that is not yet recorded is never collected under it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{PfsError, Result};
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
}

/// The embedded object store on a local directory.
#[derive(Debug)]
pub struct LocalObjectStore {
    root: PathBuf,
    tmp: PathBuf,
}

const BUF: usize = 1 << 20;

thread_local! {
    /// One streaming buffer per thread, reused across puts (no 1 MiB allocation per file).
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LocalObjectStore {
    /// Opens (or creates) the store under `root`, removing temp files a crash left behind.
    ///
    /// Only one process may use a store directory at a time (the data store's lock makes
    /// sure of that), so every file in `tmp/` at open time is garbage.
    pub fn open(root: &Path) -> Result<Self> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| PfsError::io(&tmp, e))?;
        for i in 0..=255u8 {
            let d = root.join(hex::encode([i]));
            fs::create_dir_all(&d).map_err(|e| PfsError::io(&d, e))?;
        }
        for entry in fs::read_dir(&tmp).map_err(|e| PfsError::io(&tmp, e))? {
            let entry = entry.map_err(|e| PfsError::io(&tmp, e))?;
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| PfsError::io(&p, e))?;
        }
        Ok(LocalObjectStore {
            root: root.to_path_buf(),
            tmp,
        })
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
            match OpenOptions::new().write(true).create_new(true).open(&p) {
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
        let (tmp_path, mut file) = self.temp_file()?;
        let result = BUFFER.with_borrow_mut(|buf| {
            buf.resize(BUF, 0);
            let mut hasher = FileHasher::new();
            let mut size = 0u64;
            loop {
                let n = match reader.read(buf.as_mut_slice()) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(PfsError::io("<input stream>", e));
                    }
                };
                let chunk = buf.get(..n).unwrap_or_default();
                hasher.update(chunk);
                file.write_all(chunk)
                    .map_err(|e| PfsError::io(&tmp_path, e))?;
                size += n as u64;
            }
            let hash = hasher.finish();
            let dest = self.path_of(&hash);
            if let Ok(meta) = fs::metadata(&dest)
                && meta.len() == size
            {
                // Reused: not garbage for another grace period (see the module docs).
                let _ =
                    File::open(&dest).and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok((
                    StoredObject {
                        hash,
                        size,
                        new: false,
                    },
                    None,
                ));
            }
            let mut perm = file
                .metadata()
                .map_err(|e| PfsError::io(&tmp_path, e))?
                .permissions();
            perm.set_readonly(true);
            file.set_permissions(perm)
                .map_err(|e| PfsError::io(&tmp_path, e))?;
            if durability == Durability::Immediate {
                file.sync_all().map_err(|e| PfsError::io(&tmp_path, e))?;
            }
            drop(file);
            let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
            fs::rename(&tmp_path, &dest).map_err(|e| PfsError::io(&dest, e))?;
            if durability == Durability::Immediate {
                fsync_dir(&dir)?;
            }
            Ok((
                StoredObject {
                    hash,
                    size,
                    new: true,
                },
                Some(()),
            ))
        });
        match result {
            Ok((obj, Some(()))) => Ok(obj),
            Ok((obj, None)) => {
                let _ = fs::remove_file(&tmp_path);
                Ok(obj)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                Err(e)
            }
        }
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
        let f = File::open(&p).map_err(|e| PfsError::io(&p, e))?;
        Ok(Box::new(io::BufReader::with_capacity(BUF, f)))
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
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PfsError::io(&p, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
