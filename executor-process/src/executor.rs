//! [`ProcessExecutor`], its builder, and how the `/pfs` mode is chosen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use pipeline_core::executor::{Executor, ExecutorError, Worker, WorkerPoolSpec};

use crate::cgroup::CgroupRoot;
use crate::settings::{Config, Isolation, PfsMode, label};
use crate::worker::ProcessWorker;

/// Which `/pfs` mode to use: [`PfsRequest::Auto`] (the default) picks the best that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PfsRequest {
    /// Mount namespace when root, else user namespace, else substitution, each probed once.
    #[default]
    Auto,
    /// Exactly this mode; [`ProcessExecutorBuilder::build`] fails if it does not work here.
    Force(PfsMode),
}

/// Builds a [`ProcessExecutor`]. Defaults: [`PfsRequest::Auto`], `/pfs` as the mount point
/// (created when missing and we are root), log lines split at 64 KiB, orphans of dead hosts
/// reaped.
#[derive(Debug, Clone)]
pub struct ProcessExecutorBuilder {
    request: PfsRequest,
    mount_point: PathBuf,
    create_mount_point: bool,
    max_log_line: usize,
    reap_orphans: bool,
    exposed: Vec<PathBuf>,
    helper_dir: Option<PathBuf>,
}

impl Default for ProcessExecutorBuilder {
    fn default() -> Self {
        ProcessExecutorBuilder {
            request: PfsRequest::Auto,
            mount_point: PathBuf::from("/pfs"),
            create_mount_point: true,
            max_log_line: pipeline_core::executor::lines::MAX_LINE,
            reap_orphans: true,
            exposed: Vec::new(),
            helper_dir: None,
        }
    }
}

impl ProcessExecutorBuilder {
    /// Chooses the `/pfs` mode (e.g. `PfsRequest::Force(PfsMode::Substitution)` in tests).
    pub fn pfs_mode(mut self, request: PfsRequest) -> Self {
        self.request = request;
        self
    }

    /// The directory user code sees its scratch directory on (default `/pfs`; tests and hosts
    /// with an unusual layout may change it, user code then sees that path).
    pub fn mount_point(mut self, path: impl Into<PathBuf>) -> Self {
        self.mount_point = path.into();
        self
    }

    /// Whether to create `/pfs` (an empty directory, used only as a mount point) when it is
    /// missing and we are root (default true). Without it, namespace modes need `/pfs` to exist.
    pub fn create_mount_point(mut self, on: bool) -> Self {
        self.create_mount_point = on;
        self
    }

    /// Whether [`build`](Self::build) kills the processes that hosts which are no longer
    /// running left behind (found by [`HOST_VAR`](crate::HOST_VAR); default true).
    pub fn reap_orphans(mut self, on: bool) -> Self {
        self.reap_orphans = on;
        self
    }

    /// Longest log line delivered in one piece; longer lines are split (default: the core's
    /// [`MAX_LINE`](pipeline_core::executor::lines::MAX_LINE), 64 KiB).
    pub fn max_log_line(mut self, bytes: usize) -> Self {
        self.max_log_line = bytes.max(1);
        self
    }

    /// Shows the host directory `dir` to user code at the same path, **read-only** (without
    /// the mounts below it), e.g. the directory holding a pipeline's scripts: the sandbox
    /// otherwise shows only `/pfs` and the system directories. [`build`](Self::build) refuses
    /// a relative or missing path, `/`, and `/proc`, `/sys`, `/dev` or anything in them; a
    /// worker refuses one that holds or lies inside its scratch directory or the mount point.
    /// The host application must not expose its store.
    pub fn expose(mut self, dir: impl Into<PathBuf>) -> Self {
        self.exposed.push(dir.into());
        self
    }

    /// A host directory of helper programs for user code, put first on its `PATH` and shown
    /// read-only like an [`expose`](Self::expose)d one (unless it lies in a system directory
    /// the sandbox shows anyway): `pipectl` passes its own directory, so datum-batching user
    /// code can call `pipectl next datum`.
    pub fn helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Probes the platform, picks the mode, and logs which one is active.
    pub fn build(self) -> Result<ProcessExecutor, ExecutorError> {
        let mut exposed = crate::sandbox::check_exposed(&self.exposed)?;
        let helper_dir = match &self.helper_dir {
            Some(dir) => {
                let dir = crate::sandbox::check_exposed(std::slice::from_ref(dir))?.remove(0);
                if !crate::sandbox::in_system_dir(&dir) && !exposed.contains(&dir) {
                    exposed.push(dir.clone());
                }
                Some(dir)
            }
            None => None,
        };
        let mode = match self.request {
            PfsRequest::Force(mode) => {
                if mode != PfsMode::Substitution {
                    self.prepare_mount_point()?;
                    crate::probe::probe(mode, &self.mount_point).map_err(|e| {
                        ExecutorError::Unsupported {
                            backend: "process",
                            what: format!("/pfs mode {mode} on this host ({e})"),
                        }
                    })?;
                }
                mode
            }
            PfsRequest::Auto => self.auto_mode(),
        };
        tracing::info!(mode = %mode, "process executor: /pfs is provided by {mode}");
        let (cgroups, isolation) = isolation(mode);
        if self.reap_orphans {
            let n =
                crate::reaper::reap_orphans() + cgroups.as_ref().map_or(0, CgroupRoot::reap_stale);
            if n > 0 {
                tracing::warn!(
                    n,
                    "process executor: killed {n} processes left by a dead host"
                );
            }
        }
        Ok(ProcessExecutor {
            inner: Arc::new(Config {
                mode,
                mount_point: self.mount_point,
                max_log_line: self.max_log_line,
                exposed,
                helper_dir,
                cgroups,
                isolation,
                host: crate::reaper::new_instance(),
            }),
        })
    }

    fn auto_mode(&self) -> PfsMode {
        if self.prepare_mount_point().is_err() {
            return PfsMode::Substitution;
        }
        let candidates: &[PfsMode] = if nix::unistd::Uid::effective().is_root() {
            &[PfsMode::MountNamespace, PfsMode::UserNamespace]
        } else {
            &[PfsMode::UserNamespace]
        };
        for &mode in candidates {
            match crate::probe::probe(mode, &self.mount_point) {
                Ok(()) => return mode,
                Err(e) => tracing::debug!(mode = %mode, error = %e, "/pfs mode unavailable"),
            }
        }
        PfsMode::Substitution
    }

    fn prepare_mount_point(&self) -> Result<(), ExecutorError> {
        let mp = &self.mount_point;
        if mp.is_dir() {
            return Ok(());
        }
        if self.create_mount_point && nix::unistd::Uid::effective().is_root() {
            match std::fs::create_dir(mp) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && mp.is_dir() => {
                    return Ok(());
                }
                Err(source) => {
                    return Err(ExecutorError::Io {
                        context: format!("creating mount point {}", mp.display()),
                        source,
                    });
                }
            }
        }
        Err(ExecutorError::Unsupported {
            backend: "process",
            what: format!(
                "namespace modes without an existing {} directory",
                mp.display()
            ),
        })
    }
}

/// Runs user code as local processes. See the crate docs.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    inner: Arc<Config>,
}

impl ProcessExecutor {
    /// A builder with the defaults.
    pub fn builder() -> ProcessExecutorBuilder {
        ProcessExecutorBuilder::default()
    }

    /// The `/pfs` mode in use.
    pub fn pfs_mode(&self) -> PfsMode {
        self.inner.mode
    }

    /// The mount point user code sees as `/pfs`.
    pub fn mount_point(&self) -> &Path {
        &self.inner.mount_point
    }

    /// What this executor enforces on this host (see the crate docs); each missing guarantee
    /// was also logged as a warning when it was built.
    pub fn isolation(&self) -> &Isolation {
        &self.inner.isolation
    }
}

/// Finds the cgroups and reports (and logs) what is enforced in `mode`.
fn isolation(mode: PfsMode) -> (Option<CgroupRoot>, Isolation) {
    let root = nix::unistd::Uid::effective().is_root();
    let sandbox = mode != PfsMode::Substitution;
    let (cgroups, cgroup_error) = match CgroupRoot::detect() {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    let isolation = Isolation {
        pfs_mode: mode,
        sandbox,
        unprivileged_ids: sandbox && root && mode == PfsMode::MountNamespace,
        kill: cgroups.as_ref().map(CgroupRoot::kill_method),
        limits: ["memory", "pids", "cpu"]
            .into_iter()
            .filter(|c| cgroups.as_ref().is_some_and(|g| g.has(c)))
            .collect(),
        cgroup_error,
    };
    if !sandbox {
        tracing::warn!(
            "process executor: no sandbox ({mode}): user code runs on the host's file system \
             and can change its inputs"
        );
    }
    if let Some(e) = &isolation.cgroup_error {
        tracing::warn!(
            "process executor: no cgroups ({e}): a datum's processes are killed by process \
             group only (one that calls setsid survives its datum until the pipeline is \
             removed) and resource_limits are not enforced"
        );
    } else {
        tracing::info!(
            kill = ?isolation.kill,
            limits = ?isolation.limits,
            "process executor: a cgroup per worker"
        );
    }
    (cgroups, isolation)
}

#[async_trait]
impl Executor for ProcessExecutor {
    fn name(&self) -> &'static str {
        "process"
    }

    /// User code runs on this host, in the scratch directory itself.
    fn serves_named_pipes(&self) -> bool {
        true
    }

    /// In the sandbox, user code sees the scratch directory read-only but for `out` (the
    /// mount is locked: it cannot be made writable from inside), and nothing here writes
    /// there.
    fn keeps_inputs_read_only(&self) -> bool {
        self.inner.isolation.sandbox
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        let resources = pipeline_core::spec::Resources::resolve(
            spec.spec.resource_requests.as_ref(),
            spec.spec.resource_limits.as_ref(),
        )
        .map_err(|e| ExecutorError::InvalidTask {
            field: e.field,
            message: e.message,
        })?;
        for (what, wanted) in [
            ("memory", resources.limits.memory_bytes.is_some()),
            ("pids", resources.limits.pids.is_some()),
            ("cpu", resources.limits.cpu.is_some()),
        ] {
            if wanted && !self.inner.isolation.limits.contains(&what) {
                tracing::warn!(
                    pipeline = %spec.pipeline,
                    "process executor: resource_limits.{what} is not enforced on this host \
                     (no {what} cgroup controller)"
                );
            }
        }
        if spec.workers == 0 {
            return Err(ExecutorError::InvalidTask {
                field: "parallelism_spec.constant".into(),
                message: "at least 1 worker is needed".into(),
            });
        }
        let secret_mounts = Arc::new(crate::secret_files::secret_mounts(spec)?);
        if let Some(m) = secret_mounts.first()
            && self.inner.mode == PfsMode::Substitution
        {
            return Err(ExecutorError::Unsupported {
                backend: "process",
                what: format!(
                    "{}.mount_path without a sandbox (path substitution mode): secret files \
                     need a mount namespace",
                    m.field
                ),
            });
        }
        Ok((0..spec.workers)
            .map(|i| {
                Box::new(ProcessWorker::new(
                    i,
                    &spec.project,
                    spec.pipeline.clone(),
                    self.inner.clone(),
                    resources,
                    secret_mounts.clone(),
                )) as Box<dyn Worker>
            })
            .collect())
    }

    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError> {
        // Workers hold no state between datums; what a crashed host can leave behind are
        // processes (grandchildren that survived the host's death), found by their label.
        let label = label(project, pipeline);
        let host = self.inner.host.clone();
        tokio::task::spawn_blocking(move || crate::reaper::kill_pipeline(&label, &host))
            .await
            .map_err(|e| ExecutorError::Backend {
                backend: "process",
                message: format!("scanning for leftover processes: {e}"),
                source: None,
            })
    }
}
