//! Export of a commit's file or directory tree into a local directory
//! ([`Store::export_local`]): one call for a whole tree, at about the cost of `cp -r`.
//!
//! What it guarantees, file by file:
//!
//! - **Verified while it streams.** Each object is read once, through the verifying reader
//!   ([`super::verify`]); a damaged or missing object fails the export with
//!   [`PfsError::ObjectCorrupt`] naming the file, and nothing of it reaches its name.
//! - **Never half a file under its name.** Content goes into a temp file in the target
//!   directory, created with mode 0600 (nobody else can open it while it is written), which
//!   gets its final mode (0666 less the process umask, like `cp`) and is renamed over the
//!   name only after the last byte was verified. An existing file of that name is replaced.
//! - **Nothing outside the destination.** Below `dest` no symlink is followed: each
//!   directory is opened relative to its parent with `O_NOFOLLOW`, so a symlink (or a file)
//!   where the tree needs a directory is an error naming it, and a symlink where a file goes
//!   is replaced, not written through. Names of `.`, `..` or with `/` are refused (the store
//!   never records them; checked again here). `dest` itself is the caller's choice and may be
//!   a symlink.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::error::{PfsError, Result};
use super::files::TransferStats;
use super::model::{CommitRef, FileInfo};
use super::names::validate_file_path;
use super::object::with_buffer;
use super::store::Store;
use super::verify::FileCtx;

impl Store {
    /// Writes the file or directory tree at `path` of a commit into local directory `dest`
    /// (created if absent): the contents of a directory land directly in `dest`, a file
    /// lands as `dest/<name>`. Files are copies (never hard links to stored objects), with
    /// mode 0666 less the umask. Returns the files and bytes written.
    ///
    /// Each file is verified while it is copied into a temp file (mode 0600) beside its
    /// name and renamed over the name only once complete: a damaged object fails with
    /// [`PfsError::ObjectCorrupt`] naming the file. Below `dest` no symlink is followed: a
    /// symlink or a file where the tree needs a directory is a [`PfsError::LocalPath`]
    /// naming it; a symlink where a file goes is replaced.
    ///
    /// A failure stops the export: files already written stay (each complete and
    /// verified), the file being written is removed.
    pub fn export_local(
        &self,
        commit: &CommitRef,
        path: &str,
        dest: &Path,
    ) -> Result<TransferStats> {
        let path = validate_file_path(path)?;
        let mut files = self.list_file_recursive(commit, &path)?.peekable();
        let single = match files.peek() {
            None if path != "/" => return Err(super::files::not_found(commit, &path)),
            Some(Ok(f)) => f.path == path,
            _ => false,
        };
        fs::create_dir_all(dest).map_err(|e| PfsError::io(dest, e))?;
        let root = File::open(dest).map_err(|e| PfsError::io(dest, e))?;
        let mut dirs = DirChain::new(dest, root.into());
        let prefix = if path == "/" {
            path.clone()
        } else {
            format!("{path}/")
        };
        let mut stats = TransferStats::default();
        for f in files {
            let f = f?;
            let rel = if single {
                f.path.rsplit('/').next().unwrap_or_default()
            } else {
                f.path.get(prefix.len()..).unwrap_or_default()
            };
            let (parent, name) = match rel.rsplit_once('/') {
                Some((p, n)) => (p, n),
                None => ("", rel),
            };
            check_name(dest, rel, name)?;
            let dir = dirs.enter(parent)?;
            self.export_file(commit, &f, dir, &dest.join(rel), name)?;
            stats.files += 1;
            stats.bytes += f.size;
        }
        Ok(stats)
    }

    /// Copies one file's object into `dir/name` through a temp file (see the module docs).
    fn export_file(
        &self,
        commit: &CommitRef,
        f: &FileInfo,
        dir: &OwnedFd,
        target: &Path,
        name: &str,
    ) -> Result<()> {
        let (tmp_name, out) = temp_in(dir, target)?;
        let mut out = File::from(out);
        let copied = self
            .open_verified(FileCtx::new(commit, &f.path), f.size, &f.hash)
            .and_then(|mut r| copy_buffered(&mut r, &mut out, target));
        let placed = copied.and_then(|()| {
            fchmod(out.as_fd(), file_mode()).map_err(|e| errno(target, e))?;
            drop(out);
            renameat(dir, tmp_name.as_str(), dir, name).map_err(|e| errno(target, e))
        });
        if placed.is_err() {
            let _ = unlinkat(dir, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        placed
    }
}

/// Refuses a name that could leave its directory (never in a valid store path).
fn check_name(dest: &Path, rel: &str, name: &str) -> Result<()> {
    let bad = rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'));
    if bad || name.is_empty() {
        return Err(PfsError::LocalPath {
            path: dest.join(rel),
            reason: "the file's path has an empty, `.` or `..` component; not exported".into(),
        });
    }
    Ok(())
}

/// The directories from `dest` down to the one being written into, each opened without
/// following symlinks. Files come in path order, so most share the chain of the one before.
struct DirChain<'a> {
    dest: &'a Path,
    /// `(name, fd)` from `dest` (name `""`) down.
    open: Vec<(String, OwnedFd)>,
}

impl<'a> DirChain<'a> {
    fn new(dest: &'a Path, root: OwnedFd) -> Self {
        DirChain {
            dest,
            open: vec![(String::new(), root)],
        }
    }

    /// The open directory `rel` (`a/b`, `""` for `dest`), made as needed.
    fn enter(&mut self, rel: &str) -> Result<&OwnedFd> {
        let parts: Vec<&str> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split('/').collect()
        };
        let same = self
            .open
            .iter()
            .skip(1)
            .zip(&parts)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.open.truncate(same + 1);
        for (i, part) in parts.iter().enumerate().skip(same) {
            let shown = self
                .dest
                .join(parts.get(..=i).unwrap_or_default().join("/"));
            let fd = {
                let (_, parent) = self.open.last().ok_or_else(|| {
                    PfsError::Corrupt("export lost its destination directory".into())
                })?;
                open_subdir(parent, part, &shown)?
            };
            self.open.push(((*part).to_string(), fd));
        }
        self.open
            .last()
            .map(|(_, fd)| fd)
            .ok_or_else(|| PfsError::Corrupt("export lost its destination directory".into()))
    }
}

/// Makes (if absent) and opens directory `name` in `parent`, refusing a symlink or a file.
fn open_subdir(parent: &OwnedFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o777)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(errno(shown, e)),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(parent, name, flags, Mode::empty()).map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => PfsError::LocalPath {
            path: shown.to_path_buf(),
            reason: "is a symlink or not a directory; export never follows symlinks below \
                     its destination"
                .into(),
        },
        e => errno(shown, e),
    })
}

/// A new temp file (mode 0600) in `dir`: its name and its handle.
fn temp_in(dir: &OwnedFd, target: &Path) -> Result<(String, OwnedFd)> {
    static N: AtomicU64 = AtomicU64::new(0);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    loop {
        static PID: OnceLock<u32> = OnceLock::new();
        let pid = *PID.get_or_init(std::process::id);
        let name = format!(
            ".pipectl-export.{pid}.{}",
            N.fetch_add(1, Ordering::Relaxed)
        );
        match openat(dir, name.as_str(), flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(errno(target, e)),
        }
    }
}

/// Copies `r` into `out` through the thread's large buffer (one read and one write per
/// megabyte); a verification failure of `r` comes back as the store error it carries.
pub(super) fn copy_buffered(r: &mut dyn Read, out: &mut File, target: &Path) -> Result<()> {
    with_buffer(|buf| {
        loop {
            let n = match r.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PfsError::unwrap_io(target, e)),
            };
            out.write_all(buf.get(..n).unwrap_or_default())
                .map_err(|e| PfsError::io(target, e))?;
        }
    })
}

/// The mode an exported file ends with: 0666 less the process umask (read once from
/// `/proc/self/status`; 022 where that is not available).
fn file_mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022);
        Mode::from_bits_truncate(0o666 & !umask)
    })
}

fn errno(path: &Path, e: Errno) -> PfsError {
    PfsError::io(PathBuf::from(path), io::Error::from(e))
}
