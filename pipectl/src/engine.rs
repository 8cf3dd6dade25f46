//! Opening the store and an engine with the executors its pipelines use, and running the jobs
//! a command started.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use pipeline_core::executor::{Executor, ExecutorError, Worker, WorkerPoolSpec};
use pipeline_core::pfs::Store;
use pipeline_core::pps::{Engine, JobInfo, JobState, executors_in_use};

use crate::error::{CliError, Res};

/// Which executor runs a pipeline's user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Local processes (no Docker or cluster needed).
    Process,
    /// Docker Engine containers.
    Docker,
    /// Kubernetes pods.
    Kubernetes,
}

impl ExecutorKind {
    /// The executor's name ([`Executor::name`]), as stored with a pipeline.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Process => "process",
            ExecutorKind::Docker => "docker",
            ExecutorKind::Kubernetes => "kubernetes",
        }
    }
}

/// The directories `--expose` shows to user code, set once per command.
static EXPOSED: std::sync::OnceLock<Vec<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Records the `--expose` directories for every engine this command opens, refusing one that
/// holds the store or lies inside it (user code must never reach the store).
pub fn expose(root: &Path, dirs: Vec<std::path::PathBuf>) -> Res<()> {
    // The store may not exist yet (its first command): compare absolute paths then.
    let real_or_absolute = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let store = real_or_absolute(root);
    for dir in &dirs {
        let real = real_or_absolute(dir);
        if store.starts_with(&real) || real.starts_with(&store) {
            return Err(CliError::BadArgs(format!(
                "--expose {}: holds or lies inside the store {}; user code must not reach the store",
                dir.display(),
                store.display()
            )));
        }
    }
    let _ = EXPOSED.set(dirs);
    // This binary's directory goes on user code's PATH (`pipectl next datum` for datum
    // batching), unless showing it would show the store.
    let helper = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(real_or_absolute))
        .filter(|dir| !store.starts_with(dir) && !dir.starts_with(&store));
    let _ = HELPER_DIR.set(helper);
    Ok(())
}

/// The directory of this binary, shown to user code and first on its `PATH`; `None` when it
/// holds the store (or is unknown).
static HELPER_DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// The process executor, showing the `--expose` directories to user code. It probes the
/// host's sandbox support (a child process per mode tried) only when a job first starts
/// workers or a pipeline is deleted, so commands that run no user code never pay for it;
/// with `--expose` it is built at once, so a bad directory is an error before anything runs.
pub fn process_executor() -> Res<Arc<dyn Executor>> {
    let builder = EXPOSED
        .get()
        .into_iter()
        .flatten()
        .fold(executor_process::ProcessExecutor::builder(), |b, dir| {
            b.expose(dir)
        });
    let builder = match HELPER_DIR.get().cloned().flatten() {
        Some(dir) => builder.helper_dir(dir),
        None => builder,
    };
    if exposes_any() {
        return Ok(Arc::new(builder.build()?));
    }
    Ok(Arc::new(LazyProcess {
        builder,
        built: Mutex::new(None),
    }))
}

/// A [`executor_process::ProcessExecutor`] built on first use.
#[derive(Debug)]
struct LazyProcess {
    builder: executor_process::ProcessExecutorBuilder,
    built: Mutex<Option<Arc<executor_process::ProcessExecutor>>>,
}

impl LazyProcess {
    /// The executor, built (the host probed) by the first call.
    fn get(&self) -> Result<Arc<executor_process::ProcessExecutor>, ExecutorError> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ex) = built.as_ref() {
            return Ok(ex.clone());
        }
        let ex = Arc::new(self.builder.clone().build()?);
        *built = Some(ex.clone());
        Ok(ex)
    }
}

#[async_trait::async_trait]
impl Executor for LazyProcess {
    fn name(&self) -> &'static str {
        ExecutorKind::Process.name()
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        let ex = self.get()?;
        ex.start_workers(spec).await
    }

    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError> {
        let ex = self.get()?;
        ex.remove_pipeline(project, pipeline).await
    }

    // The defaulted methods the process executor answers differently go to it: a default
    // answered here would silently differ (lazy inputs as files instead of pipes, the
    // scratch directory read back after every datum). `pin_image` and `host_address` keep
    // the trait's defaults, which are the process executor's too (no images; loopback), so
    // creating a pipeline does not probe the host.

    /// As built; `false` (the safe answer) when the host cannot run it.
    fn serves_named_pipes(&self) -> bool {
        self.get().is_ok_and(|ex| ex.serves_named_pipes())
    }

    /// As built; `false` (the safe answer) when the host cannot run it.
    fn keeps_inputs_read_only(&self) -> bool {
        self.get().is_ok_and(|ex| ex.keeps_inputs_read_only())
    }
}

/// Whether `--expose` named any directory.
pub fn exposes_any() -> bool {
    EXPOSED.get().is_some_and(|d| !d.is_empty())
}

/// Opens the store and an engine with the executors the pipelines need (process always;
/// docker and kubernetes only when asked for or used by a stored pipeline).
pub fn open_engine(
    root: &Path,
    extra: Option<ExecutorKind>,
) -> Res<(tokio::runtime::Runtime, Engine)> {
    open_engine_on(open_store(root)?, root, extra)
}

/// An engine over `store` (opened from `root`) with the executors its pipelines use, plus
/// `extra`, and the runtime it runs on.
pub fn open_engine_on(
    store: Store,
    root: &Path,
    extra: Option<ExecutorKind>,
) -> Res<(tokio::runtime::Runtime, Engine)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut wanted = executors_in_use(&store)?;
    if let Some(e) = extra {
        wanted.insert(e.name().to_string());
    }
    let mut builder = Engine::builder(store)
        .executor(process_executor()?)
        .job_gateways(Arc::new(pipeline_server::s3::S3JobGateways::default()))
        .echo_logs(false)
        // One command, then exit: a service started here would die with it.
        .run_services(false);
    let owner = Store::owner_label("pipectl", root);
    if wanted.contains(ExecutorKind::Docker.name()) {
        let config = executor_docker::DockerConfig {
            owner: owner.clone(),
            ..Default::default()
        };
        let ex = rt.block_on(
            executor_docker::DockerExecutor::builder()
                .config(config)
                .build(),
        )?;
        builder = builder.executor(Arc::new(ex));
    }
    if wanted.contains(ExecutorKind::Kubernetes.name()) {
        let config = executor_k8s::K8sConfig {
            owner,
            ..Default::default()
        };
        let ex = rt.block_on(
            executor_k8s::K8sExecutor::builder()
                .cluster(executor_k8s::ClusterSource::Infer)
                .config(config)
                .build(),
        )?;
        builder = builder.executor(Arc::new(ex));
    }
    let engine = builder
        .default_executor(ExecutorKind::Process.name())
        .build()?;
    Ok((rt, engine))
}

/// Runs every pending job (unless `no_wait`), with a progress line on a terminal; prints a
/// one-line summary per finished job. Returns the finished jobs.
pub fn wait_for_jobs(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    no_wait: bool,
) -> Res<Vec<JobInfo>> {
    if no_wait {
        engine.discover_jobs()?;
        return Ok(Vec::new());
    }
    let pending = engine.discover_jobs()?.len();
    let bar = (std::io::stderr().is_terminal() && pending > 0).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("running jobs");
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let jobs = rt.block_on(async {
        let r = engine.run_pending().await;
        engine.shutdown().await;
        r
    })?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    for j in &jobs {
        eprintln!("{}", job_line(j));
    }
    Ok(jobs)
}

/// `PIPELINE@JOB STATE datums: N total, ...`, with the reason when there is one.
pub fn job_line(j: &JobInfo) -> String {
    let s = &j.stats;
    let mut line = format!(
        "{}@{} {} datums: {} total, {} processed, {} skipped, {} failed, {} recovered",
        j.pipeline,
        j.id,
        j.state.as_str(),
        s.datums_total,
        s.datums_processed,
        s.datums_skipped,
        s.datums_failed,
        s.datums_recovered
    );
    if !j.reason.is_empty() {
        line.push_str(&format!(" ({})", j.reason));
    }
    line
}

/// Opens the store; prints a line on stderr for each interrupted write it recovered
/// ([`Store::take_recovered_writes`]).
pub fn open_store(root: &Path) -> Res<Store> {
    let store = Store::open(root)?;
    report_recovered(&store);
    Ok(store)
}

/// Prints a `pipectl: warning:` line on stderr for each interrupted write the store
/// recovered since the last call (at open, or before a write to the branch).
pub fn report_recovered(store: &Store) {
    for r in store.take_recovered_writes() {
        eprintln!("pipectl: warning: {r}");
    }
}

/// After a command committed `what` (e.g. `data@<id>`): the outcome of running the jobs it
/// started. Any failure is [`CliError::Committed`] and jobs that did not succeed are
/// [`CliError::JobsFailed`] (exit code 3): the change itself is stored either way.
pub fn committed_then(what: &str, jobs: Res<Vec<JobInfo>>) -> Res {
    let jobs = jobs.map_err(|e| CliError::Committed {
        what: what.to_string(),
        source: Box::new(e),
    })?;
    let failed: Vec<String> = jobs
        .iter()
        .filter(|j| j.state != JobState::JobSuccess)
        .map(job_line)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::JobsFailed {
            what: what.to_string(),
            jobs: failed,
        })
    }
}

/// After a command committed `what` through `conn`: wait for the jobs it started (those of
/// commit set `commit_set`, or every pending job when the write made no commit), print a
/// line per job, and return [`committed_then`]'s verdict. With `no_wait`, returns at once.
pub fn after_write_on(
    conn: &crate::conn::Conn,
    no_wait: bool,
    commit_set: Option<&str>,
    what: &str,
) -> Res {
    if no_wait {
        return Ok(());
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("running jobs");
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let client = &conn.client;
    let jobs = conn.call(async {
        match commit_set {
            Some(id) => client.wait_commit_set(id).await,
            None => client.settle_jobs().await,
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if let Ok(jobs) = &jobs {
        for j in jobs {
            eprintln!("{}", job_line(j));
        }
    }
    committed_then(what, jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The executor `pipectl` builds lazily answers every question as the process executor
    /// itself does (with the sandbox, both keep inputs read-only and serve named pipes).
    #[test]
    fn the_lazy_process_executor_answers_as_the_executor_does() {
        let lazy = process_executor().expect("executor");
        let Ok(direct) = executor_process::ProcessExecutor::builder().build() else {
            eprintln!("skipped: no process executor on this host");
            return;
        };
        assert_eq!(lazy.name(), direct.name());
        assert_eq!(lazy.serves_named_pipes(), direct.serves_named_pipes());
        assert_eq!(
            lazy.keeps_inputs_read_only(),
            direct.keeps_inputs_read_only()
        );
        if direct.isolation().sandbox {
            assert!(lazy.keeps_inputs_read_only() && lazy.serves_named_pipes());
        }
    }
}
