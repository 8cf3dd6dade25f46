//! One datum inside a warm worker pod: inputs in, program run, outputs out.
//!
//! Each datum takes three exec sessions in the `user` container (all scripts are POSIX `sh`,
//! their paths passed as arguments, never spliced into the script text):
//!
//! 1. **prepare** ([`PREPARE_TAR`]): empties `/pfs`, unpacks a tar stream of the host's
//!    scratch directory (each input and the empty `out/`) sent on stdin, and removes write
//!    permission from the inputs (effective for non-root users). With a
//!    [`SharedVolume`](crate::SharedVolume) whose host path contains the scratch directory,
//!    [`PREPARE_LINK`] links `/pfs/<input>` and `/pfs/out` to the shared directories instead
//!    and nothing is copied.
//! 2. **run** ([`RUN_WRAPPER`]): starts the program in its **own process group** (`setsid`,
//!    or `set -m` job control where `setsid` is absent) with the datum's variables added by
//!    `env NAME=VALUE ...`, writes the group id to the control directory, waits, then kills
//!    whatever is left of the group, so background children never outlive the datum (even
//!    on success). stdin, stdout and stderr flow through the exec session (stdin is read to its
//!    end into a file before the program starts); output lines go to the task's log sink.
//!    On cancel (which is how the engine enforces `datum_timeout`) or when the `run` future
//!    is dropped, a fourth session, [`KILL_GROUP`], sends `SIGKILL` to the recorded group.
//! 3. **collect** ([`COLLECT_TAR`]): streams `/pfs/out` back as a tar stream, which is
//!    unpacked into `scratch/out` on the host (symlinks stay symlinks; entries that would
//!    land outside `out/` are rejected), then empties `/pfs` again.
//!
//! With `resource_limits.memory`, an [`OOM_KILLS`](crate::oom::OOM_KILLS) session reads the
//! container's OOM kill counter right before **run** and again after a failed run; a failure
//! during which it grew is [`DatumOutcome::OutOfMemory`] (see `oom.rs`).
//!
//! Exit codes: the wrapper exits with the program's status; a status of `128 + n` (n a signal
//! number) is reported as [`DatumOutcome::Signaled`] with `n`, as shells report signals (a
//! program that itself exits with, say, 137 is indistinguishable; the engine's
//! `accept_return_code` check treats the two alike).
//!
//! Environment: the pod already has `transform.env` and the secret `env_var`s (through
//! `secretKeyRef`), so secret variables are **not** sent again; everything else of
//! [`DatumTask::env`] is passed on the wrapper's command line (it is part of the exec request,
//! which is why secrets are left out of it).
//!
//! Images without `/bin/sh` cannot be used: neither the idle entrypoint nor these scripts
//! can run. `tar` is needed for the tar data path (not with a shared volume).

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::{DatumOutcome, DatumTask, LogStream};
use tokio_util::io::SyncIoBridge;

use crate::exec::{BoxWrite, ExecError, ExecIo, ExecTransport, LogWriter, TailBuffer};
use crate::oom::{OOM_KILLS, OomWatch, classify, parse_oom_kills};

/// Empties `$1` (`/pfs`), unpacks stdin (a tar stream) into it, makes the inputs (`$2...`)
/// read-only.
pub const PREPARE_TAR: &str = r#"set -e
pfs=$1; shift
chmod -R u+w "$pfs" 2>/dev/null || true
rm -rf "$pfs"/..?* "$pfs"/.[!.]* "$pfs"/*
tar -x -o -f - -C "$pfs"
mkdir -p "$pfs/out"
for i in "$@"; do chmod -R a-w "$pfs/$i" 2>/dev/null || true; done
"#;

/// Empties `$1` (`/pfs`) and links `$1/<input>` and `$1/out` to `$2/<input>` and `$2/out`
/// (a directory on the shared volume); inputs are `$3...`.
pub const PREPARE_LINK: &str = r#"set -e
pfs=$1; src=$2; shift 2
chmod -R u+w "$pfs" 2>/dev/null || true
rm -rf "$pfs"/..?* "$pfs"/.[!.]* "$pfs"/*
for i in "$@" out; do ln -s "$src/$i" "$pfs/$i"; done
"#;

/// Runs `$4...` in its own process group with working directory `$2` (empty: unchanged),
/// records the group in file `$1` (unique per run), waits, kills the rest of the group,
/// exits with the program's status. With `$3` = `1` the session's stdin is read to its end
/// into `$1.stdin` before the program starts and the program reads that file: the session
/// then never ends while the client is still sending, which would lose the exit status
/// (kube's exec client stops reading while a stdin frame is blocked).
pub const RUN_WRAPPER: &str = r#"pgfile=$1; wd=$2; buffered=$3; shift 3
if [ -n "$wd" ]; then
  cd "$wd" || { echo "cannot change to working_dir $wd" >&2; exit 127; }
fi
if [ "$buffered" = 1 ]; then
  cat > "$pgfile.stdin" || { echo "cannot buffer stdin in $pgfile.stdin" >&2; rm -f "$pgfile.stdin"; exit 127; }
  exec 3<"$pgfile.stdin"
  rm -f "$pgfile.stdin"
else
  exec 3<&0
fi
if command -v setsid >/dev/null 2>&1; then
  setsid "$@" <&3 3<&- &
else
  set -m
  "$@" <&3 3<&- &
fi
pid=$!
exec 3<&-
echo "$pid" > "$pgfile"
wait "$pid"
rc=$?
kill -9 -"$pid" 2>/dev/null
rm -f "$pgfile"
exit "$rc"
"#;

/// Kills the process group recorded in file `$1` (waiting up to 5 s for the run to record
/// it). The file is unique per run, so a late kill can never hit a later datum.
pub const KILL_GROUP: &str = r#"pgfile=$1; i=0
while [ ! -s "$pgfile" ] && [ "$i" -lt 50 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
pid=$(cat "$pgfile" 2>/dev/null) || exit 0
[ -n "$pid" ] && kill -9 -"$pid" 2>/dev/null
rm -f "$pgfile"
exit 0
"#;

fn run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "run-{}-{nanos:x}-{}.pgid",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Streams `$1/out` as a tar archive on stdout, then empties `$1`.
pub const COLLECT_TAR: &str = r#"pfs=$1
mkdir -p "$pfs/out"
(cd "$pfs/out" && tar -c -f - .)
rc=$?
chmod -R u+w "$pfs" 2>/dev/null
rm -rf "$pfs"/..?* "$pfs"/.[!.]* "$pfs"/*
exit "$rc"
"#;

/// Empties `$1`.
pub const CLEAN: &str = r#"pfs=$1
chmod -R u+w "$pfs" 2>/dev/null
rm -rf "$pfs"/..?* "$pfs"/.[!.]* "$pfs"/*
exit 0
"#;

/// What went wrong with a datum that is not the user code's doing.
#[derive(Debug, thiserror::Error)]
pub enum DatumError {
    /// An exec session failed (the caller looks at the pod to find out why).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A control step exited non-zero (missing `tar`, full disk, ...).
    #[error("{step} in pod {pod:?} exited with {code}: {stderr}")]
    Step {
        /// `prepare`, `collect`, ...
        step: &'static str,
        /// The pod.
        pod: String,
        /// Exit code.
        code: i32,
        /// The end of its stderr.
        stderr: String,
    },
    /// Host-side I/O (reading the scratch directory, writing outputs).
    #[error("{context}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The task cannot be expressed (names the field).
    #[error("{field}: {message}")]
    Invalid {
        /// The task field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn sh(script: &str, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".to_string(),
    ];
    v.extend(args);
    v
}

/// Where one datum runs.
#[derive(Debug, Clone)]
pub struct DatumTarget {
    /// The exec transport.
    pub exec: Arc<dyn ExecTransport>,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// In-pod `/pfs`.
    pub pfs: String,
    /// In-pod control directory.
    pub control: String,
    /// `(host path, in-pod path)` of a shared volume, if configured.
    pub shared: Option<(PathBuf, String)>,
    /// Names of variables the pod already gets from secrets (not resent).
    pub secret_env: Vec<String>,
    /// How long to wait for a killed session to end.
    pub kill_grace: Duration,
    /// The OOM check, when the pipeline has `resource_limits.memory` (see `oom.rs`).
    pub oom: Option<OomWatch>,
}

impl DatumTarget {
    async fn step(
        &self,
        step: &'static str,
        argv: Vec<String>,
        mut io: ExecIo,
    ) -> Result<(), DatumError> {
        let tail = TailBuffer::new(4096);
        io.stderr = Some(Box::pin(tail.clone()));
        let code = self
            .exec
            .exec(&self.pod, &self.container, &argv, io)
            .await?;
        if code != 0 {
            return Err(DatumError::Step {
                step,
                pod: self.pod.clone(),
                code,
                stderr: tail.text(),
            });
        }
        Ok(())
    }

    /// Kills the process group recorded in `pgfile` (best effort).
    pub async fn kill(&self, pgfile: &str) {
        let argv = sh(KILL_GROUP, [pgfile.to_string()]);
        if let Err(e) = self
            .exec
            .exec(&self.pod, &self.container, &argv, ExecIo::default())
            .await
        {
            tracing::warn!(pod = %self.pod, error = %ErrorChain(&e), "could not kill a datum's process group");
        }
    }

    /// Runs one datum to completion (see the module docs).
    pub async fn run(&self, task: &DatumTask) -> Result<DatumOutcome, DatumError> {
        if task.cancel.is_cancelled() {
            return Ok(DatumOutcome::Cancelled);
        }
        for name in &task.inputs {
            // Input names become paths in the pod's shell scripts: keep them one component.
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(DatumError::Invalid {
                    field: "input.name".into(),
                    message: format!(
                        "input name {name:?} cannot be used as a directory under /pfs \
                         (expected one path component)"
                    ),
                });
            }
        }
        let pgfile = format!("{}/{}", self.control.trim_end_matches('/'), run_id());
        let argv = self.program_argv(task, &pgfile)?;
        let shared_dir = self.shared_dir(&task.scratch);
        let prepare = async {
            match &shared_dir {
                Some(dir) => {
                    let mut args = vec![self.pfs.clone(), dir.clone()];
                    args.extend(task.inputs.iter().cloned());
                    self.step("prepare", sh(PREPARE_LINK, args), ExecIo::default())
                        .await
                }
                None => self.upload(task).await,
            }
        };
        // A cancel during a long upload must not wait for it to finish.
        tokio::select! {
            res = prepare => res?,
            () = task.cancel.cancelled() => {
                let _ = self
                    .step("clean", sh(CLEAN, [self.pfs.clone()]), ExecIo::default())
                    .await;
                return Ok(DatumOutcome::Cancelled);
            }
        }

        let outcome = self.run_watched(task, argv, &pgfile).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // Leave /pfs empty for the next datum when the pod is still usable.
                let _ = self
                    .step("clean", sh(CLEAN, [self.pfs.clone()]), ExecIo::default())
                    .await;
                return Err(e);
            }
        };
        match shared_dir {
            Some(_) => {
                self.step("clean", sh(CLEAN, [self.pfs.clone()]), ExecIo::default())
                    .await?
            }
            None => self.download(task).await?,
        }
        Ok(outcome)
    }

    /// [`run_program`](Self::run_program), classified as out-of-memory when the pipeline has
    /// a memory limit, the run failed and the cgroup's OOM kill counter grew meanwhile.
    async fn run_watched(
        &self,
        task: &DatumTask,
        argv: Vec<String>,
        pgfile: &str,
    ) -> Result<DatumOutcome, DatumError> {
        let Some(watch) = &self.oom else {
            return self.run_program(task, argv, pgfile).await;
        };
        let before = self.oom_kills(watch).await?;
        let outcome = self.run_program(task, argv, pgfile).await?;
        if outcome.is_success() || outcome == DatumOutcome::Cancelled {
            return Ok(outcome);
        }
        let after = match before {
            Some(_) => self.oom_kills(watch).await?,
            None => None,
        };
        if after.is_none() {
            watch.warn_unknown(&self.pod);
        }
        Ok(classify(outcome, before, after))
    }

    /// Reads the container's OOM kill counter (`None`: unreadable).
    async fn oom_kills(&self, watch: &OomWatch) -> Result<Option<u64>, DatumError> {
        let out = TailBuffer::new(256);
        let io = ExecIo {
            stdout: Some(Box::pin(out.clone())),
            ..Default::default()
        };
        self.step("oom-count", sh(OOM_KILLS, [watch.cgroup.clone()]), io)
            .await?;
        Ok(parse_oom_kills(&out.text()))
    }

    fn shared_dir(&self, scratch: &Path) -> Option<String> {
        let (host, pod) = self.shared.as_ref()?;
        let rel = scratch.strip_prefix(host).ok()?;
        let mut out = pod.trim_end_matches('/').to_string();
        for c in rel.components() {
            match c {
                Component::Normal(s) => {
                    out.push('/');
                    out.push_str(s.to_str()?);
                }
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(out)
    }

    fn program_argv(&self, task: &DatumTask, pgfile: &str) -> Result<Vec<String>, DatumError> {
        if task.program.argv.is_empty() {
            return Err(DatumError::Invalid {
                field: "transform.cmd".into(),
                message: "nothing to run: no transform.cmd".into(),
            });
        }
        let mut args = vec![
            pgfile.to_string(),
            task.working_dir.clone().unwrap_or_default(),
            if task.program.stdin.is_some() {
                "1"
            } else {
                "0"
            }
            .to_string(),
            "env".to_string(),
        ];
        for (k, v) in &task.env {
            if k.is_empty() || k.contains('=') || k.starts_with('-') || k.contains('\0') {
                return Err(DatumError::Invalid {
                    field: "transform.env".into(),
                    message: format!(
                        "environment variable name {k:?} cannot be passed (expected a \
                         non-empty name without '=' that does not start with '-')"
                    ),
                });
            }
            if v.contains('\0') {
                return Err(DatumError::Invalid {
                    field: "transform.env".into(),
                    message: format!("the value of {k:?} contains a NUL byte"),
                });
            }
            if self.secret_env.iter().any(|s| s == k) {
                continue;
            }
            args.push(format!("{k}={v}"));
        }
        if task.program.argv[0].contains('=') {
            // `env` would take it for an assignment.
            return Err(DatumError::Invalid {
                field: "transform.cmd[0]".into(),
                message: format!(
                    "program {:?} contains '=', which the in-pod launcher (env) cannot run",
                    task.program.argv[0]
                ),
            });
        }
        args.extend(task.program.argv.iter().cloned());
        Ok(sh(RUN_WRAPPER, args))
    }

    async fn upload(&self, task: &DatumTask) -> Result<(), DatumError> {
        let (writer, reader) = tokio::io::duplex(256 * 1024);
        let scratch = task.scratch.clone();
        let builder = tokio::task::spawn_blocking(move || pack_scratch(&scratch, writer));
        let mut args = vec![self.pfs.clone()];
        args.extend(task.inputs.iter().cloned());
        let io = ExecIo {
            stdin: Some(Box::pin(reader)),
            ..Default::default()
        };
        let step = self.step("prepare", sh(PREPARE_TAR, args), io).await;
        let packed = builder.await.map_err(|e| DatumError::Io {
            context: format!("packing {}", task.scratch.display()),
            source: std::io::Error::other(e),
        })?;
        match (step, packed) {
            // The session failed: the packer only saw a closed pipe.
            (Err(e @ DatumError::Exec(_)), _) => Err(e),
            // The remote side stopped reading (e.g. no `tar` in the image): its stderr
            // explains more than our broken pipe.
            (Err(e), Err(DatumError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Err(e)
            }
            // A host-side problem reading the scratch directory explains a failed prepare
            // better than tar's complaint about a truncated stream.
            (_, Err(e)) => Err(e),
            (step, Ok(())) => step,
        }
    }

    async fn download(&self, task: &DatumTask) -> Result<(), DatumError> {
        let (writer, reader) = tokio::io::duplex(256 * 1024);
        let out = task.scratch.join("out");
        let unpacker = tokio::task::spawn_blocking(move || unpack_outputs(reader, &out));
        let io = ExecIo {
            stdout: Some(Box::pin(writer)),
            ..Default::default()
        };
        let step = self
            .step("collect", sh(COLLECT_TAR, [self.pfs.clone()]), io)
            .await;
        let unpacked = unpacker.await.map_err(|e| DatumError::Io {
            context: format!(
                "unpacking outputs into {}",
                task.scratch.join("out").display()
            ),
            source: std::io::Error::other(e),
        })?;
        step?;
        unpacked
    }

    async fn run_program(
        &self,
        task: &DatumTask,
        argv: Vec<String>,
        pgfile: &str,
    ) -> Result<DatumOutcome, DatumError> {
        let stdin: Option<crate::exec::BoxRead> = task
            .program
            .stdin
            .clone()
            .map(|b| Box::pin(std::io::Cursor::new(b)) as crate::exec::BoxRead);
        let stdout: BoxWrite = Box::pin(LogWriter::new(task.logs.clone(), LogStream::Stdout));
        let stderr: BoxWrite = Box::pin(LogWriter::new(task.logs.clone(), LogStream::Stderr));
        let io = ExecIo {
            // No stdin: the session is opened without one, so the program reads EOF.
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let exec = self.exec.clone();
        let (pod, container) = (self.pod.clone(), self.container.clone());
        let session = async move { exec.exec(&pod, &container, &argv, io).await };
        tokio::pin!(session);
        let mut guard = KillOnDrop {
            target: Some((self.clone(), pgfile.to_string())),
        };

        tokio::select! {
            res = &mut session => {
                guard.target = None;
                return Ok(exit_outcome(res?));
            }
            () = task.cancel.cancelled() => {}
        };
        // Keep driving the session while the kill runs: the group may not be recorded yet.
        // The wrapper exits once its group is dead; don't wait forever for the session.
        let (_, ended) = tokio::join!(
            self.kill(pgfile),
            tokio::time::timeout(self.kill_grace, &mut session)
        );
        guard.target = None;
        match ended {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => tracing::warn!(pod = %self.pod, "killed datum's exec session did not end"),
        }
        Ok(DatumOutcome::Cancelled)
    }
}

/// Kills the datum's group when the `run` future is dropped mid-flight.
struct KillOnDrop {
    target: Option<(DatumTarget, String)>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some((target, pgfile)) = self.target.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move { target.kill(&pgfile).await });
        }
    }
}

/// Maps the wrapper's exit status to an outcome: `128 + n` (n a signal number) is signal
/// `n`, anything else an exit code.
pub fn exit_outcome(code: i32) -> DatumOutcome {
    if (129..=128 + 64).contains(&code) {
        DatumOutcome::Signaled { signal: code - 128 }
    } else {
        DatumOutcome::Exited { exit_code: code }
    }
}

/// Writes a tar stream of `scratch`'s children (not `scratch` itself) to `writer`.
fn pack_scratch(scratch: &Path, writer: tokio::io::DuplexStream) -> Result<(), DatumError> {
    let io_err = |context: String| move |source| DatumError::Io { context, source };
    let mut builder = tar::Builder::new(SyncIoBridge::new(writer));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    let entries = std::fs::read_dir(scratch).map_err(io_err(format!(
        "reading scratch directory {}",
        scratch.display()
    )))?;
    let mut children: Vec<_> = entries
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err(format!(
            "reading scratch directory {}",
            scratch.display()
        )))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let name = child.file_name();
        let ctx = format!("packing {}", path.display());
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(ctx.clone()))?;
        if meta.is_dir() {
            builder.append_dir_all(&name, &path).map_err(io_err(ctx))?;
        } else {
            builder
                .append_path_with_name(&path, &name)
                .map_err(io_err(ctx))?;
        }
    }
    let mut bridge = builder
        .into_inner()
        .map_err(io_err("finishing the input tar stream".into()))?;
    std::io::Write::flush(&mut bridge).map_err(io_err("flushing the input tar stream".into()))?;
    bridge
        .shutdown()
        .map_err(io_err("closing the input tar stream".into()))?;
    Ok(())
}

/// Unpacks a tar stream into `out`: regular files, directories, symlinks (kept, never
/// followed) and hard links; anything that would land outside `out` is rejected.
pub fn unpack_outputs(
    reader: impl tokio::io::AsyncRead + Unpin,
    out: &Path,
) -> Result<(), DatumError> {
    let ctx = |what: &str| format!("unpacking outputs into {}: {what}", out.display());
    std::fs::create_dir_all(out).map_err(|source| DatumError::Io {
        context: ctx("creating the directory"),
        source,
    })?;
    let mut archive = tar::Archive::new(SyncIoBridge::new(reader));
    archive.set_overwrite(true);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    archive.set_preserve_mtime(true);
    let result = (|| {
        for entry in archive.entries().map_err(|source| DatumError::Io {
            context: ctx("reading the tar stream"),
            source,
        })? {
            let mut entry = entry.map_err(|source| DatumError::Io {
                context: ctx("reading the tar stream"),
                source,
            })?;
            let path = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            use tar::EntryType as T;
            match entry.header().entry_type() {
                T::Regular | T::Directory | T::Symlink | T::Link | T::Continuous => {}
                other => {
                    return Err(DatumError::Io {
                        context: ctx(&format!("output {path:?}")),
                        source: std::io::Error::other(format!(
                            "unsupported file type {other:?} (only files, directories and \
                             symlinks can be outputs)"
                        )),
                    });
                }
            }
            let inside = entry.unpack_in(out).map_err(|source| DatumError::Io {
                context: ctx(&format!("writing {path:?}")),
                source,
            })?;
            if !inside {
                return Err(DatumError::Io {
                    context: ctx(&format!("output {path:?}")),
                    source: std::io::Error::other("path escapes /pfs/out"),
                });
            }
        }
        Ok(())
    })();
    // Drain the rest (tar's end padding) so the sender never blocks on a full pipe.
    let mut rest = archive.into_inner();
    let _ = std::io::copy(&mut rest.by_ref(), &mut std::io::sink());
    result
}
