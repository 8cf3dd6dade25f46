//! # pipeline-core
//!
//! The Pachyderm pipeline model as an embeddable library: versioned input data, JSON/YAML
//! pipeline specs, glob-based datums, incremental jobs that turn input commits into output
//! commits, and DAGs of pipelines. Where user code runs is pluggable through the
//! [`executor::Executor`] trait (local processes, Docker, Kubernetes live in sibling crates).
//!
//! ```
//! # #[cfg(feature = "engine")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
//! use pipeline_core::pps::{CreateOptions, Engine};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;                     // the embedded store
//! let engine = Engine::builder(store.clone())
//!     .executor(Arc::new(executor_process::ProcessExecutor::builder().build()?))
//!     .build()?;
//!
//! let words = RepoRef::new("words")?;                          // versioned input data
//! store.create_repo(&words, "")?;
//! let commit = store.start_commit(&words.branch("master")?, "")?.commit;
//! store.put_file_bytes(&commit, "/a.txt", b"hello")?;
//! store.finish_commit(&commit, FinishOptions::default())?;
//!
//! let spec = pipeline_core::spec::parse_str(r#"{
//!     "pipeline": {"name": "upper"},
//!     "transform": {"cmd": ["sh", "-c", "tr a-z A-Z < $words > /pfs/out/out.txt"]},
//!     "input": {"pfs": {"repo": "words", "glob": "/*"}}}"#, "upper.json")?;
//! engine.create_pipeline(&spec[0].spec, &CreateOptions::default())?;
//!
//! let job = engine.run_pending().await?.remove(0);             // one job, one datum
//! assert_eq!(job.stats.datums_processed, 1);
//! let mut out = String::new();
//! std::io::Read::read_to_string(&mut store.get_file(&job.output_commit, "/out.txt")?.1, &mut out)?;
//! assert_eq!(out, "HELLO");
//! engine.shutdown().await;
//! # Ok(()) }
//! # #[cfg(not(feature = "engine"))]
//! # fn main() {}
//! ```
//!
//! Modules follow the data's path:
//!
//! | module | concept |
//! |---|---|
//! | [`spec`] | pipeline spec types and parsing (JSON, YAML, multi-document) |
//! | [`validate`] | every check Pachyderm does at create time, and the run-time ones caught early |
//! | [`glob`] | Pachyderm's glob dialect (captures, extglob, `$n` templates) |
//! | [`hash`] | content hashes of files and directories (shared by storage and datums) |
//! | [`datum`] | inputs → datums (pfs, cross, union, join, group, cron), datum IDs and hashes |
//! | [`schedule`] | cron schedules (`@every`, five fields, descriptors) and when they fire next |
//! | [`civil_time`] | UTC dates and RFC 3339 times from epoch seconds, and back |
//! | [`pfs`] | versioned storage: repos, branches, commits, files, objects |
//! | [`pps`] | the pipeline engine: pipelines, jobs, incremental processing, DAGs |
//! | [`executor`] | the trait the engine calls to run user code on one datum |
//! | [`error_chain`] | printing an error with its sources, each once |
//! | [`suggest`] | the existing name nearest to a mistyped one ("did you mean ...?") |
//!
//! The planning modules (`spec`, `validate`, `glob`, `datum`) do no I/O of their own.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `engine` | yes | [`pfs`] and [`pps`] (the store and the engine: tokio, nix, tracing); implies `hashing` |
//! | `store-redb` | yes | `pfs::RedbMetaStore`, the on-disk metadata database (redb); implies `engine` |
//! | `schema` | yes | the JSON Schema structural check of specs (jsonschema, schemars) |
//! | `hashing` | via `engine` | BLAKE3 content hashing: `hash::FileHasher`, `hash::DirectoryHasher`, `ContentHash::of_bytes`, and the trees that hash their files (`datum::MemTree::from_files`, `datum::SyntheticTree`, `datum::LocalTree`, `datum::conformance`) |
//! | `testkit` | no | `testkit`: the executor conformance suite and engine scenarios; implies `engine` |
//!
//! With `default-features = false` the crate is the sans-I/O core: [`spec`], [`validate`],
//! [`glob`], [`datum`] planning over any [`datum::TreeSource`] (e.g.
//! [`datum::MemTree::from_listing`], a list of paths), [`hash::ContentHash`], [`schedule`] and
//! the [`executor`] seam, without an async runtime, a database or a hash implementation
//! (`cargo tree -p pipeline-core --no-default-features -e normal` lists none of tokio, nix,
//! redb or blake3; `.ci/run` checks it).

pub mod civil_time;
pub mod datum;
pub mod error_chain;
pub mod executor;
pub mod glob;
pub mod hash;
#[cfg(feature = "engine")]
pub mod pfs;
#[cfg(feature = "engine")]
pub mod pps;
pub mod schedule;
pub mod spec;
pub mod suggest;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod validate;
