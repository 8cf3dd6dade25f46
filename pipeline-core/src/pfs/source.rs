//! [`CommitTree`]: one commit of the store as a [`TreeSource`] for datum planning.

use crate::datum::{Entry, EntryIter, SourceError, TreeSource};

use super::error::PfsError;
use super::model::{CommitRef, FileInfo};
use super::store::Store;

/// A commit's tree as datum planning reads it. Listings stream from the store; each
/// `walk` first makes one pass to compute directory hashes (memory O(directories)).
#[derive(Debug, Clone)]
pub struct CommitTree {
    store: Store,
    commit: CommitRef,
}

impl CommitTree {
    /// The tree of `commit` (open or finished; an open commit's tree may still change).
    pub fn new(store: Store, commit: CommitRef) -> Self {
        CommitTree { store, commit }
    }

    /// The commit.
    pub fn commit(&self) -> &CommitRef {
        &self.commit
    }

    fn err(&self, e: PfsError) -> SourceError {
        SourceError::Backend {
            context: format!("reading {}", self.commit),
            source: Box::new(e),
        }
    }
}

fn entry(f: FileInfo) -> Entry {
    Entry {
        path: f.path,
        hash: f.hash,
        size: f.size,
    }
}

impl TreeSource for CommitTree {
    fn walk(&self) -> EntryIter<'_> {
        match self.store.walk(&self.commit) {
            Ok(it) => Box::new(
                it.filter(|e| !matches!(e, Ok(f) if f.path == "/"))
                    .map(move |e| e.map(entry).map_err(|e| self.err(e))),
            ),
            Err(e) => Box::new(std::iter::once(Err(self.err(e)))),
        }
    }

    fn root(&self) -> Result<Option<Entry>, SourceError> {
        match self.store.inspect_file(&self.commit, "/") {
            Ok(f) => Ok(Some(entry(f))),
            Err(PfsError::FileNotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn entry(&self, path: &str) -> Result<Option<Entry>, SourceError> {
        match self.store.inspect_file(&self.commit, path) {
            Ok(f) => Ok(Some(entry(f))),
            Err(PfsError::FileNotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        if prefix.ends_with('/') && prefix != "/" {
            match self.store.walk_dir(&self.commit, prefix) {
                Ok(it) => Box::new(it.map(move |e| e.map(entry).map_err(|e| self.err(e)))),
                Err(e) => Box::new(std::iter::once(Err(self.err(e)))),
            }
        } else {
            Box::new(
                self.walk()
                    .skip_while(move |e| matches!(e, Ok(e) if e.path.as_str() < prefix))
                    .take_while(move |e| {
                        e.is_err() || matches!(e, Ok(e) if e.path.starts_with(prefix))
                    }),
            )
        }
    }
}
