//! The data model: repos, branches, commits, commit sets and file entries.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::{PfsError, Result};
use super::names::{
    is_commit_id_shaped, validate_branch_name, validate_project_name, validate_repo_name,
};
use crate::hash::ContentHash;

/// The project every repo belongs to unless another is named.
pub const DEFAULT_PROJECT: &str = "default";

/// A repo: `(project, name)`. Displayed as `project/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoRef {
    /// Project name.
    pub project: String,
    /// Repo name.
    pub name: String,
}

impl RepoRef {
    /// A repo in the `default` project; the name is validated.
    pub fn new(name: &str) -> Result<Self> {
        Self::in_project(DEFAULT_PROJECT, name)
    }

    /// A repo in `project`; both names are validated.
    pub fn in_project(project: &str, name: &str) -> Result<Self> {
        validate_project_name(project)?;
        validate_repo_name(name)?;
        Ok(RepoRef {
            project: project.to_string(),
            name: name.to_string(),
        })
    }

    /// Parses `name` or `project/name`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.split_once('/') {
            Some((p, n)) => Self::in_project(p, n),
            None => Self::new(s),
        }
    }

    /// A branch of this repo; the branch name is validated.
    pub fn branch(&self, name: &str) -> Result<BranchRef> {
        validate_branch_name(name)?;
        Ok(BranchRef {
            repo: self.clone(),
            name: name.to_string(),
        })
    }

    /// A commit of this repo.
    pub fn commit(&self, id: &CommitId) -> CommitRef {
        CommitRef {
            repo: self.clone(),
            id: id.clone(),
        }
    }

    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.project, self.name)
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.name)
    }
}

/// A branch: `(repo, name)`. Displayed as `project/repo@branch`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BranchRef {
    /// The repo.
    pub repo: RepoRef,
    /// Branch name.
    pub name: String,
}

impl fmt::Display for BranchRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repo, self.name)
    }
}

/// A commit (and commit-set) ID: 32 lower-case hex characters, shared by every commit of
/// one commit set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CommitId(String);

impl CommitId {
    /// A fresh random ID.
    pub fn generate() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = blake3::Hasher::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        h.update(&now.as_nanos().to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
        h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let stack_marker = 0u8;
        h.update(&(std::ptr::addr_of!(stack_marker) as usize).to_le_bytes());
        let hex = h.finalize().to_hex();
        CommitId(hex.as_str()[..32].to_string())
    }

    /// Parses an ID (32 hex characters).
    pub fn parse(s: &str) -> Result<Self> {
        if is_commit_id_shaped(s) {
            Ok(CommitId(s.to_ascii_lowercase()))
        } else {
            Err(PfsError::InvalidRef {
                input: s.to_string(),
                reason: "a commit ID is 32 hexadecimal characters".into(),
            })
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A commit: `(repo, id)`. Displayed as `project/repo@id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitRef {
    /// The repo.
    pub repo: RepoRef,
    /// The commit (set) ID.
    pub id: CommitId,
}

impl fmt::Display for CommitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repo, self.id)
    }
}

/// Who made a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Origin {
    /// A client: start commit or put file.
    User,
    /// Propagation or branch creation (every pipeline output commit).
    Auto,
}

/// Whether a commit can still be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum CommitState {
    /// Open: files may be added or deleted.
    Open,
    /// Finished: immutable.
    Finished,
}

/// Information about a repo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoInfo {
    /// The repo.
    pub repo: RepoRef,
    /// Free text.
    pub description: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// Information about a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BranchInfo {
    /// The branch.
    pub branch: BranchRef,
    /// Its head commit (every branch has one).
    pub head: CommitId,
    /// The provenance set directly on this branch.
    pub direct_provenance: Vec<BranchRef>,
    /// The transitive closure of the direct provenance, sorted.
    pub provenance: Vec<BranchRef>,
    /// Every branch that has this one in its provenance, sorted.
    pub subvenance: Vec<BranchRef>,
    /// The trigger, on a trigger branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<BranchTrigger>,
}

/// A branch trigger (reference §4.2): the branch's head moves to the head of the branch it
/// watches only when the conditions hold, so downstream pipelines run once per batch of
/// commits. The conditions are compared between the trigger branch's head and the watched
/// branch's new head, after each commit on the watched branch that finishes without error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BranchTrigger {
    /// The watched branch, in the same repo.
    pub branch: String,
    /// Every condition set must hold (otherwise any one does; with none set, `all` decides).
    #[serde(default)]
    pub all: bool,
    /// Fires when the watched head's tree is at least this many bytes larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Fires when at least this many commits lead from the trigger head to the watched head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commits: Option<u64>,
    /// Fires when this cron schedule ticked between the finishing times of the trigger head
    /// and the watched head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_spec: Option<String>,
    /// Fires on this cron schedule instead of on commits ([`Store::tick_trigger_crons`]);
    /// excludes the other conditions.
    ///
    /// [`Store::tick_trigger_crons`]: super::Store::tick_trigger_crons
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_spec: Option<String>,
    /// When the cron schedule last ticked (seconds since the epoch; set by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick_s: Option<u64>,
}

/// Information about a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitInfo {
    /// The commit.
    pub commit: CommitRef,
    /// The branch it was made on.
    pub branch: Option<String>,
    /// The previous head of that branch (or an explicit parent).
    pub parent: Option<CommitId>,
    /// USER or AUTO.
    pub origin: Origin,
    /// Open or finished.
    pub state: CommitState,
    /// Set when the commit finished with an error; such commits are never inherited from.
    pub error: Option<String>,
    /// Total bytes of the files in the commit's tree; known once finished.
    pub size_bytes: Option<u64>,
    /// Start time, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Finish time, milliseconds since the Unix epoch.
    pub finished_ms: Option<u64>,
    /// Free text.
    pub description: String,
    /// The commits this one was derived from (heads of the branch's direct provenance).
    pub direct_provenance: Vec<CommitRef>,
}

impl CommitInfo {
    /// `true` once finished.
    pub fn is_finished(&self) -> bool {
        self.state == CommitState::Finished
    }
}

/// Whether a tree entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory (exists only as the parent of files).
    Dir,
}

/// One entry of a commit's tree.
///
/// Directories have a trailing `/` in `path` (the root is `/`); their `size` is the sum of
/// the files below them and their `hash` is a [`crate::hash::DirectoryHasher`] hash over
/// their children (names included). A file's hash is BLAKE3 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    /// Normalised path; directories end with `/`.
    pub path: String,
    /// File or directory.
    pub kind: FileKind,
    /// Bytes (for a directory, of everything below it).
    pub size: u64,
    /// Content hash.
    #[serde(with = "hash_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub hash: ContentHash,
}

/// How a path differs between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the new commit.
    Added,
    /// Only in the old commit.
    Deleted,
    /// In both, with different content.
    Modified,
}

/// One line of a diff between two commits (files only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffEntry {
    /// Normalised file path.
    pub path: String,
    /// What happened.
    pub change: Change,
    /// The file in the new commit, if any.
    pub new: Option<FileInfo>,
    /// The file in the old commit, if any.
    pub old: Option<FileInfo>,
}

pub(crate) mod hash_hex {
    use crate::hash::ContentHash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &ContentHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContentHash, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
