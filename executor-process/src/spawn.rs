//! Starting a datum's process without copying the host's address space.
//!
//! `fork` copies the page tables of the whole host (a multi-threaded program holding a store
//! cache and a runtime) for every datum, only for the child to throw them away at `execve`;
//! measured on the engine, that copy and its unmapping were about a fifth of all CPU time.
//! `posix_spawn` avoids it, but cannot enter a mount namespace or set the parent-death
//! signal. So this module does what glibc's `posix_spawn` does inside, with our own steps:
//! `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` (the same through `clone3` when the child is
//! created in its worker's cgroup, see [`crate::clone3`]). The child runs on a small stack of its own
//! **inside the host's memory** until `execve`, and the calling thread sleeps until then.
//!
//! Because the child shares the host's memory while the host's other threads keep running,
//! the child may only make plain system calls on data prepared beforehand:
//! - no allocation, no locks, no panics;
//! - no libc wrapper with process-wide side effects: glibc's `setuid`/`setgid`/`setgroups`
//!   would signal every *host* thread to change its credentials too, so the child uses the raw
//!   system calls ([`crate::child`]);
//! - signals are blocked around `clone`; the child resets every handled signal to its default
//!   (a handler would run on host memory) and `SIGPIPE` to default, then unblocks all signals
//!   (as `std::process::Command` does) just before `execve`.
//!
//! The program is looked up on the child's `PATH` by the child itself (after entering its
//! mount namespace, so `/pfs/...` programs resolve), trying the candidates the parent built.
//! A file without a `#!` line is not run through `/bin/sh` (`ENOEXEC`, exit code 126), as in
//! a container runtime.
//!
//! The caller gets a pidfd: waiting is `poll` on it plus `waitid(P_PIDFD)`, which no other
//! `waitpid` in the host can race with, and killing never hits a recycled pid.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::io::unix::AsyncFd;

use crate::child::{CapturePlan, ChildPlan};

/// Stack size of the child between `clone` and `execve` (it only makes system calls; nix
/// path conversions use up to a page or two).
const STACK: usize = 256 * 1024;

/// What to run, prepared in the parent.
pub(crate) struct Program {
    /// Paths to `execve`, in order (one when the program names a path, else one per `PATH`
    /// entry).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Whether the child's stdin is a pipe (else `/dev/null`).
    pub(crate) stdin_piped: bool,
}

impl Program {
    /// `program` with `args` (not including `program`), the full environment of the child
    /// (`env`, later duplicates win), looked up on the `PATH` in `env` when `program` has no
    /// `/`. Errors name the part that holds a NUL byte.
    pub(crate) fn new(
        program: &OsStr,
        args: impl IntoIterator<Item = OsString>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Program, (&'static str, String)> {
        let nul = |what: &'static str, s: &OsStr| (what, s.to_string_lossy().into_owned());
        let mut vars: Vec<(OsString, OsString)> = Vec::new();
        for (k, v) in env {
            match vars.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => vars.push((k, v)),
            }
        }
        let mut envp = Vec::with_capacity(vars.len());
        for (k, v) in &vars {
            let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(CString::new(kv).map_err(|_| nul("transform.env", k))?);
        }
        let prog = CString::new(program.as_bytes()).map_err(|_| nul("transform.cmd", program))?;
        let candidates = if program.as_bytes().contains(&b'/') {
            vec![prog.clone()]
        } else {
            let path = vars
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_bytes())
                .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
            path.split(|b| *b == b':')
                .filter_map(|dir| {
                    let mut p = if dir.is_empty() {
                        Vec::new() // an empty entry is the working directory
                    } else {
                        let mut d = dir.to_vec();
                        d.push(b'/');
                        d
                    };
                    p.extend_from_slice(program.as_bytes());
                    CString::new(p).ok()
                })
                .collect()
        };
        let mut argv = vec![prog];
        for a in args {
            argv.push(CString::new(a.as_bytes()).map_err(|_| nul("transform.cmd", &a))?);
        }
        Ok(Program {
            candidates,
            argv,
            envp,
            stdin_piped: false,
        })
    }
}

/// A started process: its pid, a pidfd, and the parent's ends of its stdio pipes.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: i32,
    pub(crate) process: Process,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// Why a spawn failed.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The child's setup (namespace, mounts, working directory, user) failed.
    Setup(io::Error),
    /// `execve` failed for every candidate (`ENOENT`, `EACCES`, `ENOEXEC`, ...).
    Exec(io::Error),
}

/// Where the child reports a failure before it exits: `stage << 16 | errno`.
struct Report(AtomicI32);

const STAGE_SETUP: i32 = 1;
const STAGE_EXEC: i32 = 2;

/// Everything the child reads, owned by the suspended parent frame.
struct ChildCtx<'a> {
    plan: &'a ChildPlan,
    candidates: &'a [*const libc::c_char],
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    stdio: [RawFd; 3],
    report: &'a Report,
    /// The child was created in its v2 cgroup (it joins only the others itself).
    in_v2_cgroup: bool,
}

/// A child stack: mapped once, with a guard page below it, reused by every spawn of its
/// owner (`CLONE_VFORK` returns only once the child no longer uses it).
#[derive(Debug)]
pub(crate) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; it is only used during `spawn`,
// which takes `&mut self`.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a new stack.
    pub(crate) fn new() -> io::Result<Stack> {
        let page = 4096;
        let len = STACK + page;
        // SAFETY: an anonymous private mapping with no address hint; checked for failure.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping we own; a guard against overflow.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping what we mapped above.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(Stack { base, len })
    }

    fn top(&mut self) -> *mut libc::c_void {
        // 16-byte aligned: the mapping is page aligned and `len` a multiple of 16.
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this value owns; no child uses it any more.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` succeeded: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Moves a descriptor to 3 or above, so that `dup2` onto 0..=2 in the child cannot clobber
/// another of the child's descriptors (possible when the host runs with stdio closed).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicating a descriptor we own; checked for failure.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from `fcntl`.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn null_fd() -> io::Result<OwnedFd> {
    // SAFETY: a constant C path; checked for failure.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from `open`.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Starts `program` with `plan`'s setup, stdout and stderr piped, stdin piped or null.
pub(crate) fn spawn(
    program: &Program,
    plan: &ChildPlan,
    stack: &mut Stack,
) -> Result<Spawned, SpawnError> {
    let io = SpawnError::Setup;
    let (stdin_parent, stdin_child) = if program.stdin_piped {
        let (r, w) = pipe().map_err(io)?;
        (Some(w), above_stdio(r).map_err(io)?)
    } else {
        (None, above_stdio(null_fd().map_err(io)?).map_err(io)?)
    };
    let (out_r, out_w) = pipe().map_err(io)?;
    let (err_r, err_w) = pipe().map_err(io)?;
    let out_w = above_stdio(out_w).map_err(io)?;
    let err_w = above_stdio(err_w).map_err(io)?;

    let candidates = pointers(&program.candidates);
    let argv = pointers(&program.argv);
    let envp = pointers(&program.envp);
    let report = Report(AtomicI32::new(0));
    let mut ctx = ChildCtx {
        plan,
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        stdio: [
            stdin_child.as_raw_fd(),
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
        ],
        report: &report,
        in_v2_cgroup: false,
    };
    let (pid, pidfd) = start_child(&mut ctx, stack).map_err(SpawnError::Setup)?;
    // SAFETY: with `CLONE_PIDFD` the kernel stored a new descriptor (close-on-exec) here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let reported = report.0.load(Ordering::Acquire);
    drop((stdin_child, out_w, err_w));
    let mut process = Process::new(pidfd);
    if reported != 0 {
        let _ = process.wait_blocking(); // the child has called `_exit`
        let error = io::Error::from_raw_os_error(reported & 0xffff);
        return Err(if reported >> 16 == STAGE_EXEC {
            SpawnError::Exec(error)
        } else {
            SpawnError::Setup(error)
        });
    }
    Ok(Spawned {
        pid,
        process,
        stdin: stdin_parent,
        stdout: out_r,
        stderr: err_r,
    })
}

/// Whether `clone3` into a cgroup failed here for good (old kernel, seccomp filter, other
/// architecture): later spawns go straight to `clone` and join by writing `cgroup.procs`.
static NO_CLONE_INTO_CGROUP: AtomicBool = AtomicBool::new(false);

/// Starts `child_main(ctx)`: created in the plan's v2 cgroup when it has one and the kernel
/// allows it, else with `clone`, the child then joining by itself. Returns the pid and the
/// pidfd (owned by the caller).
fn start_child(ctx: &mut ChildCtx<'_>, stack: &mut Stack) -> io::Result<(i32, RawFd)> {
    let _blocked = BlockedSignals::all();
    if let Some((dir, _)) = ctx.plan.cgroups.v2
        && !NO_CLONE_INTO_CGROUP.load(Ordering::Relaxed)
    {
        ctx.in_v2_cgroup = true;
        // SAFETY: as for `clone` below.
        let started = unsafe {
            crate::clone3::clone_into_cgroup(
                child_main,
                std::ptr::from_mut(ctx).cast(),
                stack.base,
                stack.len,
                dir,
            )
        };
        match started {
            Ok(started) => return Ok(started),
            Err(e) => {
                // Short of resources, `clone` below fails the same way; anything else
                // (`ENOSYS`, `E2BIG`, `EPERM` from a filter, ...) will not change.
                let transient = matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM));
                if !transient {
                    tracing::debug!("clone3 into the worker's cgroup: {e}; joining by pid");
                    NO_CLONE_INTO_CGROUP.store(true, Ordering::Relaxed);
                }
                ctx.in_v2_cgroup = false;
            }
        }
    }
    let mut pidfd: libc::c_int = -1;
    // SAFETY: `child_main` follows the rules in the module docs; `ctx` and everything it
    // points to live in the caller's frame, which `CLONE_VFORK` keeps suspended until the
    // child has called `execve` or exited; the stack is ours and unused by anyone else.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            std::ptr::from_mut(ctx).cast(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((pid, pidfd))
}

/// A worker's namespaces, kept open between datums (see [`crate::child`]).
#[derive(Debug)]
pub(crate) struct WorkerNamespace {
    /// Normal user: the user namespace owning `mount`.
    pub(crate) owner: Option<OwnedFd>,
    /// The mount namespace (its root is the sandbox root).
    pub(crate) mount: OwnedFd,
    /// The user namespace user code runs in.
    pub(crate) user: OwnedFd,
}

/// What the capturing child reads: the plan and its ends of the sync pipes.
struct CaptureCtx<'a> {
    plan: &'a CapturePlan,
    report: RawFd,
    go: RawFd,
}

/// Makes a worker's namespaces with `plan` in a child, opens them from here while the child
/// waits, then lets the child exit: the namespaces live on as long as the descriptors.
///
/// The child shares our memory (`CLONE_VM`, no page-table copy) but **not** our descriptor
/// table: it closes its copy of every descriptor but the two sync pipes at once, so it never
/// keeps a host file (the store's lock) open, even for the instant it lives after a `SIGKILL`
/// of the host.
pub(crate) fn capture_namespace(
    plan: &CapturePlan,
    stack: &mut Stack,
) -> io::Result<WorkerNamespace> {
    let (report_r, report_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let ctx = CaptureCtx {
        plan,
        report: report_w.as_raw_fd(),
        go: go_r.as_raw_fd(),
    };
    let mut pidfd: libc::c_int = -1;
    let pid = {
        let _blocked = BlockedSignals::all();
        // SAFETY: `capture_main` only makes system calls on `ctx`, which lives in this frame
        // until the child is reaped below (on every path: `Process` kills and reaps on drop);
        // the stack is ours and unused by anyone else until then.
        unsafe {
            libc::clone(
                capture_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_PIDFD | libc::SIGCHLD,
                std::ptr::from_ref(&ctx).cast_mut().cast(),
                &mut pidfd as *mut libc::c_int,
            )
        }
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: with `CLONE_PIDFD` the kernel stored a new descriptor here.
    let mut process = Process::new(unsafe { OwnedFd::from_raw_fd(pidfd) });
    drop((report_w, go_r));
    let result = capture_dialogue(plan, pid, &report_r, go_w);
    if result.is_err() {
        process.kill();
    }
    let _ = process.wait_blocking();
    result
}

/// The parent's side of the capture: writes the id maps when asked, opens the namespaces
/// when the child is ready, then closes `go` (the child exits on end of file).
fn capture_dialogue(
    plan: &CapturePlan,
    pid: i32,
    report: &OwnedFd,
    go: OwnedFd,
) -> io::Result<WorkerNamespace> {
    use std::io::Read;
    let mut reader = std::fs::File::from(report.try_clone()?);
    loop {
        let mut msg = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut msg) {
            return Err(io::Error::other(format!(
                "the namespace child exited without reporting ({e})"
            )));
        }
        match i32::from_ne_bytes(msg) {
            crate::child::MSG_WANT_MAPS => {
                let base = plan
                    .id_base
                    .ok_or_else(|| io::Error::other("maps asked for without an id base"))?;
                let map = format!("0 {base} {}", crate::settings::ID_RANGE);
                std::fs::write(format!("/proc/{pid}/uid_map"), &map)?;
                std::fs::write(format!("/proc/{pid}/gid_map"), &map)?;
                // SAFETY: one byte from a local to the pipe we own.
                if unsafe { libc::write(go.as_raw_fd(), c"g".as_ptr().cast(), 1) } != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            0 => {
                let open = |ns: &str| {
                    std::fs::File::open(format!("/proc/{pid}/ns/{ns}")).map(OwnedFd::from)
                };
                let user = open("user")?;
                let owner = match plan.id_base {
                    Some(_) => None,
                    None => Some(parent_namespace(&user)?),
                };
                let ns = WorkerNamespace {
                    owner,
                    mount: open("mnt")?,
                    user,
                };
                drop(go);
                return Ok(ns);
            }
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The parent of a user namespace (`ioctl(NS_GET_PARENT)`).
fn parent_namespace(ns: &OwnedFd) -> io::Result<OwnedFd> {
    const NS_GET_PARENT: libc::c_ulong = 0xb7 << 8 | 2;
    // SAFETY: an ioctl without argument on a namespace descriptor we own; returns a new fd.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT as _) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The capturing child. Never returns.
extern "C" fn capture_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `CaptureCtx` of the waiting parent frame.
    let ctx = unsafe { &*arg.cast::<CaptureCtx<'_>>() };
    let code = match ctx.plan.run(ctx.report, ctx.go) {
        Err(e) => {
            let _ = crate::child::send(ctx.report, e.raw_os_error().unwrap_or(libc::EIO).max(1));
            1
        }
        Ok(()) => {
            let _ = crate::child::send(ctx.report, 0);
            // Wait for the parent to open our namespaces (it closes `go` then).
            let mut byte = 0u8;
            // SAFETY: reading into a local from our end of the pipe.
            while unsafe { libc::read(ctx.go, (&raw mut byte).cast(), 1) } > 0 {}
            0
        }
    };
    // SAFETY: ends the child at once.
    unsafe { libc::_exit(code) }
}

/// Blocks every signal on this thread until dropped (the child starts with this mask).
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn all() -> BlockedSignals {
        // SAFETY: sigset_t is plain data filled by sigfillset/pthread_sigmask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockedSignals(old)
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in `all`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}

/// The child, between `clone` and `execve`. Never returns.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildCtx` of the suspended parent frame (see `spawn`).
    let ctx = unsafe { &*arg.cast::<ChildCtx<'_>>() };
    let fail = |stage: i32, errno: i32| -> ! {
        ctx.report
            .0
            .store(stage << 16 | (errno & 0xffff), Ordering::Release);
        // SAFETY: ends the child at once, without running anything of the host's.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: raw signal and descriptor calls on values prepared by the parent.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue; // reserved by libc
            }
            if old.sa_sigaction != libc::SIG_DFL
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(STAGE_SETUP, errno());
        }
    }
    if let Err(e) = ctx.plan.apply(ctx.in_v2_cgroup) {
        fail(STAGE_SETUP, e.raw_os_error().unwrap_or(libc::EIO));
    }
    // SAFETY: as above; `execve` gets NUL-terminated arrays of C strings owned by the parent.
    unsafe {
        for (target, &fd) in ctx.stdio.iter().enumerate() {
            // `fd` > 2 (see `above_stdio`); dup2 clears close-on-exec on the copy.
            if libc::dup2(fd, target as libc::c_int) < 0 {
                fail(STAGE_SETUP, errno());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let mut denied = false;
        let mut last = libc::ENOENT;
        for &path in ctx.candidates.iter().take_while(|p| !p.is_null()) {
            libc::execve(path, ctx.argv.as_ptr(), ctx.envp.as_ptr());
            last = errno();
            match last {
                libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG => {}
                libc::EACCES => denied = true,
                _ => break,
            }
        }
        if denied && matches!(last, libc::ENOENT | libc::ENOTDIR) {
            last = libc::EACCES;
        }
        fail(STAGE_EXEC, last)
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A child process by its pidfd: wait for it, signal it; killed and reaped when dropped
/// unless already reaped.
#[derive(Debug)]
pub(crate) struct Process {
    fd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Process {
    fn new(fd: OwnedFd) -> Process {
        Process {
            fd: Some(fd),
            status: None,
        }
    }

    /// Reaps the process if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(fd) = &self.fd else {
            return Err(io::Error::other("process handle already handed off"));
        };
        let status = waitid(fd.as_raw_fd(), libc::WNOHANG)?;
        if let Some(s) = status {
            self.status = Some(s);
        }
        Ok(status)
    }

    /// Waits for the process to exit (cancel safe).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.try_wait()? {
            return Ok(s);
        }
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| io::Error::other("process handle already handed off"))?;
        let status = {
            use std::os::fd::AsFd;
            // SAFETY: the borrow keeps the descriptor open, and referring to the same pidfd,
            // for the whole life of the registration.
            let afd = unsafe {
                AsyncFd::register_with_interest(fd.as_fd(), tokio::io::Interest::READABLE)
            }
            .map_err(io::Error::from)?;
            loop {
                let mut ready = afd.readable().await?;
                match waitid(fd.as_raw_fd(), libc::WNOHANG)? {
                    Some(s) => break s,
                    None => ready.clear_ready(),
                }
            }
        };
        self.status = Some(status);
        Ok(status)
    }

    /// Waits for the process to exit, blocking the thread.
    pub(crate) fn wait_blocking(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| io::Error::other("process handle already handed off"))?;
        let s = waitid(fd.as_raw_fd(), 0)?
            .ok_or_else(|| io::Error::other("waitid returned no child"))?;
        self.status = Some(s);
        Ok(s)
    }

    /// Sends `SIGKILL` to the process (not its group) unless it was reaped.
    pub(crate) fn kill(&self) {
        if self.status.is_none()
            && let Some(fd) = &self.fd
        {
            // SAFETY: signalling through a pidfd we own; errors (already exited) are fine.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        self.kill();
        let Some(fd) = self.fd.take() else { return };
        if let Ok(Some(_)) = waitid(fd.as_raw_fd(), libc::WNOHANG) {
            return;
        }
        // Not gone yet (SIGKILL is not instant): reap it in the background.
        let reap = move || {
            let _ = waitid(fd.as_raw_fd(), 0);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(reap);
            }
            Err(_) => {
                std::thread::spawn(reap);
            }
        }
    }
}

/// `waitid(P_PIDFD, fd, WEXITED | flags)`: the exit status, or `None` (with `WNOHANG`) while
/// the process runs.
fn waitid(fd: RawFd, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: `info` is plain data written by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waiting on a pidfd we own.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd as libc::id_t,
                &mut info,
                libc::WEXITED | flags,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid these fields are set (pid 0: still running).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let raw = match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            _ => status & 0x7f,
        };
        return Ok(Some(ExitStatus::from_raw(raw)));
    }
}
