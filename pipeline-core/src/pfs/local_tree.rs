//! A streaming walk of a local directory in the store's path order, for recursive puts.
//!
//! Files come out in the lexicographic order of their relative paths (`a.txt` before `a/b`
//! because `.` sorts before `/`), the order a commit's tree is stored and listed in, so a
//! recursive put can merge the walk with the commit's files and with its stat cache
//! ([`super::stat_cache`]) in one pass each. Memory: the sorted entries of the directories
//! on the current path (O(depth × width)), never the whole tree.
//!
//! Symlinks are never followed (they are counted and skipped); other special files
//! (sockets, FIFOs, devices) are skipped silently. Every name is checked with
//! [`validate_file_name`] before anything below it is read.

use std::ffi::OsString;
use std::fs::{self, DirEntry, Metadata};
use std::path::{Path, PathBuf};

use super::error::{PfsError, Result};
use super::names::validate_file_name;

/// A regular file found by [`LocalTree`].
#[derive(Debug)]
pub(crate) struct LocalFile {
    /// Its path relative to the walked directory, `/`-separated (`dir/name`).
    pub(crate) rel: String,
    /// Its `lstat` (taken by the walk, so an unchanged file is never opened).
    pub(crate) meta: Metadata,
    entry: DirEntry,
}

impl LocalFile {
    /// Its local path (made on demand: an unchanged file never needs it).
    pub(crate) fn path(&self) -> PathBuf {
        self.entry.path()
    }
}

/// One directory entry waiting to be visited.
struct Pending {
    /// The entry's name, plus a trailing `/` for a directory: the sort key that gives the
    /// lexicographic order of full paths.
    key: String,
    entry: DirEntry,
    is_dir: bool,
}

/// The entries of one directory on the current path, in reverse order (next one last).
struct Frame {
    rel: String,
    pending: Vec<Pending>,
}

/// Regular files below a local directory, in lexicographic order of their relative paths.
pub(crate) struct LocalTree {
    stack: Vec<Frame>,
    skipped_symlinks: u64,
    failed: bool,
}

impl LocalTree {
    /// Starts a walk of `root` (which must be a directory; not checked here).
    pub(crate) fn new(root: &Path) -> Result<Self> {
        let mut tree = LocalTree {
            stack: Vec::new(),
            skipped_symlinks: 0,
            failed: false,
        };
        tree.enter(root, String::new())?;
        Ok(tree)
    }

    /// Symlinks skipped so far.
    pub(crate) fn skipped_symlinks(&self) -> u64 {
        self.skipped_symlinks
    }

    /// Reads, checks and sorts the entries of directory `dir` and pushes them as a frame.
    fn enter(&mut self, dir: &Path, rel: String) -> Result<()> {
        let mut pending = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| PfsError::io(dir, e))? {
            let entry = e.map_err(|e| PfsError::io(dir, e))?;
            let name = utf8_name(&entry)?;
            let ft = entry
                .file_type()
                .map_err(|err| PfsError::io(entry.path(), err))?;
            if ft.is_symlink() {
                self.skipped_symlinks += 1;
            } else if ft.is_dir() || ft.is_file() {
                let is_dir = ft.is_dir();
                let key = if is_dir { format!("{name}/") } else { name };
                pending.push(Pending { key, entry, is_dir });
            }
        }
        pending.sort_unstable_by(|a, b| b.key.cmp(&a.key));
        self.stack.push(Frame { rel, pending });
        Ok(())
    }

    fn next_inner(&mut self) -> Result<Option<LocalFile>> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(p) = frame.pending.pop() else {
                self.stack.pop();
                continue;
            };
            let name = p.key.strip_suffix('/').unwrap_or(&p.key);
            let rel = if frame.rel.is_empty() {
                name.to_string()
            } else {
                format!("{}/{name}", frame.rel)
            };
            if p.is_dir {
                self.enter(&p.entry.path(), rel)?;
                continue;
            }
            let meta = p
                .entry
                .metadata()
                .map_err(|e| PfsError::io(p.entry.path(), e))?;
            // Replaced by something else since the directory was read: skipped like it.
            if !meta.is_file() {
                if meta.file_type().is_symlink() {
                    self.skipped_symlinks += 1;
                }
                continue;
            }
            return Ok(Some(LocalFile {
                rel,
                meta,
                entry: p.entry,
            }));
        }
    }
}

impl Iterator for LocalTree {
    type Item = Result<LocalFile>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_inner() {
            Ok(f) => f.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The entry's name as a valid store file name, or an error naming the local path.
fn utf8_name(entry: &DirEntry) -> Result<String> {
    let name: OsString = entry.file_name();
    let name = name.into_string().map_err(|_| PfsError::LocalPath {
        path: entry.path(),
        reason: "file name is not valid UTF-8".into(),
    })?;
    validate_file_name(&name).map_err(|err| PfsError::LocalPath {
        path: entry.path(),
        reason: err.to_string(),
    })?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(root: &Path) -> Vec<String> {
        LocalTree::new(root)
            .unwrap()
            .map(|f| f.unwrap().rel)
            .collect()
    }

    #[test]
    fn files_come_in_full_path_order() {
        let d = tempfile::tempdir().unwrap();
        for p in ["a/b", "a.txt", "a-b", "a0", "b/c/d", "b/c.x", "z"] {
            let p = d.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, b"x").unwrap();
        }
        let got = walk(d.path());
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got, ["a-b", "a.txt", "a/b", "a0", "b/c.x", "b/c/d", "z"]);
    }

    #[test]
    fn symlinks_are_counted_not_followed() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("f", d.path().join("g")).unwrap();
        let mut t = LocalTree::new(d.path()).unwrap();
        let files: Vec<_> = t.by_ref().map(|f| f.unwrap().rel).collect();
        assert_eq!(files, ["f"]);
        assert_eq!(t.skipped_symlinks(), 2);
    }

    #[test]
    fn bad_name_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a*b"), b"x").unwrap();
        let err = LocalTree::new(d.path()).err().unwrap().to_string();
        assert!(err.contains("a*b"), "{err}");
    }
}
