//! # pipeline-core
//!
//! The Pachyderm pipeline model as an embeddable library: versioned input data, JSON/YAML
//! pipeline specs, glob-based datums, incremental jobs that turn input commits into output
//! commits, and DAGs of pipelines. Where user code runs is pluggable through the
//! [`executor::Executor`] trait (local processes, Docker, Kubernetes live in sibling crates).
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
//!
//! The planning modules (`spec`, `validate`, `glob`, `datum`) do no I/O of their own.

pub mod civil_time;
pub mod datum;
pub mod error_chain;
pub mod executor;
pub mod glob;
pub mod hash;
pub mod pfs;
pub mod pps;
pub mod schedule;
pub mod spec;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod validate;
