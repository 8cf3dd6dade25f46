//! Worker containers: the client state an executor shares with its workers, the blueprint a
//! pool's containers are made from, and creating, starting and removing one container.
//! [`crate::executor`] creates pools with it and [`crate::worker`] re-creates a container
//! after a crash; neither imports the other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use pipeline_core::executor::ExecutorError;

use crate::config::{DataMode, DockerConfig};
use crate::resources;
use crate::staging::BindDirs;

/// Label keys put on every worker container.
pub mod labels {
    /// The [`DockerConfig::owner`](crate::DockerConfig::owner) of the host that created it.
    pub const OWNER: &str = "io.pipeline-engine.owner";
    /// Project name.
    pub const PROJECT: &str = "io.pipeline-engine.project";
    /// Pipeline name.
    pub const PIPELINE: &str = "io.pipeline-engine.pipeline";
    /// Pipeline version.
    pub const VERSION: &str = "io.pipeline-engine.version";
    /// Worker index in its pool.
    pub const WORKER: &str = "io.pipeline-engine.worker";
}

/// The worker container's main process: a shell that sleeps until the container is removed.
/// PID 1 of a PID namespace cannot be killed from inside it, which the datum wrapper relies on.
pub(crate) const KEEPALIVE: &str =
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $! 2>/dev/null; done";

pub(crate) const BACKEND: &str = "docker";

/// Shared state of an executor and its workers.
#[derive(Debug)]
pub(crate) struct Inner {
    pub docker: Docker,
    pub config: DockerConfig,
    pub address: String,
    pub mode: DataMode,
}

pub(crate) fn backend_err(message: String, source: bollard::errors::Error) -> ExecutorError {
    ExecutorError::Backend {
        backend: BACKEND,
        message,
        source: Some(Box::new(source)),
    }
}

/// Whether a bollard error means the daemon could not be reached (as opposed to an answer).
fn is_transport(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::RequestTimeoutError
            | E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::HttpClientError { .. }
            | E::SocketNotFoundError(_)
    )
}

impl Inner {
    /// Turns a backend error caused by an unreachable daemon into
    /// [`ExecutorError::Unavailable`] naming the daemon address.
    pub(crate) fn upgrade(&self, e: ExecutorError) -> ExecutorError {
        let transport = match &e {
            ExecutorError::Backend {
                source: Some(src), ..
            } => src
                .downcast_ref::<bollard::errors::Error>()
                .is_some_and(is_transport),
            _ => false,
        };
        match e {
            ExecutorError::Backend {
                message, source, ..
            } if transport => ExecutorError::Unavailable {
                backend: BACKEND,
                address: self.address.clone(),
                message: format!("daemon unreachable while {message}"),
                source,
            },
            other => other,
        }
    }
}

/// Whether a bollard error is an HTTP status `code` from the daemon.
pub(crate) fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

/// Creates and starts the container of worker `index`. Removes a stale container of the
/// same name first.
pub(crate) async fn create_worker_container(
    inner: &Inner,
    blueprint: &Blueprint,
    index: usize,
) -> Result<WorkerContainer, ExecutorError> {
    let name = blueprint.container_name(index);
    let docker = &inner.docker;
    match docker.inspect_container(&name, None).await {
        Ok(_) => remove_container(docker, &name).await?,
        Err(e) if is_status(&e, 404) => {}
        Err(e) => return Err(backend_err(format!("inspecting container {name}"), e)),
    }
    let mut labels = blueprint.labels.clone();
    labels.insert(labels::WORKER.to_string(), index.to_string());
    let work_dir = blueprint.owner_dir.join(&name);
    let bind = if inner.mode == DataMode::Bind {
        if work_dir.exists() {
            remove_work_dirs(&work_dir);
        }
        let dirs = BindDirs::new(&work_dir);
        dirs.create()?;
        Some(dirs)
    } else {
        None
    };
    let body = container_body(inner, blueprint, labels, bind.as_ref());
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| {
            if is_status(&e, 404) {
                ExecutorError::ImageNotFound {
                    image: blueprint.image.clone(),
                    message: format!("creating container {name}: {e}"),
                }
            } else {
                backend_err(format!("creating container {name}"), e)
            }
        })?;
    let container = WorkerContainer {
        id: created.id,
        name,
        work_dir,
        bind,
        address: None,
    };
    let started = match start_worker_container(docker, blueprint, &container).await {
        Ok(()) if blueprint.network.is_some() => {
            crate::network::container_address(docker, &container.id).await
        }
        Ok(()) => Ok(None),
        Err(e) => Err(e),
    };
    match started {
        Ok(address) => Ok(WorkerContainer {
            address,
            ..container
        }),
        Err(e) => {
            let _ = remove_container(docker, &container.id).await;
            remove_work_dirs(&container.work_dir);
            Err(e)
        }
    }
}

/// What a worker container is created from: the keep-alive shell, the blueprint's image,
/// labels and limits, and the bind mounts in bind mode.
fn container_body(
    inner: &Inner,
    blueprint: &Blueprint,
    labels: HashMap<String, String>,
    bind: Option<&BindDirs>,
) -> ContainerCreateBody {
    let binds = bind.map(|d| {
        vec![
            format!("{}:/pfs:ro", d.input.display()),
            format!("{}:/pfs/out:rw", d.output.display()),
        ]
    });
    let l = &blueprint.limits;
    ContainerCreateBody {
        image: Some(blueprint.image.clone()),
        entrypoint: Some(vec![
            "sh".to_string(),
            "-c".to_string(),
            KEEPALIVE.to_string(),
        ]),
        cmd: Some(vec![]),
        working_dir: blueprint.working_dir.clone(),
        labels: Some(labels),
        tty: Some(false),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        host_config: Some(HostConfig {
            binds,
            network_mode: Some(
                blueprint
                    .network
                    .clone()
                    .unwrap_or_else(|| inner.config.network_mode.clone()),
            ),
            memory: l.memory,
            memory_swap: l.memory,
            pids_limit: l.pids,
            memory_reservation: l.memory_reservation,
            nano_cpus: l.nano_cpus,
            cpu_shares: l.cpu_shares,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Installs the blueprint's secret files in a created worker container and starts it.
async fn start_worker_container(
    docker: &Docker,
    blueprint: &Blueprint,
    container: &WorkerContainer,
) -> Result<(), ExecutorError> {
    if let Some(tar) = &blueprint.secret_files {
        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
        docker
            .upload_to_container(
                &container.id,
                Some(opts),
                bollard::body_full(tar.clone().into()),
            )
            .await
            .map_err(|e| {
                backend_err(
                    format!("installing secret files in container {}", container.name),
                    e,
                )
            })?;
    }
    docker
        .start_container(
            &container.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("executable file not found") || text.contains("no such file") {
                ExecutorError::Unsupported {
                    backend: BACKEND,
                    what: format!(
                        "image {:?} without `sh` on its PATH (worker containers run a POSIX \
                         shell as keep-alive and datum wrapper): {text}",
                        blueprint.image
                    ),
                }
            } else {
                backend_err(format!("starting container {}", container.name), e)
            }
        })
}

/// One worker container as created.
#[derive(Debug, Clone)]
pub(crate) struct WorkerContainer {
    pub id: String,
    pub name: String,
    pub work_dir: PathBuf,
    pub bind: Option<BindDirs>,
    /// The container's address on [`Blueprint::network`], where the host reaches its ports.
    pub address: Option<IpAddr>,
}

/// Everything needed to (re)create any worker container of one pool.
#[derive(Clone)]
pub(crate) struct Blueprint {
    pub image: String,
    pub name_prefix: String,
    pub owner_dir: PathBuf,
    pub labels: HashMap<String, String>,
    pub working_dir: Option<String>,
    pub limits: resources::Limits,
    /// Tar of secret files (`mount_path/key`), uploaded before the container starts.
    pub secret_files: Option<Vec<u8>>,
    pub pipeline: String,
    /// The network the containers join instead of the configured `network_mode`
    /// ([`crate::network::WORKER_NETWORK`] for workers that talk to the host).
    pub network: Option<String>,
}

impl std::fmt::Debug for Blueprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blueprint")
            .field("image", &self.image)
            .field("name_prefix", &self.name_prefix)
            .field(
                "secret_files",
                &self.secret_files.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Blueprint {
    pub fn container_name(&self, index: usize) -> String {
        format!("{}-{index}", self.name_prefix)
    }
}

pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<(), ExecutorError> {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        // 409: removal already in progress.
        Err(e) if is_status(&e, 409) => Ok(()),
        Err(e) => Err(backend_err(format!("removing container {id}"), e)),
    }
}

pub(crate) fn remove_work_dirs(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing work directory {}: {e}", dir.display());
    }
}

/// How long a worker waits for an exec stream to end after killing its processes.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(10);
