//! Parsing pachctl-style references: `repo`, `repo@branch`, `repo@commit^N`,
//! `project/repo@branch:/path`.

use super::error::{PfsError, Result};
use super::model::RepoRef;
use super::names::validate_file_path;

/// A parsed `[project/]repo[@commit-or-branch][:path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The repo.
    pub repo: RepoRef,
    /// Branch, commit ID, either with `^N`; `None` when absent.
    pub commit: Option<String>,
    /// The raw path part (after `:`), not yet validated (it may be a glob).
    pub path: Option<String>,
}

impl FileRef {
    /// Parses the reference. Names are validated; the path is kept as written.
    ///
    /// ```
    /// use pipeline_core::pfs::refs::FileRef;
    /// let r = FileRef::parse("images@master^2:/dir/a.png").unwrap();
    /// assert_eq!(r.repo.name, "images");
    /// assert_eq!(r.commit.as_deref(), Some("master^2"));
    /// assert_eq!(r.path.as_deref(), Some("/dir/a.png"));
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let (head, path) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p.to_string())),
            None => (s, None),
        };
        let (repo, commit) = match head.split_once('@') {
            Some((r, c)) => {
                if c.is_empty() {
                    return Err(PfsError::InvalidRef {
                        input: s.to_string(),
                        reason: "expected a branch or commit after '@'".into(),
                    });
                }
                (r, Some(c.to_string()))
            }
            None => (head, None),
        };
        Ok(FileRef {
            repo: RepoRef::parse(repo)?,
            commit,
            path,
        })
    }

    /// The path, validated and normalised (`/` when absent).
    pub fn file_path(&self) -> Result<String> {
        Ok(validate_file_path(self.path.as_deref().unwrap_or("/"))?)
    }
}
