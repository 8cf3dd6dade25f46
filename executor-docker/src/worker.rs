//! [`DockerWorker`]: one warm container; each datum is one exec inside it.
//!
//! # How a datum runs
//!
//! Output lines reach the [`LogSink`] as they come, stdout and stderr apart, split by the
//! core's [`LineSplitter`] (a line longer than its maximum is delivered in pieces).
//!
//! The exec runs `sh -c WRAPPER sh <argv...>` as `transform.user` in `working_dir` with the
//! datum's environment (secrets included) passed **at exec time**, so `docker inspect` of the
//! container never shows them. `stdin` is streamed over the exec's attached stdin and
//! half-closed (EOF); without one the program's stdin is `/dev/null`. The wrapper runs the user
//! program, waits for it, then sends `SIGKILL` to every process
//! the user can signal in the container (`kill -9 -1`, which spares PID 1, the keep-alive, and
//! the wrapper itself): background children never outlive their datum, even on success.
//! On cancellation (which is how the engine enforces `datum_timeout`) or a dropped future the
//! executor runs `kill -9 -1` as root in the container: the whole process tree of the datum
//! dies, the container (the worker) lives.
//!
//! Exit statuses come from the wrapper's shell, so a program killed by signal `n` is reported
//! as [`DatumOutcome::Signaled`] with `n` (status `128 + n`); a program that *exits* with such a
//! status is reported the same way.
//!
//! # Out of memory
//!
//! With `resource_limits.memory` the container's memory cgroup has that limit (and no swap
//! beyond it). A datum whose process the kernel OOM-kills ends as
//! [`DatumOutcome::OutOfMemory`] (failure kind `oom`), told apart from a plain `kill -9`
//! (also status 137) by the container cgroup's `oom_kill` counter (`oom.rs`): a datum that
//! did not exit 0 is out of memory when the counter grew during it. With a daemon on this
//! machine the counter is read from the host after every datum (no cost); otherwise one root
//! exec reads it after each failed datum (about 50 ms), and then an OOM kill inside a datum
//! that still exits 0 (user code surviving a killed child) is only seen at the next failed
//! datum of that worker, which is reported as `oom`. The counter, not `docker inspect`'s `State.OOMKilled`, because Docker
//! sets that only when the container's main process dies: an exec'd process that the kernel
//! kills leaves the keep-alive (and so the worker) running, which is checked by the tests,
//! and the next datum runs in the same container. If the OOM killer takes the keep-alive
//! itself, the container is dead: the datum is still `OutOfMemory` and the next datum gets a
//! replacement container.
//!
//! # Worker loss
//!
//! When the container is gone or stopped (killed, OOM-killed, removed), the running datum
//! returns [`ExecutorError::WorkerLost`] and the next [`Worker::run`] first replaces the
//! container (same name, labels and mounts). A container found dead *before* a datum starts is
//! replaced and the datum runs on the replacement.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::{Stream, StreamExt};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::lines::LineSplitter;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, ExecutorError, LiveScratch, LogSink, LogStream, Worker,
};

use crate::config::DataMode;
use crate::container::{
    BACKEND, Blueprint, Inner, KILL_GRACE, WorkerContainer, backend_err, create_worker_container,
    is_status, remove_container, remove_work_dirs,
};
use crate::{oom, staging};

/// Runs the user program (with the exec's stdin when the datum has one, else `/dev/null`), then
/// kills whatever it left behind.
const WRAPPER: &str = r#"if [ -n "${__PIPELINE_STDIN+x}" ]; then unset __PIPELINE_STDIN; "$@"; else "$@" </dev/null; fi; __rc=$?; kill -9 -1 2>/dev/null; exit $__rc"#;

/// [`DockerWorker::container_state`]'s reason for a container the kernel OOM-killed.
const OOM_KILLED: &str = "container was OOM-killed";

/// Environment variable telling the wrapper that stdin is attached (unset before user code runs).
const STDIN_VAR: &str = "__PIPELINE_STDIN";

/// A warm worker container of one pipeline version.
#[derive(Debug)]
pub struct DockerWorker {
    inner: Arc<Inner>,
    blueprint: Arc<Blueprint>,
    index: usize,
    container: Option<WorkerContainer>,
    lost: bool,
    pending_kill: PendingKill,
    /// The container's `oom_kill` count after the last datum (memory-limited workers).
    oom_seen: AtomicU64,
    /// The host file with the current container's OOM counter, once looked for.
    oom_file: tokio::sync::OnceCell<Option<std::path::PathBuf>>,
    /// Whether the OOM counter was found unreadable (warned once).
    oom_unreadable: AtomicBool,
}

/// Why one attempt to run a datum did not produce an outcome.
enum Failure {
    /// The container was not running when the datum started: replace it and try again.
    NotRunning(String),
    /// The container died during the datum.
    Lost(String),
    /// Anything else.
    Error(ExecutorError),
}

impl From<ExecutorError> for Failure {
    fn from(e: ExecutorError) -> Self {
        Failure::Error(e)
    }
}

impl DockerWorker {
    pub(crate) fn new(
        inner: Arc<Inner>,
        blueprint: Arc<Blueprint>,
        index: usize,
        container: WorkerContainer,
    ) -> Self {
        DockerWorker {
            inner,
            blueprint,
            index,
            container: Some(container),
            lost: false,
            pending_kill: PendingKill::default(),
            oom_seen: AtomicU64::new(0),
            oom_file: tokio::sync::OnceCell::new(),
            oom_unreadable: AtomicBool::new(false),
        }
    }

    /// The name of the current worker container, if any.
    pub fn container_name(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.name.as_str())
    }

    /// The id of the current worker container, if any.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id.as_str())
    }

    fn lost_error(&self, reason: String) -> ExecutorError {
        ExecutorError::WorkerLost {
            pipeline: self.blueprint.pipeline.clone(),
            worker: self.index,
            reason,
        }
    }

    async fn replace(&mut self) -> Result<(), ExecutorError> {
        if let Some(old) = self.container.take() {
            remove_container(&self.inner.docker, &old.id).await?;
            remove_work_dirs(&old.work_dir);
        }
        let c = create_worker_container(&self.inner, &self.blueprint, self.index).await?;
        tracing::info!(container = %c.name, "replaced worker container");
        self.container = Some(c);
        self.lost = false;
        self.oom_seen.store(0, Ordering::Relaxed);
        self.oom_file = tokio::sync::OnceCell::new();
        Ok(())
    }

    async fn run_once(&self, task: &DatumTask) -> Result<DatumOutcome, Failure> {
        let Some(container) = self.container.as_ref() else {
            return Err(Failure::NotRunning("no container".to_string()));
        };
        let docker = &self.inner.docker;
        let exec_config = exec_config(task)?;

        let staged = self.stage_inputs(container, task).await?;

        // Cancelled before anything ran: give the inputs back and report it.
        if task.cancel.is_cancelled() {
            if let Some(s) = staged {
                s.finish(&task.scratch.join("out"))?;
            }
            return Ok(DatumOutcome::Cancelled);
        }

        // Run.
        let created = docker
            .create_exec(&container.id, exec_config)
            .await
            .map_err(|e| classify(e, &container.name, "creating the datum exec"))?;
        let mut guard = KillGuard {
            docker: docker.clone(),
            container: container.id.clone(),
            exec_id: created.id.clone(),
            armed: true,
            pending: self.pending_kill.clone(),
        };
        let started = docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| classify(e, &container.name, "starting the datum exec"))?;
        let StartExecResults::Attached { output, mut input } = started else {
            return Err(Failure::Error(ExecutorError::Backend {
                backend: BACKEND,
                message: "exec started detached".to_string(),
                source: None,
            }));
        };
        // Feed stdin concurrently with reading the output, then half-close it (EOF for the
        // program). A program that never reads it ends the exec; the write error is ignored.
        let stdin = task.program.stdin.clone();
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if let Some(bytes) = stdin {
                let _ = input.write_all(&bytes).await;
            }
            let _ = input.shutdown().await;
        });
        let mut ended = pump(output, task, docker, &container.id).await;
        feeder.abort();

        let mut exit = exec_exit_code(docker, &created.id).await;
        if exit.is_none() && ended.stream_error.is_none() && !ended.cancelled {
            // The program closed its output but still runs: wait for it, still cancellable.
            exit = wait_running_exec(docker, &container.id, &created.id, task, &mut ended).await;
        }
        guard.armed = false;
        let suspicious = ended.stream_error.is_some() || exit.is_none_or(|c| c >= 128);
        if suspicious && let Some(reason) = self.container_dead(&container.id).await? {
            if let Some(s) = staged {
                s.abandon()?;
            }
            return Err(Failure::Lost(reason));
        }
        if suspicious && !ended.cancelled {
            // The wrapper itself may have been killed (by the user code, or the OOM killer)
            // before its own clean-up: kill whatever is left, as root.
            kill_all(docker, &container.id).await?;
        }
        if let Some(e) = ended.stream_error {
            if let Some(s) = staged {
                s.abandon()?;
            }
            return Err(Failure::Error(e));
        }

        let oom = !ended.cancelled
            && self.oom_killed_since_last(container, exit).await?
            && exit != Some(0);
        self.collect_outputs(container, task, staged).await?;

        if let Some(msg) = unknown_user_message(exit, &ended.first_output) {
            return Err(Failure::Error(ExecutorError::InvalidTask {
                field: "transform.user".to_string(),
                message: format!(
                    "{:?} does not exist in image {:?}: {msg}",
                    task.user.as_deref().unwrap_or_default(),
                    self.blueprint.image
                ),
            }));
        }
        Ok(match (ended.cancelled, oom) {
            (true, _) => DatumOutcome::Cancelled,
            (false, true) => DatumOutcome::OutOfMemory,
            (false, false) => shell_outcome(exit),
        })
    }

    /// Whether the kernel OOM-killed a process of the container since the last read: its
    /// memory cgroup's `oom_kill` counter grew. Always false without a memory limit; read from
    /// the host when possible, else by an exec only after a datum that failed (`exit`).
    async fn oom_killed_since_last(
        &self,
        container: &WorkerContainer,
        exit: Option<i64>,
    ) -> Result<bool, Failure> {
        if self.blueprint.limits.memory.is_none() {
            return Ok(false);
        }
        let count = match self.oom_host_file(container).await {
            Some(file) => oom::read_host_counter(file),
            None if exit == Some(0) => return Ok(false),
            None => {
                let text =
                    read_root(&self.inner.docker, &container.id, oom::COUNTER_SCRIPT).await?;
                oom::oom_kill_count(&text)
            }
        };
        let Some(count) = count else {
            if !self.oom_unreadable.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    worker = self.index,
                    "the container's memory cgroup shows no oom_kill counter: datums killed for memory are reported as signal 9, not oom"
                );
            }
            return Ok(false);
        };
        Ok(count > self.oom_seen.swap(count, Ordering::Relaxed))
    }

    /// The host file of the container's OOM counter (bind mode: a daemon on this machine).
    async fn oom_host_file(&self, container: &WorkerContainer) -> Option<&std::path::Path> {
        self.oom_file
            .get_or_init(|| async {
                container.bind.as_ref()?;
                let info = self
                    .inner
                    .docker
                    .inspect_container(&container.id, None)
                    .await
                    .ok()?;
                let pid = info.state?.pid?;
                oom::host_counter_file(pid, &container.id)
            })
            .await
            .as_deref()
    }

    /// Makes the datum's inputs appear under `/pfs` in the container: staged next to a bind
    /// mount (returned, to be finished or abandoned), or uploaded.
    async fn stage_inputs(
        &self,
        container: &WorkerContainer,
        task: &DatumTask,
    ) -> Result<Option<staging::StagedBind>, Failure> {
        match (&self.inner.mode, &container.bind) {
            // A datum-batching program runs in the bind directory itself, filled by the
            // engine (`batch_scratch`): nothing to move in (nor out, see `collect_outputs`).
            (DataMode::Bind, Some(dirs)) if dirs.input == task.scratch => Ok(None),
            (DataMode::Bind, Some(dirs)) => {
                let (dirs, scratch, inputs) =
                    (dirs.clone(), task.scratch.clone(), task.inputs.clone());
                Ok(Some(
                    blocking(move || staging::stage_bind(&dirs, &scratch, &inputs)).await?,
                ))
            }
            _ => {
                let docker = &self.inner.docker;
                run_root(docker, &container.id, "rm -rf /pfs && mkdir -p /pfs").await?;
                upload_inputs(docker, container, task).await?;
                Ok(None)
            }
        }
    }

    /// Brings `/pfs/out` back to `task.scratch/out` and leaves nothing of the datum in the
    /// container.
    async fn collect_outputs(
        &self,
        container: &WorkerContainer,
        task: &DatumTask,
        staged: Option<staging::StagedBind>,
    ) -> Result<(), Failure> {
        if container
            .bind
            .as_ref()
            .is_some_and(|d| d.input == task.scratch)
        {
            return Ok(()); // datum batching: the outputs are where the engine reads them
        }
        let out_dir = task.scratch.join("out");
        match staged {
            Some(s) => blocking(move || s.finish(&out_dir)).await?,
            None => {
                let docker = &self.inner.docker;
                download_outputs(docker, container, &out_dir).await?;
                run_root(docker, &container.id, "rm -rf /pfs && mkdir -p /pfs").await?;
            }
        }
        Ok(())
    }

    /// `Some(reason)` when the container is not running any more. Called after a datum ended
    /// suspiciously (killed by a signal, stream error): a container being killed can still be
    /// reported as running for a moment, so it is checked a few times over ~0.5 s.
    async fn container_dead(&self, id: &str) -> Result<Option<String>, ExecutorError> {
        for _ in 0..10 {
            match self.container_state(id).await? {
                None => tokio::time::sleep(Duration::from_millis(50)).await,
                dead => return Ok(dead),
            }
        }
        Ok(None)
    }

    async fn container_state(&self, id: &str) -> Result<Option<String>, ExecutorError> {
        match self.inner.docker.inspect_container(id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                Ok(if state.running == Some(true) {
                    None
                } else if state.oom_killed == Some(true) {
                    Some(OOM_KILLED.to_string())
                } else {
                    Some(format!(
                        "container exited with code {}",
                        state.exit_code.unwrap_or(-1)
                    ))
                })
            }
            Err(e) if is_status(&e, 404) => Ok(Some("container was removed".to_string())),
            Err(e) => Err(backend_err(format!("inspecting container {id}"), e)),
        }
    }
}

/// Runs filesystem work (renames, or copies across filesystems) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExecutorError> + Send + 'static,
) -> Result<T, ExecutorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExecutorError::Backend {
            backend: BACKEND,
            message: format!("staging task failed: {e}"),
            source: None,
        })?
}

/// Archive mode: streams the datum's inputs as a tar into `/pfs`.
async fn upload_inputs(
    docker: &Docker,
    container: &WorkerContainer,
    task: &DatumTask,
) -> Result<(), Failure> {
    let (writer, mut rx) = crate::pipe::writer();
    let scratch = task.scratch.clone();
    let inputs = task.inputs.clone();
    let producer = tokio::task::spawn_blocking(move || {
        // The writer is moved in and dropped (ending the stream) when the tar is done.
        staging::write_inputs_tar(writer, &scratch, &inputs).map(drop)
    });
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let opts = UploadToContainerOptionsBuilder::default()
        .path("/pfs")
        .build();
    let uploaded = docker
        .upload_to_container(&container.id, Some(opts), bollard::body_try_stream(body))
        .await;
    let built = producer.await.map_err(|e| ExecutorError::Backend {
        backend: BACKEND,
        message: format!("archiving inputs: {e}"),
        source: None,
    })?;
    // An upload error first: it explains a tar writer that lost its reader.
    uploaded.map_err(|e| classify(e, &container.name, "uploading /pfs"))?;
    built.map_err(Failure::Error)
}

/// Archive mode: streams the tar of `/pfs/out` into `out_dir`.
async fn download_outputs(
    docker: &Docker,
    container: &WorkerContainer,
    out_dir: &std::path::Path,
) -> Result<(), Failure> {
    let (tx, reader) = crate::pipe::reader();
    let dest = out_dir.to_path_buf();
    let consumer = tokio::task::spawn_blocking(move || staging::unpack_outputs(reader, &dest));
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path("/pfs/out")
        .build();
    let mut stream = docker.download_from_container(&container.id, Some(opts));
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                if tx.send(Ok(bytes)).await.is_err() {
                    break; // the unpacker stopped (it reports why)
                }
            }
            Err(e) => {
                let _ = tx
                    .send(Err(std::io::Error::other("download of /pfs/out failed")))
                    .await;
                failure = Some(classify(e, &container.name, "downloading /pfs/out"));
                break;
            }
        }
    }
    drop(tx);
    let unpacked = consumer.await.map_err(|e| ExecutorError::Backend {
        backend: BACKEND,
        message: format!("unpacking outputs: {e}"),
        source: None,
    })?;
    if let Some(f) = failure {
        return Err(f);
    }
    unpacked.map(drop).map_err(Failure::Error)
}

/// Maps an API error during a datum: a stopped or vanished container is
/// [`Failure::NotRunning`], anything else a backend error.
fn classify(e: bollard::errors::Error, container: &str, what: &str) -> Failure {
    if is_status(&e, 409) || is_status(&e, 404) {
        Failure::NotRunning(format!("{what} in container {container}: {e}"))
    } else {
        Failure::Error(backend_err(format!("{what} in container {container}"), e))
    }
}

fn exec_config(task: &DatumTask) -> Result<CreateExecOptions<String>, ExecutorError> {
    if task.program.argv.is_empty() {
        return Err(ExecutorError::InvalidTask {
            field: "transform.cmd".to_string(),
            message: "expected at least one element".to_string(),
        });
    }
    let mut env = Vec::with_capacity(task.env.len() + 1);
    for (k, v) in &task.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(ExecutorError::InvalidTask {
                field: "env".to_string(),
                message: format!(
                    "variable {:?} has an empty name, `=` in its name or a NUL byte",
                    k.replace('\0', "\\0")
                ),
            });
        }
        env.push(format!("{k}={v}"));
    }
    let has_stdin = task.program.stdin.is_some();
    if has_stdin {
        env.push(format!("{STDIN_VAR}=1"));
    }
    let mut cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        WRAPPER.to_string(),
        "sh".to_string(),
    ];
    cmd.extend(task.program.argv.iter().cloned());
    Ok(CreateExecOptions {
        cmd: Some(cmd),
        env: Some(env),
        user: task.user.clone(),
        working_dir: task.working_dir.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(has_stdin),
        tty: Some(false),
        ..Default::default()
    })
}

/// The background kill of a dropped datum; the next `run` waits for it, so it can never hit
/// the next datum's processes.
type PendingKill = Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>;

/// Kills every process of the running datum when a `run` future is dropped mid-datum.
struct KillGuard {
    docker: Docker,
    container: String,
    exec_id: String,
    armed: bool,
    pending: PendingKill,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            let container = std::mem::take(&mut self.container);
            let exec_id = std::mem::take(&mut self.exec_id);
            let task = handle.spawn(async move {
                // Kill until the exec has ended: a first kill can race with its start.
                for _ in 0..50 {
                    if let Err(e) = kill_all(&docker, &container).await {
                        tracing::warn!(
                            "killing the processes of a dropped datum: {}",
                            ErrorChain(&e)
                        );
                        return;
                    }
                    match docker.inspect_exec(&exec_id).await {
                        Ok(i) if i.running == Some(true) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ => return,
                    }
                }
            });
            if let Ok(mut slot) = self.pending.lock() {
                *slot = Some(task);
            }
        }
    }
}

/// `kill -9 -1` as root inside the container: every process but PID 1 (the keep-alive).
async fn kill_all(docker: &Docker, container: &str) -> Result<(), ExecutorError> {
    run_root(docker, container, "kill -9 -1 2>/dev/null; exit 0")
        .await
        .map_err(|f| match f {
            Failure::Error(e) => e,
            Failure::NotRunning(m) | Failure::Lost(m) => ExecutorError::Backend {
                backend: BACKEND,
                message: m,
                source: None,
            },
        })
}

/// Runs a shell snippet as root in the container and waits for it.
async fn run_root(docker: &Docker, container: &str, script: &str) -> Result<(), Failure> {
    read_root(docker, container, script).await.map(drop)
}

/// Runs a shell snippet as root in the container, waits for it and returns its stdout
/// (at most 64 KiB are kept).
async fn read_root(docker: &Docker, container: &str, script: &str) -> Result<String, Failure> {
    let cfg = CreateExecOptions::<String> {
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        user: Some("0".into()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, cfg)
        .await
        .map_err(|e| classify(e, container, "creating a helper exec"))?;
    let started = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| classify(e, container, "starting a helper exec"))?;
    let mut stdout = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(item) = output.next().await {
            let item = item.map_err(|e| classify(e, container, "running a helper exec"))?;
            if let LogOutput::StdOut { message } = item
                && stdout.len() < 64 * 1024
            {
                stdout.extend_from_slice(&message);
            }
        }
    }
    match exec_exit_code(docker, &created.id).await {
        Some(0) => Ok(String::from_utf8_lossy(&stdout).into_owned()),
        code => Err(Failure::Error(ExecutorError::Backend {
            backend: BACKEND,
            message: format!("helper `{script}` in container {container} ended with {code:?}"),
            source: None,
        })),
    }
}

/// Waits for an exec whose output streams already ended, honouring the datum's cancellation
/// (which kills its processes). Returns its exit code when known.
async fn wait_running_exec(
    docker: &Docker,
    container: &str,
    exec_id: &str,
    task: &DatumTask,
    ended: &mut Ended,
) -> Option<i64> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                match docker.inspect_exec(exec_id).await {
                    Ok(i) if i.running == Some(false) => return i.exit_code,
                    Ok(_) => {}
                    Err(e) => {
                        ended.stream_error = Some(backend_err(
                            format!("waiting for the datum exec in container {container}"),
                            e,
                        ));
                        return None;
                    }
                }
            }
            _ = task.cancel.cancelled() => {
                ended.cancelled = true;
                break;
            }
        }
    }
    for _ in 0..50 {
        let _ = kill_all(docker, container).await;
        if let Some(code) = exec_exit_code(docker, exec_id).await {
            return Some(code);
        }
    }
    None
}

async fn exec_exit_code(docker: &Docker, exec_id: &str) -> Option<i64> {
    for _ in 0..100 {
        match docker.inspect_exec(exec_id).await {
            Ok(i) if i.running == Some(false) => return i.exit_code,
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => return None,
        }
    }
    None
}

/// How the output stream of a datum ended.
struct Ended {
    cancelled: bool,
    stream_error: Option<ExecutorError>,
    /// The first bytes of output (either stream), to recognise Docker's own exec errors.
    first_output: String,
}

/// Forwards output lines to the log sink until the stream ends; on cancel kills the datum's
/// processes and drains the rest.
async fn pump<S>(mut output: S, task: &DatumTask, docker: &Docker, container: &str) -> Ended
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut out = LineSplitter::new(LogStream::Stdout);
    let mut err = LineSplitter::new(LogStream::Stderr);
    let sink: &dyn LogSink = &*task.logs;
    let mut ended = Ended {
        cancelled: false,
        stream_error: None,
        first_output: String::new(),
    };
    let mut killed = false;
    let mut grace_deadline = None;
    // After a kill, kill again every 200 ms until the stream ends: the first kill can race with
    // the start of the exec'd process (the attach answer may precede its start).
    let mut rekill = tokio::time::interval(Duration::from_millis(200));
    loop {
        let timeout = async {
            match grace_deadline {
                Some(g) => tokio::time::sleep_until(g).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = output.next() => match item {
                None => break,
                Some(Ok(LogOutput::StdOut { message })) => {
                    note_first(&mut ended.first_output, &message);
                    out.push(&message, sink);
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    note_first(&mut ended.first_output, &message);
                    err.push(&message, sink);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ended.stream_error = Some(backend_err(
                        format!("reading the output of the datum exec in container {container}"),
                        e,
                    ));
                    break;
                }
            },
            _ = task.cancel.cancelled(), if !killed => {
                ended.cancelled = true;
                killed = true;
                grace_deadline = Some(tokio::time::Instant::now() + KILL_GRACE);
                let _ = kill_all(docker, container).await;
                rekill.reset();
            }
            _ = rekill.tick(), if killed => {
                let _ = kill_all(docker, container).await;
            }
            _ = timeout => {
                // The stream did not end after the kill: give up on it.
                ended.stream_error = Some(ExecutorError::Backend {
                    backend: BACKEND,
                    message: format!("datum exec in container {container} did not end after SIGKILL"),
                    source: None,
                });
                break;
            }
        }
    }
    out.finish(sink);
    err.finish(sink);
    ended
}

/// How the wrapper's shell reported the program's end: a status of `128 + n` (n a signal
/// number) is a signal, anything else an exit code (`-1` when Docker reported none).
fn shell_outcome(exit: Option<i64>) -> DatumOutcome {
    let code = exit.unwrap_or(-1);
    let code = i32::try_from(code).unwrap_or(i32::MAX);
    if (129..=128 + 64).contains(&code) {
        DatumOutcome::Signaled { signal: code - 128 }
    } else {
        DatumOutcome::Exited { exit_code: code }
    }
}

fn note_first(first: &mut String, message: &[u8]) {
    if first.is_empty() {
        let head = &message[..message.len().min(200)];
        *first = String::from_utf8_lossy(head).into_owned();
    }
}

/// Docker's answer (exit status 126 plus this text) when the exec's user or group does not
/// exist in the image; the user program never started.
fn unknown_user_message(exit: Option<i64>, first_output: &str) -> Option<&str> {
    let line = first_output.lines().next()?;
    (exit == Some(126)
        && (line.starts_with("unable to find user ") || line.starts_with("unable to find group ")))
    .then_some(line)
}

impl Drop for DockerWorker {
    /// A worker dropped without [`Worker::stop`] still has its container removed (in the
    /// background, when a runtime is available); `remove_pipeline` and the leftover sweep on
    /// connect catch anything that escapes.
    fn drop(&mut self) {
        let Some(c) = self.container.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let docker = self.inner.docker.clone();
            handle.spawn(async move {
                if let Err(e) = remove_container(&docker, &c.id).await {
                    tracing::warn!(
                        "removing the container of a dropped worker: {}",
                        ErrorChain(&e)
                    );
                }
                remove_work_dirs(&c.work_dir);
            });
        }
    }
}

#[async_trait]
impl Worker for DockerWorker {
    fn index(&self) -> usize {
        self.index
    }

    fn address(&self) -> std::net::IpAddr {
        self.container
            .as_ref()
            .and_then(|c| c.address)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        let inner = self.inner.clone();
        self.run_datum(task).await.map_err(|e| inner.upgrade(e))
    }

    /// Bind mode: the container's `/pfs` directory, filled by the engine while the program
    /// runs. Archive mode copies whole runs in and out, so it cannot.
    fn batch_scratch(&self, _engine_scratch: &std::path::Path) -> Option<LiveScratch> {
        let dirs = self.container.as_ref()?.bind.as_ref()?;
        Some(LiveScratch {
            dir: dirs.input.clone(),
            pfs: "/pfs".into(),
        })
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        if let Some(c) = self.container.take() {
            remove_container(&self.inner.docker, &c.id)
                .await
                .map_err(|e| self.inner.upgrade(e))?;
            remove_work_dirs(&c.work_dir);
        }
        Ok(())
    }
}

impl DockerWorker {
    async fn run_datum(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        // A previous datum whose future was dropped: let its kill finish first.
        let pending = self.pending_kill.lock().ok().and_then(|mut p| p.take());
        if let Some(kill) = pending {
            let _ = kill.await;
        }
        if self.lost || self.container.is_none() {
            self.replace().await?;
        }
        match self.run_once(&task).await {
            Ok(o) => Ok(o),
            Err(Failure::Error(e)) => Err(e),
            // The OOM killer took the keep-alive too: the datum ran out of memory; the next
            // datum gets a new container.
            Err(Failure::Lost(reason)) if reason == OOM_KILLED => {
                self.lost = true;
                Ok(DatumOutcome::OutOfMemory)
            }
            Err(Failure::Lost(reason)) => {
                self.lost = true;
                Err(self.lost_error(reason))
            }
            Err(Failure::NotRunning(reason)) => {
                // Found dead before the datum started: nothing ran, so run it on a replacement.
                tracing::warn!(worker = self.index, %reason, "worker container not running; replacing it");
                self.replace().await?;
                match self.run_once(&task).await {
                    Ok(o) => Ok(o),
                    Err(Failure::Error(e)) => Err(e),
                    Err(Failure::Lost(reason) | Failure::NotRunning(reason)) => {
                        self.lost = true;
                        Err(self.lost_error(reason))
                    }
                }
            }
        }
    }
}
