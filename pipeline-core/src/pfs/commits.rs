//! Commits: start (with propagation), finish (one transaction), inspect, list, resolve, wait.

use std::collections::BTreeSet;
use std::time::Duration;

use super::compaction;
use super::error::{PfsError, Result};
use super::meta::{MetaRead, Table, prefix_end};
use super::model::{
    BranchRef, CommitId, CommitInfo, CommitRef, CommitState, Origin, RepoRef, now_ms,
};
use super::records::{
    BranchRecord, CommitRecord, Getter, decode, get_commit, get_repo, put_branch, put_commit,
    repo_range, try_branch,
};
use super::store::{Store, all_branches, propagate};
use super::tree::{self, DirAggregator, Entry, MergedFiles, layer_prefix};
use super::txn::StoreTxn;

/// How to finish a commit.
#[derive(Debug, Clone, Default)]
pub struct FinishOptions {
    /// Finish with this error: the commit's tree is kept but never inherited from.
    pub error: Option<String>,
    /// Replace the description.
    pub description: Option<String>,
}

impl Store {
    /// Starts a USER commit on a branch (creating the branch if needed), plus an open AUTO
    /// commit with the same ID on every branch downstream of it: one transaction.
    pub fn start_commit(&self, branch: &BranchRef, description: &str) -> Result<CommitInfo> {
        let mut v = self.start_commit_set(std::slice::from_ref(branch), description)?;
        v.pop()
            .ok_or_else(|| PfsError::Corrupt("no commit started".into()))
    }

    /// Starts USER commits on several branches in **one** commit set (one ID), so that each
    /// downstream pipeline sees one change. Branches must be of distinct repos and have no
    /// provenance; their heads must be finished. Returns the USER commits in input order.
    pub fn start_commit_set(
        &self,
        branches: &[BranchRef],
        description: &str,
    ) -> Result<Vec<CommitInfo>> {
        self.transact(|t| t.start_commit_set(branches, description))
    }

    /// Finishes an open commit in one transaction: state, error, size, finish time and, when
    /// its layer stack has grown past [`MAX_LAYERS`](tree::MAX_LAYERS), compaction (a merged delta or a snapshot,
    /// see `compaction`).
    ///
    /// The tree is validated first: a file at `p` next to files under `p/` sets the error
    /// `file / directory path collision (p)` (reference §2.14). Wakes every
    /// [`Store::wait_commit`].
    pub fn finish_commit(&self, commit: &CommitRef, opts: FinishOptions) -> Result<CommitInfo> {
        let lock = self.repo_lock(&commit.repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let read = self.inner.meta.read()?;
        let rec = get_commit(&*read, &commit.repo, commit.id.as_str())?;
        if rec.info.is_finished() {
            return Err(PfsError::CommitFinished {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
            });
        }
        let layers = layers(&*read, &commit.repo, commit.id.as_str())?;
        let (size, collision) = size_and_collision(&*read, &commit.repo, &layers)?;
        let error = opts
            .error
            .or_else(|| collision.map(|p| format!("file / directory path collision ({p})")));
        let compact = error.is_none() && compaction::is_due(&layers) && {
            let mut all_finished = true;
            for id in layers.iter().skip(1) {
                all_finished &= get_commit(&*read, &commit.repo, id)?.info.is_finished();
            }
            all_finished
        };

        let mut w = self.write_txn()?;
        let mut rec = get_commit(&*w, &commit.repo, commit.id.as_str())?;
        if rec.info.is_finished() {
            return Err(PfsError::CommitFinished {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
            });
        }
        if compact {
            compaction::compact(&*read, &mut *w, &mut rec, &layers)?;
        } else if error.is_none() {
            compaction::note_whole_tree(&*read, &mut rec, &layers)?;
        }
        rec.info.state = CommitState::Finished;
        rec.info.error = error;
        rec.info.size_bytes = Some(size);
        rec.info.finished_ms = Some(now_ms());
        if let Some(d) = opts.description {
            rec.info.description = d;
        }
        put_commit(&mut *w, &rec)?;
        w.commit()?;
        drop(read);
        drop(_g);
        self.announce_finished(std::slice::from_ref(&rec.info))?;
        Ok(rec.info)
    }

    /// Finishes an open commit inside `txn` (a commit this transaction started, or one
    /// started before it): state, error (a file / directory path collision as in
    /// [`Store::finish_commit`]), size and finish time. Its tree is read from the committed
    /// store (a transaction writes no files) and never compacted here.
    ///
    /// After `txn` is committed, pass the returned commits to [`Store::announce_finished`],
    /// which wakes waiters and fires triggers as [`Store::finish_commit`] does.
    pub fn finish_commit_in(
        &self,
        txn: &mut StoreTxn<'_>,
        commit: &CommitRef,
        opts: FinishOptions,
    ) -> Result<CommitInfo> {
        let w = &mut *txn.w;
        let mut rec = get_commit(w, &commit.repo, commit.id.as_str())?;
        if rec.info.is_finished() {
            return Err(PfsError::CommitFinished {
                repo: commit.repo.to_string(),
                commit: commit.id.to_string(),
            });
        }
        let layers = layers(w, &commit.repo, commit.id.as_str())?;
        let read = self.inner.meta.read()?;
        let (size, collision) = size_and_collision(&*read, &commit.repo, &layers)?;
        rec.info.state = CommitState::Finished;
        rec.info.error = opts
            .error
            .or_else(|| collision.map(|p| format!("file / directory path collision ({p})")));
        rec.info.size_bytes = Some(size);
        rec.info.finished_ms = Some(now_ms());
        if let Some(d) = opts.description {
            rec.info.description = d;
        }
        put_commit(w, &rec)?;
        Ok(rec.info)
    }

    /// What follows committed finishes (from [`Store::finish_commit_in`]): every waiter of
    /// [`Store::wait_commit`] wakes, subscribers see each commit, and the triggers watching
    /// each error-free commit's branch fire.
    pub fn announce_finished(&self, finished: &[CommitInfo]) -> Result<()> {
        {
            let (m, cv) = &self.inner.finished;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            cv.notify_all();
        }
        self.inner.finished_async.notify_waiters();
        for info in finished {
            self.publish(|| super::feed::StoreEvent::CommitFinished(info.clone()));
        }
        for info in finished {
            if info.error.is_none()
                && let Some(branch) = &info.branch
            {
                self.fire_triggers(&info.commit.repo, branch)?;
            }
        }
        Ok(())
    }

    /// A commit's information.
    pub fn inspect_commit(&self, commit: &CommitRef) -> Result<CommitInfo> {
        Ok(get_commit(&*self.inner.meta.read()?, &commit.repo, commit.id.as_str())?.info)
    }

    /// Resolves `branch`, `commit-id`, and either followed by `^`, `^N` (Nth ancestor,
    /// repeatable) or `~N`, as pachctl does.
    pub fn resolve_commit(&self, repo: &RepoRef, spec: &str) -> Result<CommitRef> {
        let read = self.inner.meta.read()?;
        resolve_in(&*read, repo, spec)
    }

    /// Commits, newest first: the history of `branch` (following parents from its head), or
    /// every commit of the repo. At most `limit` (0 = no limit).
    pub fn list_commits(
        &self,
        repo: &RepoRef,
        branch: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CommitInfo>> {
        let read = self.inner.meta.read()?;
        get_repo(&*read, repo)?;
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut out = Vec::new();
        match branch {
            Some(b) => {
                let b = repo.branch(b)?;
                let rec = super::records::get_branch(&*read, &b)?;
                let mut next = Some(rec.head);
                while let Some(id) = next {
                    if out.len() >= limit {
                        break;
                    }
                    let c = get_commit(&*read, repo, &id)?;
                    next = c.info.parent.as_ref().map(|p| p.as_str().to_string());
                    out.push(c.info);
                }
            }
            None => {
                let (start, end) = repo_range(repo);
                for kv in read.scan(Table::Commits, &start, &end)? {
                    let (_, v) = kv?;
                    let c: CommitRecord = decode("commit record", &v)?;
                    out.push(c.info);
                }
                out.sort_by(|a, b| {
                    b.started_ms
                        .cmp(&a.started_ms)
                        .then_with(|| b.commit.id.cmp(&a.commit.id))
                });
                out.truncate(limit);
            }
        }
        Ok(out)
    }

    /// Every commit with this ID (one per repo), sorted by repo.
    pub fn inspect_commit_set(&self, id: &CommitId) -> Result<Vec<CommitInfo>> {
        let read = self.inner.meta.read()?;
        let mut start = id.as_str().as_bytes().to_vec();
        start.push(0);
        let end = prefix_end(&start);
        let mut out = Vec::new();
        for kv in read.scan(Table::CommitSets, &start, &end)? {
            let (k, _) = kv?;
            let repo = k
                .get(start.len()..)
                .and_then(|r| std::str::from_utf8(r).ok())
                .ok_or_else(|| PfsError::Corrupt("commit set key".into()))?;
            let repo = RepoRef::parse(repo)?;
            out.push(get_commit(&*read, &repo, id.as_str())?.info);
        }
        Ok(out)
    }

    /// Blocks until the commit is finished; returns its final information.
    pub fn wait_commit(&self, commit: &CommitRef) -> Result<CommitInfo> {
        let (m, cv) = &self.inner.finished;
        loop {
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let info = self.inspect_commit(commit)?;
            if info.is_finished() {
                return Ok(info);
            }
            let _ = cv
                .wait_timeout(g, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Async [`Store::wait_commit`]: waits without holding a thread.
    pub async fn wait_commit_async(&self, commit: &CommitRef) -> Result<CommitInfo> {
        loop {
            let notified = self.inner.finished_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let info = self.inspect_commit(commit)?;
            if info.is_finished() {
                return Ok(info);
            }
            notified.await;
        }
    }
}

/// Starting commits inside a [`StoreTxn`] (the [`Store`] methods of the same names run these
/// in a transaction of their own).
impl StoreTxn<'_> {
    /// Resolves a commit-ish as this transaction sees the store. See
    /// [`Store::resolve_commit`].
    pub fn resolve_commit(&self, repo: &RepoRef, spec: &str) -> Result<CommitRef> {
        resolve_in(&*self.w, repo, spec)
    }

    /// A commit's information as this transaction sees the store. See
    /// [`Store::inspect_commit`].
    pub fn inspect_commit(&self, commit: &CommitRef) -> Result<CommitInfo> {
        Ok(get_commit(&*self.w, &commit.repo, commit.id.as_str())?.info)
    }

    /// Starts a USER commit on a branch (creating the branch if needed), plus an open AUTO
    /// commit with the same ID on every branch downstream of it. See [`Store::start_commit`].
    pub fn start_commit(&mut self, branch: &BranchRef, description: &str) -> Result<CommitInfo> {
        let mut v = self.start_commit_set(std::slice::from_ref(branch), description)?;
        v.pop()
            .ok_or_else(|| PfsError::Corrupt("no commit started".into()))
    }

    /// Starts USER commits on several branches in one commit set. See
    /// [`Store::start_commit_set`].
    pub fn start_commit_set(
        &mut self,
        branches: &[BranchRef],
        description: &str,
    ) -> Result<Vec<CommitInfo>> {
        self.start_commits(branches, description, None)
    }

    /// [`StoreTxn::start_commit_set`], recording `owner` on each USER commit (a commit a
    /// command started for one write; see `recovery`).
    pub(crate) fn start_commits(
        &mut self,
        branches: &[BranchRef],
        description: &str,
        owner: Option<super::recovery::CommitOwner>,
    ) -> Result<Vec<CommitInfo>> {
        let id = self.next_commit_set();
        let w = &mut *self.w;
        let mut all = all_branches(w)?;
        let now = now_ms();
        let mut repos = BTreeSet::new();
        let mut out = Vec::new();
        for b in branches {
            get_repo(w, &b.repo)?;
            let in_set = w
                .get(
                    Table::Commits,
                    &super::records::sub_key(&b.repo, id.as_str()),
                )?
                .is_some();
            if !repos.insert(b.repo.clone()) || in_set {
                return Err(PfsError::Provenance(format!(
                    "inconsistent dependencies: repo ({}) already has a commit in this transaction",
                    b.repo
                )));
            }
            let existing = try_branch(w, b)?;
            let mut parent = None;
            if let Some(rec) = &existing {
                if !rec.direct_provenance.is_empty() {
                    return Err(PfsError::OutputBranch {
                        repo: b.repo.to_string(),
                        branch: b.name.clone(),
                    });
                }
                let head = get_commit(w, &b.repo, &rec.head)?;
                if !head.info.is_finished() {
                    return Err(PfsError::ParentNotFinished {
                        repo: b.repo.to_string(),
                        commit: rec.head.clone(),
                    });
                }
                parent = Some(head.info.commit.id);
            }
            let info = CommitInfo {
                commit: b.repo.commit(&id),
                branch: Some(b.name.clone()),
                parent,
                origin: Origin::User,
                state: CommitState::Open,
                error: None,
                size_bytes: None,
                started_ms: now,
                finished_ms: None,
                description: description.to_string(),
                direct_provenance: Vec::new(),
            };
            put_commit(
                w,
                &CommitRecord {
                    info: info.clone(),
                    snapshot: false,
                    same_tree_as: None,
                    merged_over: None,
                    layer_entries: None,
                    owner: owner.clone(),
                },
            )?;
            let rec = BranchRecord {
                head: id.as_str().to_string(),
                direct_provenance: Vec::new(),
                trigger: existing.and_then(|r| r.trigger),
            };
            put_branch(w, b, &rec)?;
            all.insert(b.clone(), rec);
            out.push(info);
        }
        propagate(w, &mut all, branches, &id, false)?;
        Ok(out)
    }
}

/// Resolves `BRANCH`, `COMMIT` and either followed by `^N`/`~N` as `g` sees the store (see
/// [`Store::resolve_commit`]).
fn resolve_in<G: Getter + ?Sized>(read: &G, repo: &RepoRef, spec: &str) -> Result<CommitRef> {
    get_repo(read, repo)?;
    let cut = spec.find(['^', '~']).unwrap_or(spec.len());
    let (base, mut suffix) = spec.split_at(cut);
    let bad = |reason: &str| PfsError::InvalidRef {
        input: spec.to_string(),
        reason: reason.to_string(),
    };
    let mut back = 0usize;
    while let Some(rest) = suffix.strip_prefix(['^', '~']) {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (n, r) = rest.split_at(digits);
        back += if n.is_empty() {
            1
        } else {
            n.parse::<usize>()
                .map_err(|_| bad("ancestor count too large"))?
        };
        suffix = r;
    }
    if !suffix.is_empty() {
        return Err(bad("expected BRANCH or COMMIT, optionally followed by ^N"));
    }
    let mut id = if let Ok(b) = repo.branch(base)
        && let Some(r) = try_branch(read, &b)?
    {
        r.head
    } else {
        let id = CommitId::parse(base).map_err(|_| PfsError::CommitNotFound {
            repo: repo.to_string(),
            commit: spec.to_string(),
        })?;
        get_commit(read, repo, id.as_str())?;
        id.as_str().to_string()
    };
    for _ in 0..back {
        let rec = get_commit(read, repo, &id)?;
        id = match rec.info.parent {
            Some(p) => p.as_str().to_string(),
            None => {
                return Err(PfsError::CommitNotFound {
                    repo: repo.to_string(),
                    commit: spec.to_string(),
                });
            }
        };
    }
    Ok(repo.commit(&CommitId::parse(&id)?))
}

/// The layer stack of a commit, newest first: itself, then its nearest error-free
/// ancestors, down to a snapshot or the root.
pub(crate) fn layers<G: Getter + ?Sized>(
    read: &G,
    repo: &RepoRef,
    id: &str,
) -> Result<Vec<String>> {
    let mut out = vec![id.to_string()];
    let mut rec = get_commit(read, repo, id)?;
    let mut guard = 0usize;
    while !rec.snapshot {
        if let Some(bottom) = rec.merged_over.take() {
            // A merged delta holds every change down to `bottom` (see `compaction`).
            rec = get_commit(read, repo, &bottom)?;
            out.push(bottom);
            guard += 1;
            continue;
        }
        let Some(parent) = rec.info.parent.clone() else {
            break;
        };
        rec = get_commit(read, repo, parent.as_str())?;
        if rec.info.error.is_none() {
            out.push(parent.as_str().to_string());
        }
        guard += 1;
        if guard > 1_000_000 {
            return Err(PfsError::Corrupt(format!("parent cycle at {repo}@{id}")));
        }
    }
    Ok(out)
}

/// Whether commit `id`'s own layer holds no entry.
fn layer_is_empty(read: &dyn MetaRead, repo_key: &str, id: &str) -> Result<bool> {
    let start = layer_prefix(repo_key, id);
    Ok(read
        .scan(Table::Files, &start, &prefix_end(&start))?
        .next()
        .is_none())
}

/// The size of a commit whose own layer is empty: its tree is the tree of the next layer's
/// commit (its nearest error-free ancestor, finished, so its size is known and it has no
/// file / directory collision). `None` when the layer holds anything, or there is no such
/// ancestor.
fn size_if_unchanged(
    read: &dyn MetaRead,
    repo: &RepoRef,
    layers: &[String],
) -> Result<Option<u64>> {
    let (Some(own), Some(below)) = (layers.first(), layers.get(1)) else {
        return Ok(None);
    };
    if !layer_is_empty(read, &repo.key(), own)? {
        return Ok(None);
    }
    let rec = get_commit(read, repo, below)?;
    Ok(rec
        .info
        .is_finished()
        .then_some(rec.info.size_bytes)
        .flatten()
        .filter(|_| rec.info.error.is_none()))
}

/// Entries of a commit's own layer up to which [`size_from_below`] looks each one up rather
/// than walk the merged tree.
const LOOKED_UP_ENTRIES: usize = 4096;

/// The size of a commit whose own layer holds at most [`LOOKED_UP_ENTRIES`] entries, and the
/// first path that is both a file and a directory, from the next layer's commit (its nearest
/// error-free ancestor, finished: its size is known and its tree has no collision) and one
/// lookup per entry: only the layer's paths can change the size or make a collision (a file
/// at `p` where the tree has files under `p/`, or files at a path whose ancestor is a file).
/// `None` when the layer is larger, or there is no such ancestor.
fn size_from_below(
    read: &dyn MetaRead,
    repo: &RepoRef,
    layers: &[String],
) -> Result<Option<(u64, Option<String>)>> {
    let (Some(own), Some(below)) = (layers.first(), layers.get(1)) else {
        return Ok(None);
    };
    let rec = get_commit(read, repo, below)?;
    let Some(mut size) = rec.info.size_bytes.filter(|_| rec.info.is_finished()) else {
        return Ok(None);
    };
    if rec.info.error.is_some() {
        return Ok(None);
    }
    let repo_key = repo.key();
    let start = layer_prefix(&repo_key, own);
    let entries: Vec<(Vec<u8>, Vec<u8>)> = read
        .scan(Table::Files, &start, &prefix_end(&start))?
        .take(LOOKED_UP_ENTRIES + 1)
        .collect::<Result<_>>()?;
    if entries.len() > LOOKED_UP_ENTRIES {
        return Ok(None);
    }
    // Dirs that are also files, as `dir/` (the order the walk meets them in).
    let mut collisions: Vec<String> = Vec::new();
    for (k, v) in &entries {
        let path = String::from_utf8_lossy(&k[start.len()..]).into_owned();
        let old = tree::lookup(read, &repo_key, &layers[1..], &path)?.map_or(0, |(s, _)| s);
        let Entry::File { size: new, .. } = Entry::decode(v)? else {
            size = size.saturating_sub(old);
            continue;
        };
        size = size.saturating_sub(old).saturating_add(new);
        let below_it = format!("{path}/");
        if MergedFiles::new(read, &repo_key, layers, &below_it)?
            .next()
            .is_some()
        {
            collisions.push(below_it);
        }
        let mut dir = path.as_str();
        while let Some(i) = dir.rfind('/').filter(|&i| i > 0) {
            dir = &dir[..i];
            if tree::lookup(read, &repo_key, layers, dir)?.is_some() {
                collisions.push(format!("{dir}/"));
            }
        }
    }
    let first = collisions
        .into_iter()
        .min()
        .map(|d| d.trim_end_matches('/').to_string());
    Ok(Some((size, first)))
}

/// A commit's size, and the first path that is both a file and a directory (reference
/// §2.14), if any: nothing to read when its own layer is empty ([`size_if_unchanged`]), a
/// lookup per entry when it is small ([`size_from_below`]), else one pass over its merged
/// tree.
fn size_and_collision(
    read: &dyn MetaRead,
    repo: &RepoRef,
    layers: &[String],
) -> Result<(u64, Option<String>)> {
    if let Some(size) = size_if_unchanged(read, repo, layers)? {
        return Ok((size, None));
    }
    if let Some(found) = size_from_below(read, repo, layers)? {
        return Ok(found);
    }
    let repo_key = &repo.key();
    let mut collision: Option<String> = None;
    let mut agg = DirAggregator::new("/");
    for f in MergedFiles::new(read, repo_key, layers, "/")? {
        let (p, s, h) = f?;
        let mut on_open = |dir: &str| {
            if collision.is_none() {
                let as_file = dir.strip_suffix('/').unwrap_or(dir);
                if tree::lookup(read, repo_key, layers, as_file)?.is_some() {
                    collision = Some(as_file.to_string());
                }
            }
            Ok(())
        };
        agg.push(&p, s, &h, &mut on_open, &mut |_, _, _| Ok(()))?;
    }
    let (size, _) = agg.finish(&mut |_, _, _| Ok(()))?;
    Ok((size, collision))
}
