//! Names and paths: the rules every repo, branch, project and file name must follow.
//!
//! - Project, repo and branch names match `^[a-zA-Z0-9_-]+$` (reference §4.1).
//! - A branch name may not have the shape of one of our commit IDs (32 hexadecimal
//!   characters, [`COMMIT_ID_LEN`]): `REPO@<that>` would be ambiguous, and a branch so named
//!   would hide the commit. Pachyderm refuses UUIDv4-shaped names for the same reason.
//! - File paths are normalised to `/a/b/c`: a leading `/` is added and one trailing `/` is
//!   dropped. **Empty segments are rejected**, not squashed, so `a//b` is an error rather than
//!   silently meaning `a/b`. Segments `.` and `..` are rejected, as are NUL,
//!   anything outside printable ASCII (`[ -~]`) and the glob characters ``*?[]{}!()@+^``
//!   (reference §2.1), so a file name can never be mistaken for a glob and no path can
//!   climb out of the tree it belongs to.
//! - A segment is at most [`MAX_SEGMENT_BYTES`] (255) bytes and a path at most
//!   [`MAX_PATH_BYTES`] (4096) bytes, the Linux limits: a longer path could be stored but
//!   never downloaded or materialised for a datum, so it is refused at the door.
//!
//! These validators are public so the engine can check user-code outputs before upload.
//!
//! ```
//! use pipeline_core::pfs::names::{validate_file_path, validate_repo_name};
//! assert_eq!(validate_file_path("dir/a.txt/").unwrap(), "/dir/a.txt");
//! assert_eq!(validate_file_path("/").unwrap(), "/");
//! assert!(validate_file_path("/a/../b").is_err());
//! assert!(validate_file_path("/a*").is_err());
//! assert!(validate_repo_name("images").is_ok());
//! assert!(validate_repo_name("my repo").is_err());
//! ```

/// Characters that may never appear in a file name (they are glob syntax).
pub const GLOB_CHARS: &str = "*?[]{}!()@+^";

/// What kind of object a name belongs to (used in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A project name.
    Project,
    /// A repo name.
    Repo,
    /// A branch name.
    Branch,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Project => "project",
            NameKind::Repo => "repo",
            NameKind::Branch => "branch",
        })
    }
}

/// The length of a commit ID (lower- or upper-case hexadecimal characters); a branch name of
/// that shape is refused.
pub const COMMIT_ID_LEN: usize = 32;

/// Why a name was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty, or a character outside `[a-zA-Z0-9_-]`.
    Characters,
    /// A branch name shaped like a commit ID (32 hexadecimal characters).
    LooksLikeCommitId,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::Characters => {
                "only alphanumeric characters, underscores, and dashes are allowed"
            }
            NameProblem::LooksLikeCommitId => {
                "it has the shape of a commit ID (32 hexadecimal characters), so `REPO@NAME` \
                 would mean that commit; pick a name that is not 32 hex digits"
            }
        })
    }
}

/// A rejected project, repo or branch name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name ({name:?}) invalid: {problem}")]
pub struct NameError {
    /// Which kind of name.
    pub kind: NameKind,
    /// The rejected name (escaped by `Debug` when printed).
    pub name: String,
    /// What is wrong with it.
    pub problem: NameProblem,
}

/// Why a file path was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// `a//b`: an empty segment.
    EmptySegment,
    /// A `.` or `..` segment.
    DotSegment,
    /// A NUL byte.
    Nul,
    /// A byte outside printable ASCII `[ -~]`.
    NonPrintable,
    /// One of ``*?[]{}!()@+^``.
    GlobChar(char),
    /// A segment longer than [`MAX_SEGMENT_BYTES`] (no file system can hold it).
    SegmentTooLong {
        /// The segment's length in bytes.
        len: usize,
    },
    /// A path longer than [`MAX_PATH_BYTES`].
    PathTooLong {
        /// The path's length in bytes.
        len: usize,
    },
}

/// Longest file or directory name, in bytes (Linux `NAME_MAX`): a longer one could never be
/// downloaded or materialised for a datum.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Longest file path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathProblem::EmptySegment => f.write_str("empty path segment (\"//\")"),
            PathProblem::DotSegment => f.write_str("\".\" and \"..\" segments are not allowed"),
            PathProblem::Nul => f.write_str("NUL byte"),
            PathProblem::NonPrintable => {
                f.write_str("only printable ASCII characters ([ -~]) are allowed")
            }
            PathProblem::GlobChar(c) => {
                write!(f, "glob character {c:?} is not allowed in file names")
            }
            PathProblem::SegmentTooLong { len } => write!(
                f,
                "a path segment of {len} bytes is over the limit of {MAX_SEGMENT_BYTES} bytes"
            ),
            PathProblem::PathTooLong { len } => write!(
                f,
                "the path is {len} bytes long, over the limit of {MAX_PATH_BYTES} bytes"
            ),
        }
    }
}

/// A rejected file path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file path {path:?}: {problem}")]
pub struct PathError {
    /// The path as given (escaped by `Debug` when printed).
    pub path: String,
    /// What is wrong with it.
    pub problem: PathProblem,
}

fn validate_name(kind: NameKind, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError {
            kind,
            name: name.to_string(),
            problem: NameProblem::Characters,
        })
    }
}

/// Whether `s` has the shape of a commit ID: [`COMMIT_ID_LEN`] hexadecimal characters, in
/// either case (the shape `CommitId::parse` accepts).
pub fn is_commit_id_shaped(s: &str) -> bool {
    s.len() == COMMIT_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a repo name against `^[a-zA-Z0-9_-]+$`.
pub fn validate_repo_name(name: &str) -> Result<(), NameError> {
    validate_name(NameKind::Repo, name)
}

/// Checks a branch name against `^[a-zA-Z0-9_-]+$`, and refuses one shaped like a commit
/// ID ([`is_commit_id_shaped`]).
pub fn validate_branch_name(name: &str) -> Result<(), NameError> {
    validate_name(NameKind::Branch, name)?;
    if is_commit_id_shaped(name) {
        return Err(NameError {
            kind: NameKind::Branch,
            name: name.to_string(),
            problem: NameProblem::LooksLikeCommitId,
        });
    }
    Ok(())
}

/// Checks a project name against `^[a-zA-Z0-9_-]+$`.
pub fn validate_project_name(name: &str) -> Result<(), NameError> {
    validate_name(NameKind::Project, name)
}

/// Validates and normalises a file path: returns `/seg/seg` (or `/` for the root).
///
/// A leading `/` is optional and one trailing `/` is dropped; everything else listed in the
/// module docs is an error naming the path.
pub fn validate_file_path(raw: &str) -> Result<String, PathError> {
    let err = |problem| PathError {
        path: raw.to_string(),
        problem,
    };
    let trimmed = raw.strip_prefix('/').unwrap_or(raw);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok("/".to_string());
    }
    if trimmed.len() + 1 > MAX_PATH_BYTES {
        return Err(err(PathProblem::PathTooLong {
            len: trimmed.len() + 1,
        }));
    }
    let mut out = String::with_capacity(trimmed.len() + 1);
    for segment in trimmed.split('/') {
        validate_segment(segment).map_err(err)?;
        out.push('/');
        out.push_str(segment);
    }
    Ok(out)
}

/// Validates one file name (a single path segment, no `/`).
pub fn validate_file_name(name: &str) -> Result<(), PathError> {
    if name.contains('/') {
        return Err(PathError {
            path: name.to_string(),
            problem: PathProblem::NonPrintable,
        });
    }
    validate_segment(name).map_err(|problem| PathError {
        path: name.to_string(),
        problem,
    })
}

fn validate_segment(segment: &str) -> Result<(), PathProblem> {
    if segment.is_empty() {
        return Err(PathProblem::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(PathProblem::DotSegment);
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PathProblem::SegmentTooLong { len: segment.len() });
    }
    for c in segment.chars() {
        if c == '\0' {
            return Err(PathProblem::Nul);
        }
        if !(' '..='~').contains(&c) {
            return Err(PathProblem::NonPrintable);
        }
        if GLOB_CHARS.contains(c) {
            return Err(PathProblem::GlobChar(c));
        }
    }
    Ok(())
}

/// Joins a normalised directory path and a normalised relative path (`/` + `a/b`).
pub(crate) fn join(dir: &str, rel: &str) -> String {
    if dir == "/" {
        format!("/{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_over_255_bytes_and_paths_over_4096_bytes_are_refused() {
        let ok = "a".repeat(MAX_SEGMENT_BYTES);
        assert!(validate_file_path(&format!("/{ok}")).is_ok());
        let long = "a".repeat(MAX_SEGMENT_BYTES + 1);
        let e = validate_file_path(&format!("/d/{long}")).unwrap_err();
        assert_eq!(e.problem, PathProblem::SegmentTooLong { len: 256 });
        assert!(e.to_string().contains("over the limit of 255 bytes"), "{e}");
        assert!(e.to_string().contains(&long), "names the path: {e}");
        assert!(validate_file_name(&long).is_err());
        let deep = format!("/{}", vec!["b".repeat(200); 21].join("/"));
        assert!(deep.len() > MAX_PATH_BYTES);
        let e = validate_file_path(&deep).unwrap_err();
        assert!(matches!(e.problem, PathProblem::PathTooLong { .. }), "{e}");
        assert!(e.to_string().contains("4096"), "{e}");
        let fits = format!("/{}", vec!["c".repeat(200); 20].join("/"));
        assert!(validate_file_path(&fits).is_ok());
    }

    #[test]
    fn normalises() {
        assert_eq!(validate_file_path("a").unwrap(), "/a");
        assert_eq!(validate_file_path("/a/b/").unwrap(), "/a/b");
        assert_eq!(validate_file_path("").unwrap(), "/");
        assert_eq!(validate_file_path("//").unwrap(), "/");
        assert_eq!(validate_file_path("/a b/c-d.txt").unwrap(), "/a b/c-d.txt");
    }

    #[test]
    fn rejects() {
        for (p, want) in [
            ("/a//b", PathProblem::EmptySegment),
            ("/a/../b", PathProblem::DotSegment),
            ("..", PathProblem::DotSegment),
            ("/./a", PathProblem::DotSegment),
            ("/a\0b", PathProblem::Nul),
            ("/a\nb", PathProblem::NonPrintable),
            ("/é", PathProblem::NonPrintable),
            ("/a*", PathProblem::GlobChar('*')),
            ("/x/{a}", PathProblem::GlobChar('{')),
            ("/^", PathProblem::GlobChar('^')),
        ] {
            let e = validate_file_path(p).unwrap_err();
            assert_eq!(e.problem, want, "{p:?}");
            assert!(e.to_string().contains("invalid file path"));
        }
        for c in GLOB_CHARS.chars() {
            assert!(validate_file_name(&format!("a{c}")).is_err());
        }
    }

    #[test]
    fn names() {
        assert!(validate_repo_name("a_B-9").is_ok());
        for bad in ["", "a b", "a/b", "a.b", "ä"] {
            let e = validate_branch_name(bad).unwrap_err();
            assert!(e.to_string().contains("branch name"));
            assert_eq!(e.problem, NameProblem::Characters);
        }
    }

    #[test]
    fn branch_names_shaped_like_commit_ids_are_refused_and_nothing_else() {
        for id in [
            "0123456789abcdef0123456789abcdef",
            "0123456789ABCDEF0123456789abcdef",
            super::super::model::CommitId::generate().as_str(),
        ] {
            assert!(is_commit_id_shaped(id));
            let e = validate_branch_name(id).unwrap_err();
            assert_eq!(e.kind, NameKind::Branch);
            assert_eq!(e.problem, NameProblem::LooksLikeCommitId);
            assert!(e.to_string().contains(id), "{e}");
            assert!(e.to_string().contains("commit ID"), "{e}");
            // Repos and projects are not addressed by commit ID: the shape is fine there.
            assert!(validate_repo_name(id).is_ok());
            assert!(validate_project_name(id).is_ok());
            // Through the model: no branch reference of that shape can be made.
            let repo = super::super::model::RepoRef::new("test").unwrap();
            let e = repo.branch(id).unwrap_err();
            assert!(
                matches!(&e, super::super::PfsError::InvalidName(n)
                    if n.problem == NameProblem::LooksLikeCommitId),
                "{e}"
            );
        }
        for fine in [
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef-0123456789abcde",
            "deadbeef",
            "master",
        ] {
            assert!(validate_branch_name(fine).is_ok(), "{fine}");
        }
    }
}
