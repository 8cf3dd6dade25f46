//! What every part of a [`ProcessExecutor`](crate::ProcessExecutor) shares: the `/pfs` mode
//! chosen at build time, the settings its workers and the probe read, and the label of a
//! pipeline's processes. The executor, the probe and the workers import this module, not
//! each other.

use std::fmt;
use std::path::PathBuf;

/// How `/pfs` paths resolve for user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PfsMode {
    /// Each datum's process gets a private mount namespace (we are root, or have
    /// `CAP_SYS_ADMIN`) where the scratch directory is bind-mounted on `/pfs` and each input is
    /// read-only.
    MountNamespace,
    /// As [`PfsMode::MountNamespace`], entered through an unprivileged user namespace mapping
    /// our own uid/gid (needs an existing, empty `/pfs` directory on the host and a kernel
    /// allowing unprivileged user namespaces).
    UserNamespace,
    /// No namespace: `/pfs` in `cmd`, `stdin`, `working_dir` and env values is replaced by the
    /// scratch directory (see [`substitute_pfs`](crate::substitute_pfs)). Inputs are not made
    /// read-only, and paths built at run time do not resolve.
    Substitution,
}

impl fmt::Display for PfsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PfsMode::MountNamespace => "mount namespace",
            PfsMode::UserNamespace => "user + mount namespace",
            PfsMode::Substitution => "path substitution",
        })
    }
}

/// The settings of one executor, shared by its workers.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) mode: PfsMode,
    pub(crate) mount_point: PathBuf,
    /// The mount holding `mount_point` (see `child`).
    pub(crate) parent_mount: PathBuf,
    pub(crate) max_log_line: usize,
}

/// The label value of a pipeline's processes.
pub(crate) fn label(project: &str, pipeline: &str) -> String {
    format!("{project}/{pipeline}")
}
