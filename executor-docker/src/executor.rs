//! [`DockerExecutor`]: connecting, images, starting pools of worker containers, cleanup.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use pipeline_core::executor::{Executor, ExecutorError, PinnedImage, Worker, WorkerPoolSpec};
use pipeline_core::spec::EffectiveSpec;

use crate::config::{DataMode, DockerConfig, DockerHost, PullPolicy};
use crate::container::{
    BACKEND, Blueprint, Inner, backend_err, create_worker_container, labels, remove_container,
    remove_work_dirs,
};
use crate::resources;
use crate::worker::DockerWorker;

/// Runs pipeline workers as warm Docker containers (see the crate docs).
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    inner: Arc<Inner>,
}

/// Builds a [`DockerExecutor`]: start from [`DockerExecutor::builder`], set what differs
/// from [`DockerConfig::default`], then `build().await?` connects.
///
/// ```no_run
/// # async fn demo() -> Result<(), pipeline_core::executor::ExecutorError> {
/// use executor_docker::{DataMode, DockerExecutor};
///
/// let docker = DockerExecutor::builder()
///     .owner("my-app")
///     .data_mode(DataMode::Archive)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DockerExecutorBuilder {
    config: DockerConfig,
}

impl DockerExecutorBuilder {
    /// Replaces every setting at once.
    pub fn config(mut self, config: DockerConfig) -> Self {
        self.config = config;
        self
    }

    /// The daemon address ([`DockerConfig::host`]).
    pub fn host(mut self, address: impl Into<String>) -> Self {
        self.config.host = Some(address.into());
        self
    }

    /// The owner label of this host application instance ([`DockerConfig::owner`]).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.config.owner = owner.into();
        self
    }

    /// How `/pfs` reaches containers ([`DockerConfig::data_mode`]).
    pub fn data_mode(mut self, mode: DataMode) -> Self {
        self.config.data_mode = mode;
        self
    }

    /// The image pull policy ([`DockerConfig::pull_policy`]).
    pub fn pull_policy(mut self, policy: PullPolicy) -> Self {
        self.config.pull_policy = policy;
        self
    }

    /// Connects to the daemon (the configured host, or `DOCKER_HOST`, or the default
    /// socket), checks that it answers, negotiates the API version and, when
    /// [`DockerConfig::remove_leftovers_on_connect`] is set, removes leftovers of this owner.
    ///
    /// Fails with [`ExecutorError::Unavailable`] naming the address when the daemon is absent
    /// or does not answer within [`DockerConfig::request_timeout`].
    pub async fn build(self) -> Result<DockerExecutor, ExecutorError> {
        DockerExecutor::connect(self.config).await
    }
}

impl DockerExecutor {
    /// A builder with [`DockerConfig::default`] settings.
    pub fn builder() -> DockerExecutorBuilder {
        DockerExecutorBuilder::default()
    }

    async fn connect(config: DockerConfig) -> Result<Self, ExecutorError> {
        let address = config.address();
        let unavailable =
            |message: String, source: Option<bollard::errors::Error>| ExecutorError::Unavailable {
                backend: BACKEND,
                address: address.clone(),
                message,
                source: source.map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            };
        let host = DockerHost::parse(&address).ok_or_else(|| {
            unavailable(
                "unsupported address (expected unix:///path, tcp://host:port or http://host:port)"
                    .to_string(),
                None,
            )
        })?;
        let timeout_s = config.request_timeout.as_secs().max(1);
        let docker = match &host {
            DockerHost::Unix(path) => {
                if !path.exists() {
                    return Err(unavailable(
                        "socket not found (is the Docker daemon running? set DOCKER_HOST)"
                            .to_string(),
                        None,
                    ));
                }
                Docker::connect_with_unix(
                    &path.to_string_lossy(),
                    timeout_s,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            DockerHost::Http(url) => {
                Docker::connect_with_http(url, timeout_s, bollard::API_DEFAULT_VERSION)
            }
        }
        .map_err(|e| unavailable("cannot create a client".to_string(), Some(e)))?;
        let docker = match tokio::time::timeout(config.request_timeout, docker.negotiate_version())
            .await
        {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(unavailable("daemon did not answer".to_string(), Some(e))),
            Err(_) => {
                return Err(unavailable(
                    format!("daemon did not answer within {:?}", config.request_timeout),
                    None,
                ));
            }
        };
        let mode = config.effective_data_mode(&host);
        let remove = config.remove_leftovers_on_connect;
        let exec = DockerExecutor {
            inner: Arc::new(Inner {
                docker,
                config,
                address,
                mode,
            }),
        };
        if remove {
            let n = exec.remove_leftovers().await?;
            if n > 0 {
                tracing::info!(removed = n, "removed leftover worker containers");
            }
        }
        Ok(exec)
    }

    /// The daemon address in use.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The data mode in use (never [`DataMode::Auto`]).
    pub fn data_mode(&self) -> DataMode {
        self.inner.mode
    }

    /// The owner label value of this executor's containers.
    pub fn owner(&self) -> &str {
        &self.inner.config.owner
    }

    /// The underlying client (for tests and tools).
    pub fn client(&self) -> &Docker {
        &self.inner.docker
    }

    /// Removes every container labelled with this executor's owner, with their work
    /// directories: what a crashed host left behind. Call it only when this host has no live
    /// workers (it runs on [`build`](DockerExecutorBuilder::build) by default). Returns how
    /// many containers were removed.
    pub async fn remove_leftovers(&self) -> Result<usize, ExecutorError> {
        let n = self
            .remove_labelled(&[])
            .await
            .map_err(|e| self.inner.upgrade(e))?;
        let dir = self.owner_dir();
        if dir.exists() {
            remove_work_dirs(&dir);
        }
        Ok(n)
    }

    fn owner_dir(&self) -> PathBuf {
        self.inner
            .config
            .work_root
            .join(sanitize(&self.inner.config.owner))
    }

    async fn remove_labelled(&self, extra: &[(&str, &str)]) -> Result<usize, ExecutorError> {
        let mut label_filters = vec![format!("{}={}", labels::OWNER, self.inner.config.owner)];
        label_filters.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .inner
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| backend_err("listing worker containers".to_string(), e))?;
        let mut removed = 0;
        for c in list {
            let Some(id) = c.id else { continue };
            remove_container(&self.inner.docker, &id).await?;
            if let Some(name) = c.names.and_then(|n| n.into_iter().next()) {
                let dir = self.owner_dir().join(name.trim_start_matches('/'));
                if dir.exists() {
                    remove_work_dirs(&dir);
                }
            }
            removed += 1;
        }
        Ok(removed)
    }
}

/// Keeps `[A-Za-z0-9_.-]`, replaces anything else with `-`.
pub(crate) fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "x".to_string() } else { out }
}

/// Builds the tar of secret files: for each `transform.secrets[i]` with a `mount_path`, the
/// secret's keys (or only `key`) as files `mount_path/<key>`.
fn secret_files_tar(spec: &WorkerPoolSpec) -> Result<Option<Vec<u8>>, ExecutorError> {
    let t = &spec.spec.transform;
    let mut builder = tar::Builder::new(Vec::new());
    let mut any = false;
    let mut dirs = std::collections::BTreeSet::new();
    for (i, s) in t.secrets.iter().enumerate() {
        let Some(mount) = s.mount_path.as_deref() else {
            continue;
        };
        let field = format!("transform.secrets[{i}]");
        let mount_rel = safe_abs_path(mount).ok_or_else(|| ExecutorError::InvalidTask {
            field: format!("{field}.mount_path"),
            message: format!("expected an absolute path without `..`, got {mount:?}"),
        })?;
        let values = spec
            .secrets
            .0
            .get(&s.name)
            .ok_or_else(|| ExecutorError::InvalidTask {
                field: field.clone(),
                message: format!(
                    "secret {:?} was not supplied by the host application",
                    s.name
                ),
            })?;
        for (key, value) in values {
            if s.key.as_ref().is_some_and(|k| k != key) {
                continue;
            }
            if key.is_empty() || key.contains('/') || key == "." || key == ".." {
                return Err(ExecutorError::InvalidTask {
                    field,
                    message: format!("secret {:?} has a key that is not a file name", s.name),
                });
            }
            let io = |source| ExecutorError::Io {
                context: format!("building the secret files of {field}"),
                source,
            };
            let mut acc = PathBuf::new();
            for c in mount_rel.components() {
                acc.push(c);
                if dirs.insert(acc.clone()) {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    builder
                        .append_data(&mut h, &acc, std::io::empty())
                        .map_err(io)?;
                }
            }
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o444);
            h.set_size(value.0.len() as u64);
            builder
                .append_data(&mut h, mount_rel.join(key), &value.0[..])
                .map_err(io)?;
            any = true;
        }
    }
    if !any {
        return Ok(None);
    }
    builder
        .into_inner()
        .map(Some)
        .map_err(|source| ExecutorError::Io {
            context: "building the secret files".to_string(),
            source,
        })
}

/// `/a/b` → `a/b`, refusing relative paths, `..` and the root itself.
fn safe_abs_path(p: &str) -> Option<PathBuf> {
    let path = std::path::Path::new(p);
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            std::path::Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[async_trait]
impl Executor for DockerExecutor {
    fn name(&self) -> &'static str {
        BACKEND
    }

    /// In bind mode the container opens the scratch directory's pipes through its mount.
    fn serves_named_pipes(&self) -> bool {
        self.inner.mode == DataMode::Bind
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        self.start_pool(spec)
            .await
            .map_err(|e| self.inner.upgrade(e))
    }

    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError> {
        self.remove_labelled(&[(labels::PROJECT, project), (labels::PIPELINE, pipeline)])
            .await
            .map_err(|e| self.inner.upgrade(e))
    }

    async fn host_address(&self, spec: &WorkerPoolSpec) -> Result<IpAddr, ExecutorError> {
        if self.shares_host_network() {
            return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        if !matches!(
            DockerHost::parse(&self.inner.address),
            Some(DockerHost::Unix(_))
        ) {
            return Err(ExecutorError::Unsupported {
                backend: BACKEND,
                what: format!(
                    "pipeline {}/{}: its user code talks to the engine's host (spout, service \
                     or S3 input/output), which needs the Docker daemon on this machine (it is \
                     at {})",
                    spec.project, spec.pipeline, self.inner.address
                ),
            });
        }
        crate::network::ensure_worker_network(&self.inner.docker)
            .await
            .map_err(|e| self.inner.upgrade(e))
    }

    async fn pin_image(&self, spec: &EffectiveSpec) -> Result<Option<PinnedImage>, ExecutorError> {
        crate::images::pin(&self.inner, spec)
            .await
            .map(Some)
            .map_err(|e| self.inner.upgrade(e))
    }
}

impl DockerExecutor {
    /// The network the pool's containers join instead of the configured one: the worker
    /// network for user code that talks to the host, unless every container shares the
    /// host's network anyway.
    async fn worker_network(&self, spec: &WorkerPoolSpec) -> Result<Option<String>, ExecutorError> {
        if !spec.spec.talks_to_host() || self.shares_host_network() {
            return Ok(None);
        }
        self.host_address(spec).await?;
        Ok(Some(crate::network::WORKER_NETWORK.to_string()))
    }

    /// Whether worker containers use the host's network (`network_mode: host`).
    fn shares_host_network(&self) -> bool {
        self.inner.config.network_mode == "host"
    }

    async fn start_pool(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        let image = Some(spec.spec.image().to_string())
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| ExecutorError::InvalidTask {
                field: "transform.image".to_string(),
                message: "the docker executor needs an image".to_string(),
            })?;
        let limits = resources::limits(&spec.spec)?;
        let secret_files = secret_files_tar(spec)?;
        crate::images::ensure_image(&self.inner, &spec.spec, &image).await?;
        let network = self.worker_network(spec).await?;
        let owner = &self.inner.config.owner;
        let labels = HashMap::from([
            (labels::OWNER.to_string(), owner.clone()),
            (labels::PROJECT.to_string(), spec.project.clone()),
            (labels::PIPELINE.to_string(), spec.pipeline.clone()),
            (labels::VERSION.to_string(), spec.version.to_string()),
        ]);
        let blueprint = Arc::new(Blueprint {
            image,
            name_prefix: format!(
                "pl-{}-{}-{}-v{}",
                sanitize(owner),
                sanitize(&spec.project),
                sanitize(&spec.pipeline),
                spec.version
            ),
            owner_dir: self.owner_dir(),
            labels,
            working_dir: spec.spec.transform.working_dir.clone(),
            limits,
            secret_files,
            pipeline: spec.pipeline.clone(),
            network,
        });
        let mut workers: Vec<Box<dyn Worker>> = Vec::with_capacity(spec.workers.max(1));
        for index in 0..spec.workers.max(1) {
            match create_worker_container(&self.inner, &blueprint, index).await {
                Ok(c) => workers.push(Box::new(DockerWorker::new(
                    self.inner.clone(),
                    blueprint.clone(),
                    index,
                    c,
                ))),
                Err(e) => {
                    for w in &mut workers {
                        let _ = w.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(sanitize("a b/c"), "a-b-c");
        assert_eq!(safe_abs_path("/a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_abs_path("/a/../b"), None);
        assert_eq!(safe_abs_path("a"), None);
        assert_eq!(safe_abs_path("/"), None);
    }
}
