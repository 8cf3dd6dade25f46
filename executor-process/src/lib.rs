//! `executor-process`: runs pipeline user code as local processes, through the
//! [`pipeline_core::executor::Executor`] trait.
//!
//! ```no_run
//! use executor_process::{PfsMode, ProcessExecutor};
//!
//! let executor = ProcessExecutor::builder().build()?; // probes the host once, logs the mode
//! if executor.pfs_mode() == PfsMode::Substitution {
//!     eprintln!("no sandbox here: /pfs is substituted in cmd, stdin and env");
//! }
//! let isolation = executor.isolation();
//! if isolation.kill.is_none() {
//!     eprintln!("no cgroups ({:?}): limits are not enforced", isolation.cgroup_error);
//! }
//! # Ok::<(), pipeline_core::executor::ExecutorError>(())
//! ```
//!
//! # How `/pfs` resolves ([`PfsMode`])
//!
//! Code written for Pachyderm runs unchanged: `/pfs/<input>/...` and `/pfs/out/...` resolve
//! for the process. [`ProcessExecutorBuilder::build`] probes, once, the best mode that works:
//!
//! 1. **[`PfsMode::MountNamespace`]** (root): the sandbox below, with user code's ids mapped
//!    to an unprivileged host range. `/pfs` on the host is an empty directory used only as
//!    a mount point (created when missing; the host never sees anything mounted on it).
//! 2. **[`PfsMode::UserNamespace`]** (a normal user, where the kernel allows unprivileged user
//!    namespaces and `/pfs` exists): the same sandbox, in user namespaces that map only our
//!    own uid and gid, so files keep their owner.
//! 3. **[`PfsMode::Substitution`]** otherwise: `/pfs` in `cmd`, `stdin`, `working_dir` and env
//!    values is rewritten to the scratch directory ([`substitute_pfs`]). Paths computed at run
//!    time do not resolve, inputs are not read-only, and there is no sandbox.
//!
//! The active mode is [`ProcessExecutor::pfs_mode`] and is logged (`tracing`, info) when the
//! executor is built. `ProcessExecutor::builder().pfs_mode(PfsRequest::Force(mode))` forces one
//! (tests use it to run the conformance suite in each mode).
//!
//! # The sandbox: what user code can and cannot do
//!
//! Inputs are hard links to the store's objects, so anything that can write through them
//! rewrites a finished commit. The model, per worker (built once per scratch directory, then
//! joined by each datum with `setns`, see the `child` and `sandbox` modules):
//!
//! - **A pivoted root** holding only the datum's `/pfs` (the scratch directory read-only,
//!   `out` writable), the host's `/bin`, `/sbin`, `/usr`, `/lib*`, `/etc`, `/opt` read-only, a
//!   read-only bind of the host's `/proc`, a minimal `/dev` (`null`, `zero`, `full`, `random`,
//!   `urandom`, `tty`, `shm`) and a private `/tmp` (a tmpfs per worker). The store, other
//!   scratch directories and the rest of the host are not in it. The mount table
//!   (`/proc/self/mountinfo`) has no host mount point; **limit:** its "root" column names,
//!   for `/pfs` and `/pfs/out`, the scratch directory's path within its file system, which is
//!   inside the store (hiding that needs the scratch directory on a file system of its own;
//!   nothing at that path is reachable).
//! - **No mount can be changed.** The root is built in a mount namespace owned by the host's
//!   user namespace; user code runs in a user namespace of the worker that does *not* own
//!   it, so it has no capability over any mount: `mount -o remount,rw /pfs`, `umount`, a
//!   `tmpfs` over `/pfs/out` all fail with `EPERM`. A mount namespace user code makes for
//!   itself (`unshare -Urm`) gets the mounts **locked** (the kernel keeps read-only mounts
//!   read-only and unmountable there).
//! - **Not real root.** On a root host, in-namespace ids `0..65536` map to host ids
//!   `base..base+65536`, with a `base` per worker from `0x70000000` up (1024 ranges handed
//!   out in turn). User code is root (or `transform.user`, looked up in the host's
//!   `/etc/passwd`, below 65536) in its namespace but an unprivileged user on the host: the
//!   store's files (root-owned, 0444 objects, 0600 metadata) are not writable by it even if
//!   one were reachable, capabilities hold only inside its own namespace, host processes'
//!   `/proc/<pid>/root`, `environ` and `fd` are closed to it, and user code of other workers
//!   is another host user. `scratch/out` is given to the datum's host id before each datum;
//!   the engine, as real root, still reads and cleans it. Chosen over mapping root to root
//!   with locked mounts alone because a root-mapped process keeps `CAP_DAC_OVERRIDE` over
//!   root-owned files and could reach the host's root through `/proc/<host pid>/root`. On a
//!   normal user's host the namespaces map only our own ids.
//! - **Limits of the sandbox.** The network is the host's (no network namespace: local
//!   services, abstract Unix sockets included, are reachable). Mounts *below* a bound system
//!   directory (a separate `/usr/local`, say) keep their own flags; write access there is
//!   then up to file permissions, which an unprivileged id rarely has. On a **normal user's**
//!   host, user code is that same host user: it cannot reach the store through the sandbox's
//!   paths, but the kernel lets a user look into its own processes (`/proc/<pid>/root` of the
//!   host process), so there the sandbox protects against mistakes, not against hostile code.
//! - **Secret files.** Each `transform.secrets[i].mount_path` is a small tmpfs of its own in
//!   the sandbox, holding one 0444 file per key (or only `key`), then remounted read-only;
//!   it exists only inside the worker's mount namespace. Without a sandbox (substitution
//!   mode) such a pipeline is refused ([`ExecutorError::Unsupported`](pipeline_core::executor::ExecutorError::Unsupported)).
//! - **Programs outside the system directories** (a project's scripts) are not visible
//!   unless the host exposes their directory: [`ProcessExecutorBuilder::expose`] binds it
//!   read-only at its own path (never `/`, `/proc`, `/sys`, `/dev`, nor a directory holding
//!   or inside a scratch directory). Datums start in `/` unless `working_dir` says otherwise.
//! - **Other effects.** Files user code creates in `out` belong to the worker's host ids. The
//!   private `/tmp` lives as long as the worker's sandbox: datums of one worker share it.
//!   User code sees the host's processes in `/proc` (no PID namespace: user code stays the
//!   child of the executor, so signals, exit codes and `kill $$` behave as before).
//!
//! # Processes end with their datum; limits ([`ProcessExecutor::isolation`])
//!
//! Each worker has a cgroup (under the host process's own cgroup, see the `cgroup` module);
//! every datum's process joins it before `execve` (on a hybrid host: the v2 cgroup that
//! kills, plus a v1 controller's only when the pipeline sets a limit it enforces). When the
//! datum ends (success, failure, timeout, cancellation) everything in it is killed and the
//! executor waits until it is empty, before the datum's output is read: a `setsid` daemon cannot
//! outlive its datum or write into a later datum's `/pfs/out`. Killing uses v2 `cgroup.kill`
//! where a v2 hierarchy is mounted (pure v2, or the empty `unified` hierarchy of a hybrid
//! host), else the v1 freezer (freeze, kill, thaw). Building an executor kills what dead
//! hosts left in their cgroups.
//!
//! `resource_limits` and `resource_requests` apply to the worker's cgroup, so to the running
//! datum and everything it started (one datum runs at a time per worker): memory limit
//! (`memory.max`, v1 `memory.limit_in_bytes`, no swap beyond it), memory request as a soft
//! limit (v1 `memory.soft_limit_in_bytes`; v2 `memory.low`, a protection), CPU limit as a CFS
//! quota per 100 ms, CPU request as shares/weight, and `pids`. A datum killed for exceeding
//! its memory limit (the cgroup's `oom_kill` count rose and the datum did not succeed) ends
//! as [`DatumOutcome::OutOfMemory`](pipeline_core::executor::DatumOutcome::OutOfMemory),
//! recorded by the engine as failure kind `oom`.
//!
//! Where cgroups cannot be used (no hierarchy writable, e.g. a normal user's laptop without
//! delegation), building the executor logs a warning saying what is not enforced, and
//! [`ProcessExecutor::isolation`] reports it: processes are then killed by process group (and
//! by label when the pipeline is removed), and limits are not applied (a warning per
//! pipeline that asks for one). On pure v2 the limits need the controllers delegated to the
//! host process's cgroup; when its cgroup holds processes and is not the root, only killing
//! works (reported the same way).
//!
//! **Cost.** Writing a pid to `cgroup.procs` migrates a running task, which the kernel makes
//! wait for an RCU grace period (about 0.2 ms per datum on this project's test machines, the
//! engine bench's full run 1.19× what it was without cgroups). So a datum's process is
//! created directly in the worker's v2 cgroup (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7+,
//! x86-64): no migration at all. v1 hierarchies (joined only for a limit v2 does not offer,
//! or to kill where v2 is absent) are still joined by writing `cgroup.procs`, as is the v2
//! cgroup where `clone3` is refused (older kernels, a seccomp filter); there, mounting the
//! cgroup v2 hierarchy with `favordynmods` (Linux 6.0+) makes migrations cheap (see
//! `benches/README.md`). A process created into a cgroup that `cgroup.kill` has emptied is
//! killed at once on Linux 6.18, so a worker's cgroup is made anew after every such kill
//! (only when a datum left processes behind).
//!
//! # Starting processes
//!
//! Datums start through `clone(CLONE_VM | CLONE_VFORK)` (`clone3`, to start in the worker's
//! cgroup), as glibc's `posix_spawn` does internally, not `fork`: forking copies the page tables of the whole host for every datum,
//! which dominated the engine's per-datum cost. `posix_spawn` itself cannot join a namespace or
//! set the parent-death signal. See the `spawn` module for the rules the child follows. The
//! program is looked up on the `PATH` of the datum's environment, inside its namespace; a file
//! without a `#!` line is not handed to `/bin/sh` (exit code 126, as in a container).
//! Needs Linux 5.3 or later (`CLONE_PIDFD` and polling a pidfd); 5.9 for the sandbox's
//! builder to close the host's descriptors (`close_range`), 5.14 for `cgroup.kill` (before,
//! members of a v2 cgroup are killed one by one); 5.7 to start datums in their cgroup
//! (`CLONE_INTO_CGROUP`; before, they join it by pid).
//!
//! # Process lifetime without cgroups, and after a host's death
//!
//! Each datum's process leads its own process group. When it exits, times out or is
//! cancelled, and when the future running it is dropped, the whole group gets `SIGKILL` (and,
//! with cgroups, the worker's cgroup is emptied before its next datum). The process also has
//! `PR_SET_PDEATHSIG(SIGKILL)`: if the host process dies (even by `SIGKILL`) the datum's
//! process dies with it. **Limit:** grandchildren of a host killed by `SIGKILL` survive (only
//! the group leader gets the death signal), and a grandchild that leaves the group with
//! `setsid` is not killed either. So every user process carries two labels in its environment,
//! inherited by all its descendants: [`LABEL_VAR`] (`<project>/<pipeline>`) and [`HOST_VAR`]
//! (the host process's pid and start time, and which of its executors).
//! [`Executor::remove_pipeline`](pipeline_core::executor::Executor::remove_pipeline) kills
//! every process carrying the pipeline's label that this executor or a dead host started
//! (another engine's pipeline of the same name, in this process or another, is left alone),
//! and building an executor kills every labelled
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
//!   (`transform.user`). In the sandbox of a root host the ids are the namespace's (below
//!   65536) and `scratch/out` is given to their host ids; in substitution mode they are host
//!   ids, `scratch/out` is given to that user and the scratch directory must be traversable by
//!   it.
//! - `stdin`: fed by a separate task; a program that never reads it is not failed by the
//!   broken pipe.
//! - Logs: stdout and stderr line by line, split by the core's
//!   [`LineSplitter`](pipeline_core::executor::lines::LineSplitter); lines longer than
//!   [`ProcessExecutorBuilder::max_log_line`] (default 64 KiB) are split.
//! - `datum_timeout` and `accept_return_code` are the engine's
//!   (`pipeline_core::executor::policy`, with its `engine` feature): a worker reports the exit
//!   code or signal, and a timeout reaches it as a cancellation.
//!
//! A program that cannot be executed is `Exited { exit_code: 127 }` (not found) or `126`
//! (permission denied, bad format), with a line on the datum's stderr log.
//!
//! The crate uses `libc` directly for what `nix` does not wrap safely for this purpose
//! (`clone` with a pidfd, raw credential system calls, `waitid(P_PIDFD)`, `close_range`).
//!
//! [`ExecutorError::InvalidTask`]: pipeline_core::executor::ExecutorError::InvalidTask

#![cfg(unix)]

mod cgroup;
mod child;
mod clone3;
mod executor;
mod logs;
mod probe;
mod reaper;
mod sandbox;
mod secret_files;
mod settings;
mod spawn;
mod substitute;
mod user;
mod worker;

/// Environment variable set on every user process to `<project>/<pipeline>`, so that
/// [`Executor::remove_pipeline`](pipeline_core::executor::Executor::remove_pipeline) can find
/// processes a crashed host left behind.
pub const LABEL_VAR: &str = "PIPELINE_EXECUTOR_LABEL";

/// Environment variable set on every user process to `<host pid>:<host start time>:<n>` (`n`
/// numbers the executors a host built), so that a later [`ProcessExecutorBuilder::build`] can
/// kill what a host that died left behind, and a pipeline's removal kills only its own
/// executor's processes (or a dead host's), never those of another engine that runs a
/// pipeline of the same name.
pub const HOST_VAR: &str = "PIPELINE_EXECUTOR_HOST";

pub use cgroup::KillMethod;
pub use executor::{PfsRequest, ProcessExecutor, ProcessExecutorBuilder};
pub use settings::{Isolation, PfsMode};
pub use substitute::substitute_pfs;
