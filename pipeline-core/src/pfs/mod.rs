//! Versioned data storage: repos, branches, commits, commit sets, provenance and files.
//!
//! ```
//! use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let repo = RepoRef::new("images").unwrap();
//! store.create_repo(&repo, "").unwrap();
//! let commit = store.start_commit(&repo.branch("master").unwrap(), "first").unwrap().commit;
//! store.put_file_bytes(&commit, "/dir/a.txt", b"hello").unwrap();
//! store.finish_commit(&commit, FinishOptions::default()).unwrap();
//! let paths: Vec<String> = store.walk(&commit).unwrap().map(|e| e.unwrap().path).collect();
//! assert_eq!(paths, ["/", "/dir/", "/dir/a.txt"]);
//! ```
//!
//! # Modules
//!
//! | module | concept |
//! |---|---|
//! | [`names`] | name and path rules (public: the engine validates outputs with them) |
//! | [`refs`] | `repo@branch^N:/path` references |
//! | [`model`] | repos, branches, commits, file entries |
//! | [`meta`] | the metadata-store trait (ordered transactional key-value) |
//! | [`object`] | the object-store trait and the local content-addressed store |
//! | `writeback` | a large object flushed to disk while it is written, so its fsync waits only for the tail |
//! | `object_remote` | `RemoteObjectStore`: contents on S3, GCS, Azure or a directory through the `object_store` crate (feature `store-object`) |
//! | `meta_redb` | the embedded metadata database ([`RedbMetaStore`]) |
//! | `meta_postgres` | the metadata store on a PostgreSQL server (`PostgresMetaStore`, feature `store-postgres`) |
//! | `connect` | [`Store::connect`] and [`Store::init`]: a store from a metadata URL and an objects location |
//! | `meta_mem` | an in-memory metadata store ([`MemMetaStore`]) for tests; proves the trait |
//! | `projects` | [`Store::create_project`] and friends: project records, the implicit `default` project |
//! | `store`, `commits`, `files` | [`Store`]: repos/branches/provenance, commits, files |
//! | `dir_put`, `local_tree` | [`Store::put_dir_local`]: a local directory put in path order, reading only what changed |
//! | [`stat_cache`] | what a directory put remembers of local files (git's index idea) and what it trusts |
//! | `txn` | [`Store::transact`] and [`StoreTxn`]: several changes in one transaction |
//! | `tree` | per-commit layers, their streaming merge, directory hashes |
//! | `compaction` | shortening a long layer stack as its commit finishes: a merged delta over the stack's bottom, or a snapshot when that delta would be large |
//! | `source` | [`CommitTree`]: a commit as a [`crate::datum::TreeSource`] |
//! | `changes` | [`Store::changed_paths`]: the paths that differ between two commits of a repo, from the layers they do not share (O(change), not O(tree)) |
//! | `query` | [`Store::diff_path`] (one path on each side, `shallow`) and [`Store::find_commits`] (a branch's commits that changed a path) |
//! | `feed` | [`Store::subscribe`]: the change feed ([`StoreEvent`]: commits finished) |
//! | `gc` | [`Store::gc`]: removing objects no file entry refers to |
//! | `history` | [`Store::squash_commit_set`] and [`Store::drop_commit_set`]: removing a commit set, its changes kept in its children or dropped |
//! | [`verify`] | verified reads: the checking reader, verified hard links |
//! | `check` | [`Store::check`] (`pipectl fsck`): every object and reference verified |
//! | `private` | owner-only modes: 0700 directories, 0600 metadata files |
//! | `autocommit` | pachctl's auto-commit rule for writes: [`Store::write_auto_commit`] |
//! | `owner` | [`Store::owner_label`]: the label of the executor resources working for a store |
//! | [`recovery`] | commits owned by a command; discarding those a dead command left open |
//! | `export` | [`Store::export_local`]: a commit's tree into a local directory, verified while it streams, no symlink followed |
//! | `existing` | [`Store::open_existing`]: open a store only if there is one |
//! | `trigger` | branch triggers: [`Store::set_branch_trigger`], fired as commits finish |
//!
//! # Decisions
//!
//! **Metadata database: redb.** `tests/pfs_crash.rs` SIGKILLs a child writer 120 times at
//! random moments during puts and finishes; after every kill the store must reopen without
//! repair, every finished commit must read back byte-identical and every recorded file
//! must have its object. redb passed every round, is pure Rust with three small
//! dependencies, fsyncs each commit (`Durability::Immediate`), and its range iterators own
//! their MVCC snapshot, which gives streaming scans for free. rusqlite (also crash-safe in
//! the reference's test) is kept in reserve for relational queries; sled is never used.
//!
//! **Objects: content-addressed files** (see [`object`]): `objects/ab/cdef…` = BLAKE3 of
//! the bytes ([`crate::hash::ContentHash`]), written to a temp file, fsynced (or one
//! `syncfs` per batch), renamed, never modified in place, mode 0444, deduplicated across
//! repos and commits (after verifying the stored copy). Streams go through a 1 MiB buffer: memory does not grow with file size.

//!
//! **Trust in what is read** (issue #13). The store is private (0700 directories, 0600
//! metadata files, 0444 objects; tightened when an old store is opened). Nothing leaves it
//! unverified: [`Store::get_file`] streams through [`verify::VerifyingReader`] (size and
//! BLAKE3 checked at the end of the stream, a mismatch is [`PfsError::ObjectCorrupt`] naming
//! file, commit and object), [`Store::materialize`] copies through it or hard-links only
//! verified objects, and a deduplicated put verifies the object it reuses (a damaged one is
//! replaced, so a re-put repairs it). Verification is remembered per handle, keyed by the
//! object and its file's device, inode, size and mtime. [`Store::check`] verifies everything;
//! a missing or empty `meta.redb` beside objects refuses to open ([`PfsError::MetaCorrupt`]),
//! and redb panics on damaged files are turned into that error at the `meta_redb` boundary.
//!
//! **Commit contents** (reference §4.3): a commit stores only its changes (a layer of file
//! entries and tombstones); its tree is that layer over the tree of its nearest error-free
//! ancestor, merged on the fly in path order. Finishing compacts long layer stacks (into one
//! merged delta over the bottom of the stack, or a snapshot when that delta would be large),
//! bounding reads to [`tree::MAX_LAYERS`] range scans.
//!
//! **Transactions.** Starting a commit creates it, moves the branch head and creates the
//! AUTO commits of the same commit set downstream (with their commit provenance) in one
//! transaction; finishing a commit (state, error, size, compaction) is one transaction; a
//! put records its file entry only after its object is durable. A crash therefore leaves
//! finished commits intact and open commits open and **resumable** (their recorded files
//! stay; a put that was interrupted is simply absent), except a commit a command started for
//! one write ([`Store::write_auto_commit`]): it is owned by that command, and the next
//! [`Store::open`] discards it if the command died before finishing it ([`recovery`]). [`Store::transact`] gives a caller the
//! same guarantee over several changes: repos, branches, commit starts, triggers and engine
//! records made in one [`StoreTxn`] commit together or not at all.
//!
//! **Concurrency.** One process per store directory: [`Store::open`] takes an exclusive
//! `flock` on `ROOT/LOCK` and a second process gets [`PfsError::Locked`] naming the holder's
//! pid and host (sharing across processes would need a server database). Inside a process
//! the `Store` is a cheap `Clone + Send + Sync` handle: readers run on MVCC snapshots and
//! never block; object writes (the slow part) run fully in parallel; the short metadata
//! transactions are serialised by the database, and per-repo locks only order
//! read-modify-write operations on one repo, so writers on different repos proceed in
//! parallel.
//!
//! **Blocking API.** Every call is blocking I/O (reference P10); from async code wrap calls
//! in `spawn_blocking`. Metadata calls cost one fsync; file calls move bytes. Waiting for a
//! commit has an async form ([`Store::wait_commit_async`]) because it can take arbitrarily
//! long.
//!
//! **Paths.** See [`names`]: `..`, `.`, empty segments, NUL, non-printable ASCII and glob
//! characters are rejected, so no stored path can escape a directory it is materialised
//! into. Recursive puts never follow symlinks ([`Store::put_dir_local`]).

mod autocommit;
mod batch;
mod changes;
mod check;
mod commits;
mod compaction;
mod connect;
mod dir_put;
pub mod error;
#[cfg(feature = "store-redb")]
mod existing;
mod export;
mod feed;
mod files;
mod gc;
mod globmatch;
mod history;
mod local_tree;
pub mod meta;
mod meta_mem;
#[cfg(feature = "store-postgres")]
pub(crate) mod meta_postgres;
#[cfg(feature = "store-redb")]
mod meta_redb;
pub mod model;
pub mod names;
pub mod object;
#[cfg(feature = "store-object")]
pub mod object_remote;
mod owner;
mod private;
pub(crate) mod projects;
mod query;
mod records;
pub mod recovery;
pub mod refs;
mod source;
pub mod stat_cache;
mod store;
mod store_lock;
pub mod tree;
mod trigger;
mod txn;
pub mod verify;
pub mod work_queue;
mod writeback;

pub use autocommit::{WriteTarget, Written};
pub use batch::{EngineReader, EngineWrite, IndexOf, OutputBatch};
pub use check::{CheckProblem, CheckReport};
pub use commits::FinishOptions;
pub use connect::{StoreLocation, shown_location};
pub use error::{CorruptFile, ObjectProblem, PfsError, Result};
pub use feed::{FEED_CAPACITY, StoreEvent};
pub use files::{DiffIter, FileIter, TransferStats};
pub use gc::GcStats;
pub use history::{CommitSetRemoval, HistoryOp, MovedHead};
pub use meta_mem::MemMetaStore;
#[cfg(feature = "store-postgres")]
pub use meta_postgres::{
    POSTGRES_SCHEMA_VERSION, PostgresMetaStore, PostgresOptions, is_postgres_url,
};
#[cfg(feature = "store-redb")]
pub use meta_redb::RedbMetaStore;
pub use model::{
    BranchInfo, BranchRef, BranchTrigger, Change, CommitId, CommitInfo, CommitRef, CommitState,
    DEFAULT_PROJECT, DiffEntry, FileInfo, FileKind, Origin, RepoInfo, RepoRef,
};
pub use names::{validate_file_name, validate_file_path};
#[cfg(feature = "store-object")]
pub use object_remote::{RemoteObjectStore, RemoteStoreError};
pub use owner::host_name;
pub use projects::ProjectInfo;
pub use query::{FoundCommit, FoundIter};
pub use recovery::{CommitOwner, RecoveredWrite, RecoveryAction};
pub use source::CommitTree;
pub use store::Store;
pub use txn::StoreTxn;
