//! [`Store`]: opening a store directory, the process lock, repos, branches and provenance.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use super::error::{PfsError, Result};
use super::meta::{MetaStore, MetaWrite, Table, delete_range, prefix_end};
use super::model::{
    BranchInfo, BranchRef, CommitId, CommitInfo, CommitRef, CommitState, Origin, RepoInfo, RepoRef,
    now_ms,
};
use super::object::ObjectStore;
use super::records::{
    BranchRecord, CommitRecord, decode, encode, get_branch, get_commit, get_repo, put_branch,
    put_commit, repo_key, repo_range, sub_key,
};
use super::txn::StoreTxn;

/// The versioned data store. Cheap to clone (shared handle); `Send + Sync`.
///
/// Every method is **blocking** (file and database I/O). From async code call it inside
/// `tokio::task::spawn_blocking`; metadata calls take well under a millisecond plus one fsync,
/// but file puts and gets move whole files. The one async method is
/// [`Store::wait_commit_async`].
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) root: Option<PathBuf>,
    pub(crate) meta: Box<dyn MetaStore>,
    pub(crate) objects: Box<dyn ObjectStore>,
    _lock: Option<super::store_lock::StoreLock>,
    repo_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// One auto-committing writer per branch at a time (`autocommit`).
    branch_writers: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub(crate) finished: (Mutex<u64>, Condvar),
    pub(crate) finished_async: tokio::sync::Notify,
    /// The change feed ([`Store::subscribe`]).
    pub(crate) feed: tokio::sync::broadcast::Sender<super::feed::StoreEvent>,
    /// What [`Store::open`] recovered (`recovery`).
    pub(crate) recovered: Mutex<Vec<super::recovery::RecoveredWrite>>,
}

impl Store {
    /// Opens (or creates) the embedded store in `root`: `root/meta.redb` (metadata),
    /// `root/objects/` (contents) and `root/LOCK`.
    ///
    /// Private: the directory and every directory in it are 0700, `meta.redb` and `LOCK`
    /// 0600, created so; an existing store that is wider is tightened (logged at `info`).
    /// Objects are 0444 inside the 0700 directories.
    ///
    /// Never opens as something it is not: a missing or empty `meta.redb` beside stored
    /// objects is refused with [`PfsError::MetaCorrupt`] (saying how to recover) instead of
    /// becoming a new empty store, and a damaged database is an error, never a panic.
    ///
    /// One process at a time: a second process gets [`PfsError::Locked`] naming the pid and
    /// host that hold it. Within the process, clone the `Store` to share it. Opening after a
    /// crash needs no repair: temp objects are removed, open commits a user started stay open
    /// (resumable), and a commit a dead command started for one write is discarded
    /// ([`Store::recover_interrupted_writes`], reported by [`Store::take_recovered_writes`]).
    #[cfg(feature = "store-redb")]
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        let mut tightened = usize::from(super::private::private_dir(root)?);
        let lock = super::store_lock::StoreLock::take(root)?;
        let meta_path = root.join(super::existing::META_FILE);
        super::existing::refuse_orphaned_objects(root)?;
        let (meta_file, t) = super::private::private_file(&meta_path)?;
        drop(meta_file);
        tightened += usize::from(t);
        let meta = super::meta_redb::RedbMetaStore::open(&meta_path)?;
        let (objects, t) = super::object::LocalObjectStore::open_counting(&root.join("objects"))?;
        tightened += t + super::existing::tighten_top_level(root)?;
        if tightened > 0 {
            tracing::info!(
                store = %root.display(),
                tightened,
                "store directories and metadata files were readable by others; tightened to owner-only (0700 directories, 0600 files)"
            );
        }
        let store = Store::build(
            Some(root.to_path_buf()),
            Box::new(meta),
            Box::new(objects),
            Some(lock),
        );
        store.recover_at_open();
        Ok(store)
    }

    /// A store over any metadata database and object store (e.g. a server database and a
    /// cloud object store). The caller is responsible for exclusive access to them.
    pub fn with_backends(meta: Box<dyn MetaStore>, objects: Box<dyn ObjectStore>) -> Store {
        Store::build(None, meta, objects, None)
    }

    /// A store over server backends opened exclusively by [`Store::connect`], with `local`
    /// as this host's own directory ([`Store::root`]).
    #[cfg_attr(not(feature = "store-postgres"), allow(dead_code))]
    pub(crate) fn build_connected(
        local: PathBuf,
        meta: Box<dyn MetaStore>,
        objects: Box<dyn ObjectStore>,
    ) -> Store {
        Store::build(Some(local), meta, objects, None)
    }

    fn build(
        root: Option<PathBuf>,
        meta: Box<dyn MetaStore>,
        objects: Box<dyn ObjectStore>,
        lock: Option<super::store_lock::StoreLock>,
    ) -> Store {
        Store {
            inner: Arc::new(Inner {
                root,
                meta,
                objects,
                _lock: lock,
                repo_locks: Mutex::new(HashMap::new()),
                branch_writers: Mutex::new(HashMap::new()),
                finished: (Mutex::new(0), Condvar::new()),
                finished_async: tokio::sync::Notify::new(),
                feed: super::feed::channel(),
                recovered: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The store directory, for a store opened with [`Store::open`]; for a server store
    /// opened with [`Store::connect`], this host's own directory (scratch, caches).
    pub fn root(&self) -> Option<&Path> {
        self.inner.root.as_deref()
    }

    /// Whether this process lost the ownership of the (server) store it opened: the
    /// server ended its owner session, so every further write is refused and another
    /// process may own the store now. Asks the server (one round trip, at most 10 s).
    pub fn ownership_lost(&self) -> bool {
        self.inner.meta.ownership_lost()
    }

    /// The queue of datum sets engine hosts sharing this store claim (a PostgreSQL store);
    /// `None` when one process owns the store.
    pub fn work_queue(&self) -> Option<std::sync::Arc<dyn super::work_queue::WorkQueue>> {
        self.inner.meta.work_queue()
    }

    /// Serialises file writes to one repo (writers on different repos run in parallel).
    pub(crate) fn repo_lock(&self, repo: &RepoRef) -> Arc<Mutex<()>> {
        let mut map = self
            .inner
            .repo_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(repo.key()).or_default().clone()
    }

    /// Serialises auto-committing writes to one branch (`repo@branch` key): a second writer
    /// waits until the first one's commit is finished, then gets its own.
    pub(crate) fn branch_writer_lock(&self, key: String) -> Arc<Mutex<()>> {
        let mut map = self
            .inner
            .branch_writers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }

    pub(crate) fn write_txn(&self) -> Result<Box<dyn MetaWrite + '_>> {
        self.inner.meta.write()
    }

    // ---------------------------------------------------------------- repos

    /// Creates a repo.
    pub fn create_repo(&self, repo: &RepoRef, description: &str) -> Result<RepoInfo> {
        self.transact(|t| t.create_repo(repo, description))
    }

    /// A repo's information.
    pub fn inspect_repo(&self, repo: &RepoRef) -> Result<RepoInfo> {
        get_repo(&*self.inner.meta.read()?, repo)
    }

    /// Every repo, sorted by project and name.
    pub fn list_repos(&self) -> Result<Vec<RepoInfo>> {
        let r = self.inner.meta.read()?;
        let mut out = Vec::new();
        for kv in r.scan(Table::Repos, &[], &[0xff])? {
            let (_, v) = kv?;
            out.push(decode("repo record", &v)?);
        }
        Ok(out)
    }

    /// Deletes a repo: its branches, commits and file entries, in one transaction.
    ///
    /// Refused while a branch of another repo has one of its branches in its provenance,
    /// unless `force`, which removes those provenance edges. Object contents are kept (other
    /// commits may share them).
    pub fn delete_repo(&self, repo: &RepoRef, force: bool) -> Result<()> {
        let lock = self.repo_lock(repo);
        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.transact(|t| t.delete_repo(repo, force))
    }

    // ------------------------------------------------------------- branches

    /// Creates or updates a branch.
    ///
    /// - `head`: a commit of the same repo to point at. Without it a new branch gets a
    ///   fresh empty commit (finished when the branch has no provenance, open AUTO when it
    ///   has), and an existing branch keeps its head.
    /// - `provenance`: the direct provenance (replaces the previous one). The rules of
    ///   reference §4.2 are enforced: branches exist, no branch of the same repo, no cycle,
    ///   one branch per repo per connected DAG. A branch with provenance gets an open AUTO
    ///   commit (and so does everything downstream of it), in one new commit set.
    pub fn create_branch(
        &self,
        branch: &BranchRef,
        head: Option<&CommitId>,
        provenance: &[BranchRef],
    ) -> Result<BranchInfo> {
        self.transact(|t| t.create_branch(branch, head, provenance))
    }

    /// A branch's head, provenance and subvenance.
    pub fn inspect_branch(&self, branch: &BranchRef) -> Result<BranchInfo> {
        let r = self.inner.meta.read()?;
        inspect_branch_in(&*r, branch)
    }

    /// The branches of a repo, sorted by name.
    pub fn list_branches(&self, repo: &RepoRef) -> Result<Vec<BranchInfo>> {
        let r = self.inner.meta.read()?;
        get_repo(&*r, repo)?;
        let all = all_branches(&*r)?;
        all.iter()
            .filter(|(b, _)| b.repo == *repo)
            .map(|(b, rec)| branch_info(&all, b, rec))
            .collect()
    }

    /// Deletes a branch (its commits stay). Refused while other branches have it in their
    /// provenance, unless `force`, which removes those edges.
    pub fn delete_branch(&self, branch: &BranchRef, force: bool) -> Result<()> {
        self.transact(|t| t.delete_branch(branch, force))
    }

    /// Starts a new commit set in which every branch in `branches` and everything
    /// downstream of them gets an open AUTO commit (what the engine does after a pipeline
    /// update, or to re-run over the current inputs). Returns the commit-set ID.
    pub fn propagate_branches(&self, branches: &[BranchRef]) -> Result<CommitId> {
        self.transact(|t| t.propagate_branches(branches))
    }
}

/// A branch's information as `g` sees it.
fn inspect_branch_in<G: super::records::Getter + ?Sized + ScanAll>(
    g: &G,
    branch: &BranchRef,
) -> Result<BranchInfo> {
    let all = all_branches(g)?;
    match all.get(branch) {
        Some(rec) => branch_info(&all, branch, rec),
        None => {
            get_branch(g, branch)?;
            Err(PfsError::BranchNotFound {
                repo: branch.repo.to_string(),
                branch: branch.name.clone(),
            })
        }
    }
}

/// Repos and branches inside a [`StoreTxn`] (the [`Store`] methods of the same names run
/// these in a transaction of their own).
impl StoreTxn<'_> {
    /// Creates a repo.
    pub fn create_repo(&mut self, repo: &RepoRef, description: &str) -> Result<RepoInfo> {
        self.require_project(&repo.project)?;
        if self.w.get(Table::Repos, &repo_key(repo))?.is_some() {
            return Err(PfsError::RepoExists {
                repo: repo.to_string(),
            });
        }
        let info = RepoInfo {
            repo: repo.clone(),
            description: description.to_string(),
            created_ms: now_ms(),
        };
        self.w.put(Table::Repos, &repo_key(repo), &encode(&info))?;
        Ok(info)
    }

    /// A repo's information.
    pub fn inspect_repo(&self, repo: &RepoRef) -> Result<RepoInfo> {
        get_repo(&*self.w, repo)
    }

    /// Whether the repo exists.
    pub fn repo_exists(&self, repo: &RepoRef) -> Result<bool> {
        Ok(self.w.get(Table::Repos, &repo_key(repo))?.is_some())
    }

    /// Deletes a repo: its branches, commits and file entries. See [`Store::delete_repo`].
    pub fn delete_repo(&mut self, repo: &RepoRef, force: bool) -> Result<()> {
        let w = &mut *self.w;
        get_repo(w, repo)?;
        let all = all_branches(w)?;
        let users: Vec<(BranchRef, BranchRecord)> = all
            .iter()
            .filter(|(b, r)| b.repo != *repo && r.direct_provenance.iter().any(|p| p.repo == *repo))
            .map(|(b, r)| (b.clone(), r.clone()))
            .collect();
        if !users.is_empty() && !force {
            let names: Vec<String> = users.iter().map(|(b, _)| b.to_string()).collect();
            return Err(PfsError::InUse {
                what: format!("repo {repo}"),
                reason: format!("it is in the provenance of {}", names.join(", ")),
            });
        }
        for (b, mut r) in users {
            r.direct_provenance.retain(|p| p.repo != *repo);
            put_branch(w, &b, &r)?;
        }
        let (start, end) = repo_range(repo);
        // Commit-set index entries of this repo.
        for kv in w.scan_collect(Table::Commits, &start, &end, usize::MAX)? {
            let rec: CommitRecord = decode("commit record", &kv.1)?;
            let id = rec.info.commit.id;
            w.delete(
                Table::CommitSets,
                &super::records::commit_set_key(id.as_str(), repo),
            )?;
        }
        for t in [Table::Branches, Table::Commits, Table::Files] {
            delete_range(w, t, &start, &end)?;
        }
        w.delete(Table::Repos, &repo_key(repo))
    }

    /// A branch's head, provenance and subvenance.
    pub fn inspect_branch(&self, branch: &BranchRef) -> Result<BranchInfo> {
        inspect_branch_in(&*self.w, branch)
    }

    /// Whether the branch exists.
    pub fn branch_exists(&self, branch: &BranchRef) -> Result<bool> {
        Ok(super::records::try_branch(&*self.w, branch)?.is_some())
    }

    /// Creates or updates a branch. See [`Store::create_branch`].
    pub fn create_branch(
        &mut self,
        branch: &BranchRef,
        head: Option<&CommitId>,
        provenance: &[BranchRef],
    ) -> Result<BranchInfo> {
        let set = self.next_commit_set();
        let w = &mut *self.w;
        get_repo(w, &branch.repo)?;
        let mut all = all_branches(w)?;
        let existing = all.get(branch).cloned();
        let mut prov: Vec<BranchRef> = provenance.to_vec();
        prov.sort();
        prov.dedup();
        check_provenance(w, &all, branch, &prov)?;
        let provenance_changed = existing
            .as_ref()
            .is_none_or(|r| r.direct_provenance != prov);
        let kept_trigger = existing.as_ref().and_then(|r| r.trigger.clone());
        if kept_trigger.is_some() && !prov.is_empty() {
            return Err(PfsError::Provenance(format!(
                "branch {branch} has a trigger: a branch cannot have both provenance and a trigger"
            )));
        }
        let head_id = match head {
            Some(id) => {
                get_commit(w, &branch.repo, id.as_str())?;
                Some(id.as_str().to_string())
            }
            None => existing.as_ref().map(|r| r.head.clone()),
        };
        all.insert(
            branch.clone(),
            BranchRecord {
                head: head_id.clone().unwrap_or_default(),
                direct_provenance: prov.clone(),
                trigger: kept_trigger.clone(),
            },
        );
        validate_dag(&all, branch)?;
        let needs_auto =
            !prov.is_empty() && (provenance_changed || head_id.is_none()) && head.is_none();
        let rec = |head: String| BranchRecord {
            head,
            direct_provenance: prov.clone(),
            trigger: kept_trigger.clone(),
        };
        match (head_id, needs_auto) {
            (Some(h), false) => put_branch(w, branch, &rec(h))?,
            (None, false) => {
                // A new source branch: an empty finished commit.
                let id = empty_finished_commit(w, branch)?;
                put_branch(w, branch, &rec(id.as_str().to_string()))?;
            }
            (_, true) => {
                propagate(w, &mut all, std::slice::from_ref(branch), &set, true)?;
            }
        }
        self.inspect_branch(branch)
    }

    /// Deletes a branch. See [`Store::delete_branch`].
    pub fn delete_branch(&mut self, branch: &BranchRef, force: bool) -> Result<()> {
        let w = &mut *self.w;
        get_branch(w, branch)?;
        let all = all_branches(w)?;
        let users: Vec<_> = all
            .iter()
            .filter(|(_, r)| r.direct_provenance.contains(branch))
            .map(|(b, r)| (b.clone(), r.clone()))
            .collect();
        if !users.is_empty() && !force {
            let names: Vec<String> = users.iter().map(|(b, _)| b.to_string()).collect();
            return Err(PfsError::InUse {
                what: format!("branch {branch}"),
                reason: format!("it is in the provenance of {}", names.join(", ")),
            });
        }
        for (b, mut r) in users {
            r.direct_provenance.retain(|p| p != branch);
            put_branch(w, &b, &r)?;
        }
        w.delete(Table::Branches, &sub_key(&branch.repo, &branch.name))
    }

    /// Starts a new commit set downstream of `branches`. See [`Store::propagate_branches`].
    pub fn propagate_branches(&mut self, branches: &[BranchRef]) -> Result<CommitId> {
        let id = self.next_commit_set();
        let w = &mut *self.w;
        let mut all = all_branches(w)?;
        for b in branches {
            if !all.contains_key(b) {
                get_branch(w, b)?;
            }
        }
        propagate(w, &mut all, branches, &id, true)?;
        Ok(id)
    }
}

/// Provenance rules of a branch's new direct provenance: the branches exist, none is of the
/// branch's own repo, and none is downstream of it (a cycle).
fn check_provenance(
    w: &dyn MetaWrite,
    all: &BTreeMap<BranchRef, BranchRecord>,
    branch: &BranchRef,
    prov: &[BranchRef],
) -> Result<()> {
    for p in prov {
        if !all.contains_key(p) {
            get_branch(w, p)?;
        }
        if p.repo == branch.repo {
            return Err(PfsError::Provenance(format!(
                "repo {} cannot be in the provenance of its own branch {branch}",
                p.repo
            )));
        }
        if full_provenance(all, p).contains(branch) {
            return Err(PfsError::Provenance(format!(
                "cycle detected because {branch} is already in the subvenance of {p}"
            )));
        }
    }
    Ok(())
}

/// Records an empty, finished AUTO commit on `branch` (the first commit of a new source
/// branch); returns its ID. The branch record is the caller's to write.
fn empty_finished_commit(w: &mut dyn MetaWrite, branch: &BranchRef) -> Result<CommitId> {
    let id = CommitId::generate();
    let now = now_ms();
    let info = CommitInfo {
        commit: branch.repo.commit(&id),
        branch: Some(branch.name.clone()),
        parent: None,
        origin: Origin::Auto,
        state: CommitState::Finished,
        error: None,
        size_bytes: Some(0),
        started_ms: now,
        finished_ms: Some(now),
        description: String::new(),
        direct_provenance: Vec::new(),
    };
    put_commit(
        w,
        &CommitRecord {
            info,
            snapshot: true,
            same_tree_as: None,
            merged_over: None,
            layer_entries: None,
            owner: None,
        },
    )?;
    Ok(id)
}

/// Every branch record, keyed by branch.
pub(crate) fn all_branches<G: super::records::Getter + ?Sized + ScanAll>(
    g: &G,
) -> Result<BTreeMap<BranchRef, BranchRecord>> {
    let mut out = BTreeMap::new();
    for (k, v) in g.scan_all(Table::Branches)? {
        let key = std::str::from_utf8(&k).map_err(|_| PfsError::Corrupt("branch key".into()))?;
        let (repo, name) = key
            .split_once('\0')
            .ok_or_else(|| PfsError::Corrupt(format!("branch key {key:?}")))?;
        let (project, repo) = repo
            .split_once('/')
            .ok_or_else(|| PfsError::Corrupt(format!("branch key {key:?}")))?;
        let b = BranchRef {
            repo: RepoRef {
                project: project.to_string(),
                name: repo.to_string(),
            },
            name: name.to_string(),
        };
        out.insert(b, decode("branch record", &v)?);
    }
    Ok(out)
}

/// Whole-table scans for small tables.
pub(crate) trait ScanAll {
    fn scan_all(&self, table: Table) -> Result<Vec<super::meta::Kv>>;
}

impl ScanAll for dyn super::meta::MetaRead + '_ {
    fn scan_all(&self, table: Table) -> Result<Vec<super::meta::Kv>> {
        self.scan(table, &[], &prefix_end(&[]))?.collect()
    }
}

impl ScanAll for dyn MetaWrite + '_ {
    fn scan_all(&self, table: Table) -> Result<Vec<super::meta::Kv>> {
        self.scan_collect(table, &[], &prefix_end(&[]), usize::MAX)
    }
}

pub(crate) fn full_provenance(
    all: &BTreeMap<BranchRef, BranchRecord>,
    b: &BranchRef,
) -> BTreeSet<BranchRef> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<BranchRef> = all
        .get(b)
        .map(|r| r.direct_provenance.clone())
        .unwrap_or_default();
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone())
            && let Some(r) = all.get(&p)
        {
            todo.extend(r.direct_provenance.iter().cloned());
        }
    }
    seen
}

pub(crate) fn subvenance(
    all: &BTreeMap<BranchRef, BranchRecord>,
    b: &BranchRef,
) -> BTreeSet<BranchRef> {
    all.keys()
        .filter(|x| *x != b && full_provenance(all, x).contains(b))
        .cloned()
        .collect()
}

fn branch_info(
    all: &BTreeMap<BranchRef, BranchRecord>,
    b: &BranchRef,
    rec: &BranchRecord,
) -> Result<BranchInfo> {
    let head = CommitId::parse(&rec.head)
        .map_err(|_| PfsError::Corrupt(format!("branch {b} has head {:?}", rec.head)))?;
    Ok(BranchInfo {
        branch: b.clone(),
        head,
        direct_provenance: rec.direct_provenance.clone(),
        provenance: full_provenance(all, b).into_iter().collect(),
        subvenance: subvenance(all, b).into_iter().collect(),
        trigger: rec.trigger.clone(),
    })
}

/// One branch per repo per connected DAG (following provenance and subvenance edges).
fn validate_dag(all: &BTreeMap<BranchRef, BranchRecord>, from: &BranchRef) -> Result<()> {
    let mut neighbours: HashMap<&BranchRef, Vec<&BranchRef>> = HashMap::new();
    for (b, r) in all {
        for p in &r.direct_provenance {
            neighbours.entry(b).or_default().push(p);
            neighbours.entry(p).or_default().push(b);
        }
    }
    let mut seen: BTreeSet<&BranchRef> = BTreeSet::new();
    let mut repos: HashMap<&RepoRef, &BranchRef> = HashMap::new();
    let mut todo = VecDeque::from([from]);
    while let Some(b) = todo.pop_front() {
        if !seen.insert(b) {
            continue;
        }
        if let Some(other) = repos.insert(&b.repo, b)
            && other != b
        {
            return Err(PfsError::Provenance(format!(
                "multiple branches from the same repo, \"{}\", cannot participate in a DAG",
                b.repo
            )));
        }
        for n in neighbours.get(b).into_iter().flatten() {
            todo.push_back(n);
        }
    }
    Ok(())
}

/// Creates open AUTO commits with ID `id` on `start` (when `include_start`) and on every
/// branch downstream of them, ordered by provenance size, moving each head. A repo never
/// gets two commits in one set.
pub(crate) fn propagate(
    w: &mut dyn MetaWrite,
    all: &mut BTreeMap<BranchRef, BranchRecord>,
    start: &[BranchRef],
    id: &CommitId,
    include_start: bool,
) -> Result<Vec<CommitRef>> {
    let mut targets: BTreeSet<BranchRef> = BTreeSet::new();
    for b in start {
        if include_start {
            targets.insert(b.clone());
        }
        targets.extend(subvenance(all, b));
    }
    let mut ordered: Vec<(usize, BranchRef)> = targets
        .into_iter()
        .map(|b| (full_provenance(all, &b).len(), b))
        .collect();
    ordered.sort();
    let now = now_ms();
    let mut made = Vec::new();
    for (_, b) in ordered {
        let Some(rec) = all.get(&b).cloned() else {
            continue;
        };
        let direct_provenance: Vec<CommitRef> = rec
            .direct_provenance
            .iter()
            .filter_map(|p| {
                all.get(p)
                    .and_then(|pr| CommitId::parse(&pr.head).ok())
                    .map(|h| p.repo.commit(&h))
            })
            .collect();
        if let Some(v) = w.get(Table::Commits, &sub_key(&b.repo, id.as_str()))? {
            // Already in this commit set (an earlier operation of one transaction): an open
            // AUTO commit now derives from the new heads of its provenance too.
            let mut existing: CommitRecord = decode("commit record", &v)?;
            if existing.info.origin == Origin::Auto && !existing.info.is_finished() {
                existing.info.direct_provenance = direct_provenance;
                put_commit(w, &existing)?;
            }
            continue;
        }
        let parent = (!rec.head.is_empty())
            .then(|| CommitId::parse(&rec.head).ok())
            .flatten();
        let info = CommitInfo {
            commit: b.repo.commit(id),
            branch: Some(b.name.clone()),
            parent,
            origin: Origin::Auto,
            state: CommitState::Open,
            error: None,
            size_bytes: None,
            started_ms: now,
            finished_ms: None,
            description: String::new(),
            direct_provenance,
        };
        put_commit(
            w,
            &CommitRecord {
                info: info.clone(),
                snapshot: false,
                same_tree_as: None,
                merged_over: None,
                layer_entries: None,
                owner: None,
            },
        )?;
        let new = BranchRecord {
            head: id.as_str().to_string(),
            direct_provenance: rec.direct_provenance.clone(),
            trigger: rec.trigger.clone(),
        };
        put_branch(w, &b, &new)?;
        all.insert(b.clone(), new);
        made.push(info.commit);
    }
    Ok(made)
}
