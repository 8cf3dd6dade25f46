//! Commits owned by a command, and recovering the ones whose command died.
//!
//! [`Store::write_auto_commit`] (pachctl's auto-commit rule of `put file` / `delete file`)
//! starts a commit for one write and finishes it afterwards. The commit is recorded as
//! **owned** by the writing process ([`CommitOwner`]: pid, process start time, host), in the
//! same transaction that starts it. If the process dies before finishing it (SIGKILL, a full
//! disk, a panic), the commit would stay open for ever: later writes would go into it and
//! never finish it, and every downstream job would wait in STARTING.
//!
//! [`Store::open`] therefore recovers such commits: the store is locked to one process, so
//! an owned commit that is still open when the store opens was left by a dead command.
//! Recovery **discards** it: a partial put must never become visible as if it were complete.
//! The commit, the open AUTO commits of its commit set downstream (the jobs it would have
//! started) and their file entries are deleted in one transaction, and every branch head
//! moves back to the commit's parent (a branch the write created is deleted again), as if
//! the write had never started. When that is not possible (something was committed on top
//! of the commit since), the commit is finished with an error instead, which is never
//! inherited from and makes downstream jobs UNRUNNABLE. Either way recovery says so
//! (`tracing::warn!`, and [`Store::take_recovered_writes`] for the caller to print). If
//! recovery cannot run at open (a full disk), the store still opens and the next write to
//! that branch recovers the commit before writing ([`Store::write_target`]).
//!
//! Commits a user opened with `start commit` ([`Store::start_commit`]) have no owner and are
//! never touched: they stay open until the user finishes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::commits::FinishOptions;
use super::error::{PfsError, Result};
use super::meta::{MetaWrite, Table, delete_range, prefix_end};
use super::model::{BranchRef, CommitRef, RepoRef};
use super::records::{
    BranchRecord, CommitRecord, commit_set_key, decode, get_commit, put_branch, sub_key,
};
use super::store::{Store, all_branches};
use super::tree::layer_prefix;

/// The command process that started a commit for one write and must finish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOwner {
    /// Process ID.
    pub pid: u32,
    /// The process's start time (clock ticks since boot, Linux `/proc/PID/stat`; 0 where
    /// unknown): tells a reused pid apart.
    pub started: u64,
    /// Host name (`/etc/hostname`).
    pub host: String,
}

impl CommitOwner {
    /// The current process.
    pub fn current() -> CommitOwner {
        let pid = std::process::id();
        CommitOwner {
            pid,
            started: process_start(pid).unwrap_or(0),
            host: std::fs::read_to_string("/etc/hostname")
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }
}

impl std::fmt::Display for CommitOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if !self.host.is_empty() {
            write!(f, " on host {}", self.host)?;
        }
        Ok(())
    }
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What recovery did with a commit whose command died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Deleted with the open commits of its commit set; branch heads moved back.
    Discarded,
    /// Finished with an error (it could not be deleted cleanly).
    FinishedWithError,
}

/// One commit recovered by [`Store::recover_interrupted_writes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredWrite {
    /// The commit the dead command had started.
    pub commit: CommitRef,
    /// The branch it was on.
    pub branch: Option<String>,
    /// The command process that died.
    pub owner: CommitOwner,
    /// What recovery did.
    pub action: RecoveryAction,
}

impl std::fmt::Display for RecoveredWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.action {
            RecoveryAction::Discarded => "discarded it (its partial writes are not kept)",
            RecoveryAction::FinishedWithError => {
                "finished it with an error (its partial writes are never inherited)"
            }
        };
        write!(
            f,
            "commit {} was started by a write ({}) that did not finish; {what}",
            self.commit, self.owner
        )
    }
}

/// The error an interrupted write's commit is finished with when it cannot be discarded.
pub const INTERRUPTED_ERROR: &str = "interrupted write: the command that started this commit \
                                     died before finishing it";

impl Store {
    /// Starts a commit on `branch` owned by the current process (see the module docs).
    pub(crate) fn start_owned_commit(&self, branch: &BranchRef) -> Result<CommitRef> {
        let owner = CommitOwner::current();
        let mut v =
            self.transact(|t| t.start_commits(std::slice::from_ref(branch), "", Some(owner)))?;
        v.pop()
            .map(|c| c.commit)
            .ok_or_else(|| PfsError::Corrupt("no commit started".into()))
    }

    /// Discards an owned commit its own command gave up on (a failed write), or finishes it
    /// with `error` when it cannot be discarded.
    pub(crate) fn abandon_owned_commit(
        &self,
        commit: &CommitRef,
        error: &str,
    ) -> Result<RecoveryAction> {
        if self.transact(|t| discard(&mut *t.w, commit))? {
            return Ok(RecoveryAction::Discarded);
        }
        self.finish_commit(
            commit,
            FinishOptions {
                error: Some(error.to_string()),
                description: None,
            },
        )?;
        Ok(RecoveryAction::FinishedWithError)
    }

    /// The command that owns an open commit it started for one write; `None` for commits a
    /// user or the engine started, and for finished commits.
    pub fn commit_owner(&self, commit: &CommitRef) -> Result<Option<CommitOwner>> {
        let rec = get_commit(&*self.inner.meta.read()?, &commit.repo, commit.id.as_str())?;
        Ok(rec.owner.filter(|_| !rec.info.is_finished()))
    }

    /// Discards (or, when that is impossible, finishes with [`INTERRUPTED_ERROR`]) every
    /// open commit owned by a command (see the module docs). [`Store::open`] calls this under
    /// its process lock; call it yourself only with exclusive access to the store (e.g. after
    /// [`Store::with_backends`]), since an owner still writing would lose its commit.
    ///
    /// A commit that cannot be recovered now (e.g. a full disk) is logged and left for the
    /// next attempt; the others are still recovered. Errors only when the store cannot be
    /// read.
    pub fn recover_interrupted_writes(&self) -> Result<Vec<RecoveredWrite>> {
        let mut out = Vec::new();
        for rec in self.owned_open_heads()? {
            let Some(owner) = rec.owner.clone() else {
                continue;
            };
            let commit = rec.info.commit.clone();
            let action = match self.abandon_owned_commit(&commit, INTERRUPTED_ERROR) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%commit, error = %crate::error_chain::ErrorChain(&e), "recovering an interrupted write failed; trying again at the next open or write");
                    continue;
                }
            };
            let done = RecoveredWrite {
                commit,
                branch: rec.info.branch.clone(),
                owner,
                action,
            };
            tracing::warn!(commit = %done.commit, owner = %done.owner, action = ?done.action, "recovered an interrupted write: {done}");
            out.push(done);
        }
        Ok(out)
    }

    /// What [`Store::open`] (or a later write to the branch) recovered and nobody took yet
    /// (see [`Store::recover_interrupted_writes`]): for the caller to report.
    pub fn take_recovered_writes(&self) -> Vec<RecoveredWrite> {
        std::mem::take(
            &mut *self
                .inner
                .recovered
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// [`Store::recover_interrupted_writes`] as [`Store::open`] runs it: a failure (e.g. a
    /// full disk) is logged, not fatal, so the store still opens for reading; the commit stays
    /// open and owned, and the next open or the next write to its branch recovers it.
    #[cfg_attr(not(feature = "store-redb"), allow(dead_code))]
    pub(crate) fn recover_at_open(&self) {
        match self.recover_interrupted_writes() {
            Ok(done) => self.remember(done),
            Err(e) => tracing::warn!(
                error = %crate::error_chain::ErrorChain(&e),
                "recovering interrupted writes failed; trying again at the next open or write"
            ),
        }
    }

    fn remember(&self, done: Vec<RecoveredWrite>) {
        self.inner
            .recovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(done);
    }

    /// A write found `head` open at its branch's head: recovers it first when a command
    /// that is not this process left it (only for a store opened with its process lock, so
    /// that owner is certainly dead). `true` when it was recovered.
    pub(crate) fn recover_before_write(&self, head: &CommitRef) -> Result<bool> {
        if self.root().is_none() {
            return Ok(false);
        }
        let Some(owner) = self.commit_owner(head)? else {
            return Ok(false);
        };
        let me = CommitOwner::current();
        if owner.pid == me.pid && owner.started == me.started && owner.host == me.host {
            return Ok(false);
        }
        let branch = self.inspect_commit(head)?.branch;
        let action = self.abandon_owned_commit(head, INTERRUPTED_ERROR)?;
        let done = RecoveredWrite {
            commit: head.clone(),
            branch,
            owner,
            action,
        };
        tracing::warn!(commit = %done.commit, owner = %done.owner, action = ?done.action, "recovered an interrupted write: {done}");
        self.remember(vec![done]);
        Ok(true)
    }

    /// Open owned commits. An owned commit is started on a branch whose head is finished
    /// and nothing can start on top of it while it is open, so they are found among the
    /// branch heads (one point read per branch).
    fn owned_open_heads(&self) -> Result<Vec<CommitRecord>> {
        let read = self.inner.meta.read()?;
        let mut out: BTreeMap<String, CommitRecord> = BTreeMap::new();
        for (b, rec) in all_branches(&*read)? {
            if rec.head.is_empty() {
                continue;
            }
            let Some(v) = read.get(Table::Commits, &sub_key(&b.repo, &rec.head))? else {
                continue;
            };
            let c: CommitRecord = decode("commit record", &v)?;
            if c.owner.is_some() && !c.info.is_finished() {
                out.insert(c.info.commit.to_string(), c);
            }
        }
        Ok(out.into_values().collect())
    }
}

/// Deletes `commit` and the other commits of its commit set when each is open and the head
/// of its branch, moving each head back to its parent; `false` (nothing changed) otherwise.
fn discard(w: &mut dyn MetaWrite, commit: &CommitRef) -> Result<bool> {
    let id = commit.id.as_str();
    let mut start = id.as_bytes().to_vec();
    start.push(0);
    let mut set = Vec::new();
    for (k, _) in w.scan_collect(Table::CommitSets, &start, &prefix_end(&start), usize::MAX)? {
        let repo = k
            .get(start.len()..)
            .and_then(|r| std::str::from_utf8(r).ok())
            .ok_or_else(|| PfsError::Corrupt("commit set key".into()))?;
        set.push(RepoRef::parse(repo)?);
    }
    let branches = all_branches(w)?;
    let mut plan: Vec<(BranchRef, Option<BranchRecord>, RepoRef)> = Vec::new();
    for repo in set {
        let rec = get_commit(w, &repo, id)?;
        let Some(name) = rec.info.branch.clone() else {
            return Ok(false);
        };
        let branch = repo.branch(&name)?;
        let Some(b) = branches.get(&branch) else {
            return Ok(false);
        };
        if rec.info.is_finished() || b.head != id {
            return Ok(false);
        }
        let new_head = match rec.info.parent {
            Some(p) => Some(BranchRecord {
                head: p.as_str().to_string(),
                ..b.clone()
            }),
            // A branch the write created: delete it, unless something reads from it.
            None if repo == commit.repo
                && !branches
                    .values()
                    .any(|o| o.direct_provenance.contains(&branch)) =>
            {
                None
            }
            None => return Ok(false),
        };
        plan.push((branch, new_head, repo));
    }
    for (branch, new_head, repo) in plan {
        match new_head {
            Some(h) => put_branch(w, &branch, &h)?,
            None => w.delete(Table::Branches, &sub_key(&branch.repo, &branch.name))?,
        }
        let layer = layer_prefix(&repo.key(), id);
        delete_range(w, Table::Files, &layer, &prefix_end(&layer))?;
        w.delete(Table::Commits, &sub_key(&repo, id))?;
        w.delete(Table::CommitSets, &commit_set_key(id, &repo))?;
    }
    Ok(true)
}

#[cfg(all(test, feature = "store-redb"))]
mod tests {
    use super::*;
    use crate::pfs::model::CommitState;

    fn store() -> (tempfile::TempDir, Store, RepoRef) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let repo = RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        (dir, store, repo)
    }

    /// A write whose command "dies": its auto commit is started and written into, never
    /// finished, and the store is dropped.
    fn interrupted_write(store: Store, repo: &RepoRef) -> CommitRef {
        let t = store.write_target(repo, None).unwrap();
        assert!(t.auto);
        store
            .put_file_bytes(&t.commit, "/partial", b"half")
            .unwrap();
        assert_eq!(
            store.commit_owner(&t.commit).unwrap().unwrap().pid,
            std::process::id()
        );
        t.commit
    }

    #[test]
    fn an_interrupted_writes_commit_is_discarded_at_the_next_open() {
        let (dir, store, repo) = store();
        let first = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap()
            .commit;
        let dead = interrupted_write(store, &repo);
        let store = Store::open(dir.path()).unwrap();
        let rec = store.take_recovered_writes();
        assert_eq!(rec.len(), 1, "{rec:?}");
        assert_eq!(rec[0].commit, dead);
        assert_eq!(rec[0].action, RecoveryAction::Discarded);
        assert!(rec[0].to_string().contains("did not finish"), "{}", rec[0]);
        assert_eq!(store.resolve_commit(&repo, "master").unwrap(), first);
        assert!(matches!(
            store.inspect_commit(&dead),
            Err(PfsError::CommitNotFound { .. })
        ));
        // The next write gets a commit of its own and finishes it.
        let w = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/b", b"b"))
            .unwrap();
        let info = w.finished.unwrap();
        assert_eq!(info.state, CommitState::Finished);
        assert_eq!(info.parent, Some(first.id.clone()));
        let paths: Vec<String> = store
            .walk(&w.commit)
            .unwrap()
            .map(|e| e.unwrap().path)
            .collect();
        assert_eq!(paths, ["/", "/a", "/b"]);
        drop(store);
        assert!(
            Store::open(dir.path())
                .unwrap()
                .take_recovered_writes()
                .is_empty()
        );
    }

    #[test]
    fn a_branch_the_interrupted_write_created_is_removed() {
        let (dir, store, repo) = store();
        interrupted_write(store, &repo);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.take_recovered_writes().len(), 1);
        assert!(store.list_branches(&repo).unwrap().is_empty());
    }

    #[test]
    fn downstream_commits_of_the_set_are_discarded_with_it() {
        let (dir, store, repo) = store();
        store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap();
        let out = RepoRef::new("out").unwrap();
        store.create_repo(&out, "").unwrap();
        let out_master = out.branch("master").unwrap();
        store
            .create_branch(&out_master, None, &[repo.branch("master").unwrap()])
            .unwrap();
        let before = store.inspect_branch(&out_master).unwrap().head;
        let dead = interrupted_write(store, &repo);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.take_recovered_writes().len(), 1);
        assert_eq!(store.inspect_branch(&out_master).unwrap().head, before);
        assert!(store.inspect_commit(&out.commit(&dead.id)).is_err());
        assert!(store.inspect_commit_set(&dead.id).unwrap().is_empty());
    }

    #[test]
    fn a_commit_the_user_started_stays_open() {
        let (dir, store, repo) = store();
        let open = store
            .start_commit(&repo.branch("master").unwrap(), "mine")
            .unwrap()
            .commit;
        store.put_file_bytes(&open, "/a", b"a").unwrap();
        assert!(store.commit_owner(&open).unwrap().is_none());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.take_recovered_writes().is_empty());
        assert!(!store.inspect_commit(&open).unwrap().is_finished());
        assert_eq!(store.resolve_commit(&repo, "master").unwrap(), open);
    }

    #[test]
    fn a_commit_that_cannot_be_discarded_is_finished_with_an_error() {
        let (dir, store, repo) = store();
        store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap();
        let out = RepoRef::new("out").unwrap();
        store.create_repo(&out, "").unwrap();
        let out_master = out.branch("master").unwrap();
        store
            .create_branch(&out_master, None, &[repo.branch("master").unwrap()])
            .unwrap();
        let dead = interrupted_write(store.clone(), &repo);
        // Something moved the downstream head off the dead write's commit set.
        let other = store
            .start_commit(&out.branch("side").unwrap(), "")
            .unwrap();
        store
            .create_branch(
                &out_master,
                Some(&other.commit.id),
                &[repo.branch("master").unwrap()],
            )
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let rec = store.take_recovered_writes();
        assert_eq!(rec[0].action, RecoveryAction::FinishedWithError);
        let info = store.inspect_commit(&dead).unwrap();
        assert_eq!(info.error.as_deref(), Some(INTERRUPTED_ERROR));
    }

    #[test]
    fn the_next_write_recovers_a_dead_commands_commit_it_finds_open() {
        let (_d, store, repo) = store();
        let first = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/a", b"a"))
            .unwrap()
            .commit;
        // A commit some other (dead) process started for its write, still open in this
        // store (as when recovery at open could not run).
        let dead_owner = CommitOwner {
            pid: u32::MAX,
            started: 1,
            host: "gone".into(),
        };
        let branch = repo.branch("master").unwrap();
        let dead = store
            .transact(|t| t.start_commits(std::slice::from_ref(&branch), "", Some(dead_owner)))
            .unwrap()
            .remove(0)
            .commit;
        store.put_file_bytes(&dead, "/partial", b"half").unwrap();
        let w = store
            .write_auto_commit(&repo, None, |c| store.put_file_bytes(c, "/b", b"b"))
            .unwrap();
        assert_ne!(w.commit, dead, "wrote into the dead command's commit");
        assert!(w.finished.unwrap().is_finished());
        assert_eq!(
            store.inspect_commit(&w.commit).unwrap().parent,
            Some(first.id)
        );
        let rec = store.take_recovered_writes();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].commit, dead);
        assert!(store.take_recovered_writes().is_empty());
        assert!(store.inspect_file(&w.commit, "/partial").is_err());
    }

    #[test]
    fn owner_is_this_process() {
        let o = CommitOwner::current();
        assert_eq!(o.pid, std::process::id());
        if cfg!(target_os = "linux") {
            assert!(o.started > 0);
        }
        assert!(o.to_string().starts_with("pid "));
    }
}
