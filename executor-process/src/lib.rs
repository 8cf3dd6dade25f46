//! `executor-process`: runs pipeline user code as local processes, through the
//! [`pipeline_core::executor::Executor`] trait.
//!
//! ```no_run
//! use executor_process::{PfsMode, ProcessExecutor};
//!
//! let executor = ProcessExecutor::builder().build()?; // probes the host once, logs the mode
//! if executor.pfs_mode() == PfsMode::Substitution {
//!     eprintln!("no mount namespace here: /pfs is substituted in cmd, stdin and env");
//! }
//! # Ok::<(), pipeline_core::executor::ExecutorError>(())
//! ```
//!
//! # How `/pfs` resolves ([`PfsMode`])
//!
//! Code written for Pachyderm runs unchanged: `/pfs/<input>/...` and `/pfs/out/...` resolve
//! for the process. [`ProcessExecutorBuilder::build`] probes, once, the best mode that works:
//!
//! 1. **[`PfsMode::MountNamespace`]** (root or `CAP_SYS_ADMIN`): each worker makes one private
//!    mount namespace per scratch directory, where the scratch directory is bind-mounted
//!    **read-only** on `/pfs` (so every input is read-only) and its `out` writable on
//!    `/pfs/out`; each datum's process joins it with `setns`. `/pfs` on the host is an empty
//!    directory used only as a mount point (created when missing; the host never sees
//!    anything mounted on it). Datums of one worker share that namespace, so user code running
//!    as root that changes mounts affects the worker's later datums.
//! 2. **[`PfsMode::UserNamespace`]** (a normal user, where the kernel allows unprivileged user
//!    namespaces and `/pfs` exists): the same, inside a user namespace that maps our own uid
//!    and gid, so files keep their owner.
//! 3. **[`PfsMode::Substitution`]** otherwise: `/pfs` in `cmd`, `stdin`, `working_dir` and env
//!    values is rewritten to the scratch directory ([`substitute_pfs`]). Paths computed at run
//!    time do not resolve, and inputs are not read-only.
//!
//! The active mode is [`ProcessExecutor::pfs_mode`] and is logged (`tracing`, info) when the
//! executor is built. `ProcessExecutor::builder().pfs_mode(PfsRequest::Force(mode))` forces one
//! (tests use it to run the conformance suite in each mode).
//!
//! # Starting processes
//!
//! Datums start through `clone(CLONE_VM | CLONE_VFORK)`, as glibc's `posix_spawn` does
//! internally, not `fork`: forking copies the page tables of the whole host for every datum,
//! which dominated the engine's per-datum cost. `posix_spawn` itself cannot join a namespace or
//! set the parent-death signal. See the `spawn` module for the rules the child follows. The
//! program is looked up on the `PATH` of the datum's environment, inside its namespace; a file
//! without a `#!` line is not handed to `/bin/sh` (exit code 126, as in a container).
//! Needs Linux 5.3 or later (`CLONE_PIDFD` and polling a pidfd).
//!
//! # Process lifetime
//!
//! Each datum's process leads its own process group. When it exits, times out or is
//! cancelled, and when the future running it is dropped, the whole group gets `SIGKILL`, so
//! background children never outlive the datum, even on success. The process also has
//! `PR_SET_PDEATHSIG(SIGKILL)`: if the host process dies (even by `SIGKILL`) the datum's
//! process dies with it. **Limit:** grandchildren of a host killed by `SIGKILL` survive (only
//! the group leader gets the death signal), and a grandchild that leaves the group with
//! `setsid` is not killed either. So every user process carries two labels in its environment,
//! inherited by all its descendants: [`LABEL_VAR`] (`<project>/<pipeline>`) and [`HOST_VAR`]
//! (the host process's pid and start time).
//! [`Executor::remove_pipeline`](pipeline_core::executor::Executor::remove_pipeline) kills
//! every process carrying the pipeline's label, and building an executor kills every labelled
//! process whose host is no longer running ([`ProcessExecutorBuilder::reap_orphans`]), so
//! the next start of the engine cleans up after a crash.
//!
//! # Other transform fields
//!
//! - `env`: the datum's variables on top of the host process's environment, plus
//!   [`LABEL_VAR`] and [`HOST_VAR`]; later duplicates win.
//! - `working_dir`: as user code sees it (so `/pfs/in` works); must be a directory.
//! - `user` (`user[:group]` or `uid[:gid]`): names are looked up in the host's passwd/group;
//!   running as another user needs root, else [`ExecutorError::InvalidTask`]
//!   (`transform.user`). `scratch/out` is given to that user; the engine's scratch directory must
//!   be traversable by it.
//! - `stdin`: fed by a separate task; a program that never reads it is not failed by the
//!   broken pipe.
//! - Logs: stdout and stderr line by line, split by the core's
//!   [`LineSplitter`](pipeline_core::executor::lines::LineSplitter); lines longer than
//!   [`ProcessExecutorBuilder::max_log_line`] (default 64 KiB) are split.
//! - `datum_timeout` and `accept_return_code` are the engine's
//!   ([`pipeline_core::executor::policy`]): a worker reports the exit code or signal, and a
//!   timeout reaches it as a cancellation.
//!
//! A program that cannot be executed is `Exited { exit_code: 127 }` (not found) or `126`
//! (permission denied, bad format), with a line on the datum's stderr log.
//!
//! The crate uses `libc` directly for what `nix` does not wrap safely for this purpose
//! (`clone` with a pidfd, raw credential system calls, `waitid(P_PIDFD)`).
//!
//! [`ExecutorError::InvalidTask`]: pipeline_core::executor::ExecutorError::InvalidTask

#![cfg(unix)]

mod cgroup;
mod child;
mod executor;
mod logs;
mod probe;
mod reaper;
mod sandbox;
mod settings;
mod spawn;
mod substitute;
mod user;
mod worker;

/// Environment variable set on every user process to `<project>/<pipeline>`, so that
/// [`Executor::remove_pipeline`](pipeline_core::executor::Executor::remove_pipeline) can find
/// processes a crashed host left behind.
pub const LABEL_VAR: &str = "PIPELINE_EXECUTOR_LABEL";

/// Environment variable set on every user process to `<host pid>:<host start time>`, so that
/// a later [`ProcessExecutorBuilder::build`] can kill what a host that died left behind.
pub const HOST_VAR: &str = "PIPELINE_EXECUTOR_HOST";

pub use cgroup::KillMethod;
pub use executor::{PfsRequest, ProcessExecutor, ProcessExecutorBuilder};
pub use settings::{Isolation, PfsMode};
pub use substitute::substitute_pfs;
