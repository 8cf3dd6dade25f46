//! What happens in the forked child between `fork` and `exec`.
//!
//! Everything is computed in the parent ([`ChildPlan`]); the child only makes system calls
//! through `nix`'s safe wrappers, on pre-built C strings, in this order:
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`, then exit if the parent already died (the race the man page
//!    describes), so the datum's process dies with the host process;
//! 2. namespace modes: `unshare` (a user namespace first when not root, with the uid/gid maps
//!    mapping our own ids), make the mount holding `/pfs` private (so nothing propagates back
//!    to the host), bind the scratch directory on `/pfs` and make that private too, then bind
//!    each input on itself and remount it read-only (keeping the flags of the underlying
//!    mount, which a user namespace may not clear);
//! 3. `chdir` to the working directory;
//! 4. drop to `transform.user` (`setgroups`, `setgid`, `setuid`), after the mounts that needed
//!    the privileges.
//!
//! The process group (`setpgid(0, 0)`) is set by `Command::process_group` before this runs.

use std::ffi::CString;
use std::io;

use nix::unistd::{Gid, Pid, Uid};

use crate::user::RunAs;

/// How `/pfs` is made visible to the child.
#[derive(Debug, Clone)]
pub(crate) enum Namespace {
    /// No namespace: paths were substituted.
    None,
    /// A private mount namespace (needs `CAP_SYS_ADMIN`).
    Mount,
    /// A user namespace mapping our own uid/gid, then a mount namespace.
    User {
        /// `"<uid> <uid> 1"`.
        uid_map: Vec<u8>,
        /// `"<gid> <gid> 1"`.
        gid_map: Vec<u8>,
    },
}

/// Everything the child needs, prepared in the parent.
#[derive(Debug, Clone)]
pub(crate) struct ChildPlan {
    pub(crate) parent: Pid,
    pub(crate) namespace: Namespace,
    /// Host scratch directory (bind source).
    pub(crate) scratch: CString,
    /// `/pfs` (bind target).
    pub(crate) pfs: CString,
    /// The mount point of the mount holding `/pfs` (made private in the new namespace).
    pub(crate) pfs_parent_mount: CString,
    /// `/pfs/<input>` for each input present, with the flags of the mount holding it.
    pub(crate) read_only: Vec<(CString, u64)>,
    pub(crate) working_dir: Option<CString>,
    pub(crate) run_as: Option<RunAs>,
}

impl ChildPlan {
    /// Runs the plan in the child. Must not allocate (the parent is multi-threaded).
    #[cfg(target_os = "linux")]
    pub(crate) fn apply(&self) -> io::Result<()> {
        use nix::mount::{MsFlags, mount};
        use nix::sched::{CloneFlags, unshare};
        use nix::sys::signal::Signal;

        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        if nix::unistd::getppid() != self.parent {
            return Err(nix::errno::Errno::ESRCH.into());
        }
        let none: Option<&std::ffi::CStr> = None;
        match &self.namespace {
            Namespace::None => {}
            ns @ (Namespace::Mount | Namespace::User { .. }) => {
                if let Namespace::User { uid_map, gid_map } = ns {
                    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
                    write_proc(c"/proc/self/setgroups", b"deny")?;
                    write_proc(c"/proc/self/uid_map", uid_map)?;
                    write_proc(c"/proc/self/gid_map", gid_map)?;
                } else {
                    unshare(CloneFlags::CLONE_NEWNS)?;
                }
                // Only the mount holding `/pfs` needs to stop propagating (making `/` private
                // recursively costs about a millisecond per datum).
                mount(
                    none,
                    self.pfs_parent_mount.as_c_str(),
                    none,
                    MsFlags::MS_PRIVATE,
                    none,
                )?;
                mount(
                    Some(self.scratch.as_c_str()),
                    self.pfs.as_c_str(),
                    none,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    none,
                )?;
                // A bind of a shared mount joins its peer group: cut it off before mounting
                // the read-only inputs on it, or they would show up on the host.
                mount(
                    none,
                    self.pfs.as_c_str(),
                    none,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    none,
                )?;
                for (path, keep) in &self.read_only {
                    let p = path.as_c_str();
                    mount(Some(p), p, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)?;
                    let flags = MsFlags::MS_BIND
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::from_bits_truncate(*keep);
                    mount(none, p, none, flags, none)?;
                }
            }
        }
        if let Some(dir) = &self.working_dir {
            nix::unistd::chdir(dir.as_c_str())?;
        }
        if let Some(RunAs { uid, gid }) = self.run_as {
            drop_privileges(uid, gid)?;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn write_proc(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let n = nix::unistd::write(&fd, data)?;
    if n != data.len() {
        return Err(nix::errno::Errno::EIO.into());
    }
    Ok(())
}

fn drop_privileges(uid: Uid, gid: Gid) -> io::Result<()> {
    if Uid::effective().is_root() {
        nix::unistd::setgroups(&[gid])?;
    }
    nix::unistd::setgid(gid)?;
    nix::unistd::setuid(uid)?;
    Ok(())
}

/// Installs the plan as the command's `pre_exec` hook.
#[allow(unsafe_code)]
pub(crate) fn install(cmd: &mut std::process::Command, plan: ChildPlan) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `pre_exec` runs in the child after `fork`, where only async-signal-safe work is
    // sound because other threads of the parent may have held locks. `ChildPlan::apply` only
    // issues raw system calls (prctl, getppid, unshare, open/write on /proc, mount, chdir,
    // setgroups/setgid/setuid) through nix wrappers on C strings and flags prepared in the
    // parent; it neither allocates nor takes locks (its errors are plain errno codes). It
    // touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || plan.apply());
    }
}
