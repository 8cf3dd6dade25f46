//! Checking what user code left in `/pfs/out`, shared by every executor and the engine.
//!
//! After [`Worker::run`](super::Worker::run) returns, `scratch/out` holds the datum's output as
//! user code wrote it. Before anything is ingested, every entry must be a valid PFS path
//! (reference §2.1: printable ASCII, none of ``*?[]{}!()@+^``, no `.`/`..` parts) and no symlink
//! may lead outside `out`. Symlinks are **never followed**: a link is inspected with `lstat` and
//! `readlink`, and its target is resolved lexically.
//!
//! [`OutputScanner`] walks the tree depth-first, one directory listing in memory at a time, in
//! byte order of names, and yields one [`OutputEntry`] or [`OutputError`] per entry; after an
//! error it keeps going, so a caller can report every problem. [`scan_output`] is the strict
//! shortcut that stops at the first problem and returns totals.
//!
//! ```
//! use pipeline_core::executor::output::{scan_output, OutputError};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("sub"))?;
//! std::fs::write(dir.path().join("sub/a file.txt"), b"hello")?;
//! let summary = scan_output(dir.path())?;
//! assert_eq!((summary.files, summary.bytes), (1, 5));
//!
//! std::fs::write(dir.path().join("bad*name"), b"")?;
//! let err = scan_output(dir.path()).unwrap_err();
//! assert!(matches!(err, OutputError::InvalidName { ref path, .. } if path == "bad*name"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Characters PFS forbids in file names (they are glob syntax).
pub const FORBIDDEN_NAME_CHARS: &[char] =
    &['*', '?', '[', ']', '{', '}', '!', '(', ')', '@', '+', '^'];

/// Checks one path component against PFS's file-name rules (reference §2.1).
///
/// Returns a short reason when the name is invalid.
///
/// ```
/// use pipeline_core::executor::output::validate_file_name;
/// assert!(validate_file_name("report 2024.csv").is_ok());
/// assert!(validate_file_name("a?b").is_err());
/// assert!(validate_file_name("..").is_err());
/// assert!(validate_file_name("héllo").is_err());
/// ```
pub fn validate_file_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not allowed as path parts");
    }
    if name.contains('/') {
        return Err("contains `/`");
    }
    if !name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err("must be printable ASCII (space to `~`)");
    }
    if name.contains(FORBIDDEN_NAME_CHARS) {
        return Err("contains one of the glob characters `*?[]{}!()@+^`");
    }
    Ok(())
}

/// One valid entry under `out`. Paths are relative to `out`, `/`-separated, without a leading
/// `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEntry {
    /// A regular file.
    File {
        /// Path relative to `out`.
        path: String,
        /// Size in bytes.
        len: u64,
    },
    /// A directory (yielded before its contents).
    Dir {
        /// Path relative to `out`.
        path: String,
    },
    /// A symlink whose target stays inside `out` (not followed).
    Symlink {
        /// Path of the link relative to `out`.
        path: String,
        /// The target, resolved lexically, relative to `out`.
        target: String,
    },
    /// A symlink into an input, `/pfs/<input>/<path>` (not followed): Pachyderm's shuffle
    /// pattern (reference §2.10); the engine stores the input's file (or the files below
    /// the input's directory) by content, without reading the link.
    InputLink {
        /// Path of the link relative to `out`.
        path: String,
        /// The input's name (`/pfs/<input>`).
        input: String,
        /// The target below `/pfs/<input>`, resolved lexically, with a leading `/`.
        target: String,
    },
}

impl OutputEntry {
    /// The entry's path relative to `out`.
    pub fn path(&self) -> &str {
        match self {
            OutputEntry::File { path, .. }
            | OutputEntry::Dir { path }
            | OutputEntry::Symlink { path, .. }
            | OutputEntry::InputLink { path, .. } => path,
        }
    }
}

/// A problem with one entry under `out` (or with reading it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A path part is not a valid PFS file name.
    #[error("output path {path:?} is not a valid PFS path: {reason}")]
    InvalidName {
        /// Path relative to `out` (non-UTF-8 bytes shown lossily).
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A symlink points outside `out` and the datum's inputs (absolute, or escaping with
    /// `..`).
    #[error("output symlink {path:?} points outside /pfs/out and /pfs/<input> (to {target:?})")]
    SymlinkOutside {
        /// Path of the link relative to `out`.
        path: String,
        /// The link's target as stored.
        target: String,
    },
    /// A FIFO, socket or device node.
    #[error("output path {path:?} is a {kind}, expected a file, directory or symlink")]
    UnsupportedType {
        /// Path relative to `out`.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Reading the tree failed.
    #[error("reading output {path:?}")]
    Io {
        /// The host path being read.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Totals of a valid output tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSummary {
    /// Regular files.
    pub files: u64,
    /// Directories (not counting `out` itself).
    pub dirs: u64,
    /// Symlinks (pointing inside `out` or into an input).
    pub symlinks: u64,
    /// Total size of regular files.
    pub bytes: u64,
}

/// Walks `out_dir` and fails on the first invalid entry; see the module docs.
pub fn scan_output(out_dir: &Path) -> Result<OutputSummary, OutputError> {
    let mut summary = OutputSummary::default();
    for entry in OutputScanner::new(out_dir)? {
        match entry? {
            OutputEntry::File { len, .. } => {
                summary.files += 1;
                summary.bytes += len;
            }
            OutputEntry::Dir { .. } => summary.dirs += 1,
            OutputEntry::Symlink { .. } | OutputEntry::InputLink { .. } => summary.symlinks += 1,
        }
    }
    Ok(summary)
}

/// A streaming, depth-first walk of an output directory. See the module docs.
#[derive(Debug)]
pub struct OutputScanner {
    root: PathBuf,
    /// Pending names per open directory (reversed, so `pop` gives byte order), with the
    /// directory's path relative to `root`.
    stack: Vec<(String, Vec<OsString>)>,
}

impl OutputScanner {
    /// Starts a walk of `out_dir`, which must be a directory (not a symlink to one).
    pub fn new(out_dir: &Path) -> Result<Self, OutputError> {
        let meta = fs::symlink_metadata(out_dir).map_err(|source| OutputError::Io {
            path: out_dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(OutputError::Io {
                path: out_dir.to_path_buf(),
                source: std::io::Error::other("output root is not a directory"),
            });
        }
        let names = list_sorted(out_dir)?;
        Ok(OutputScanner {
            root: out_dir.to_path_buf(),
            stack: vec![(String::new(), names)],
        })
    }

    fn visit(&mut self, dir: &str, name: OsString) -> Result<OutputEntry, OutputError> {
        let lossy = name.to_string_lossy();
        let path = if dir.is_empty() {
            lossy.to_string()
        } else {
            format!("{dir}/{lossy}")
        };
        let name = match name.to_str() {
            Some(n) => n,
            None => {
                return Err(OutputError::InvalidName {
                    path,
                    reason: "not valid UTF-8 (must be printable ASCII)",
                });
            }
        };
        validate_file_name(name).map_err(|reason| OutputError::InvalidName {
            path: path.clone(),
            reason,
        })?;
        let host = self.root.join(&path);
        let meta = fs::symlink_metadata(&host).map_err(|source| OutputError::Io {
            path: host.clone(),
            source,
        })?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|source| OutputError::Io {
                path: host.clone(),
                source,
            })?;
            return match resolve_link(dir, &target) {
                Some(Resolved::Out(target)) => Ok(OutputEntry::Symlink { path, target }),
                Some(Resolved::Input(input, target)) => Ok(OutputEntry::InputLink {
                    path,
                    input,
                    target,
                }),
                None => Err(OutputError::SymlinkOutside {
                    path,
                    target: target.to_string_lossy().into_owned(),
                }),
            };
        }
        if ft.is_dir() {
            let names = list_sorted(&host)?;
            self.stack.push((path.clone(), names));
            return Ok(OutputEntry::Dir { path });
        }
        if ft.is_file() {
            return Ok(OutputEntry::File {
                path,
                len: meta.len(),
            });
        }
        Err(OutputError::UnsupportedType {
            path,
            kind: special_kind(&ft),
        })
    }
}

impl Iterator for OutputScanner {
    type Item = Result<OutputEntry, OutputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (dir, names) = self.stack.last_mut()?;
            match names.pop() {
                Some(name) => {
                    let dir = dir.clone();
                    return Some(self.visit(&dir, name));
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

fn list_sorted(dir: &Path) -> Result<Vec<OsString>, OutputError> {
    let io = |source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        names.push(entry.map_err(io)?.file_name());
    }
    // Reverse byte order so that `pop` yields ascending names.
    names.sort_unstable_by(|a, b| b.as_encoded_bytes().cmp(a.as_encoded_bytes()));
    Ok(names)
}

/// Where a link leads, resolved lexically.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// Inside `out`: the target relative to `out`.
    Out(String),
    /// Into `/pfs/<input>`: the input and the path below it (leading `/`).
    Input(String, String),
}

/// Resolves a link target found in directory `dir` (relative to `out`) lexically, as user
/// code sees it: from `/pfs/out/<dir>`. `None` when it leaves `/pfs`, or names `/pfs` or an
/// input itself rather than something below it.
fn resolve_link(dir: &str, target: &Path) -> Option<Resolved> {
    let (mut parts, rest): (Vec<String>, &Path) = if target.is_absolute() {
        (Vec::new(), target)
    } else {
        let base = ["pfs", "out"]
            .into_iter()
            .map(str::to_owned)
            .chain(dir.split('/').filter(|p| !p.is_empty()).map(str::to_owned))
            .collect();
        (base, target)
    };
    for c in rest.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    match parts.as_slice() {
        [pfs, out, rest @ ..] if pfs == "pfs" && out == "out" => {
            Some(Resolved::Out(rest.join("/")))
        }
        [pfs, input, rest @ ..] if pfs == "pfs" && !rest.is_empty() => Some(Resolved::Input(
            input.clone(),
            format!("/{}", rest.join("/")),
        )),
        _ => None,
    }
}

#[cfg(unix)]
fn special_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_ft: &fs::FileType) -> &'static str {
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pfs_rules() {
        for ok in [
            "a", "a b", "x.tar.gz", "~tilde", "-dash", "...", ".hidden", "a=b,c;d",
        ] {
            assert_eq!(validate_file_name(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "", ".", "..", "a*", "a?", "[", "]", "{", "}", "!", "(", ")", "@", "+", "^", "tab\t",
            "nl\n", "é", "a/b", "\u{7f}",
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_resolve_lexically() {
        let out = |t: &str| Some(Resolved::Out(t.into()));
        let input = |i: &str, t: &str| Some(Resolved::Input(i.into(), t.into()));
        assert_eq!(resolve_link("", Path::new("a")), out("a"));
        assert_eq!(resolve_link("d/e", Path::new("../f")), out("d/f"));
        assert_eq!(resolve_link("d", Path::new("../../x")), None);
        assert_eq!(resolve_link("", Path::new("../in/x")), input("in", "/x"));
        assert_eq!(
            resolve_link("d", Path::new("../../in/d/./x")),
            input("in", "/d/x")
        );
        assert_eq!(resolve_link("", Path::new("/pfs/in/a")), input("in", "/a"));
        assert_eq!(resolve_link("", Path::new("../../../pfs/in/a")), None);
        assert_eq!(resolve_link("", Path::new("/etc/passwd")), None);
        assert_eq!(resolve_link("", Path::new("/pfs/out/a")), out("a"));
        assert_eq!(resolve_link("", Path::new("/pfs/outside")), None);
        assert_eq!(resolve_link("", Path::new("/pfs/in")), None);
        assert_eq!(resolve_link("", Path::new("../..")), None);
        assert_eq!(resolve_link("", Path::new("/pfs/in/../../etc/x")), None);
    }

    #[cfg(unix)]
    #[test]
    fn scanner_reports_every_problem_and_never_follows_links()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir()?;
        let out = dir.path();
        fs::create_dir_all(out.join("n/e/s/t"))?;
        fs::write(out.join("n/e/s/t/deep"), b"1234")?;
        fs::write(out.join("empty"), b"")?;
        fs::write(out.join("with space"), b"x")?;
        fs::write(out.join("héllo"), b"x")?;
        symlink("/etc", out.join("abs"))?;
        symlink("../../..", out.join("n/up"))?;
        symlink("e/s/t/deep", out.join("n/ok"))?;
        let all: Vec<_> = OutputScanner::new(out)?.collect();
        let errors: Vec<String> = all
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("\"abs\""), "{errors:?}");
        assert!(errors[1].contains("\"héllo\""), "{errors:?}");
        assert!(errors[2].contains("\"n/up\""), "{errors:?}");
        let ok: Vec<OutputEntry> = all.into_iter().filter_map(Result::ok).collect();
        let paths: Vec<&str> = ok.iter().map(OutputEntry::path).collect();
        assert_eq!(
            paths,
            [
                "empty",
                "n",
                "n/e",
                "n/e/s",
                "n/e/s/t",
                "n/e/s/t/deep",
                "n/ok",
                "with space"
            ]
        );
        assert!(ok.contains(&OutputEntry::Symlink {
            path: "n/ok".into(),
            target: "n/e/s/t/deep".into()
        }));
        // The strict form stops at the first problem.
        assert!(matches!(
            scan_output(out),
            Err(OutputError::SymlinkOutside { ref path, .. }) if path == "abs"
        ));
        Ok(())
    }

    #[test]
    fn missing_root_is_an_io_error_naming_it() {
        let err = scan_output(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }
}
