//! The stat cache of recursive local puts: which local files were hashed to what, so a
//! re-sync of a directory reads only the files that changed (the idea of git's index).
//!
//! # What is cached, and where
//!
//! One file per (store, repo, target branch — or commit ID when the write did not go
//! through a branch —, destination path, canonical local directory), in
//! `STORE/sync-cache/<BLAKE3 of that key>`. It lists, in path order, each local file's
//! relative path, its `lstat` fields (size, mtime and ctime in nanoseconds, inode, device)
//! and the BLAKE3 of the content read when the file had exactly those fields.
//!
//! # What the cache trusts
//!
//! A recursive put skips reading a file only when **both** hold:
//! - its size, mtime (ns), ctime (ns), inode and device equal a cached record's, and
//! - the commit it writes into already holds that path with the cached size and hash
//!   (so the put would not change the tree, and the object is referenced by a commit).
//!
//! So it trusts that a file whose content changed no longer has the same five fields. The
//! kernel sets ctime to its own clock on every write, `chmod`, link or rename, and no
//! system call sets it to a chosen value, so this holds unless the system clock is set
//! back, or a file is changed in a way that bypasses the kernel's timestamps (writes into
//! a shared `mmap` update them only when the pages are written back; a network file
//! system whose server clock lags the local one by more than [`FOREIGN_FS_MARGIN_NS`]).
//!
//! **Racily clean files** (as in git): a file changed again within the timestamp
//! granularity of its previous change keeps the same mtime and ctime. So a record is only
//! written for a file whose mtime and ctime are strictly older than the *probe*: the
//! timestamp the file system gives the cache's temp file when a put starts, before any file
//! is read. Any later change gets a timestamp at or after the probe, so it cannot look like
//! the recorded state. Files on another file system than the store (another device) must
//! be older than the probe by [`FOREIGN_FS_MARGIN_NS`] (the coarsest common granularity,
//! FAT's 2 s), since their timestamps may be truncated differently. A racy file is simply
//! not recorded: the next put reads it again.
//!
//! # Crash safety
//!
//! Every record is a statement that stays true ("a file with these fields holds this
//! content"), and each carries its own checksum. A new cache is written to a temp file and
//! renamed over the old one, unsynced: a torn, truncated, stale or damaged cache only loses
//! the records from the first bad one on (those files are read again), never yields a wrong
//! hash. Records must be in strictly increasing path order; one out of order ends the cache
//! the same way. Failing to write the cache never fails a put (it is logged).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{PfsError, Result};
use crate::hash::ContentHash;

/// The directory of the caches inside the store directory.
pub(crate) const CACHE_DIR: &str = "sync-cache";

/// How much older than the probe a file on another file system than the store must be for
/// its record to be written: 2 s, the coarsest timestamp granularity of common file
/// systems (FAT), in nanoseconds.
pub const FOREIGN_FS_MARGIN_NS: i128 = 2_000_000_000;

const MAGIC: &[u8; 8] = b"PSYNC01\n";
/// Size, mtime, ctime, inode, device, hash.
const FIXED_LEN: usize = 8 + 16 + 16 + 8 + 8 + 32;
/// Longest record body accepted when reading (a path longer than any file system allows is
/// damage).
const MAX_BODY: usize = FIXED_LEN + 64 * 1024;
const CHECK_LEN: usize = 16;

/// The `lstat` fields that tell whether a local file may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalStat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
    pub(crate) ino: u64,
    pub(crate) dev: u64,
}

impl LocalStat {
    /// The fields of a file's metadata.
    pub(crate) fn of(m: &fs::Metadata) -> Self {
        LocalStat {
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// The file system's clock at the start of a put: see "Racily clean files" above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The temp file's mtime when it was created.
    pub(crate) ns: i128,
    /// The device of the store's file system.
    pub(crate) dev: u64,
}

impl Probe {
    /// Whether a file read with these fields after the probe may be recorded: its last
    /// change is strictly before the probe (by the margin on another file system).
    pub(crate) fn trusts(&self, s: &LocalStat) -> bool {
        let margin = if s.dev == self.dev {
            0
        } else {
            FOREIGN_FS_MARGIN_NS
        };
        s.mtime_ns < self.ns - margin && s.ctime_ns < self.ns - margin
    }
}

/// The cache file of a key in store directory `root`.
pub(crate) fn cache_path(root: &Path, key: &str) -> PathBuf {
    let h = blake3::hash(key.as_bytes());
    root.join(CACHE_DIR)
        .join(hex::encode(h.as_bytes().get(..16).unwrap_or_default()))
}

fn header(key: &str) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&(key.len() as u64).to_be_bytes());
    h.extend_from_slice(key.as_bytes());
    h
}

fn checksum(body: &[u8]) -> [u8; CHECK_LEN] {
    let mut c = [0u8; CHECK_LEN];
    c.copy_from_slice(
        blake3::hash(body)
            .as_bytes()
            .get(..CHECK_LEN)
            .unwrap_or(&[0; 16]),
    );
    c
}

/// Reads a cache front to back while a walk in the same order looks paths up.
pub(crate) struct CacheReader {
    input: BufReader<File>,
    /// The next record not yet passed: `(path, stat, hash)`.
    head: Option<(String, LocalStat, ContentHash)>,
}

impl CacheReader {
    /// Opens the cache at `path` written for `key`; `None` when there is none, or it was
    /// written for another key or is damaged at the start (every file is then read).
    pub(crate) fn open(path: &Path, key: &str) -> Option<Self> {
        let f = File::open(path).ok()?;
        let mut input = BufReader::with_capacity(64 * 1024, f);
        let want = header(key);
        let mut got = vec![0u8; want.len()];
        input.read_exact(&mut got).ok()?;
        if got != want {
            tracing::debug!(cache = %path.display(), "stat cache of another key or damaged; ignored");
            return None;
        }
        let mut r = CacheReader { input, head: None };
        r.head = r.read_record();
        Some(r)
    }

    /// The cached stat and hash of `rel`, if recorded. Calls must come in strictly
    /// increasing path order; records before `rel` are passed over.
    pub(crate) fn find(&mut self, rel: &str) -> Option<(LocalStat, ContentHash)> {
        loop {
            let (path, stat, hash) = self.head.as_ref()?;
            match path.as_str().cmp(rel) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Some((*stat, *hash)),
                std::cmp::Ordering::Greater => return None,
            }
            let passed = self.head.take().map(|(p, _, _)| p).unwrap_or_default();
            // Out of order: damage, so nothing from here on is used.
            self.head = self.read_record().filter(|(p, _, _)| *p > passed);
        }
    }

    /// The next record; `None` at the end or at the first damaged one.
    fn read_record(&mut self) -> Option<(String, LocalStat, ContentHash)> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).ok()?;
        let len = u32::from_be_bytes(len) as usize;
        if !(FIXED_LEN..=MAX_BODY).contains(&len) {
            return None;
        }
        let mut body = vec![0u8; len + CHECK_LEN];
        self.input.read_exact(&mut body).ok()?;
        let (body, check) = body.split_at(len);
        if checksum(body) != check {
            return None;
        }
        decode_record(body)
    }
}

fn decode_record(body: &[u8]) -> Option<(String, LocalStat, ContentHash)> {
    let (fixed, path) = body.split_at_checked(FIXED_LEN)?;
    let u64_at = |i: usize| Some(u64::from_be_bytes(fixed.get(i..i + 8)?.try_into().ok()?));
    let i128_at = |i: usize| Some(i128::from_be_bytes(fixed.get(i..i + 16)?.try_into().ok()?));
    let stat = LocalStat {
        size: u64_at(0)?,
        mtime_ns: i128_at(8)?,
        ctime_ns: i128_at(24)?,
        ino: u64_at(40)?,
        dev: u64_at(48)?,
    };
    let hash = ContentHash(fixed.get(56..88)?.try_into().ok()?);
    Some((std::str::from_utf8(path).ok()?.to_string(), stat, hash))
}

fn encode_record(rel: &str, s: &LocalStat, hash: &ContentHash) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + FIXED_LEN + rel.len() + CHECK_LEN);
    body.extend_from_slice(&((FIXED_LEN + rel.len()) as u32).to_be_bytes());
    body.extend_from_slice(&s.size.to_be_bytes());
    body.extend_from_slice(&s.mtime_ns.to_be_bytes());
    body.extend_from_slice(&s.ctime_ns.to_be_bytes());
    body.extend_from_slice(&s.ino.to_be_bytes());
    body.extend_from_slice(&s.dev.to_be_bytes());
    body.extend_from_slice(hash.as_bytes());
    body.extend_from_slice(rel.as_bytes());
    let check = checksum(body.get(4..).unwrap_or_default());
    body.extend_from_slice(&check);
    body
}

/// Temp files of this process, numbered so concurrent puts never share one.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes the next cache of a key: records are added in path order, and
/// [`CacheWriter::commit`] renames it over the old one. Dropped without a commit, it
/// removes its temp file. Write errors disable it (logged) instead of failing the put.
pub(crate) struct CacheWriter {
    tmp: PathBuf,
    dest: PathBuf,
    out: Option<BufWriter<File>>,
    probe: Probe,
    /// The last path recorded (paths must increase).
    last: String,
}

impl CacheWriter {
    /// Creates the temp file of the cache at `dest` (for `key`) and takes the probe from it.
    pub(crate) fn create(dest: &Path, key: &str) -> Result<Self> {
        let dir = dest
            .parent()
            .ok_or_else(|| PfsError::Corrupt(format!("cache path {}", dest.display())))?;
        super::private::private_dir(dir)?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("cache");
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{name}.{}.{seq}.tmp", std::process::id()));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(super::private::FILE_MODE)
            .open(&tmp)
            .map_err(|e| PfsError::io(&tmp, e))?;
        let mut w = CacheWriter {
            out: None,
            probe: Probe { ns: 0, dev: 0 },
            tmp,
            dest: dest.to_path_buf(),
            last: String::new(),
        };
        let m = f.metadata().map_err(|e| PfsError::io(&w.tmp, e))?;
        let s = LocalStat::of(&m);
        w.probe = Probe {
            ns: s.mtime_ns.min(s.ctime_ns),
            dev: s.dev,
        };
        let mut out = BufWriter::with_capacity(64 * 1024, f);
        out.write_all(&header(key))
            .map_err(|e| PfsError::io(&w.tmp, e))?;
        w.out = Some(out);
        Ok(w)
    }

    /// The probe taken when the cache was created.
    #[cfg(test)]
    pub(crate) fn probe(&self) -> Probe {
        self.probe
    }

    /// Records that the file at `rel` had content `hash` when it had `stat`, unless it is
    /// racily clean (see the module docs). `rel` must come after every earlier one.
    pub(crate) fn record(&mut self, rel: &str, stat: &LocalStat, hash: &ContentHash) {
        if !self.probe.trusts(stat) || rel.len() > MAX_BODY - FIXED_LEN {
            return;
        }
        if !self.last.is_empty() && rel <= self.last.as_str() {
            return;
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if let Err(e) = out.write_all(&encode_record(rel, stat, hash)) {
            tracing::warn!(cache = %self.tmp.display(), error = %e, "cannot write the stat cache; the next put reads every file");
            self.out = None;
            return;
        }
        rel.clone_into(&mut self.last);
    }

    /// Makes this the key's cache (flushes and renames; not synced: see "Crash safety").
    pub(crate) fn commit(mut self) {
        let Some(out) = self.out.take() else {
            return;
        };
        let done = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|_| fs::rename(&self.tmp, &self.dest));
        if let Err(e) = done {
            tracing::warn!(cache = %self.dest.display(), error = %e, "cannot save the stat cache; the next put reads every file");
            return;
        }
        remove_dead_temps(&self.dest);
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        self.out = None;
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Removes temp files of `dest`'s cache left by processes that died (another process can
/// only have held the store, and with it its caches, before this one).
fn remove_dead_temps(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let mine = format!("{name}.{}.", std::process::id());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if n.starts_with(&format!("{name}.")) && n.ends_with(".tmp") && !n.starts_with(&mine) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mtime_ns: i128, ctime_ns: i128, dev: u64) -> LocalStat {
        LocalStat {
            size: 3,
            mtime_ns,
            ctime_ns,
            ino: 7,
            dev,
        }
    }

    #[test]
    fn probe_trusts_only_changes_strictly_before_it() {
        let p = Probe { ns: 1_000, dev: 1 };
        assert!(p.trusts(&stat(999, 999, 1)));
        // Same tick as the probe: a later change could keep these timestamps.
        assert!(!p.trusts(&stat(1_000, 999, 1)));
        assert!(!p.trusts(&stat(999, 1_000, 1)));
        assert!(!p.trusts(&stat(2_000, 500, 1)));
        // Another file system: only with the margin.
        let p = Probe {
            ns: 10 * FOREIGN_FS_MARGIN_NS,
            dev: 1,
        };
        let just_inside = 9 * FOREIGN_FS_MARGIN_NS;
        assert!(!p.trusts(&stat(just_inside, just_inside, 2)));
        assert!(p.trusts(&stat(just_inside - 1, just_inside - 1, 2)));
    }

    fn write_cache(dest: &Path, key: &str, records: &[(&str, LocalStat)]) {
        let mut w = CacheWriter::create(dest, key).unwrap();
        w.probe = Probe {
            ns: i128::MAX,
            dev: 1,
        };
        for (rel, s) in records {
            w.record(rel, s, &ContentHash::of_bytes(rel.as_bytes()));
        }
        w.commit();
    }

    #[test]
    fn records_round_trip_in_order() {
        let d = tempfile::tempdir().unwrap();
        let dest = cache_path(d.path(), "k");
        write_cache(&dest, "k", &[("a", stat(1, 2, 1)), ("b/c", stat(3, 4, 1))]);
        let mut r = CacheReader::open(&dest, "k").unwrap();
        assert_eq!(r.find("0"), None);
        let (s, h) = r.find("a").unwrap();
        assert_eq!((s, h), (stat(1, 2, 1), ContentHash::of_bytes(b"a")));
        assert_eq!(r.find("b"), None);
        assert_eq!(r.find("b/c").unwrap().0, stat(3, 4, 1));
        assert_eq!(r.find("z"), None);
        assert!(CacheReader::open(&dest, "other key").is_none());
        // No temp file is left.
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn damage_loses_records_from_there_on() {
        let d = tempfile::tempdir().unwrap();
        let dest = cache_path(d.path(), "k");
        let recs: Vec<(String, LocalStat)> =
            (0..10).map(|i| (format!("f{i}"), stat(i, i, 1))).collect();
        let refs: Vec<(&str, LocalStat)> = recs.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        write_cache(&dest, "k", &refs);
        let mut bytes = fs::read(&dest).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        fs::write(&dest, &bytes).unwrap();
        let mut r = CacheReader::open(&dest, "k").unwrap();
        let found = recs.iter().filter(|(p, _)| r.find(p).is_some()).count();
        assert!((1..10).contains(&found), "{found}");
        // Truncated, or garbage: nothing wrong is found.
        fs::write(&dest, &bytes[..bytes.len() - 3]).unwrap();
        let mut r = CacheReader::open(&dest, "k").unwrap();
        assert!(r.find("f9").is_none());
        fs::write(&dest, b"garbage").unwrap();
        assert!(CacheReader::open(&dest, "k").is_none());
    }

    #[test]
    fn racy_records_are_not_written() {
        let d = tempfile::tempdir().unwrap();
        let dest = cache_path(d.path(), "k");
        let mut w = CacheWriter::create(&dest, "k").unwrap();
        let p = w.probe();
        w.record(
            "old",
            &stat(p.ns - 1, p.ns - 1, p.dev),
            &ContentHash::of_bytes(b"1"),
        );
        w.record(
            "racy",
            &stat(p.ns, p.ns - 1, p.dev),
            &ContentHash::of_bytes(b"2"),
        );
        w.commit();
        let mut r = CacheReader::open(&dest, "k").unwrap();
        assert!(r.find("old").is_some());
        assert!(r.find("racy").is_none());
    }
}
