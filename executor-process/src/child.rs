//! What happens in the child between `clone` and `execve` (see [`crate::spawn`]).
//!
//! Everything is computed in the parent ([`ChildPlan`]); the child only makes system calls
//! through `nix`'s safe wrappers (raw ones for credentials), on pre-built C strings.
//!
//! # One namespace per worker, entered per datum
//!
//! Making a mount namespace costs a copy of the host's whole mount table, a few mounts, and
//! its teardown when the datum exits. So a worker makes one ([`Namespace::Create`]) per
//! scratch directory and keeps it open ([`crate::spawn::capture_namespace`]); each datum's
//! process only joins it with `setns` ([`Namespace::Enter`]). The namespace shows:
//! - `/pfs`: the worker's scratch directory, **read-only** (so every input is read-only, and
//!   only what the engine put in the scratch directory for the current datum is there);
//! - `/pfs/out`: the scratch directory's `out`, writable.
//!
//! The engine empties those directories in place between datums, so the binds stay valid; a
//! worker re-creates its namespace when either directory was replaced.
//!
//! # Steps in the child
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`, then exit if the parent already died (the race the man page
//!    describes), so the datum's process dies with the host process;
//! 2. the namespace: create (a user namespace first when not root, with uid/gid maps mapping
//!    our own ids; make the mount holding `/pfs` private so nothing propagates back to the
//!    host; bind the scratch directory on `/pfs`, make it private, remount it read-only
//!    keeping the flags a user namespace may not clear; bind `out` on `/pfs/out`), or enter
//!    (`setns` into the worker's user and mount namespaces, then back to the host's working
//!    directory, since `setns` moves to the namespace's root);
//! 3. `chdir` to the working directory;
//! 4. drop to `transform.user` (`setgroups`, `setresgid`, `setresuid` as raw system calls:
//!    glibc's wrappers would change the credentials of every thread of the host, whose memory
//!    the child shares), after the steps that needed the privileges.
//!
//! The process group (`setpgid(0, 0)`) is set by [`crate::spawn`] before this runs.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use nix::unistd::{Gid, Pid, Uid};

use crate::user::RunAs;

/// How `/pfs` is made visible to the child.
#[derive(Debug, Clone)]
pub(crate) enum Namespace {
    /// No namespace: paths were substituted.
    None,
    /// Make a namespace with the `/pfs` layout (then captured by the worker).
    Create {
        /// `Some((uid_map, gid_map))` (`"<id> <id> 1"`) for a user namespace first.
        user_maps: Option<(Vec<u8>, Vec<u8>)>,
        /// Where things go.
        layout: Layout,
    },
    /// Join a worker's namespace.
    Enter {
        /// The user namespace (user-namespace mode).
        user: Option<RawFd>,
        /// The mount namespace.
        mount: RawFd,
        /// The host's working directory, to return to after `setns`.
        host_cwd: Option<CString>,
    },
}

/// The `/pfs` layout of a new namespace.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Host scratch directory (bind source of `/pfs`).
    pub(crate) scratch: CString,
    /// Host `scratch/out` (bind source of `/pfs/out`).
    pub(crate) scratch_out: CString,
    /// `/pfs` (bind target).
    pub(crate) pfs: CString,
    /// `/pfs/out` (bind target).
    pub(crate) pfs_out: CString,
    /// The mount point of the mount holding `/pfs` (made private in the new namespace).
    pub(crate) pfs_parent_mount: CString,
    /// Flags of the mount holding the scratch directory that a read-only remount must keep.
    pub(crate) keep_flags: u64,
}

/// Everything the child needs, prepared in the parent.
#[derive(Debug, Clone)]
pub(crate) struct ChildPlan {
    pub(crate) parent: Pid,
    pub(crate) namespace: Namespace,
    pub(crate) working_dir: Option<CString>,
    pub(crate) run_as: Option<RunAs>,
}

impl ChildPlan {
    /// Runs the plan in the child. Must not allocate, lock or touch host state (the child
    /// shares the host's memory).
    #[cfg(target_os = "linux")]
    pub(crate) fn apply(&self) -> io::Result<()> {
        use nix::sched::{CloneFlags, setns, unshare};
        use nix::sys::signal::Signal;
        use std::os::fd::BorrowedFd;

        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        if nix::unistd::getppid() != self.parent {
            return Err(nix::errno::Errno::ESRCH.into());
        }
        match &self.namespace {
            Namespace::None => {}
            Namespace::Create { user_maps, layout } => {
                if let Some((uid_map, gid_map)) = user_maps {
                    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
                    write_proc(c"/proc/self/setgroups", b"deny")?;
                    write_proc(c"/proc/self/uid_map", uid_map)?;
                    write_proc(c"/proc/self/gid_map", gid_map)?;
                } else {
                    unshare(CloneFlags::CLONE_NEWNS)?;
                }
                layout.mount()?;
            }
            Namespace::Enter {
                user,
                mount,
                host_cwd,
            } => {
                // SAFETY (of `borrow_raw`): the worker owns these descriptors and keeps them
                // open while any child it starts may use them.
                #[allow(unsafe_code)]
                let fd = |raw: RawFd| unsafe { BorrowedFd::borrow_raw(raw) };
                if let Some(user) = user {
                    setns(fd(*user), CloneFlags::CLONE_NEWUSER)?;
                }
                setns(fd(*mount), CloneFlags::CLONE_NEWNS)?;
                if let Some(cwd) = host_cwd {
                    // A working directory outside what the namespace shows stays at `/`.
                    let _ = nix::unistd::chdir(cwd.as_c_str());
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

impl Layout {
    /// The mounts of a new namespace (see the module docs).
    #[cfg(target_os = "linux")]
    fn mount(&self) -> io::Result<()> {
        use nix::mount::{MsFlags, mount};
        let none: Option<&std::ffi::CStr> = None;
        // Only the mount holding `/pfs` needs to stop propagating (making `/` private
        // recursively costs about a millisecond).
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
        // A bind of a shared mount joins its peer group: cut it off before mounting on it, or
        // the mounts below would show up on the host.
        mount(
            none,
            self.pfs.as_c_str(),
            none,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            none,
        )?;
        let read_only = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::from_bits_truncate(self.keep_flags);
        mount(none, self.pfs.as_c_str(), none, read_only, none)?;
        mount(
            Some(self.scratch_out.as_c_str()),
            self.pfs_out.as_c_str(),
            none,
            MsFlags::MS_BIND,
            none,
        )?;
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

/// Sets the supplementary groups, gid and uid with raw system calls (see the module docs).
#[allow(unsafe_code)]
fn drop_privileges(uid: Uid, gid: Gid) -> io::Result<()> {
    let check = |r: libc::c_long| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let (uid, gid) = (uid.as_raw(), gid.as_raw());
    // SAFETY: plain credential system calls on integers and a one-element array.
    unsafe {
        if libc::geteuid() == 0 {
            check(libc::syscall(libc::SYS_setgroups, 1, [gid].as_ptr()))?;
        }
        check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
    }
    Ok(())
}
