//! [`ProcessWorker`]: one datum at a time, each in a fresh process group.

use std::ffi::{CString, OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pipeline_core::executor::{DatumOutcome, DatumTask, ExecutorError, LogStream, Worker};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use crate::child::{ChildPlan, Layout, Namespace};
use crate::logs::forward_lines;
use crate::settings::{Config, PfsMode};
use crate::spawn::{self, SpawnError, WorkerNamespace};
use crate::substitute::{substitute_bytes, substitute_pfs};
use crate::user::{self, RunAs};

/// How long log readers may keep draining after the process group was killed (a process that
/// left the group with `setsid` may hold the pipes open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Read buffer per output stream; longer lines are assembled across reads (up to the
/// executor's `max_log_line`). Most datums print little, so a small buffer is cheaper than
/// zeroing 64 KiB twice per datum.
const READ_BUF: usize = 8 * 1024;

/// A local worker. It holds no process between datums: warm means "nothing to start".
#[derive(Debug)]
pub(crate) struct ProcessWorker {
    index: usize,
    pipeline: String,
    /// Value of [`LABEL_VAR`](crate::LABEL_VAR) for this worker's processes.
    label: String,
    config: Arc<Config>,
    /// The stack children start on (mapped on first use, reused for every datum).
    stack: Option<spawn::Stack>,
    /// The namespace datums join, and the scratch directory it shows (namespace modes).
    namespace: Option<(ScratchId, WorkerNamespace)>,
}

/// A scratch directory by path and by the identity of it and its `out` (a namespace made
/// over them is stale once either was replaced).
#[derive(Debug, PartialEq, Eq)]
struct ScratchId {
    path: PathBuf,
    dirs: [(u64, u64); 2],
}

impl ScratchId {
    fn of(scratch: &Path) -> Result<ScratchId, ExecutorError> {
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|source| ExecutorError::Io {
                    context: format!("reading {}", p.display()),
                    source,
                })
        };
        Ok(ScratchId {
            path: scratch.to_path_buf(),
            dirs: [id(scratch)?, id(&scratch.join("out"))?],
        })
    }
}

impl ProcessWorker {
    pub(crate) fn new(index: usize, project: &str, pipeline: String, config: Arc<Config>) -> Self {
        ProcessWorker {
            index,
            label: crate::settings::label(project, &pipeline),
            pipeline,
            config,
            stack: None,
            namespace: None,
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

/// The plan of the child that makes a worker's namespace over `scratch` (also used by the
/// probe). `None` in substitution mode.
pub(crate) fn create_plan(
    mode: PfsMode,
    mount_point: &Path,
    parent_mount: &Path,
    scratch: &Path,
) -> Result<Option<ChildPlan>, ExecutorError> {
    let user_maps = match mode {
        PfsMode::Substitution => return Ok(None),
        PfsMode::MountNamespace => None,
        PfsMode::UserNamespace => {
            let euid = nix::unistd::Uid::effective();
            let egid = nix::unistd::Gid::effective();
            Some((
                format!("{euid} {euid} 1").into_bytes(),
                format!("{egid} {egid} 1").into_bytes(),
            ))
        }
    };
    let keep = nix::sys::statvfs::statvfs(scratch)
        .map(|st| keep_flags(st.flags()))
        .map_err(|e| ExecutorError::Io {
            context: format!("reading the mount flags of {}", scratch.display()),
            source: e.into(),
        })?;
    let c = |what: &str, p: &Path| cstring(what, p.as_os_str().as_encoded_bytes());
    Ok(Some(ChildPlan {
        parent: nix::unistd::getpid(),
        namespace: Namespace::Create {
            user_maps,
            layout: Layout {
                scratch: c("scratch", scratch)?,
                scratch_out: c("scratch", &scratch.join("out"))?,
                pfs: c("mount point", mount_point)?,
                pfs_out: c("mount point", &mount_point.join("out"))?,
                pfs_parent_mount: c("mount point", parent_mount)?,
                keep_flags: keep,
            },
        },
        working_dir: None,
        run_as: None,
    }))
}

/// The plan of a datum's child: enter `ns` (none in substitution mode), then `working_dir`
/// and `run_as`.
pub(crate) fn datum_plan(
    ns: Option<&WorkerNamespace>,
    working_dir: Option<&str>,
    run_as: Option<RunAs>,
) -> Result<ChildPlan, ExecutorError> {
    use std::os::fd::AsRawFd;
    let namespace = match ns {
        None => Namespace::None,
        Some(ns) => Namespace::Enter {
            user: ns.user.as_ref().map(AsRawFd::as_raw_fd),
            mount: ns.mount.as_raw_fd(),
            host_cwd: std::env::current_dir()
                .ok()
                .and_then(|d| CString::new(d.into_os_string().into_encoded_bytes()).ok()),
        },
    };
    Ok(ChildPlan {
        parent: nix::unistd::getpid(),
        namespace,
        working_dir: working_dir
            .map(|wd| cstring("transform.working_dir", wd.as_bytes()))
            .transpose()?,
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

/// The program to run, after checking the task's argv and input names.
fn checked_program(task: &DatumTask) -> Result<&str, ExecutorError> {
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
    Ok(program)
}

/// Feeds the program's stdin, forwards its output line by line and waits for it (or for the
/// task's cancellation, which kills the group); returns once the output is drained.
async fn supervise(
    task: &DatumTask,
    program: &str,
    subst: bool,
    mut process: spawn::Process,
    (stdin, stdout, stderr): (Option<pipe::Sender>, pipe::Receiver, pipe::Receiver),
    mut group: GroupKiller,
    max: usize,
) -> Result<DatumOutcome, ExecutorError> {
    let scratch = task.scratch.as_path();
    let feeder = match (stdin, task.program.stdin.as_deref()) {
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
    let readers = [
        tokio::spawn(forward_lines(
            BufReader::with_capacity(READ_BUF, stdout),
            LogStream::Stdout,
            task.logs.clone(),
            max,
        )),
        tokio::spawn(forward_lines(
            BufReader::with_capacity(READ_BUF, stderr),
            LogStream::Stderr,
            task.logs.clone(),
            max,
        )),
    ];

    let outcome = tokio::select! {
        biased;
        _ = task.cancel.cancelled() => {
            group.kill();
            let _ = process.wait().await;
            DatumOutcome::Cancelled
        }
        status = process.wait() => {
            // The leader is gone: kill whatever it left in its group right away.
            group.kill();
            match status {
                Ok(s) => outcome_of(s),
                Err(source) => {
                    return Err(ExecutorError::Io {
                        context: format!("waiting for {program:?} (datum {})", task.datum_id),
                        source,
                    });
                }
            }
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

/// How the process ended: its exit code, or the signal that killed it.
fn outcome_of(status: ExitStatus) -> DatumOutcome {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(code) => DatumOutcome::Exited { exit_code: code },
        None => DatumOutcome::Signaled {
            signal: status.signal().unwrap_or(0),
        },
    }
}

impl ProcessWorker {
    /// `transform.user` resolved, with `scratch/out` given to that user; refused in
    /// user-namespace mode when it is not the current user.
    fn run_as(&self, task: &DatumTask) -> Result<Option<RunAs>, ExecutorError> {
        let run_as = task.user.as_deref().map(user::resolve).transpose()?;
        if let Some(r) = run_as
            && r.uid != nix::unistd::Uid::effective()
        {
            let out = task.scratch.join("out");
            nix::unistd::chown(&out, Some(r.uid), Some(r.gid)).map_err(|e| ExecutorError::Io {
                context: format!("giving {} to transform.user", out.display()),
                source: e.into(),
            })?;
        }
        if self.config.mode == PfsMode::UserNamespace
            && run_as.is_some_and(|r| {
                r.uid != nix::unistd::Uid::effective() || r.gid != nix::unistd::Gid::effective()
            })
        {
            return Err(invalid(
                "transform.user",
                "running as another user is not possible in user-namespace mode".into(),
            ));
        }
        Ok(run_as)
    }

    /// `transform.working_dir` as user code sees it (Pachyderm runs `cmd` in
    /// `<root>/<working_dir>`, the root being `/`); it must be a directory.
    fn working_dir(
        &self,
        task: &DatumTask,
        sub: &dyn Fn(&str) -> String,
    ) -> Result<Option<String>, ExecutorError> {
        let scratch = task.scratch.as_path();
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
        Ok(working_dir)
    }

    /// The stack children start on and, in namespace modes, the namespace showing `scratch`
    /// as `/pfs` (made on first use and whenever the scratch directory was replaced).
    fn stack_and_namespace(
        &mut self,
        scratch: &Path,
    ) -> Result<(&mut spawn::Stack, Option<&WorkerNamespace>), ExecutorError> {
        let stack = match self.stack.take() {
            Some(s) => s,
            None => spawn::Stack::new().map_err(|source| ExecutorError::Io {
                context: "mapping a stack for starting processes".into(),
                source,
            })?,
        };
        let stack = self.stack.insert(stack);
        let namespace = match self.config.mode {
            PfsMode::Substitution => None,
            _ => {
                let id = ScratchId::of(scratch)?;
                if self.namespace.as_ref().is_none_or(|(have, _)| *have != id) {
                    self.namespace = None; // closes the stale one first
                    let create = create_plan(
                        self.config.mode,
                        &self.config.mount_point,
                        &self.config.parent_mount,
                        scratch,
                    )?
                    .ok_or_else(|| invalid("scratch", "no namespace plan".into()))?;
                    let ns = spawn::capture_namespace(
                        &create,
                        self.config.mode == PfsMode::UserNamespace,
                        stack,
                    )
                    .map_err(|source| ExecutorError::Io {
                        context: format!(
                            "making the {} for worker {} of pipeline {:?}",
                            self.config.mode, self.index, self.pipeline
                        ),
                        source,
                    })?;
                    self.namespace = Some((id, ns));
                }
                self.namespace.as_ref().map(|(_, ns)| ns)
            }
        };
        Ok((stack, namespace))
    }

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
        if task.cancel.is_cancelled() {
            return Ok(DatumOutcome::Cancelled);
        }
        let program = checked_program(&task)?;
        let subst = self.config.mode == PfsMode::Substitution;
        let scratch = task.scratch.as_path();
        let sub = |s: &str| {
            if subst {
                substitute_pfs(s, scratch)
            } else {
                s.to_owned()
            }
        };

        let run_as = self.run_as(&task)?;
        let working_dir = self.working_dir(&task, &sub)?;
        let label = self.label.clone();
        let pipeline = self.pipeline.clone();
        let max = self.config.max_log_line;
        let (stack, namespace) = self.stack_and_namespace(scratch)?;
        let plan = datum_plan(namespace, working_dir.as_deref(), run_as)?;
        let host_env = std::env::vars_os();
        let task_env = task
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(sub(v))));
        let labels = [
            (crate::LABEL_VAR, label.as_str()),
            (crate::HOST_VAR, crate::reaper::host_id()),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut prepared = spawn::Program::new(
            OsStr::new(&sub(program)),
            task.program
                .argv
                .iter()
                .skip(1)
                .map(|a| OsString::from(sub(a))),
            host_env.chain(task_env).chain(labels),
        )
        .map_err(|(field, value)| invalid(field, format!("{value:?} contains a NUL byte")))?;
        prepared.stdin_piped = task.program.stdin.is_some();
        let mut child = match spawn::spawn(&prepared, &plan, stack) {
            Ok(c) => c,
            Err(SpawnError::Exec(e)) => {
                let code = if e.raw_os_error() == Some(libc::ENOENT) {
                    127
                } else {
                    126
                };
                task.logs.line(
                    LogStream::Stderr,
                    &format!("cannot execute {program:?}: {e}"),
                );
                return Ok(DatumOutcome::Exited { exit_code: code });
            }
            Err(SpawnError::Setup(source)) => {
                return Err(ExecutorError::Io {
                    context: format!(
                        "starting {program:?} for datum {} of pipeline {:?}",
                        task.datum_id, pipeline
                    ),
                    source,
                });
            }
        };
        drop(prepared);
        let group = GroupKiller(Some(Pid::from_raw(child.pid)));
        let io_err = |source| ExecutorError::Io {
            context: format!("reading the output of {program:?}"),
            source,
        };
        let stdin = child
            .stdin
            .take()
            .map(pipe::Sender::from_owned_fd)
            .transpose()
            .map_err(io_err)?;
        let stdout = pipe::Receiver::from_owned_fd(child.stdout).map_err(io_err)?;
        let stderr = pipe::Receiver::from_owned_fd(child.stderr).map_err(io_err)?;
        let process = child.process;
        supervise(
            &task,
            program,
            subst,
            process,
            (stdin, stdout, stderr),
            group,
            max,
        )
        .await
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        // `run` takes `&mut self`, so no datum is running here; nothing else to release.
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
    fn outcomes_are_exit_codes_or_signals() {
        use std::os::unix::process::ExitStatusExt;
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        assert_eq!(outcome_of(code(0)), DatumOutcome::Exited { exit_code: 0 });
        assert_eq!(outcome_of(code(2)), DatumOutcome::Exited { exit_code: 2 });
        assert_eq!(
            outcome_of(ExitStatus::from_raw(9)),
            DatumOutcome::Signaled { signal: 9 }
        );
    }
}
