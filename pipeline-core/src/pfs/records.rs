//! Stored records and their keys (private to the store).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{PfsError, Result};
use super::meta::{MetaRead, MetaWrite, Table, prefix_end};
use super::model::{BranchRef, CommitInfo, RepoInfo, RepoRef};

/// A branch as stored: its head, direct provenance and trigger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BranchRecord {
    pub head: String,
    pub direct_provenance: Vec<BranchRef>,
    /// Set on a trigger branch (see `trigger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<super::model::BranchTrigger>,
}

/// A commit as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CommitRecord {
    pub info: CommitInfo,
    /// The layer holds the whole tree (no ancestor layers below it).
    #[serde(default)]
    pub snapshot: bool,
    /// Set on a snapshot compacted when the commit finished: the commit whose tree is below
    /// it (the next layer down then); the snapshot is that tree plus the commit's own
    /// changes, kept in the layer [`kept_delta_id`] (empty when it changed nothing; a
    /// snapshot compacted before that layer was kept had this set only for an empty
    /// layer). [`Store::changed_paths`] compares those layers instead of the whole snapshot.
    ///
    /// [`kept_delta_id`]: super::tree::kept_delta_id
    ///
    /// [`Store::changed_paths`]: super::store::Store::changed_paths
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_tree_as: Option<String>,
    /// Set on a commit whose layer was compacted into a *merged delta*: the changes of every
    /// layer above the bottom of its stack, tombstones kept. Its tree is that layer over the
    /// stack of this commit (the old bottom, a whole tree), so reading its stack jumps there
    /// instead of walking its parents (see `compaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_over: Option<String>,
    /// How many entries the commit's layer holds, where it is known: a layer compaction
    /// wrote (a snapshot or a merged delta), or the layer of a commit without error-free
    /// ancestors (its whole tree). `None` on other layers and on those written before
    /// counts were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_entries: Option<u64>,
    /// Set on a commit a command started for one write ([`Store::write_auto_commit`]):
    /// the process that must finish it (see `recovery`).
    ///
    /// [`Store::write_auto_commit`]: super::store::Store::write_auto_commit
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<super::recovery::CommitOwner>,
}

/// Point reads shared by snapshots and write transactions.
pub(crate) trait Getter {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

impl Getter for dyn MetaRead + '_ {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(table, key)
    }
}

impl Getter for dyn MetaWrite + '_ {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(table, key)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| PfsError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn repo_key(repo: &RepoRef) -> Vec<u8> {
    repo.key().into_bytes()
}

pub(crate) fn sub_key(repo: &RepoRef, name: &str) -> Vec<u8> {
    let mut k = repo.key().into_bytes();
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `[start, end)` of every sub-key of a repo.
pub(crate) fn repo_range(repo: &RepoRef) -> (Vec<u8>, Vec<u8>) {
    let mut start = repo.key().into_bytes();
    start.push(0);
    let end = prefix_end(&start);
    (start, end)
}

pub(crate) fn commit_set_key(id: &str, repo: &RepoRef) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(repo.key().as_bytes());
    k
}

pub(crate) fn get_repo<G: Getter + ?Sized>(g: &G, repo: &RepoRef) -> Result<RepoInfo> {
    match g.get_raw(Table::Repos, &repo_key(repo))? {
        Some(v) => decode("repo record", &v),
        None => Err(PfsError::RepoNotFound {
            repo: repo.to_string(),
        }),
    }
}

pub(crate) fn get_branch<G: Getter + ?Sized>(g: &G, b: &BranchRef) -> Result<BranchRecord> {
    match g.get_raw(Table::Branches, &sub_key(&b.repo, &b.name))? {
        Some(v) => decode("branch record", &v),
        None => {
            get_repo(g, &b.repo)?;
            Err(PfsError::BranchNotFound {
                repo: b.repo.to_string(),
                branch: b.name.clone(),
            })
        }
    }
}

pub(crate) fn try_branch<G: Getter + ?Sized>(g: &G, b: &BranchRef) -> Result<Option<BranchRecord>> {
    match g.get_raw(Table::Branches, &sub_key(&b.repo, &b.name))? {
        Some(v) => Ok(Some(decode("branch record", &v)?)),
        None => Ok(None),
    }
}

pub(crate) fn get_commit<G: Getter + ?Sized>(
    g: &G,
    repo: &RepoRef,
    id: &str,
) -> Result<CommitRecord> {
    match g.get_raw(Table::Commits, &sub_key(repo, id))? {
        Some(v) => decode("commit record", &v),
        None => Err(PfsError::CommitNotFound {
            repo: repo.to_string(),
            commit: id.to_string(),
        }),
    }
}

pub(crate) fn put_commit(w: &mut dyn MetaWrite, rec: &CommitRecord) -> Result<()> {
    let c = &rec.info.commit;
    w.put(
        Table::Commits,
        &sub_key(&c.repo, c.id.as_str()),
        &encode(rec),
    )?;
    w.put(
        Table::CommitSets,
        &commit_set_key(c.id.as_str(), &c.repo),
        &[],
    )
}

pub(crate) fn put_branch(w: &mut dyn MetaWrite, b: &BranchRef, rec: &BranchRecord) -> Result<()> {
    w.put(Table::Branches, &sub_key(&b.repo, &b.name), &encode(rec))
}
