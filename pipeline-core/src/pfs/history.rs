//! Removing history: squashing and dropping a commit set (pachctl's `squash commit` and
//! `delete commit`, reference §4.3), each in one metadata transaction.
//!
//! Both act on every commit of the set: the commit of each repo with that ID, which includes
//! the output commits a commit made downstream (they share its ID). Both are refused when
//! commits of **other** sets were derived from the set (their provenance, transitively,
//! holds one of its commits), as Pachyderm refuses a set with subvenant commit sets.
//!
//! - **Squash** deletes the commits and keeps their changes in their children: each child
//!   whose tree was built on a removed commit (a child, or a later commit reached through
//!   children that finished with an error, which are never inherited from) gets the removed
//!   commit's layer merged under its own changes, so its tree stays exactly what it was; the
//!   child is re-parented to the removed commit's parent. Refused when a commit has no
//!   children (that would lose data: drop it instead) or a child is still open. An open
//!   commit reached through an errored child is left to be rebuilt when it has provenance
//!   and nothing written yet (its job starts from its new base, [`CommitSetRemoval::rebuilt`]),
//!   and refused when it already holds changes.
//! - **Drop** deletes the commits; refused when one has children.
//!
//! Branch heads at a removed commit move to its parent; a branch left without a head gets an
//! empty commit, finished when the branch has no provenance and open otherwise (as
//! Pachyderm's `makeEmptyCommit`). Objects no commit refers to any more stay until
//! [`Store::gc`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::error::{PfsError, Result};
use super::meta::{MetaWrite, Table, delete_range, prefix_end};
use super::model::{
    BranchRef, CommitId, CommitInfo, CommitRef, CommitState, Origin, RepoRef, now_ms,
};
use super::records::{
    BranchRecord, CommitRecord, commit_set_key, decode, get_commit, put_branch, put_commit,
    repo_range, sub_key,
};
use super::store::{Store, all_branches};
use super::tree::{kept_delta_id, layer_prefix};
use super::txn::StoreTxn;

/// Which history operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HistoryOp {
    /// Delete the commits, keep their changes in their children.
    Squash,
    /// Delete the commits (they must have no children).
    Drop,
}

impl HistoryOp {
    /// `squashed` or `dropped`.
    pub fn past_tense(self) -> &'static str {
        match self {
            HistoryOp::Squash => "squashed",
            HistoryOp::Drop => "dropped",
        }
    }
}

/// A branch head moved by a squash or drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovedHead {
    /// The branch.
    pub branch: BranchRef,
    /// The removed commit it pointed at.
    pub from: CommitId,
    /// Where it points now: the removed commit's parent, or a new empty commit.
    pub to: CommitId,
}

/// What [`Store::squash_commit_set`] or [`Store::drop_commit_set`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSetRemoval {
    /// The commit set.
    pub commit_set: CommitId,
    /// Squash or drop.
    pub op: HistoryOp,
    /// The commits removed (as they were), sorted by repo.
    pub removed: Vec<CommitInfo>,
    /// Commits that now hold a removed commit's changes (squash).
    pub merged_into: Vec<CommitRef>,
    /// Open commits with provenance that were built on a removed commit and had nothing
    /// written yet: left as they are, to be computed from their new parent (the engine's
    /// jobs start from the new base).
    pub rebuilt: Vec<CommitRef>,
    /// Branch heads that moved.
    pub moved_heads: Vec<MovedHead>,
}

impl Store {
    /// Squashes commit set `id` in one transaction (see the module docs): every commit of
    /// the set is deleted and its changes kept in its children.
    ///
    /// Errors: [`PfsError::CommitSetNotFound`], [`PfsError::SubvenantCommitSets`],
    /// [`PfsError::SquashWithoutChildren`], [`PfsError::ChildNotFinished`].
    pub fn squash_commit_set(&self, id: &CommitId) -> Result<CommitSetRemoval> {
        let done = self.transact(|t| t.squash_commit_set(id))?;
        self.history_changed();
        Ok(done)
    }

    /// Drops commit set `id` in one transaction: every commit of the set is deleted (none
    /// may have children) and branch heads at them move to their parents.
    ///
    /// Errors: [`PfsError::CommitSetNotFound`], [`PfsError::SubvenantCommitSets`],
    /// [`PfsError::DropWithChildren`].
    pub fn drop_commit_set(&self, id: &CommitId) -> Result<CommitSetRemoval> {
        let done = self.transact(|t| t.drop_commit_set(id))?;
        self.history_changed();
        Ok(done)
    }

    /// Wakes every commit waiter after commits were removed (a waiter on a removed commit
    /// then answers that it is not found).
    pub(crate) fn history_changed(&self) {
        let (m, cv) = &self.inner.finished;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        cv.notify_all();
        drop(g);
        self.inner.finished_async.notify_waiters();
    }
}

impl StoreTxn<'_> {
    /// [`Store::squash_commit_set`] inside this transaction.
    pub fn squash_commit_set(&mut self, id: &CommitId) -> Result<CommitSetRemoval> {
        remove_commit_set(&mut *self.w, id, HistoryOp::Squash)
    }

    /// [`Store::drop_commit_set`] inside this transaction.
    pub fn drop_commit_set(&mut self, id: &CommitId) -> Result<CommitSetRemoval> {
        remove_commit_set(&mut *self.w, id, HistoryOp::Drop)
    }

    /// Every commit with ID `id` (one per repo), sorted by repo, as this transaction sees
    /// them ([`Store::inspect_commit_set`] inside it).
    pub fn inspect_commit_set(&self, id: &CommitId) -> Result<Vec<CommitInfo>> {
        Ok(commits_of_set(&*self.w, id)?
            .into_iter()
            .map(|r| r.info)
            .collect())
    }
}

/// One repo's commits as the operation sees them: records by ID and children by parent.
struct RepoCommits {
    records: HashMap<String, CommitRecord>,
    children: HashMap<String, Vec<String>>,
}

impl RepoCommits {
    fn load(w: &dyn MetaWrite, repo: &RepoRef) -> Result<Self> {
        let (start, end) = repo_range(repo);
        let mut records = HashMap::new();
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (_, v) in w.scan_collect(Table::Commits, &start, &end, usize::MAX)? {
            let rec: CommitRecord = decode("commit record", &v)?;
            let id = rec.info.commit.id.as_str().to_string();
            if let Some(p) = &rec.info.parent {
                children
                    .entry(p.as_str().to_string())
                    .or_default()
                    .push(id.clone());
            }
            records.insert(id, rec);
        }
        for kids in children.values_mut() {
            kids.sort();
        }
        Ok(RepoCommits { records, children })
    }

    fn children_of(&self, id: &str) -> &[String] {
        self.children.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    fn get(&self, repo: &RepoRef, id: &str) -> Result<&CommitRecord> {
        self.records
            .get(id)
            .ok_or_else(|| PfsError::CommitNotFound {
                repo: repo.to_string(),
                commit: id.to_string(),
            })
    }
}

/// Whether a commit's tree is built on its parent's layers: it is neither a snapshot (which
/// holds its whole tree) nor a merged delta (which reads the bottom of its old stack).
fn reads_parent(rec: &CommitRecord) -> bool {
    !rec.snapshot && rec.merged_over.is_none()
}

/// The commits whose trees read `id`'s layer directly: its children, and, through children
/// that finished with an error (never inherited from), their children, recursively; and the
/// merged deltas over it. A snapshot or merged-delta child reads nothing of its parent.
fn layer_dependents(repo: &RepoCommits, id: &str) -> Vec<String> {
    let mut out: Vec<String> = repo
        .records
        .values()
        .filter(|r| r.merged_over.as_deref() == Some(id))
        .map(|r| r.info.commit.id.as_str().to_string())
        .collect();
    let mut todo: Vec<String> = repo.children_of(id).to_vec();
    while let Some(c) = todo.pop() {
        let Some(rec) = repo.records.get(&c) else {
            continue;
        };
        if !reads_parent(rec) {
            continue;
        }
        if rec.info.error.is_some() && rec.info.is_finished() {
            todo.extend(repo.children_of(&c).iter().cloned());
        }
        out.push(c);
    }
    out.sort();
    out
}

/// The commit-set IDs (other than `id`) of every commit whose provenance, transitively,
/// holds a commit of set `id`.
fn subvenant_sets(w: &dyn MetaWrite, id: &CommitId) -> Result<Vec<String>> {
    let mut provenance: Vec<(CommitRef, Vec<CommitRef>)> = Vec::new();
    for (_, v) in w.scan_collect(Table::Commits, &[], &prefix_end(&[]), usize::MAX)? {
        let rec: CommitRecord = decode("commit record", &v)?;
        provenance.push((rec.info.commit, rec.info.direct_provenance));
    }
    let mut reached: BTreeSet<CommitRef> = provenance
        .iter()
        .filter(|(c, _)| c.id == *id)
        .map(|(c, _)| c.clone())
        .collect();
    loop {
        let before = reached.len();
        for (c, prov) in &provenance {
            if !reached.contains(c) && prov.iter().any(|p| reached.contains(p)) {
                reached.insert(c.clone());
            }
        }
        if reached.len() == before {
            break;
        }
    }
    let sets: BTreeSet<String> = reached
        .into_iter()
        .filter(|c| c.id != *id)
        .map(|c| c.id.to_string())
        .collect();
    Ok(sets.into_iter().collect())
}

/// The commits of set `id`, sorted by repo.
fn commits_of_set(w: &dyn MetaWrite, id: &CommitId) -> Result<Vec<CommitRecord>> {
    let mut start = id.as_str().as_bytes().to_vec();
    start.push(0);
    let end = prefix_end(&start);
    let mut out = Vec::new();
    for (k, _) in w.scan_collect(Table::CommitSets, &start, &end, usize::MAX)? {
        let repo = k
            .get(start.len()..)
            .and_then(|r| std::str::from_utf8(r).ok())
            .ok_or_else(|| PfsError::Corrupt("commit set key".into()))?;
        out.push(get_commit(w, &RepoRef::parse(repo)?, id.as_str())?);
    }
    Ok(out)
}

/// What happens to one commit of the set, decided before anything is written.
struct Planned {
    rec: CommitRecord,
    /// Commits that get this commit's layer merged under theirs.
    merge_into: Vec<String>,
    /// Open commits built on it that are left to be rebuilt.
    rebuilt: Vec<String>,
    /// Children re-parented to its parent.
    children: Vec<String>,
    /// Compacted commits whose kept changes were relative to this commit's tree: after it is
    /// gone they are compared whole (see `changes`).
    same_tree: Vec<String>,
}

/// Checks the operation's rules for every commit of the set and plans it.
fn plan(w: &dyn MetaWrite, id: &CommitId, op: HistoryOp) -> Result<Vec<Planned>> {
    let commits = commits_of_set(w, id)?;
    if commits.is_empty() {
        return Err(PfsError::CommitSetNotFound { id: id.to_string() });
    }
    let subvenant = subvenant_sets(w, id)?;
    if !subvenant.is_empty() {
        return Err(PfsError::SubvenantCommitSets {
            commit_set: id.to_string(),
            op: op.past_tense(),
            subvenant,
        });
    }
    let mut repos: BTreeMap<RepoRef, RepoCommits> = BTreeMap::new();
    for rec in &commits {
        let repo = &rec.info.commit.repo;
        if !repos.contains_key(repo) {
            repos.insert(repo.clone(), RepoCommits::load(w, repo)?);
        }
    }
    // Pachyderm's order: every commit's children rule first, then their state.
    for rec in &commits {
        let repo = repos
            .get(&rec.info.commit.repo)
            .ok_or_else(|| PfsError::Corrupt("repo of a commit set".into()))?;
        let has_children = !repo.children_of(rec.info.commit.id.as_str()).is_empty();
        let commit = rec.info.commit.to_string();
        match op {
            HistoryOp::Squash if !has_children => {
                return Err(PfsError::SquashWithoutChildren { commit });
            }
            HistoryOp::Drop if has_children => return Err(PfsError::DropWithChildren { commit }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for rec in commits {
        let repo_ref = rec.info.commit.repo.clone();
        let repo = repos
            .get(&repo_ref)
            .ok_or_else(|| PfsError::Corrupt("repo of a commit set".into()))?;
        out.push(plan_one(w, repo, &repo_ref, rec)?);
    }
    Ok(out)
}

/// Plans one commit: its children must be finished; the commits that read its layer either
/// get it merged in, or (open, with provenance, nothing written) are left to be rebuilt.
fn plan_one(
    w: &dyn MetaWrite,
    repo: &RepoCommits,
    repo_ref: &RepoRef,
    rec: CommitRecord,
) -> Result<Planned> {
    let id = rec.info.commit.id.as_str().to_string();
    let children = repo.children_of(&id).to_vec();
    for c in &children {
        if !repo.get(repo_ref, c)?.info.is_finished() {
            return Err(PfsError::ChildNotFinished {
                commit: repo_ref.commit(&CommitId::parse(c)?).to_string(),
            });
        }
    }
    let mut merge_into = Vec::new();
    let mut rebuilt = Vec::new();
    // An errored commit's layer is read by nobody: its removal changes no other tree.
    if rec.info.error.is_none() {
        for d in layer_dependents(repo, &id) {
            let dep = repo.get(repo_ref, &d)?;
            if dep.info.is_finished() || dep.info.origin == Origin::User {
                merge_into.push(d);
                continue;
            }
            let written = !w
                .scan_collect(
                    Table::Files,
                    &layer_prefix(&repo_ref.key(), &d),
                    &prefix_end(&layer_prefix(&repo_ref.key(), &d)),
                    1,
                )?
                .is_empty();
            if written {
                return Err(PfsError::ChildNotFinished {
                    commit: dep.info.commit.to_string(),
                });
            }
            rebuilt.push(d);
        }
    }
    let same_tree = repo
        .records
        .values()
        .filter(|r| r.same_tree_as.as_deref() == Some(id.as_str()))
        .map(|r| r.info.commit.id.as_str().to_string())
        .collect();
    Ok(Planned {
        rec,
        merge_into,
        rebuilt,
        children,
        same_tree,
    })
}

/// Entries of a layer copied per scan.
const MERGE_CHUNK: usize = 10_000;

/// Copies every entry of `from`'s layer that `into`'s layer does not have (its own changes
/// win), in chunks.
fn merge_layer(w: &mut dyn MetaWrite, repo: &RepoRef, from: &str, into: &str) -> Result<()> {
    let repo_key = repo.key();
    let from_prefix = layer_prefix(&repo_key, from);
    let into_prefix = layer_prefix(&repo_key, into);
    let end = prefix_end(&from_prefix);
    let mut start = from_prefix.clone();
    loop {
        let chunk = w.scan_collect(Table::Files, &start, &end, MERGE_CHUNK)?;
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        let mut next = last.clone();
        next.push(0);
        for (k, v) in chunk {
            let path = k.get(from_prefix.len()..).unwrap_or_default();
            let mut target = into_prefix.clone();
            target.extend_from_slice(path);
            if w.get(Table::Files, &target)?.is_none() {
                w.put(Table::Files, &target, &v)?;
            }
        }
        start = next;
    }
}

/// Plans, checks and applies a squash or drop of set `id` in `w`.
fn remove_commit_set(
    w: &mut dyn MetaWrite,
    id: &CommitId,
    op: HistoryOp,
) -> Result<CommitSetRemoval> {
    let planned = plan(&*w, id, op)?;
    let mut done = CommitSetRemoval {
        commit_set: id.clone(),
        op,
        removed: Vec::new(),
        merged_into: Vec::new(),
        rebuilt: Vec::new(),
        moved_heads: Vec::new(),
    };
    let mut headless: Vec<(BranchRef, BranchRecord, CommitId)> = Vec::new();
    for p in planned {
        let repo = p.rec.info.commit.repo.clone();
        let x = p.rec.info.commit.id.as_str().to_string();
        let below = super::commits::layers(&*w, &repo, &x)?;
        for d in &p.merge_into {
            merge_layer(w, &repo, &x, d)?;
            take_stack_below(w, &repo, &p.rec, d, below.get(1))?;
            done.merged_into.push(repo.commit(&CommitId::parse(d)?));
        }
        for c in &p.same_tree {
            let mut rec = get_commit(&*w, &repo, c)?;
            rec.same_tree_as = None;
            put_commit(w, &rec)?;
        }
        for d in &p.rebuilt {
            done.rebuilt.push(repo.commit(&CommitId::parse(d)?));
        }
        for c in &p.children {
            let mut child = get_commit(&*w, &repo, c)?;
            child.info.parent = p.rec.info.parent.clone();
            put_commit(w, &child)?;
        }
        move_heads(w, &p.rec, &mut done.moved_heads, &mut headless)?;
        delete_commit(w, &p.rec)?;
        done.removed.push(p.rec.info);
    }
    if !headless.is_empty() {
        give_heads(w, headless, &mut done.moved_heads)?;
    }
    done.removed
        .sort_by(|a, b| a.commit.repo.cmp(&b.commit.repo));
    Ok(done)
}

/// After commit `removed`'s layer was merged into `dep`'s: makes `dep`'s stack continue
/// where `removed`'s did below its own layer (at `next`, or nowhere: `dep` then holds its
/// whole tree). A dependent that reads its parent's layers already does, once re-parented,
/// unless `removed` jumped to the bottom of its stack (a merged delta).
fn take_stack_below(
    w: &mut dyn MetaWrite,
    repo: &RepoRef,
    removed: &CommitRecord,
    dep: &str,
    next: Option<&String>,
) -> Result<()> {
    let mut rec = get_commit(&*w, repo, dep)?;
    if reads_parent(&rec) && reads_parent(removed) {
        return Ok(());
    }
    rec.merged_over = next.cloned();
    rec.snapshot = next.is_none();
    rec.layer_entries = None;
    put_commit(w, &rec)
}

/// Moves every branch of the commit's repo whose head is the commit to its parent; branches
/// of a commit without parent are collected in `headless`.
fn move_heads(
    w: &mut dyn MetaWrite,
    rec: &CommitRecord,
    moved: &mut Vec<MovedHead>,
    headless: &mut Vec<(BranchRef, BranchRecord, CommitId)>,
) -> Result<()> {
    let repo = &rec.info.commit.repo;
    let id = &rec.info.commit.id;
    for (b, mut brec) in all_branches(&*w)? {
        if b.repo != *repo || brec.head != id.as_str() {
            continue;
        }
        match &rec.info.parent {
            Some(parent) => {
                brec.head = parent.as_str().to_string();
                put_branch(w, &b, &brec)?;
                moved.push(MovedHead {
                    branch: b,
                    from: id.clone(),
                    to: parent.clone(),
                });
            }
            None => headless.push((b, brec, id.clone())),
        }
    }
    Ok(())
}

/// Gives each branch left without a head an empty commit of its own (one new commit set):
/// finished on a branch without provenance, open (with the provenance heads as commit
/// provenance) on one with.
fn give_heads(
    w: &mut dyn MetaWrite,
    headless: Vec<(BranchRef, BranchRecord, CommitId)>,
    moved: &mut Vec<MovedHead>,
) -> Result<()> {
    let new_id = CommitId::generate();
    let now = now_ms();
    let all = all_branches(&*w)?;
    for (b, mut brec, from) in headless {
        let open = !brec.direct_provenance.is_empty();
        let direct_provenance = brec
            .direct_provenance
            .iter()
            .filter_map(|p| {
                all.get(p)
                    .and_then(|pr| CommitId::parse(&pr.head).ok())
                    .map(|h| p.repo.commit(&h))
            })
            .collect();
        if w.get(Table::Commits, &sub_key(&b.repo, new_id.as_str()))?
            .is_none()
        {
            let info = CommitInfo {
                commit: b.repo.commit(&new_id),
                branch: Some(b.name.clone()),
                parent: None,
                origin: Origin::Auto,
                state: if open {
                    CommitState::Open
                } else {
                    CommitState::Finished
                },
                error: None,
                size_bytes: (!open).then_some(0),
                started_ms: now,
                finished_ms: (!open).then_some(now),
                description: String::new(),
                direct_provenance,
            };
            let rec = CommitRecord {
                info,
                snapshot: true,
                same_tree_as: None,
                merged_over: None,
                layer_entries: None,
                owner: None,
            };
            put_commit(w, &rec)?;
        }
        brec.head = new_id.as_str().to_string();
        put_branch(w, &b, &brec)?;
        moved.push(MovedHead {
            branch: b,
            from,
            to: new_id.clone(),
        });
    }
    Ok(())
}

/// Deletes a commit's record, its commit-set index entry and its layer.
fn delete_commit(w: &mut dyn MetaWrite, rec: &CommitRecord) -> Result<()> {
    let c = &rec.info.commit;
    for layer in [c.id.as_str().to_string(), kept_delta_id(c.id.as_str())] {
        let prefix = layer_prefix(&c.repo.key(), &layer);
        delete_range(w, Table::Files, &prefix, &prefix_end(&prefix))?;
    }
    w.delete(Table::Commits, &sub_key(&c.repo, c.id.as_str()))?;
    w.delete(Table::CommitSets, &commit_set_key(c.id.as_str(), &c.repo))
}
