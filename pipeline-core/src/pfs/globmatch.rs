//! Glob matching for [`Store::glob_file`](super::Store::glob_file).
//!
//! PLACEHOLDER until the project's glob module (`crate::glob`, branch `issue-3-datum`)
//! lands: a minimal matcher on `globset` with `*` not crossing `/`, `**` crossing it, `?`,
//! classes and `{a,b}`, anchored at both ends. Extglob groups and captures are not supported
//! here. The pattern is normalised like Pachyderm's (leading `/` added, trailing `/`
//! removed); `/` matches only the root.

use super::error::{PfsError, Result};

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    root_only: bool,
    inner: globset::GlobMatcher,
}

impl Matcher {
    pub(crate) fn new(pattern: &str) -> Result<Self> {
        let trimmed = pattern.trim_end_matches('/');
        let norm = if trimmed.starts_with('/') {
            trimmed.to_string()
        } else {
            format!("/{trimmed}")
        };
        let glob = globset::GlobBuilder::new(&norm)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| PfsError::InvalidGlob {
                pattern: pattern.to_string(),
                reason: e.kind().to_string(),
            })?;
        Ok(Matcher {
            root_only: norm == "/",
            inner: glob.compile_matcher(),
        })
    }

    /// `path` is a normalised path without trailing `/` (the root is `/`).
    pub(crate) fn is_match(&self, path: &str) -> bool {
        if self.root_only || path == "/" {
            return self.root_only && path == "/";
        }
        self.inner.is_match(path)
    }
}
