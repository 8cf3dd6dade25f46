//! Starting a datum's process directly in its worker's cgroup (`clone3` with
//! `CLONE_INTO_CGROUP`, Linux 5.7+, cgroup v2).
//!
//! Writing a pid to `cgroup.procs` migrates a running task: the kernel takes the cgroup
//! threadgroup lock for writing, which waits for an RCU grace period unless the hierarchy is
//! mounted with `favordynmods`. Measured on the engine bench, that migration was the whole of
//! the sandbox's per-datum cost (about 0.2 ms per datum). A child created *in* the cgroup
//! needs no migration: the fork only takes the lock's read side.
//!
//! `libc::clone` has no way to pass a cgroup, and `clone3` through `syscall(2)` cannot give
//! the child a stack of its own while it shares our memory (it would return into the parent's
//! frame on a stack it does not own). So the system call is made here with inline assembly,
//! as C libraries do: the child, on its new stack, calls the given function and exits with
//! its result, and never returns into Rust code of the parent. Only x86-64 has it; elsewhere
//! [`clone_into_cgroup`] reports `ENOSYS` and the caller joins the cgroup by writing
//! `cgroup.procs`, as before.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// The arguments of `clone3` (`struct clone_args`, version 2: with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (not in every `libc` release).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The child's entry point: gets `arg`, returns its exit status.
pub(crate) type ChildMain = extern "C" fn(*mut libc::c_void) -> libc::c_int;

/// A new process sharing our memory (`CLONE_VM | CLONE_VFORK | CLONE_PIDFD`, exit signal
/// `SIGCHLD`), created in the cgroup whose directory is open as `cgroup_dir`, running
/// `main(arg)` on the stack `[stack, stack + stack_size)`. Returns its pid and pidfd.
///
/// # Safety
/// As for `libc::clone` with these flags: `main` may only make plain system calls on data
/// that outlives the call (the caller is suspended until the child calls `execve` or exits),
/// signals must be blocked, and the stack must be unused by anyone else.
pub(crate) unsafe fn clone_into_cgroup(
    main: ChildMain,
    arg: *mut libc::c_void,
    stack: *mut libc::c_void,
    stack_size: usize,
    cgroup_dir: RawFd,
) -> io::Result<(libc::pid_t, RawFd)> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64 | CLONE_INTO_CGROUP,
        pidfd: std::ptr::from_mut(&mut pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: stack_size as u64,
        cgroup: u64::try_from(cgroup_dir).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?,
        ..CloneArgs::default()
    };
    // SAFETY: forwarded to the caller (see above).
    let ret = unsafe { raw_clone3(&mut args, main, arg) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret as i32));
    }
    Ok((ret as libc::pid_t, pidfd))
}

/// The system call: returns the child's pid or `-errno` in the parent; the child runs
/// `main(arg)` and exits.
#[cfg(target_arch = "x86_64")]
unsafe fn raw_clone3(args: &mut CloneArgs, main: ChildMain, arg: *mut libc::c_void) -> i64 {
    let ret: i64;
    // SAFETY: the child starts on its own stack (16-byte aligned top, so `call` leaves the
    // alignment the ABI expects at function entry); `r12`/`r13` survive `syscall` in both
    // processes; the child ends with `exit` and never reaches the code after the block. In
    // the parent only `rax`, `rcx` and `r11` change, as declared.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") std::ptr::from_mut(args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") main,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn raw_clone3(_: &mut CloneArgs, _: ChildMain, _: *mut libc::c_void) -> i64 {
    -i64::from(libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupRoot;
    use crate::child::{ChildPlan, Namespace};
    use crate::spawn::{Program, Stack, spawn};
    use std::io::Read;

    /// Skips a test this host cannot run, except in CI on x86-64, where it must run.
    fn skip(why: &str) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !(ci && cfg!(target_arch = "x86_64")),
            "cannot run in CI: {why}"
        );
        eprintln!("skipped: {why}");
    }

    /// The cgroups of this host and a worker name for `test`, or `None` (skipped).
    fn v2_root(test: &str) -> Option<(CgroupRoot, String)> {
        if !nix::unistd::Uid::effective().is_root() {
            skip("needs root (cgroups)");
            return None;
        }
        match CgroupRoot::detect() {
            Ok(root) if root.v2.is_some() => {
                Some((root, format!("clone3-{test}-{}", std::process::id())))
            }
            other => {
                skip(&format!("no cgroup v2 hierarchy: {other:?}"));
                None
            }
        }
    }

    /// A child that only joins `cgroups` (no namespace, directory or identity change).
    fn plain_plan(cgroups: crate::child::CgroupJoin) -> ChildPlan {
        ChildPlan {
            parent: nix::unistd::getpid(),
            cgroups,
            namespace: Namespace::None,
            working_dir: None,
            run_as: None,
        }
    }

    /// The fast path is taken: the child is in the worker's v2 cgroup although it was given
    /// no `cgroup.procs` to write itself into (a child that had to would fail to start).
    #[test]
    fn a_child_starts_in_the_workers_cgroup_without_joining_it() {
        let Some((root, name)) = v2_root("in-cgroup") else {
            return;
        };
        let cg = root
            .worker(&name, &Default::default())
            .expect("worker cgroup");
        let mut cgroups = cg.join();
        let (dir, _) = cgroups.v2.expect("a v2 cgroup");
        cgroups.v2 = Some((dir, -1));
        let plan = plain_plan(cgroups);
        let program = Program::new(
            "cat".as_ref(),
            ["/proc/self/cgroup".into()],
            std::env::vars_os(),
        )
        .expect("program");
        let mut stack = Stack::new().expect("stack");
        let Ok(mut child) = spawn(&program, &plan, &mut stack) else {
            panic!("the child could not start in its cgroup");
        };
        let mut text = String::new();
        std::fs::File::from(child.stdout)
            .read_to_string(&mut text)
            .expect("read");
        assert!(child.process.wait_blocking().expect("wait").success());
        let v2 = text.lines().find_map(|l| l.strip_prefix("0::"));
        assert!(
            v2.is_some_and(|path| path.ends_with(&format!("/{name}"))),
            "{text}"
        );
    }

    #[test]
    fn the_arguments_have_the_kernels_version_2_layout() {
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
    }

    /// A child created in a cgroup after `cgroup.kill` was written to it is killed at once
    /// on Linux 6.18; the worker makes its cgroup anew after a kill, so the next datum runs.
    #[tokio::test]
    async fn a_datum_after_one_that_left_a_process_behind_still_runs() {
        let Some((root, name)) = v2_root("after-kill") else {
            return;
        };
        let mut cg = root
            .worker(&name, &Default::default())
            .expect("worker cgroup");
        let mut stack = Stack::new().expect("stack");
        for script in [
            "sleep 100 & echo left",
            "sleep 100 & echo again",
            "echo last",
        ] {
            cg.kill_all().await.expect("kill");
            cg.renew_after_kill().expect("renew");
            let plan = plain_plan(cg.join());
            let program = Program::new(
                "sh".as_ref(),
                ["-c".into(), script.into()],
                std::env::vars_os(),
            )
            .expect("program");
            let Ok(mut child) = spawn(&program, &plan, &mut stack) else {
                panic!("{script}: could not start");
            };
            let status = child.process.wait_blocking().expect("wait");
            assert!(status.success(), "{script}: {status:?}");
        }
    }
}
