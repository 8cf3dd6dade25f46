//! Queries over a branch's history and between two trees that pachctl's `diff file` and
//! `find commit` need: a diff restricted to one path on each side (optionally one level
//! deep), and the commits of a branch that changed a path, newest first. Both stream.

use std::cmp::Ordering;
use std::iter::Peekable;

use serde::{Deserialize, Serialize};

use super::error::{PfsError, Result};
use super::files::{DiffIter, FileIter};
use super::model::{Change, CommitInfo, CommitRef, DiffEntry, FileInfo};
use super::names::validate_file_path;
use super::store::Store;
use crate::hash::ContentHash;

/// A commit that changed the path [`Store::find_commits`] looks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FoundCommit {
    /// The commit.
    pub commit: CommitInfo,
    /// What it did to the path, compared with its parent.
    pub change: Change,
}

/// A streaming iterator over [`FoundCommit`]s.
pub type FoundIter = Box<dyn Iterator<Item = Result<FoundCommit>> + Send>;

impl Store {
    /// What differs between `new_path` of `new` and `old_path` of `old`, keyed by the path
    /// below each (so two different directories, even of two repos, compare file by file),
    /// in path order, streamed. `shallow` compares one level: the entries directly in the
    /// directories (a sub-directory is one entry, compared by its hash). A path missing on
    /// one side is empty there; missing on both sides, it is [`PfsError::FileNotFound`] for
    /// `new`. Each entry's `path` is the path on the new side (on the old side for a
    /// deleted one).
    pub fn diff_path(
        &self,
        new: &CommitRef,
        new_path: &str,
        old: &CommitRef,
        old_path: &str,
        shallow: bool,
    ) -> Result<DiffIter> {
        let new_path = validate_file_path(new_path)?;
        let old_path = validate_file_path(old_path)?;
        let a = self.side(new, &new_path, shallow)?;
        let b = self.side(old, &old_path, shallow)?;
        if a.is_none() && b.is_none() {
            return Err(PfsError::FileNotFound {
                repo: new.repo.to_string(),
                commit: new.id.to_string(),
                path: new_path,
            });
        }
        let empty = || -> FileIter { Box::new(std::iter::empty()) };
        Ok(Box::new(RelDiff {
            a: Keyed::new(a.unwrap_or_else(empty), &new_path).peekable(),
            b: Keyed::new(b.unwrap_or_else(empty), &old_path).peekable(),
        }))
    }

    /// The listing of one side of a diff; `None` when the path does not exist there.
    fn side(&self, commit: &CommitRef, path: &str, shallow: bool) -> Result<Option<FileIter>> {
        let listed = if shallow {
            self.list_file(commit, path)
        } else {
            self.list_file_recursive(commit, path)
        };
        match listed {
            Ok(it) => {
                let mut it = it.peekable();
                if path != "/" && it.peek().is_none() {
                    return Ok(None);
                }
                Ok(Some(Box::new(it)))
            }
            Err(PfsError::FileNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The commits of `head`'s history (it, its parent, ...) that changed `path` (added,
    /// modified or deleted it, compared with their parent; a directory counts as changed
    /// when anything below it did), newest first, streamed: each commit costs one lookup of
    /// the path. A root commit that has the path counts as adding it.
    pub fn find_commits(&self, head: &CommitRef, path: &str) -> Result<FoundIter> {
        let path = validate_file_path(path)?;
        let info = self.inspect_commit(head)?;
        let hash = self.hash_or_none(head, &path)?;
        Ok(Box::new(FindCommits {
            store: self.clone(),
            path,
            next: Some((info, hash)),
        }))
    }

    /// The hash of `path` in `commit`; `None` when it does not exist there.
    fn hash_or_none(&self, commit: &CommitRef, path: &str) -> Result<Option<ContentHash>> {
        match self.inspect_file(commit, path) {
            Ok(f) => Ok(Some(f.hash)),
            Err(PfsError::FileNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Walks a history from the newest commit, carrying the path's hash in the commit it
/// stands on so each step looks up only the parent.
struct FindCommits {
    store: Store,
    path: String,
    next: Option<(CommitInfo, Option<ContentHash>)>,
}

impl FindCommits {
    /// One step: the commit stood on, if it changed the path.
    fn step(&mut self) -> Result<Option<FoundCommit>> {
        let Some((info, hash)) = self.next.take() else {
            return Ok(None);
        };
        let parent_hash = match &info.parent {
            Some(p) => {
                let pc = info.commit.repo.commit(p);
                let pinfo = self.store.inspect_commit(&pc)?;
                let h = self.store.hash_or_none(&pc, &self.path)?;
                self.next = Some((pinfo, h));
                h
            }
            None => None,
        };
        let change = match (&hash, &parent_hash) {
            (Some(_), None) => Change::Added,
            (None, Some(_)) => Change::Deleted,
            (Some(a), Some(b)) if a != b => Change::Modified,
            _ => return Ok(None),
        };
        Ok(Some(FoundCommit {
            commit: info,
            change,
        }))
    }
}

impl Iterator for FindCommits {
    type Item = Result<FoundCommit>;
    fn next(&mut self) -> Option<Self::Item> {
        while self.next.is_some() {
            match self.step() {
                Ok(Some(found)) => return Some(Ok(found)),
                Ok(None) => {}
                Err(e) => {
                    self.next = None;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// A listing with each entry keyed by its path below the listed path (`""` for the listed
/// path itself when it is a file).
struct Keyed {
    inner: FileIter,
    base: String,
}

impl Keyed {
    fn new(inner: FileIter, path: &str) -> Self {
        let base = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Keyed { inner, base }
    }
}

impl Iterator for Keyed {
    type Item = Result<(String, FileInfo)>;
    fn next(&mut self) -> Option<Self::Item> {
        let f = match self.inner.next()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let key = f.path.strip_prefix(&self.base).unwrap_or("").to_string();
        Some(Ok((key, f)))
    }
}

/// The merge of two keyed listings in key order.
struct RelDiff {
    a: Peekable<Keyed>,
    b: Peekable<Keyed>,
}

impl RelDiff {
    /// Which side comes next; an error on either side is taken first.
    fn order(&mut self) -> Option<Result<Ordering>> {
        match (self.a.peek(), self.b.peek()) {
            (None, None) => None,
            (Some(Err(_)), _) => self.a.next().and_then(|r| r.err()).map(Err),
            (_, Some(Err(_))) => self.b.next().and_then(|r| r.err()).map(Err),
            (Some(Ok(_)), None) => Some(Ok(Ordering::Less)),
            (None, Some(Ok(_))) => Some(Ok(Ordering::Greater)),
            (Some(Ok((x, _))), Some(Ok((y, _)))) => Some(Ok(x.cmp(y))),
        }
    }
}

impl Iterator for RelDiff {
    type Item = Result<DiffEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match self.order()? {
                Ok(o) => o,
                Err(e) => return Some(Err(e)),
            };
            let (new, old) = match order {
                Ordering::Less => (self.a.next()?.ok().map(|(_, f)| f), None),
                Ordering::Greater => (None, self.b.next()?.ok().map(|(_, f)| f)),
                Ordering::Equal => {
                    let x = self.a.next()?.ok().map(|(_, f)| f);
                    let y = self.b.next()?.ok().map(|(_, f)| f);
                    if x.as_ref().map(|f| &f.hash) == y.as_ref().map(|f| &f.hash) {
                        continue;
                    }
                    (x, y)
                }
            };
            let change = match (&new, &old) {
                (Some(_), None) => Change::Added,
                (None, Some(_)) => Change::Deleted,
                _ => Change::Modified,
            };
            let path = new.as_ref().or(old.as_ref())?.path.clone();
            return Some(Ok(DiffEntry {
                path,
                change,
                new,
                old,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pfs::{Change, CommitRef, FinishOptions, MemMetaStore, RepoRef, Store};

    fn store() -> (tempfile::TempDir, Store, RepoRef) {
        let dir = tempfile::tempdir().unwrap();
        let objects =
            crate::pfs::object::LocalObjectStore::open(&dir.path().join("objects")).unwrap();
        let store = Store::with_backends(Box::new(MemMetaStore::default()), Box::new(objects));
        let repo = RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        (dir, store, repo)
    }

    fn commit(store: &Store, repo: &RepoRef, puts: &[(&str, &[u8])], dels: &[&str]) -> CommitRef {
        let c = store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit;
        for (p, b) in puts {
            store.put_file_bytes(&c, p, b).unwrap();
        }
        for p in dels {
            store.delete_file(&c, p).unwrap();
        }
        store.finish_commit(&c, FinishOptions::default()).unwrap();
        c
    }

    #[test]
    fn find_commits_lists_the_commits_that_changed_a_path_newest_first() {
        let (_d, s, repo) = store();
        let c1 = commit(&s, &repo, &[("/a", b"1"), ("/b", b"1")], &[]);
        let _c2 = commit(&s, &repo, &[("/b", b"2")], &[]);
        let c3 = commit(&s, &repo, &[("/a", b"2")], &[]);
        let c4 = commit(&s, &repo, &[], &["/a"]);
        let found: Vec<_> = s
            .find_commits(&c4, "/a")
            .unwrap()
            .map(|f| f.unwrap())
            .map(|f| (f.commit.commit.id, f.change))
            .collect();
        assert_eq!(
            found,
            [
                (c4.id.clone(), Change::Deleted),
                (c3.id, Change::Modified),
                (c1.id, Change::Added)
            ]
        );
        assert_eq!(s.find_commits(&c4, "/nothing").unwrap().count(), 0);
        assert!(
            s.find_commits(&c4, "/a/../b").is_err(),
            "a bad path is refused"
        );
    }

    #[test]
    fn diff_path_compares_below_each_path_and_shallow_stops_at_one_level() {
        let (_d, s, repo) = store();
        let old = commit(&s, &repo, &[("/x/a", b"1"), ("/x/s/b", b"1")], &[]);
        let new = commit(&s, &repo, &[("/x/s/b", b"2"), ("/y/a", b"1")], &[]);
        let deep: Vec<_> = s
            .diff_path(&new, "/x", &old, "/x", false)
            .unwrap()
            .map(|d| d.unwrap())
            .map(|d| (d.path, d.change))
            .collect();
        assert_eq!(deep, [("/x/s/b".to_string(), Change::Modified)]);
        let shallow: Vec<_> = s
            .diff_path(&new, "/x", &old, "/x", true)
            .unwrap()
            .map(|d| d.unwrap().path)
            .collect();
        assert_eq!(shallow, ["/x/s/"]);
        // Different paths compare file by file below each: /y/a equals /x/a.
        let cross: Vec<_> = s
            .diff_path(&new, "/y", &old, "/x", false)
            .unwrap()
            .map(|d| d.unwrap())
            .map(|d| (d.path, d.change))
            .collect();
        assert_eq!(cross, [("/x/s/b".to_string(), Change::Deleted)]);
        let added: Vec<_> = s
            .diff_path(&new, "/y", &old, "/y", false)
            .unwrap()
            .map(|d| d.unwrap().change)
            .collect();
        assert_eq!(added, [Change::Added]);
        assert!(s.diff_path(&new, "/none", &old, "/none", false).is_err());
    }
}
