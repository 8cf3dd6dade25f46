//! The error type of every data-store operation.

use std::path::PathBuf;

use super::names::{NameError, PathError};

/// Errors of the versioned data store. Every variant names the object it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PfsError {
    /// A project, repo or branch name broke the naming rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A file path broke the path rules.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// A `repo@branch:/path`-style reference could not be parsed.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidRef {
        /// The text given.
        input: String,
        /// What was expected.
        reason: String,
    },
    /// The project does not exist.
    #[error("project {project} not found")]
    ProjectNotFound {
        /// Project name.
        project: String,
    },
    /// The project already exists.
    #[error("project {project} already exists")]
    ProjectExists {
        /// Project name.
        project: String,
    },
    /// The repo does not exist.
    #[error("repo {repo} not found")]
    RepoNotFound {
        /// `project/name`.
        repo: String,
    },
    /// The repo already exists.
    #[error("repo {repo} already exists")]
    RepoExists {
        /// `project/name`.
        repo: String,
    },
    /// The branch does not exist.
    #[error("branch {branch} not found in repo {repo}")]
    BranchNotFound {
        /// `project/name`.
        repo: String,
        /// Branch name.
        branch: String,
    },
    /// The commit does not exist.
    #[error("commit {repo}@{commit} not found")]
    CommitNotFound {
        /// `project/name`.
        repo: String,
        /// What was asked for (an ID, or `branch^N`).
        commit: String,
    },
    /// Writing to, or finishing, a commit that is already finished.
    #[error("commit {repo}@{commit} is finished; writes need an open commit")]
    CommitFinished {
        /// `project/name`.
        repo: String,
        /// Commit ID.
        commit: String,
    },
    /// A USER commit needs a finished parent.
    #[error("parent commit {repo}@{commit} has not been finished")]
    ParentNotFinished {
        /// `project/name`.
        repo: String,
        /// Parent commit ID.
        commit: String,
    },
    /// Clients may not start commits on branches that have provenance.
    #[error("cannot start a commit on an output branch: {repo}@{branch}")]
    OutputBranch {
        /// `project/name`.
        repo: String,
        /// Branch name.
        branch: String,
    },
    /// A branch-provenance rule (reference §4.2) was broken; the message is Pachyderm's.
    #[error("{0}")]
    Provenance(String),
    /// The repo or branch is still needed by something downstream.
    #[error("cannot delete {what}: {reason}")]
    InUse {
        /// What was to be deleted.
        what: String,
        /// Who still uses it.
        reason: String,
    },
    /// The path does not exist in the commit.
    #[error("file {path} not found in {repo}@{commit}")]
    FileNotFound {
        /// `project/name`.
        repo: String,
        /// Commit ID.
        commit: String,
        /// Normalised path.
        path: String,
    },
    /// The path is a directory where a file was needed.
    #[error("{path} in {repo}@{commit} is a directory, not a file")]
    IsADirectory {
        /// `project/name`.
        repo: String,
        /// Commit ID.
        commit: String,
        /// Normalised path.
        path: String,
    },
    /// A local path given to a put could not be used.
    #[error("local path {}: {reason}", path.display())]
    LocalPath {
        /// The local path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An I/O error on a local file or the object store.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error("metadata store: {context}")]
    Meta {
        /// What was being done.
        context: String,
        /// The database's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data is not what it should be (a bug or outside tampering).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Another process holds the store.
    #[error("store {} is in use by another process ({holder}); only one process may open it at a time", root.display())]
    Locked {
        /// The store directory.
        root: PathBuf,
        /// What the lock file says about the holder (pid, host).
        holder: String,
    },
    /// A file's stored content is not what its entry says (missing, wrong size or wrong
    /// hash). Found while streaming it out, materialising it or checking the store.
    #[error("{0}")]
    ObjectCorrupt(Box<CorruptFile>),
    /// The metadata database cannot be used as the store it claims to be (missing or empty
    /// beside stored objects, or damaged so that the database library failed).
    #[error("store {}: {reason}", root.display())]
    MetaCorrupt {
        /// The store directory (or database file).
        root: PathBuf,
        /// What is wrong and how to recover.
        reason: String,
    },
    /// No commit has this commit-set ID.
    #[error("no commits found for commit set {id}")]
    CommitSetNotFound {
        /// The commit-set ID.
        id: String,
    },
    /// Squashing a commit without children would lose its data (Pachyderm's wording).
    #[error(
        "cannot squash a commit that has no children as that would cause data loss, use the drop operation instead: {commit}"
    )]
    SquashWithoutChildren {
        /// `project/repo@id`.
        commit: String,
    },
    /// Only commits without children can be dropped (Pachyderm's wording).
    #[error("cannot drop a commit that has children: {commit}")]
    DropWithChildren {
        /// `project/repo@id`.
        commit: String,
    },
    /// A commit built on one being squashed is still open.
    #[error("cannot squash until child commit {commit} is finished")]
    ChildNotFinished {
        /// `project/repo@id` of the open commit.
        commit: String,
    },
    /// Commits of other sets were derived from this set's commits.
    #[error(
        "commit set {commit_set} cannot be {op} because it has subvenant commit sets: {}; remove those first",
        subvenant.join(", ")
    )]
    SubvenantCommitSets {
        /// The commit set.
        commit_set: String,
        /// `squashed` or `dropped`.
        op: &'static str,
        /// The IDs of the sets derived from it.
        subvenant: Vec<String>,
    },
    /// A metadata server (PostgreSQL) could not be reached or failed an operation.
    /// `server` names it without its password (`postgres://USER@HOST:PORT/DB`).
    #[error("metadata server {server}: {operation} failed")]
    MetaServer {
        /// The server, password removed.
        server: String,
        /// What was being done (connecting, a read, a write, a commit...).
        operation: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The metadata database has no schema yet, or an older one than this build needs.
    #[error(
        "metadata database {server} {state}; run `pipectl init --store {server}` (or `Store::init`) to create or upgrade its schema"
    )]
    MetaNotInitialised {
        /// The server, password removed.
        server: String,
        /// What was found ("has no store schema", "has schema version 1, older than 2").
        state: String,
    },
    /// The metadata database was made by a newer build: this one cannot use it.
    #[error(
        "metadata database {server} has schema version {found}, newer than version {supported} this build understands; use a newer pipectl / pipeline-core"
    )]
    MetaSchemaTooNew {
        /// The server, password removed.
        server: String,
        /// The schema version stored in the database.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// Another process holds a store kept on a server (see [`PfsError::Locked`] for a store
    /// directory).
    #[error(
        "store {store} is in use by another process ({holder}); only one process may open it at a time"
    )]
    StoreInUse {
        /// The store, password removed.
        store: String,
        /// Who holds it (pid and host), as far as the server says.
        holder: String,
    },
    /// A store or objects location given to [`Store::connect`](super::Store::connect) cannot
    /// be used.
    #[error("{field} {location:?}: {reason}")]
    InvalidLocation {
        /// Which location (`store`, `objects`).
        field: &'static str,
        /// What was given, password removed.
        location: String,
        /// What was expected.
        reason: String,
    },
    /// A glob pattern was rejected.
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    InvalidGlob {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
}

/// A file whose stored object failed verification: which file, which object, what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptFile {
    /// `project/name`.
    pub repo: String,
    /// Commit ID.
    pub commit: String,
    /// Normalised path.
    pub path: String,
    /// The object's hash (hex), as the file entry names it.
    pub object: String,
    /// What is wrong with it.
    pub problem: ObjectProblem,
}

impl std::fmt::Display for CorruptFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "file {} in {}@{}: object {} {}; run `pipectl fsck` to list every damaged file, \
             then put the right content again to repair it",
            self.path, self.repo, self.commit, self.object, self.problem
        )
    }
}

/// What is wrong with a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectProblem {
    /// No object with that hash is stored.
    Missing,
    /// The object's size differs from the size recorded for it.
    Size {
        /// Bytes expected.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// The object's content does not hash to its name.
    Hash {
        /// BLAKE3 of the bytes found.
        #[serde(with = "super::model::hash_hex")]
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        found: crate::hash::ContentHash,
    },
}

impl std::fmt::Display for ObjectProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectProblem::Missing => f.write_str("is missing"),
            ObjectProblem::Size { expected, found } => {
                write!(
                    f,
                    "has {found} bytes where {expected} were recorded (size check failed)"
                )
            }
            ObjectProblem::Hash { found } => {
                write!(f, "holds content hashing to {found} (hash check failed)")
            }
        }
    }
}

impl PfsError {
    /// Whether the error says the store could not be reached (the object store's server
    /// did not answer, or the metadata server failed), not something about the data: worth
    /// waiting out and trying again.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PfsError::MetaServer { .. } => true,
            #[cfg(feature = "store-object")]
            PfsError::Io { source, .. } => super::object_remote::is_transport_failure(source),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PfsError::Io {
            path: path.into(),
            source,
        }
    }

    #[cfg_attr(not(feature = "store-redb"), allow(dead_code))]
    pub(crate) fn meta(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PfsError::Meta {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Result alias of the data store.
pub type Result<T, E = PfsError> = std::result::Result<T, E>;
