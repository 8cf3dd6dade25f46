//! pachctl's auto-commit rule for writes (`put file`, `delete file`): a write to a branch goes
//! into the branch's open head commit if it has one; otherwise a new commit is started for
//! the write alone and finished right after it (or, when the write fails, discarded, so no
//! half-made commit stays open or becomes visible). Output branches (with provenance) are refused.
//!
//! The commit started for the write is recorded as owned by the writing process; if the
//! process dies before finishing it, the next [`Store::open`] discards it (see
//! [`super::recovery`]).

use std::fmt::Display;

use super::commits::FinishOptions;
use super::error::{PfsError, Result};
use super::model::{CommitId, CommitInfo, CommitRef, RepoRef};
use super::store::Store;
use crate::spec::effective::DEFAULT_BRANCH;

/// The commit a write goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTarget {
    /// The commit to write into.
    pub commit: CommitRef,
    /// Started for this write: finish it when the write is done.
    pub auto: bool,
}

/// What [`Store::write_auto_commit`] did.
#[derive(Debug, Clone)]
pub struct Written<T> {
    /// What the write returned.
    pub value: T,
    /// The commit written into.
    pub commit: CommitRef,
    /// The auto commit as finished after the write; `None` when the write went into an
    /// already open commit (which stays open).
    pub finished: Option<CommitInfo>,
}

impl<T> Written<T> {
    /// The error the auto commit was finished with (e.g. a file/directory path collision).
    pub fn error(&self) -> Option<&str> {
        self.finished.as_ref().and_then(|c| c.error.as_deref())
    }
}

impl Store {
    /// Where a write to `repo@at` goes (`at`: a branch, a commit ID or `BRANCH^N`; default
    /// branch when `None`): the branch's open head, or a newly started commit
    /// ([`WriteTarget::auto`], owned by this process: see [`super::recovery`]) when the head
    /// is finished or the branch does not exist yet. An open head that a dead command
    /// started for its own write is recovered first (it is never written into).
    /// A commit that is not a branch is written into as is. Branches with provenance are
    /// refused with [`PfsError::OutputBranch`].
    pub fn write_target(&self, repo: &RepoRef, at: Option<&str>) -> Result<WriteTarget> {
        let at = at.unwrap_or(DEFAULT_BRANCH);
        let Ok(branch) = repo.branch(at) else {
            return Ok(WriteTarget {
                commit: self.resolve_commit(repo, at)?,
                auto: false,
            });
        };
        match self.inspect_branch(&branch) {
            Ok(info) => {
                if !info.direct_provenance.is_empty() {
                    return Err(PfsError::OutputBranch {
                        repo: repo.to_string(),
                        branch: branch.name,
                    });
                }
                let head = self.inspect_commit(&repo.commit(&info.head))?;
                if !head.is_finished() && !self.recover_before_write(&head.commit)? {
                    return Ok(WriteTarget {
                        commit: head.commit,
                        auto: false,
                    });
                }
            }
            Err(PfsError::BranchNotFound { .. }) => {
                // A commit ID is also a valid branch name: no such branch, but such a
                // commit, means the commit (written into as is).
                if CommitId::parse(at).is_ok()
                    && let Ok(commit) = self.resolve_commit(repo, at)
                {
                    return Ok(WriteTarget {
                        commit,
                        auto: false,
                    });
                }
            }
            Err(e) => return Err(e),
        }
        Ok(WriteTarget {
            commit: self.start_owned_commit(&branch)?,
            auto: true,
        })
    }

    /// Runs `write` against the [`Store::write_target`] of `repo@at` with pachctl's
    /// auto-commit rule: an auto commit is finished after a successful write; after a failed
    /// one it is discarded with the commits it started downstream, so a failed write changes
    /// nothing (when it cannot be discarded, it is finished with the error
    /// `write failed: <error>`).
    ///
    /// ```
    /// use pipeline_core::pfs::{RepoRef, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// let repo = RepoRef::new("data").unwrap();
    /// store.create_repo(&repo, "").unwrap();
    /// let w = store
    ///     .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a.txt", b"hi"))
    ///     .unwrap();
    /// assert!(w.finished.unwrap().is_finished());
    /// ```
    ///
    /// Concurrent writers to one branch in this process take turns while they hold an auto
    /// commit: each successful write is its own commit, and none writes into another's (a
    /// write into a commit the user opened does not wait).
    pub fn write_auto_commit<T, E>(
        &self,
        repo: &RepoRef,
        at: Option<&str>,
        write: impl FnOnce(&CommitRef) -> std::result::Result<T, E>,
    ) -> std::result::Result<Written<T>, E>
    where
        E: From<PfsError> + Display,
    {
        let key = format!("{}@{}", repo.key(), at.unwrap_or(DEFAULT_BRANCH));
        let turn = self.branch_writer_lock(key);
        let held = turn.lock().unwrap_or_else(|e| e.into_inner());
        let target = self.write_target(repo, at)?;
        let _held = if target.auto {
            Some(held)
        } else {
            drop(held);
            None
        };
        match write(&target.commit) {
            Ok(value) => {
                let finished = if target.auto {
                    Some(self.finish_commit(&target.commit, FinishOptions::default())?)
                } else {
                    None
                };
                Ok(Written {
                    value,
                    commit: target.commit,
                    finished,
                })
            }
            Err(e) => {
                if target.auto {
                    // Best effort: if even this fails (a full disk), the commit stays open,
                    // owned by this process, and the next open discards it.
                    let _ =
                        self.abandon_owned_commit(&target.commit, &format!("write failed: {e}"));
                }
                Err(e)
            }
        }
    }
}

#[cfg(all(test, feature = "store-redb"))]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store, RepoRef) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let repo = RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        (dir, store, repo)
    }

    #[test]
    fn concurrent_writers_to_one_branch_each_get_their_own_commit() {
        let (_d, store, repo) = store();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, repo) = (store.clone(), repo.clone());
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let path = format!("/t{t}/f{i}");
                        let w = store
                            .write_auto_commit(&repo, None, |c| {
                                store.put_file_bytes(c, &path, path.as_bytes())
                            })
                            .unwrap_or_else(|e| panic!("{path}: {e}"));
                        assert!(w.finished.is_some() && w.error().is_none(), "{path}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let head = store.resolve_commit(&repo, "master").unwrap();
        let files = store.list_file_recursive(&head, "/").unwrap();
        let files = files.filter(|f| f.as_ref().is_ok_and(|f| !f.path.ends_with('/')));
        assert_eq!(files.count(), 200);
        assert_eq!(store.list_commits(&repo, None, 0).unwrap().len(), 200);
    }

    #[test]
    fn a_write_without_an_open_head_gets_its_own_finished_commit() {
        let (_d, store, repo) = store();
        let w = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap();
        let finished = w.finished.clone().unwrap();
        assert!(finished.is_finished() && w.error().is_none());
        assert_eq!(store.resolve_commit(&repo, "master").unwrap(), w.commit);
    }

    #[test]
    fn a_write_into_an_open_head_leaves_it_open() {
        let (_d, store, repo) = store();
        let open = store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit;
        let w = store
            .write_auto_commit(&repo, Some("master"), |c| {
                store.put_file_bytes(c, "/a", b"a")
            })
            .unwrap();
        assert_eq!(w.commit, open);
        assert!(w.finished.is_none());
        assert!(!store.inspect_commit(&open).unwrap().is_finished());
    }

    #[test]
    fn a_failed_write_discards_its_auto_commit() {
        let (_d, store, repo) = store();
        let first = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap()
            .commit;
        let mut started = None;
        store
            .write_auto_commit(&repo, None, |c| {
                started = Some(c.clone());
                store.put_file_bytes(c, "/b", b"b")?;
                store.delete_file(c, "/missing")
            })
            .unwrap_err();
        assert_eq!(store.resolve_commit(&repo, "master").unwrap(), first);
        assert!(matches!(
            store.inspect_commit(&started.unwrap()),
            Err(PfsError::CommitNotFound { .. })
        ));
    }

    #[test]
    fn a_path_collision_is_the_auto_commits_error() {
        let (_d, store, repo) = store();
        let t = store.write_target(&repo, None).unwrap();
        assert!(t.auto);
        store.put_file_bytes(&t.commit, "/p", b"f").unwrap();
        store
            .finish_commit(&t.commit, FinishOptions::default())
            .unwrap();
        let w = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/p/q", b"d"))
            .unwrap();
        assert!(
            w.error().is_some_and(|e| e.contains("collision")),
            "{:?}",
            w.error()
        );
    }

    #[test]
    fn a_commit_id_is_written_into_as_is() {
        let (_d, store, repo) = store();
        let open = store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit;
        let t = store.write_target(&repo, Some(open.id.as_str())).unwrap();
        assert_eq!((t.commit, t.auto), (open.clone(), false));
        store
            .finish_commit(&open, FinishOptions::default())
            .unwrap();
        let w = store.write_auto_commit(&repo, Some(open.id.as_str()), |c| {
            store.put_file_bytes(c, "/a", b"a")
        });
        assert!(matches!(w, Err(PfsError::CommitFinished { .. })), "{w:?}");
    }

    #[test]
    fn output_branches_are_refused() {
        let (_d, store, repo) = store();
        store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap();
        let out = RepoRef::new("out").unwrap();
        store.create_repo(&out, "").unwrap();
        store
            .create_branch(
                &out.branch("master").unwrap(),
                None,
                &[repo.branch("master").unwrap()],
            )
            .unwrap();
        assert!(matches!(
            store.write_target(&out, None),
            Err(PfsError::OutputBranch { .. })
        ));
    }
}
