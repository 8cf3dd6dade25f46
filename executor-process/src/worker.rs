//! [`ProcessWorker`]: one datum at a time, each in a fresh process group.

use std::ffi::{CString, OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, ExecutorError, LiveScratch, LogStream, Worker,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use crate::cgroup::WorkerCgroup;
use crate::child::{CapturePlan, CgroupJoin, ChildPlan, Namespace};
use crate::logs::forward_lines;
use crate::settings::{Config, PfsMode};
use crate::spawn::{self, SpawnError, WorkerNamespace};
use crate::substitute::{substitute_bytes, substitute_pfs};
use crate::user::{self, RunAs};
use pipeline_core::spec::Resources;

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
    /// The pipeline's resources, resolved.
    resources: Resources,
    /// On a root host in a namespace mode: the first host id of this worker's user namespace.
    id_base: Option<u32>,
    /// The worker's cgroups (made on first use when the host has them).
    cgroup: Option<WorkerCgroup>,
    /// Secret files shown at their `mount_path` (namespace modes).
    secret_mounts: Arc<Vec<crate::secret_files::SecretMount>>,
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
    pub(crate) fn new(
        index: usize,
        project: &str,
        pipeline: String,
        config: Arc<Config>,
        resources: Resources,
        secret_mounts: Arc<Vec<crate::secret_files::SecretMount>>,
    ) -> Self {
        let id_base = (config.mode == PfsMode::MountNamespace).then(crate::settings::next_id_base);
        ProcessWorker {
            index,
            label: crate::settings::label(project, &pipeline),
            pipeline,
            config,
            stack: None,
            namespace: None,
            resources,
            id_base,
            cgroup: None,
            secret_mounts,
        }
    }

    /// The worker's cgroup, made on first use (none when the host has no usable cgroups).
    fn cgroup(&mut self) -> Result<Option<&mut WorkerCgroup>, ExecutorError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let Some(root) = &self.config.cgroups else {
            return Ok(None);
        };
        if self.cgroup.is_none() {
            let safe: String = self
                .label
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(100)
                .collect();
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("{safe}-{}-{n}", self.index);
            let cg = root
                .worker(&name, &self.resources)
                .map_err(|source| ExecutorError::Io {
                    context: format!(
                        "making the cgroup of worker {} of pipeline {:?}",
                        self.index, self.pipeline
                    ),
                    source,
                })?;
            self.cgroup = Some(cg);
        }
        Ok(self.cgroup.as_mut())
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

/// The plan of the child that makes a worker's namespaces over `scratch` (also used by the
/// probe). `id_base`: see [`CapturePlan::id_base`].
pub(crate) fn capture_plan(
    mount_point: &Path,
    scratch: &Path,
    id_base: Option<u32>,
    exposed: &[std::path::PathBuf],
    secrets: &[crate::secret_files::SecretMount],
) -> Result<CapturePlan, ExecutorError> {
    let euid = nix::unistd::Uid::effective();
    let egid = nix::unistd::Gid::effective();
    Ok(CapturePlan {
        parent: nix::unistd::getpid(),
        id_base,
        own_ids: (
            format!("{euid} {euid} 1").into_bytes(),
            format!("{egid} {egid} 1").into_bytes(),
        ),
        root: crate::sandbox::RootPlan::new(mount_point, scratch, exposed, secrets)?,
    })
}

/// The plan of a datum's child: join `cgroups`, enter `ns` (none in substitution mode),
/// then `working_dir` and `run_as`.
pub(crate) fn datum_plan(
    ns: Option<&WorkerNamespace>,
    cgroups: CgroupJoin,
    working_dir: Option<&str>,
    run_as: Option<RunAs>,
) -> Result<ChildPlan, ExecutorError> {
    use std::os::fd::AsRawFd;
    let namespace = match ns {
        None => Namespace::None,
        Some(ns) => Namespace::Enter {
            owner: ns.owner.as_ref().map(AsRawFd::as_raw_fd),
            mount: ns.mount.as_raw_fd(),
            user: ns.user.as_raw_fd(),
        },
    };
    Ok(ChildPlan {
        parent: nix::unistd::getpid(),
        cgroups,
        namespace,
        working_dir: working_dir
            .map(|wd| cstring("transform.working_dir", wd.as_bytes()))
            .transpose()?,
        run_as,
    })
}

/// The flags of the mount holding a path that a read-only remount must keep (a user namespace
/// may not clear them).
pub(crate) fn keep_flags(st: nix::sys::statvfs::FsFlags) -> u64 {
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
    (mut group, cgroup): (GroupKiller, Option<&WorkerCgroup>),
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
    // Both pipes are read in this task, not in tasks of their own: the child's exit and
    // the end of its output wake one task, instead of handing off between three (each
    // hand-off a cross-thread wakeup that leaves a core idle between datums).
    let reading = async {
        tokio::join!(
            forward_lines(
                BufReader::with_capacity(READ_BUF, stdout),
                LogStream::Stdout,
                task.logs.clone(),
                max,
            ),
            forward_lines(
                BufReader::with_capacity(READ_BUF, stderr),
                LogStream::Stderr,
                task.logs.clone(),
                max,
            ),
        )
    };
    tokio::pin!(reading);
    let mut read_all = false;
    let outcome = loop {
        tokio::select! {
            biased;
            _ = task.cancel.cancelled() => {
                group.kill();
                let _ = process.wait().await;
                break DatumOutcome::Cancelled;
            }
            status = process.wait() => {
                // The leader is gone: kill whatever it left in its group right away.
                group.kill();
                match status {
                    Ok(s) => break outcome_of(s),
                    Err(source) => {
                        return Err(ExecutorError::Io {
                            context: format!("waiting for {program:?} (datum {})", task.datum_id),
                            source,
                        });
                    }
                }
            }
            _ = &mut reading, if !read_all => read_all = true,
        }
    };
    // Everything else the datum started (a `setsid` daemon included) goes now, before its
    // output is read: nothing may write into `/pfs/out` once the datum has ended.
    if let Some(cg) = cgroup {
        cg.kill_all().await.map_err(|source| ExecutorError::Io {
            context: format!("killing what datum {} left running", task.datum_id),
            source,
        })?;
    }
    if let Some(f) = feeder {
        f.abort();
    }
    if !read_all {
        // What is left in the pipes; a writer that escaped the kill (no cgroups) and keeps
        // them open is not waited for past the grace.
        let _ = tokio::time::timeout(DRAIN_GRACE, &mut reading).await;
    }
    Ok(outcome)
}

/// `OutOfMemory` when the cgroup's out-of-memory kill count rose during a datum that did not
/// succeed, else `outcome`.
fn oom_verdict(
    task: &DatumTask,
    outcome: DatumOutcome,
    before: Option<u64>,
    after: Option<u64>,
) -> DatumOutcome {
    match (before, after) {
        (Some(before), Some(after)) if after > before && !outcome.is_success() => {
            task.logs.line(
                LogStream::Stderr,
                "killed: the datum exceeded its memory limit (resource_limits.memory)",
            );
            DatumOutcome::OutOfMemory
        }
        _ => outcome,
    }
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
    /// The identity user code runs as, with `scratch/out` given to it.
    ///
    /// - Root host, namespace mode: `transform.user` (default root) **inside** the worker's
    ///   user namespace, which maps it to the unprivileged host id `id_base + uid`; `out`
    ///   belongs to that host id (the engine, as root, still reads and cleans it).
    /// - Root host, substitution mode: `transform.user` as a host user (none: stay root).
    /// - Normal user: only ourselves (user-namespace mode maps just our own ids).
    fn run_as(&self, task: &DatumTask) -> Result<Option<RunAs>, ExecutorError> {
        let requested = task.user.as_deref().map(user::resolve).transpose()?;
        let out = task.scratch.join("out");
        let give_out = |uid: u32, gid: u32| {
            nix::unistd::chown(
                &out,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| ExecutorError::Io {
                context: format!("giving {} to the datum's user", out.display()),
                source: e.into(),
            })
        };
        if let Some(base) = self.id_base {
            let r = requested.unwrap_or(RunAs {
                uid: nix::unistd::Uid::from_raw(0),
                gid: nix::unistd::Gid::from_raw(0),
            });
            let (uid, gid) = (r.uid.as_raw(), r.gid.as_raw());
            if uid >= crate::settings::ID_RANGE || gid >= crate::settings::ID_RANGE {
                return Err(invalid(
                    "transform.user",
                    format!(
                        "uid {uid} / gid {gid}: the sandbox maps ids below {}",
                        crate::settings::ID_RANGE
                    ),
                ));
            }
            give_out(base + uid, base + gid)?;
            return Ok(Some(r));
        }
        if let Some(r) = requested
            && r.uid != nix::unistd::Uid::effective()
        {
            give_out(r.uid.as_raw(), r.gid.as_raw())?;
        }
        if self.config.mode == PfsMode::UserNamespace
            && requested.is_some_and(|r| {
                r.uid != nix::unistd::Uid::effective() || r.gid != nix::unistd::Gid::effective()
            })
        {
            return Err(invalid(
                "transform.user",
                "running as another user is not possible in user-namespace mode".into(),
            ));
        }
        Ok(requested)
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
                    let create = capture_plan(
                        &self.config.mount_point,
                        scratch,
                        self.id_base,
                        &self.config.exposed,
                        &self.secret_mounts,
                    )?;
                    let ns = spawn::capture_namespace(&create, stack).map_err(|source| {
                        ExecutorError::Io {
                            context: format!(
                                "making the {} for worker {} of pipeline {:?}",
                                self.config.mode, self.index, self.pipeline
                            ),
                            source,
                        }
                    })?;
                    self.namespace = Some((id, ns));
                }
                self.namespace.as_ref().map(|(_, ns)| ns)
            }
        };
        Ok((stack, namespace))
    }

    /// The worker's cgroup emptied of whatever an earlier datum left (its future dropped
    /// mid-run): how the datum joins it and the out-of-memory kill count before it
    /// (nothing without cgroups).
    async fn prepare_cgroup(&mut self) -> Result<(CgroupJoin, Option<u64>), ExecutorError> {
        // Only a memory limit makes the kernel kill for memory inside the worker's cgroup.
        let limited = self.resources.limits.memory_bytes.is_some();
        let Some(cg) = self.cgroup()? else {
            return Ok((CgroupJoin::default(), None));
        };
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| ExecutorError::Io { context, source }
        };
        cg.kill_all()
            .await
            .map_err(io("emptying the worker's cgroup"))?;
        cg.renew_after_kill()
            .map_err(io("making the worker's cgroup anew"))?;
        Ok((cg.join(), if limited { cg.oom_kills() } else { None }))
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
        let (cgroups, oom_before) = self.prepare_cgroup().await?;
        let label = self.label.clone();
        let host = self.config.host.clone();
        let pipeline = self.pipeline.clone();
        let max = self.config.max_log_line;
        let config = self.config.clone();
        let (stack, namespace) = self.stack_and_namespace(scratch)?;
        let plan = datum_plan(namespace, cgroups, working_dir.as_deref(), run_as)?;
        let host_env = with_helper_path(std::env::vars_os(), config.helper_dir.as_deref());
        let task_env = task
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(sub(v))));
        let labels = [
            (crate::LABEL_VAR, label.as_str()),
            (crate::HOST_VAR, host.as_str()),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut prepared = spawn::Program::new(
            OsStr::new(&sub(program)),
            task.program
                .argv
                .iter()
                .skip(1)
                .map(|a| OsString::from(sub(a))),
            host_env.into_iter().chain(task_env).chain(labels),
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
        let cgroup = self.cgroup.as_ref();
        let outcome = supervise(
            &task,
            program,
            subst,
            process,
            (stdin, stdout, stderr),
            (group, cgroup),
            max,
        )
        .await?;
        let oom_after = oom_before.and(cgroup).and_then(WorkerCgroup::oom_kills);
        Ok(oom_verdict(&task, outcome, oom_before, oom_after))
    }

    /// Both namespace modes bind the engine's scratch directory itself on the mount point
    /// (its contents change under a running program); path substitution uses it in place.
    fn batch_scratch(&self, engine_scratch: &Path) -> Option<LiveScratch> {
        Some(LiveScratch {
            dir: engine_scratch.to_path_buf(),
            pfs: match self.config.mode {
                PfsMode::Substitution => engine_scratch.to_path_buf(),
                _ => self.config.mount_point.clone(),
            },
        })
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        // `run` takes `&mut self`, so no datum is running here; nothing else to release.
        Ok(())
    }
}

/// The host environment with `helper` (if any) first on `PATH`.
fn with_helper_path(
    host: impl Iterator<Item = (OsString, OsString)>,
    helper: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<_> = host.collect();
    let Some(helper) = helper else {
        return env;
    };
    let mut path = helper.as_os_str().to_os_string();
    match env.iter_mut().find(|(k, _)| k == "PATH") {
        Some((_, v)) => {
            path.push(":");
            path.push(&*v);
            *v = path;
        }
        None => {
            path.push(":/usr/local/bin:/usr/bin:/bin");
            env.push(("PATH".into(), path));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_directory_goes_first_on_path() {
        let os = |s: &str| OsString::from(s);
        let host = || vec![(os("HOME"), os("/root")), (os("PATH"), os("/usr/bin:/bin"))];
        assert_eq!(with_helper_path(host().into_iter(), None), host());
        let env = with_helper_path(host().into_iter(), Some(Path::new("/opt/pipectl")));
        assert_eq!(env[1], (os("PATH"), os("/opt/pipectl:/usr/bin:/bin")));
        let bare = with_helper_path(std::iter::empty(), Some(Path::new("/h")));
        assert_eq!(
            bare,
            vec![(os("PATH"), os("/h:/usr/local/bin:/usr/bin:/bin"))]
        );
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
