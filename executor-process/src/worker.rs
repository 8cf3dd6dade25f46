//! [`ProcessWorker`]: one datum at a time, each in a fresh process group.

use std::ffi::CString;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pipeline_core::executor::{DatumOutcome, DatumTask, ExecutorError, LogStream, Worker};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::child::{self, ChildPlan, Namespace};
use crate::executor::{Config, PfsMode};
use crate::logs::forward_lines;
use crate::substitute::{substitute_bytes, substitute_pfs};
use crate::user::{self, RunAs};

/// How long log readers may keep draining after the process group was killed (a process that
/// left the group with `setsid` may hold the pipes open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A local worker. It holds no process between datums: warm means "nothing to start".
#[derive(Debug)]
pub(crate) struct ProcessWorker {
    index: usize,
    pipeline: String,
    /// Value of [`LABEL_VAR`](crate::LABEL_VAR) for this worker's processes.
    label: String,
    config: Arc<Config>,
    stopped: bool,
}

impl ProcessWorker {
    pub(crate) fn new(index: usize, project: &str, pipeline: String, config: Arc<Config>) -> Self {
        ProcessWorker {
            index,
            label: crate::executor::label(project, &pipeline),
            pipeline,
            config,
            stopped: false,
        }
    }
}

/// Kills a process group with SIGKILL when dropped (or on [`GroupKiller::kill`]).
struct GroupKiller(Option<Pid>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (the group is already gone) is the common, fine case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

fn invalid(field: &str, message: String) -> ExecutorError {
    ExecutorError::InvalidTask {
        field: field.into(),
        message,
    }
}

fn cstring(field: &str, bytes: &[u8]) -> Result<CString, ExecutorError> {
    CString::new(bytes).map_err(|_| invalid(field, "contains a NUL byte".into()))
}

/// Builds the child plan for one datum (also used by the probe).
pub(crate) fn plan_for(
    mode: PfsMode,
    mount_point: &Path,
    parent_mount: &Path,
    scratch: &Path,
    inputs: &[String],
    working_dir: Option<&str>,
    run_as: Option<RunAs>,
) -> Result<ChildPlan, ExecutorError> {
    let euid = nix::unistd::Uid::effective();
    let egid = nix::unistd::Gid::effective();
    let namespace = match mode {
        PfsMode::Substitution => Namespace::None,
        PfsMode::MountNamespace => Namespace::Mount,
        PfsMode::UserNamespace => {
            if run_as.is_some_and(|r| r.uid != euid || r.gid != egid) {
                return Err(invalid(
                    "transform.user",
                    "running as another user is not possible in user-namespace mode".into(),
                ));
            }
            Namespace::User {
                uid_map: format!("{euid} {euid} 1").into_bytes(),
                gid_map: format!("{egid} {egid} 1").into_bytes(),
            }
        }
    };
    let mut read_only = Vec::new();
    if mode != PfsMode::Substitution {
        for input in inputs {
            let host = scratch.join(input);
            let Ok(st) = nix::sys::statvfs::statvfs(&host) else {
                continue; // absent input: nothing to protect
            };
            read_only.push((
                cstring(
                    "input",
                    mount_point.join(input).as_os_str().as_encoded_bytes(),
                )?,
                keep_flags(st.flags()),
            ));
        }
    }
    let working_dir = match working_dir {
        None => None,
        Some(wd) => Some(cstring("transform.working_dir", wd.as_bytes())?),
    };
    Ok(ChildPlan {
        parent: nix::unistd::getpid(),
        namespace,
        scratch: cstring("scratch", scratch.as_os_str().as_encoded_bytes())?,
        pfs: cstring("mount point", mount_point.as_os_str().as_encoded_bytes())?,
        pfs_parent_mount: cstring("mount point", parent_mount.as_os_str().as_encoded_bytes())?,
        read_only,
        working_dir,
        run_as,
    })
}

/// The mount point of the mount that holds `path` (longest mount point prefix in
/// `/proc/self/mountinfo`; `/` when unknown).
pub(crate) fn containing_mount(path: &Path) -> PathBuf {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return PathBuf::from("/");
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Mount points in mountinfo escape space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(oct) = b.get(i + 1..i + 4)
            && let Ok(s) = std::str::from_utf8(oct)
            && let Ok(v) = u8::from_str_radix(s, 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from(
        String::from_utf8_lossy(&out).into_owned(),
    ))
}

/// The flags of the mount holding a path that a read-only remount must keep (a user namespace
/// may not clear them).
fn keep_flags(st: nix::sys::statvfs::FsFlags) -> u64 {
    use nix::mount::MsFlags;
    use nix::sys::statvfs::FsFlags;
    let mut f = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.contains(s) {
            f |= m;
        }
    }
    f.bits()
}

fn classify(status: ExitStatus, accept: &[i64]) -> DatumOutcome {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(code) if code == 0 || accept.contains(&i64::from(code)) => {
            DatumOutcome::Success { exit_code: code }
        }
        Some(code) => DatumOutcome::Failed { exit_code: code },
        None => DatumOutcome::Signaled {
            signal: status.signal().unwrap_or(0),
        },
    }
}

impl ProcessWorker {
    /// Where `path` (as user code sees it, already substituted in substitution mode) is on
    /// the host.
    fn host_path(&self, scratch: &Path, path: &str) -> PathBuf {
        match self.config.mode {
            PfsMode::Substitution => PathBuf::from(path),
            _ => match Path::new(path).strip_prefix(&self.config.mount_point) {
                Ok(rest) => scratch.join(rest),
                Err(_) => PathBuf::from(path),
            },
        }
    }
}

#[async_trait]
impl Worker for ProcessWorker {
    fn index(&self) -> usize {
        self.index
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        if self.stopped {
            return Err(ExecutorError::WorkerLost {
                pipeline: self.pipeline.clone(),
                worker: self.index,
                reason: "worker was stopped".into(),
            });
        }
        if task.cancel.is_cancelled() {
            return Ok(DatumOutcome::Cancelled);
        }
        let Some(program) = task.program.argv.first() else {
            return Err(invalid(
                "transform.cmd",
                "nothing to run: the command is empty".into(),
            ));
        };
        for input in &task.inputs {
            let mut parts = Path::new(input).components();
            if !matches!(
                (parts.next(), parts.next()),
                (Some(Component::Normal(_)), None)
            ) || input == "out"
            {
                return Err(invalid(
                    "input.name",
                    format!("{input:?} is not a single path part usable under /pfs"),
                ));
            }
        }
        let subst = self.config.mode == PfsMode::Substitution;
        let scratch = task.scratch.as_path();
        let sub = |s: &str| {
            if subst {
                substitute_pfs(s, scratch)
            } else {
                s.to_owned()
            }
        };

        let run_as = task.user.as_deref().map(user::resolve).transpose()?;
        if let Some(r) = run_as
            && r.uid != nix::unistd::Uid::effective()
        {
            let out = scratch.join("out");
            nix::unistd::chown(&out, Some(r.uid), Some(r.gid)).map_err(|e| ExecutorError::Io {
                context: format!("giving {} to transform.user", out.display()),
                source: e.into(),
            })?;
        }
        // Pachyderm runs `cmd` in `<root>/<working_dir>`, the root being `/`.
        let working_dir = task.working_dir.as_deref().map(|wd| {
            if wd.starts_with('/') {
                sub(wd)
            } else {
                sub(&format!("/{wd}"))
            }
        });
        if let Some(wd) = &working_dir {
            let host = self.host_path(scratch, wd);
            if !host.is_dir() {
                return Err(invalid(
                    "transform.working_dir",
                    format!("{wd:?} is not a directory as user code sees it"),
                ));
            }
        }
        let plan = plan_for(
            self.config.mode,
            &self.config.mount_point,
            &self.config.parent_mount,
            scratch,
            &task.inputs,
            working_dir.as_deref(),
            run_as,
        )?;

        let mut cmd = std::process::Command::new(sub(program));
        cmd.args(task.program.argv.iter().skip(1).map(|a| sub(a)))
            .envs(task.env.iter().map(|(k, v)| (k, sub(v))))
            .env(crate::LABEL_VAR, &self.label)
            .env(crate::HOST_VAR, crate::reaper::host_id())
            .stdin(if task.program.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        child::install(&mut cmd, plan);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);

        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let code = match e.raw_os_error() {
                    Some(libc_enoent) if libc_enoent == nix::errno::Errno::ENOENT as i32 => 127,
                    Some(n)
                        if n == nix::errno::Errno::EACCES as i32
                            || n == nix::errno::Errno::ENOEXEC as i32 =>
                    {
                        126
                    }
                    _ => {
                        return Err(ExecutorError::Io {
                            context: format!(
                                "starting {program:?} for datum {} of pipeline {:?}",
                                task.datum_id, self.pipeline
                            ),
                            source: e,
                        });
                    }
                };
                task.logs.line(
                    LogStream::Stderr,
                    &format!("cannot execute {program:?}: {e}"),
                );
                return Ok(DatumOutcome::Failed { exit_code: code });
            }
        };
        let mut group = GroupKiller(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        );

        let feeder = match (child.stdin.take(), task.program.stdin.as_deref()) {
            (Some(mut pipe), Some(bytes)) => {
                let bytes = if subst {
                    substitute_bytes(bytes, scratch.as_os_str().as_encoded_bytes())
                        .unwrap_or_else(|| bytes.to_vec())
                } else {
                    bytes.to_vec()
                };
                Some(tokio::spawn(async move {
                    // A program that never reads stdin closes the pipe: ignore the error.
                    let _ = pipe.write_all(&bytes).await;
                    let _ = pipe.shutdown().await;
                }))
            }
            _ => None,
        };
        let max = self.config.max_log_line;
        let mut readers = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(forward_lines(
                BufReader::with_capacity(64 * 1024, out),
                LogStream::Stdout,
                task.logs.clone(),
                max,
            )));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(forward_lines(
                BufReader::with_capacity(64 * 1024, err),
                LogStream::Stderr,
                task.logs.clone(),
                max,
            )));
        }

        let timeout = async {
            match task.timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            _ = task.cancel.cancelled() => {
                group.kill();
                let _ = child.wait().await;
                DatumOutcome::Cancelled
            }
            status = child.wait() => {
                // The leader is gone: kill whatever it left in its group right away.
                group.kill();
                match status {
                    Ok(s) => classify(s, &task.accept_return_code),
                    Err(source) => {
                        return Err(ExecutorError::Io {
                            context: format!("waiting for {program:?} (datum {})", task.datum_id),
                            source,
                        });
                    }
                }
            }
            _ = timeout => {
                group.kill();
                let _ = child.wait().await;
                DatumOutcome::TimedOut
            }
        };
        if let Some(f) = feeder {
            f.abort();
        }
        for mut r in readers {
            if tokio::time::timeout(DRAIN_GRACE, &mut r).await.is_err() {
                r.abort();
            }
        }
        Ok(outcome)
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        // `run` takes `&mut self`, so no datum is running here; nothing else to release.
        self.stopped = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo("/t\\011\\134"), PathBuf::from("/t\t\\"));
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mountinfo("/bad\\9"), PathBuf::from("/bad\\9"));
    }

    #[test]
    fn containing_mount_is_the_longest_prefix() {
        // `/proc` is a mount point of its own on Linux; `/` holds everything else.
        assert_eq!(
            containing_mount(Path::new("/proc/self")),
            PathBuf::from("/proc")
        );
        let root_held = containing_mount(Path::new("/definitely-not-mounted-xyz"));
        assert_eq!(root_held, PathBuf::from("/"));
    }

    #[test]
    fn outcomes_follow_exit_codes_and_accept_list() {
        use std::os::unix::process::ExitStatusExt;
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        assert_eq!(
            classify(code(0), &[]),
            DatumOutcome::Success { exit_code: 0 }
        );
        assert_eq!(
            classify(code(2), &[2]),
            DatumOutcome::Success { exit_code: 2 }
        );
        assert_eq!(
            classify(code(2), &[3]),
            DatumOutcome::Failed { exit_code: 2 }
        );
        assert_eq!(
            classify(ExitStatus::from_raw(9), &[]),
            DatumOutcome::Signaled { signal: 9 }
        );
    }
}
