//! Glob matching for [`Store::glob_file`](super::Store::glob_file), on the project's glob
//! dialect ([`crate::glob`]): the pattern is normalised like Pachyderm's (leading `/` added,
//! trailing `/` removed), matched against whole paths (directories without their trailing
//! `/`); `/` matches only the root.

use super::error::{PfsError, Result};
use crate::error_chain::ErrorChain;
use crate::glob::{Glob, normalize};

/// A compiled, normalised glob.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    inner: Glob,
    root_only: bool,
}

impl Matcher {
    pub(crate) fn new(pattern: &str) -> Result<Self> {
        let norm = normalize(pattern);
        let inner = Glob::new(&norm).map_err(|e| PfsError::InvalidGlob {
            pattern: pattern.to_string(),
            reason: ErrorChain(&e).to_string(),
        })?;
        Ok(Matcher {
            inner,
            root_only: norm == "/",
        })
    }

    /// `path` is a normalised path without trailing `/` (the root is `/`).
    /// The root is matched by the glob `/` only, and that glob matches nothing else.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        if self.root_only || path == "/" {
            return self.root_only && path == "/";
        }
        self.inner.is_match(path)
    }
}
