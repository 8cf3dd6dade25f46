//! What every part of a [`ProcessExecutor`](crate::ProcessExecutor) shares: the `/pfs` mode
//! chosen at build time, the settings its workers and the probe read, and the label of a
//! pipeline's processes. The executor, the probe and the workers import this module, not
//! each other.

use std::fmt;
use std::path::PathBuf;

/// How `/pfs` paths resolve for user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PfsMode {
    /// The sandbox of a root host: each worker's datums run in a pivoted root (the scratch
    /// directory read-only on `/pfs`, `out` writable, read-only system directories), in a
    /// user namespace mapping in-namespace ids `0..65536` to an unprivileged host range of
    /// the worker's own (see the crate docs).
    MountNamespace,
    /// The same sandbox for a normal user, in user namespaces that map only our own uid/gid
    /// (needs an existing, empty `/pfs` directory on the host and a kernel allowing
    /// unprivileged user namespaces).
    UserNamespace,
    /// No namespace: `/pfs` in `cmd`, `stdin`, `working_dir` and env values is replaced by the
    /// scratch directory (see [`substitute_pfs`](crate::substitute_pfs)). Inputs are not made
    /// read-only, and paths built at run time do not resolve.
    Substitution,
}

impl fmt::Display for PfsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PfsMode::MountNamespace => "sandbox (unprivileged ids)",
            PfsMode::UserNamespace => "sandbox (own ids)",
            PfsMode::Substitution => "path substitution",
        })
    }
}

/// The settings of one executor, shared by its workers.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) mode: PfsMode,
    pub(crate) mount_point: PathBuf,
    pub(crate) max_log_line: usize,
    /// Host directories shown read-only to user code (canonical).
    pub(crate) exposed: Vec<PathBuf>,
    /// Put first on user code's `PATH` (canonical; shown to it).
    pub(crate) helper_dir: Option<PathBuf>,
    /// Where workers make their cgroups (`None`: not available here, see `isolation`).
    pub(crate) cgroups: Option<crate::cgroup::CgroupRoot>,
    /// What is enforced, as reported.
    pub(crate) isolation: Isolation,
    /// This executor's value of [`HOST_VAR`](crate::HOST_VAR) (`<pid>:<start>:<instance>`).
    pub(crate) host: String,
}

/// The label value of a pipeline's processes.
pub(crate) fn label(project: &str, pipeline: &str) -> String {
    format!("{project}/{pipeline}")
}

/// How many ids each worker's user namespace maps (in-namespace `0..65536`).
pub(crate) const ID_RANGE: u32 = 65_536;

/// First host id of the ranges user code runs as on a root host: above every id a
/// distribution hands out and above systemd's container range (which ends at `0x6FFFFFFF`).
pub(crate) const ID_BASE: u32 = 0x7000_0000;

/// Number of id ranges handed out in turn (`ID_BASE .. ID_BASE + ID_SLOTS * ID_RANGE`).
pub(crate) const ID_SLOTS: u32 = 1024;

/// The host id base of a new worker's user namespace: workers get different ranges (in turn,
/// starting at a place derived from our pid), so that user code of one worker is not the
/// same host user as another's and cannot signal, trace or open the files of its processes.
pub(crate) fn next_id_base() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let slot =
        (std::process::id().wrapping_mul(7) + NEXT.fetch_add(1, Ordering::Relaxed)) % ID_SLOTS;
    ID_BASE + slot * ID_RANGE
}

/// What a [`ProcessExecutor`](crate::ProcessExecutor) enforces on this host
/// ([`ProcessExecutor::isolation`](crate::ProcessExecutor::isolation)); logged when the
/// executor is built, with a warning for each guarantee that is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Isolation {
    /// How `/pfs` resolves.
    pub pfs_mode: PfsMode,
    /// User code runs in a pivoted root (only `/pfs` and read-only system directories) whose
    /// mounts are locked: inputs cannot be remounted writable (both namespace modes).
    pub sandbox: bool,
    /// User code runs as unprivileged host ids (a per-worker range), never as host root.
    pub unprivileged_ids: bool,
    /// How every process of a datum is killed when it ends; `None`: only its process group
    /// (a process that calls `setsid` escapes).
    pub kill: Option<crate::cgroup::KillMethod>,
    /// The resource controllers enforced (`memory`, `pids`, `cpu`); empty without cgroups.
    pub limits: Vec<&'static str>,
    /// Why cgroups are not used, when they are not.
    pub cgroup_error: Option<String>,
}
