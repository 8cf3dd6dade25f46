//! What happens in a child between `clone` and `execve` (see [`crate::spawn`]).
//!
//! Everything is computed in the parent ([`ChildPlan`], [`CapturePlan`]); the child only
//! makes system calls through `nix`'s safe wrappers (raw ones for credentials), on pre-built
//! C strings.
//!
//! # One sandbox per worker, entered per datum
//!
//! Building the sandbox (namespaces, a root of about thirty mounts, `pivot_root`) costs
//! milliseconds; so a worker builds it once per scratch directory ([`CapturePlan`], run by
//! [`crate::spawn::capture_namespace`]) and keeps its namespaces open; each datum's process
//! only joins them with `setns` ([`Namespace::Enter`]). The root is described in
//! [`crate::sandbox`]; the engine empties the scratch directory in place between datums, so
//! the binds stay valid, and a worker rebuilds its sandbox when the directory was replaced.
//!
//! # Steps in a datum's child
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`, then exit if the parent already died (the race the man page
//!    describes), so the datum's process dies with the host process;
//! 2. join the worker's cgroups (write `0` to each `cgroup.procs` opened by the worker), so
//!    that everything it starts is in them; the v2 cgroup is usually joined already, by
//!    being created in it ([`crate::clone3`]);
//! 3. the namespaces: (normal user: the user namespace owning the mount namespace,) the mount
//!    namespace, whose root is the sandbox root, then the user namespace user code runs in,
//!    which does not own the mount namespace;
//! 4. `chdir` to `/`, then to the working directory;
//! 5. switch to the datum's identity (`setgroups`, `setresgid`, `setresuid` as raw system
//!    calls: glibc's wrappers would change the credentials of every thread of the host, whose
//!    memory the child shares). On a root host this always happens: user code is root (or
//!    `transform.user`) *inside* the worker's user namespace and an unprivileged id outside.
//!
//! The process group (`setpgid(0, 0)`) is set by [`crate::spawn`] before this runs.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use nix::unistd::{Gid, Pid, Uid};

use crate::sandbox::RootPlan;
use crate::user::RunAs;

/// How `/pfs` is made visible to the child.
#[derive(Debug, Clone)]
pub(crate) enum Namespace {
    /// No namespace: paths were substituted.
    None,
    /// Join a worker's namespaces (see [`CapturePlan`]), in this order.
    Enter {
        /// Normal user: the user namespace owning the mount namespace, joined first to get
        /// the right to enter it.
        owner: Option<RawFd>,
        /// The worker's mount namespace (its root is the sandbox root).
        mount: RawFd,
        /// The user namespace user code runs in; it does not own the mount namespace.
        user: RawFd,
    },
}

/// Everything a datum's child needs, prepared in the parent.
#[derive(Debug, Clone)]
pub(crate) struct ChildPlan {
    pub(crate) parent: Pid,
    /// The worker's cgroups: everything the child starts is in them.
    pub(crate) cgroups: CgroupJoin,
    pub(crate) namespace: Namespace,
    pub(crate) working_dir: Option<CString>,
    /// The identity inside the namespace (always set by a root host: user code never keeps
    /// the host's root credentials).
    pub(crate) run_as: Option<RunAs>,
}

/// How a datum's child gets into its worker's cgroups.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupJoin {
    /// The v2 cgroup: its directory, to create the child in it, and its `cgroup.procs`, to
    /// join by writing where that is not possible.
    pub(crate) v2: Option<(RawFd, RawFd)>,
    /// `cgroup.procs` of the other cgroups (the v1 hierarchies'; the v2 one's too when it
    /// cannot be created in): the child writes `0` (itself) to each.
    pub(crate) procs_to_write: Vec<RawFd>,
}

/// The first step of every child: die with the host.
#[cfg(target_os = "linux")]
fn die_with(parent: Pid) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if nix::unistd::getppid() != parent {
        return Err(nix::errno::Errno::ESRCH.into());
    }
    Ok(())
}

impl ChildPlan {
    /// Runs the plan in the child (`in_v2_cgroup`: it was created in its v2 cgroup). Must
    /// not allocate, lock or touch host state (the child shares the host's memory).
    #[cfg(target_os = "linux")]
    pub(crate) fn apply(&self, in_v2_cgroup: bool) -> io::Result<()> {
        use nix::sched::{CloneFlags, setns};
        use std::os::fd::BorrowedFd;

        die_with(self.parent)?;
        let v2_procs = self
            .cgroups
            .v2
            .filter(|_| !in_v2_cgroup)
            .map(|(_, procs)| procs);
        for &fd in v2_procs.iter().chain(&self.cgroups.procs_to_write) {
            // SAFETY: writing two bytes from a constant to a descriptor the worker owns.
            #[allow(unsafe_code)]
            let n = unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        match &self.namespace {
            Namespace::None => {}
            Namespace::Enter { owner, mount, user } => {
                // SAFETY (of `borrow_raw`): the worker owns these descriptors and keeps them
                // open while any child it starts may use them.
                #[allow(unsafe_code)]
                let fd = |raw: RawFd| unsafe { BorrowedFd::borrow_raw(raw) };
                if let Some(owner) = owner {
                    setns(fd(*owner), CloneFlags::CLONE_NEWUSER)?;
                }
                setns(fd(*mount), CloneFlags::CLONE_NEWNS)?;
                // Last: user code has no capability over the mount namespace's owner, so it
                // can make, change or remove no mount at all.
                setns(fd(*user), CloneFlags::CLONE_NEWUSER)?;
                nix::unistd::chdir(c"/")?;
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

/// How a worker's namespaces are made (by [`crate::spawn::capture_namespace`]).
#[derive(Debug, Clone)]
pub(crate) struct CapturePlan {
    pub(crate) parent: Pid,
    /// `Some(base)` on a root host: in-namespace ids `0..65536` map to host ids
    /// `base..base + 65536` (written by the parent); `None`: our own uid and gid are mapped
    /// to themselves (written by the child).
    pub(crate) id_base: Option<u32>,
    /// Our uid and gid (for the self-written maps).
    pub(crate) own_ids: (Vec<u8>, Vec<u8>),
    /// The root to build.
    pub(crate) root: RootPlan,
}

/// The child reports this when the parent must write its uid/gid maps.
pub(crate) const MSG_WANT_MAPS: i32 = -1;

impl CapturePlan {
    /// Runs in the capturing child: builds the root in a new mount namespace owned by the
    /// host's user namespace (root) or by a first user namespace (normal user), then makes
    /// the user namespace user code runs in, which does **not** own that mount namespace:
    /// user code can change no mount (remounting an input writable fails with `EPERM`), and
    /// a mount namespace it makes for itself copies the mounts **locked** (read-only stays
    /// read-only, nothing can be unmounted to uncover what is below). `report` and `go` are
    /// the sync pipes with the parent.
    #[cfg(target_os = "linux")]
    pub(crate) fn run(&self, report: RawFd, go: RawFd) -> io::Result<()> {
        use nix::sched::{CloneFlags, unshare};
        die_with(self.parent)?;
        close_all_but(report, go);
        // The host's `/proc`, kept for writing our own maps after the pivot (the new root's
        // `/proc` is read-only).
        let proc = nix::fcntl::open(
            c"/proc",
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        if self.id_base.is_none() {
            unshare(CloneFlags::CLONE_NEWUSER)?;
            self.write_own_maps(&proc)?;
        }
        unshare(CloneFlags::CLONE_NEWNS)?;
        self.root.build_and_enter()?;
        unshare(CloneFlags::CLONE_NEWUSER)?;
        if self.id_base.is_some() {
            send(report, MSG_WANT_MAPS)?;
            let mut byte = 0u8;
            if nix::unistd::read(go_fd(go), std::slice::from_mut(&mut byte))? != 1 {
                return Err(nix::errno::Errno::EPIPE.into());
            }
        } else {
            self.write_own_maps(&proc)?;
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn write_own_maps(&self, proc: &std::os::fd::OwnedFd) -> io::Result<()> {
        write_proc(proc, c"self/setgroups", b"deny")?;
        write_proc(proc, c"self/uid_map", &self.own_ids.0)?;
        write_proc(proc, c"self/gid_map", &self.own_ids.1)
    }
}

#[allow(unsafe_code)]
fn go_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the sync pipe stays open in the child until it exits.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Writes `msg` (4 bytes) to the parent.
pub(crate) fn send(fd: RawFd, msg: i32) -> io::Result<()> {
    let bytes = msg.to_ne_bytes();
    if nix::unistd::write(go_fd(fd), &bytes)? != bytes.len() {
        return Err(nix::errno::Errno::EPIPE.into());
    }
    Ok(())
}

/// Closes every descriptor of the child's (copied) table but stdio, `a` and `b`: the child
/// must hold nothing of the host's open (the store's lock file, sockets) while it lives.
#[allow(unsafe_code)]
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let close = |first: RawFd, last: u32| {
        if first >= 0 && (first as u32) <= last {
            // SAFETY: closing descriptors of this child's own table.
            unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, 0u32) };
        }
    };
    close(3, (lo - 1).max(0) as u32);
    close(lo + 1, (hi - 1).max(0) as u32);
    close(hi + 1, u32::MAX);
}

#[cfg(target_os = "linux")]
fn write_proc(proc: &std::os::fd::OwnedFd, path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let fd = openat(
        proc,
        path,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
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
        // Denied in a user namespace made by a normal user (`setgroups` is `deny` there).
        if libc::syscall(libc::SYS_setgroups, 1, [gid].as_ptr()) != 0
            && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
        {
            return Err(io::Error::last_os_error());
        }
        check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
    }
    Ok(())
}
