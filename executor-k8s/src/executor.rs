//! [`K8sExecutor`] and [`K8sWorker`]: pods per pipeline version, datums through exec.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, Worker, WorkerPoolSpec,
};

use crate::config::{ClusterSource, K8sConfig};
use crate::datum::{DatumError, DatumTarget};
use crate::exec::{ExecTransport, KubeExec};
use crate::manifest::{self, USER_CONTAINER};
use crate::names;
use crate::oom::OomWatch;
use crate::status::{PodFailure, PodState, classify};

const BACKEND: &str = "kubernetes";

/// Runs pipeline workers as Kubernetes pods (see the crate docs).
#[derive(Clone)]
pub struct K8sExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    pods: Api<Pod>,
    secrets: Api<Secret>,
    namespace: String,
    config: K8sConfig,
    exec: Arc<dyn ExecTransport>,
    /// Pods started by this executor instance and not yet stopped.
    live: Mutex<HashSet<String>>,
}

impl fmt::Debug for K8sExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8sExecutor")
            .field("namespace", &self.inner.namespace)
            .field("owner", &self.inner.config.owner)
            .finish_non_exhaustive()
    }
}

fn api_error(context: String, e: kube::Error) -> ExecutorError {
    ExecutorError::Backend {
        backend: BACKEND,
        message: context,
        source: Some(Box::new(e)),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// Builds a [`K8sExecutor`]: start from [`K8sExecutor::builder`], choose the cluster and
/// settings, then either `build().await?` (connects and checks the API server) or
/// `build_on(client)` (an existing client, no check).
///
/// ```no_run
/// # async fn demo() -> Result<(), pipeline_core::executor::ExecutorError> {
/// use executor_k8s::{ClusterSource, K8sConfig, K8sExecutor};
///
/// let executor = K8sExecutor::builder()
///     .cluster(ClusterSource::Infer)
///     .config(K8sConfig { owner: "my-app".into(), ..K8sConfig::default() })
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct K8sExecutorBuilder {
    cluster: ClusterSource,
    config: K8sConfig,
    exec: Option<Arc<dyn ExecTransport>>,
}

impl fmt::Debug for K8sExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8sExecutorBuilder")
            .field("cluster", &self.cluster)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl K8sExecutorBuilder {
    /// Where the API server and credentials come from (default [`ClusterSource::Infer`]).
    pub fn cluster(mut self, source: ClusterSource) -> Self {
        self.cluster = source;
        self
    }

    /// The executor's settings (default [`K8sConfig::default`]).
    pub fn config(mut self, config: K8sConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the exec transport (tests run the datum flow through a local fake).
    pub fn exec_transport(mut self, exec: Arc<dyn ExecTransport>) -> Self {
        self.exec = Some(exec);
        self
    }

    /// Connects to the cluster and checks that its API server answers (`GET /version`), so a
    /// missing or unreachable cluster is reported here as [`ExecutorError::Unavailable`]
    /// rather than at the first pipeline.
    pub async fn build(self) -> Result<K8sExecutor, ExecutorError> {
        let (client, config) = K8sExecutor::connect(self.cluster, self.config).await?;
        Ok(K8sExecutor::on_client(client, config, self.exec))
    }

    /// An executor on an existing client (no connectivity check; the cluster source is not
    /// used). Pods go to the configured namespace, or the client's default namespace.
    pub fn build_on(self, client: Client) -> K8sExecutor {
        K8sExecutor::on_client(client, self.config, self.exec)
    }
}

impl K8sExecutor {
    /// A builder with the defaults (inferred cluster, [`K8sConfig::default`]).
    pub fn builder() -> K8sExecutorBuilder {
        K8sExecutorBuilder::default()
    }

    /// Loads the cluster configuration and checks that its API server answers.
    async fn connect(
        source: ClusterSource,
        config: K8sConfig,
    ) -> Result<(Client, K8sConfig), ExecutorError> {
        let unavailable = |address: String, message: String, source| ExecutorError::Unavailable {
            backend: BACKEND,
            address,
            message,
            source,
        };
        let (kube_config, address) = match source {
            ClusterSource::Infer => (
                kube::Config::infer().await.map_err(|e| {
                    unavailable(
                        "KUBECONFIG / ~/.kube/config / in-cluster service account".into(),
                        "no Kubernetes configuration found".to_string(),
                        Some(Box::new(e) as _),
                    )
                })?,
                "inferred configuration".to_string(),
            ),
            ClusterSource::InCluster => (
                kube::Config::incluster().map_err(|e| {
                    unavailable(
                        "in-cluster service account".into(),
                        "not running in a cluster".to_string(),
                        Some(Box::new(e) as _),
                    )
                })?,
                "in-cluster service account".to_string(),
            ),
            ClusterSource::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                let where_ = match &path {
                    Some(p) => p.display().to_string(),
                    None => "KUBECONFIG or ~/.kube/config".to_string(),
                };
                let loaded = match &path {
                    Some(p) => match kube::config::Kubeconfig::read_from(p) {
                        Ok(k) => kube::Config::from_custom_kubeconfig(k, &options).await,
                        Err(e) => Err(e),
                    },
                    None => kube::Config::from_kubeconfig(&options).await,
                };
                (
                    loaded.map_err(|e| {
                        unavailable(
                            where_.clone(),
                            "cannot load kubeconfig".to_string(),
                            Some(Box::new(e) as _),
                        )
                    })?,
                    where_,
                )
            }
            ClusterSource::Explicit(c) => (*c, "explicit configuration".to_string()),
        };
        let url = kube_config.cluster_url.to_string();
        let default_ns = kube_config.default_namespace.clone();
        let client = Client::try_from(kube_config).map_err(|e| {
            unavailable(
                format!("{url} ({address})"),
                "cannot build a client".to_string(),
                Some(Box::new(e) as _),
            )
        })?;
        client.apiserver_version().await.map_err(|e| {
            unavailable(
                format!("{url} ({address})"),
                "the Kubernetes API server does not answer".to_string(),
                Some(Box::new(e) as _),
            )
        })?;
        let mut config = config;
        if config.namespace.is_none() {
            config.namespace = Some(default_ns);
        }
        Ok((client, config))
    }

    /// An executor on `client`; pods go to `config.namespace`, or the client's default
    /// namespace. `exec`: the exec transport, by default the API server's.
    fn on_client(client: Client, config: K8sConfig, exec: Option<Arc<dyn ExecTransport>>) -> Self {
        let namespace = config
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let secrets: Api<Secret> = Api::namespaced(client, &namespace);
        let exec = exec.unwrap_or_else(|| Arc::new(KubeExec::new(pods.clone())));
        K8sExecutor {
            inner: Arc::new(Inner {
                pods,
                secrets,
                namespace,
                config,
                exec,
                live: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The namespace worker pods live in.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The worker manifests `start_workers` would create, as YAML.
    pub fn render_manifests(&self, spec: &WorkerPoolSpec) -> Result<String, ExecutorError> {
        let mut config = self.inner.config.clone();
        config.namespace = Some(self.inner.namespace.clone());
        Ok(manifest::render_worker_manifests(spec, &config)?)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What every worker of `spec` needs to run datums, for pod `""` (filled in per worker).
    /// The OOM watch (and its one "counter unreadable" warning) is shared by the pool.
    fn datum_target(&self, spec: &WorkerPoolSpec) -> DatumTarget {
        let config = &self.inner.config;
        DatumTarget {
            exec: self.inner.exec.clone(),
            pod: String::new(),
            container: USER_CONTAINER.to_string(),
            pfs: config.paths.pfs.clone(),
            control: config.paths.control.clone(),
            shared: config
                .shared_volume
                .as_ref()
                .map(|s| (s.host_path.clone(), s.mount_path.clone())),
            secret_env: spec
                .spec
                .transform
                .secrets
                .iter()
                .filter_map(|s| s.env_var.clone())
                .collect(),
            kill_grace: config.kill_grace,
            oom: spec
                .spec
                .resource_limits
                .as_ref()
                .and_then(|l| l.memory.as_ref())
                .map(|_| OomWatch::new(config.paths.cgroup.clone())),
        }
    }

    /// Checks that every secret in `transform.secrets` exists and has the keys used.
    async fn check_secrets(&self, spec: &WorkerPoolSpec) -> Result<(), ExecutorError> {
        let transform = &spec.spec.transform;
        for (i, s) in transform.secrets.iter().enumerate() {
            let secret = match self.inner.secrets.get(&s.name).await {
                Ok(secret) => secret,
                Err(e) if is_not_found(&e) => {
                    return Err(ExecutorError::InvalidTask {
                        field: format!("transform.secrets[{i}].name"),
                        message: format!(
                            "missing Kubernetes secret {:?} in namespace {:?}",
                            s.name, self.inner.namespace
                        ),
                    });
                }
                Err(e) => return Err(api_error(format!("reading secret {:?}", s.name), e)),
            };
            if let Some(key) = s.key.as_deref().filter(|k| !k.is_empty()) {
                let has = secret.data.as_ref().is_some_and(|d| d.contains_key(key))
                    || secret
                        .string_data
                        .as_ref()
                        .is_some_and(|d| d.contains_key(key));
                if !has {
                    return Err(ExecutorError::InvalidTask {
                        field: format!("transform.secrets[{i}].key"),
                        message: format!("Kubernetes secret {:?} missing key {key:?}", s.name),
                    });
                }
            }
        }
        Ok(())
    }

    async fn delete_pod(&self, name: &str) -> Result<bool, ExecutorError> {
        self.live().remove(name);
        match self.inner.pods.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api_error(format!("deleting worker pod {name:?}"), e)),
        }
    }

    /// Deletes this owner's pods of a pipeline that this instance is not running (leftovers
    /// of a crashed or restarted host, or of an earlier version). Returns how many.
    async fn remove_leftovers(
        &self,
        project: &str,
        pipeline: &str,
        all: bool,
    ) -> Result<usize, ExecutorError> {
        let labels = names::pipeline_selector_labels(project, pipeline, &self.inner.config.owner);
        let list = self
            .inner
            .pods
            .list(&ListParams::default().labels(&names::selector(&labels)))
            .await
            .map_err(|e| api_error(format!("listing worker pods of pipeline {pipeline:?}"), e))?;
        let mut removed = 0;
        for pod in list.items {
            let Some(name) = pod.metadata.name else {
                continue;
            };
            if !all && self.live().contains(&name) {
                continue;
            }
            if self.delete_pod(&name).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Waits until a pod is Ready, has failed, or `startup_timeout` passes. Watch
    /// interruptions are retried with backoff (kube's watcher re-lists and re-watches).
    async fn wait_ready(&self, name: &str) -> PodState {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = watcher::watcher(self.inner.pods.clone(), config).default_backoff();
        let mut last = PodState::Starting {
            detail: "not seen yet".into(),
        };
        let wait = async {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => {
                        let state = classify(Some(&pod));
                        if !matches!(state, PodState::Starting { .. }) {
                            return state;
                        }
                        last = state;
                    }
                    Ok(Event::Delete(_)) => return PodState::Missing,
                    Ok(Event::Init) | Ok(Event::InitDone) => {}
                    Err(e) => {
                        tracing::debug!(pod = %name, error = %e, "watch interrupted, retrying");
                        last = PodState::Starting {
                            detail: format!("watch error: {e}"),
                        };
                    }
                }
            }
            PodState::Missing
        };
        match tokio::time::timeout(self.inner.config.startup_timeout, wait).await {
            Ok(state) => state,
            Err(_) => match last {
                PodState::Starting { detail } => PodState::Starting {
                    detail: format!(
                        "not Running after {:?} ({detail})",
                        self.inner.config.startup_timeout
                    ),
                },
                other => other,
            },
        }
    }

    fn failure_error(
        &self,
        spec: &WorkerPoolSpec,
        index: usize,
        pod: &str,
        state: PodState,
    ) -> ExecutorError {
        match state {
            PodState::Ready => ExecutorError::Backend {
                backend: BACKEND,
                message: format!("worker pod {pod:?} is ready (not an error)"),
                source: None,
            },
            PodState::Missing => ExecutorError::WorkerLost {
                pipeline: spec.pipeline.clone(),
                worker: index,
                reason: format!("worker pod {pod:?} was deleted before it became Running"),
            },
            PodState::Starting { detail } => ExecutorError::Backend {
                backend: BACKEND,
                message: format!("worker pod {pod:?} {detail}"),
                source: None,
            },
            PodState::Failed(PodFailure::Image {
                image,
                reason,
                message,
            }) => ExecutorError::ImageNotFound {
                image,
                message: format!("{reason} in worker pod {pod:?}: {message}"),
            },
            PodState::Failed(PodFailure::Unschedulable { message }) => ExecutorError::Backend {
                backend: BACKEND,
                message: format!("worker pod {pod:?} is Unschedulable: {message}"),
                source: None,
            },
            PodState::Failed(f @ PodFailure::Lost { .. }) => ExecutorError::WorkerLost {
                pipeline: spec.pipeline.clone(),
                worker: index,
                reason: format!("pod {pod:?}: {}", f.describe()),
            },
        }
    }
}

#[async_trait]
impl Executor for K8sExecutor {
    fn name(&self) -> &'static str {
        BACKEND
    }

    /// Pods cannot reach servers the engine starts on its own host (a spout's endpoint, a
    /// job's S3 gateway): such pipelines are refused with a clear reason.
    async fn host_address(&self, spec: &WorkerPoolSpec) -> Result<std::net::IpAddr, ExecutorError> {
        Err(ExecutorError::Unsupported {
            backend: BACKEND,
            what: format!(
                "pipeline {}/{}: its user code talks to the engine's host (spout, service or S3 \
                 input/output), which pods cannot reach; run it on the process or docker \
                 executor",
                spec.project, spec.pipeline
            ),
        })
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        let mut config = self.inner.config.clone();
        config.namespace = Some(self.inner.namespace.clone());
        let pods = manifest::build_worker_pods(spec, &config)?;
        self.check_secrets(spec).await?;
        let removed = self
            .remove_leftovers(&spec.project, &spec.pipeline, false)
            .await?;
        if removed > 0 {
            tracing::info!(pipeline = %spec.pipeline, removed, "removed leftover worker pods");
        }

        let mut created: Vec<String> = Vec::new();
        let result: Result<(), ExecutorError> = async {
            for pod in &pods {
                let made = self
                    .inner
                    .pods
                    .create(&PostParams::default(), pod)
                    .await
                    .map_err(|e| {
                        api_error(
                            format!("creating a worker pod for pipeline {:?}", spec.pipeline),
                            e,
                        )
                    })?;
                let name = made.metadata.name.ok_or_else(|| ExecutorError::Backend {
                    backend: BACKEND,
                    message: "the API server returned a pod without a name".into(),
                    source: None,
                })?;
                self.live().insert(name.clone());
                created.push(name);
            }
            let states =
                futures::future::join_all(created.iter().map(|n| self.wait_ready(n))).await;
            for (index, (name, state)) in created.iter().zip(states).enumerate() {
                if state != PodState::Ready {
                    return Err(self.failure_error(spec, index, name, state));
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            for name in &created {
                if let Err(del) = self.delete_pod(name).await {
                    tracing::warn!(pod = %name, error = %del, "could not delete a worker pod");
                }
            }
            return Err(e);
        }

        let template = self.datum_target(spec);
        Ok(created
            .into_iter()
            .enumerate()
            .map(|(index, pod)| {
                Box::new(K8sWorker {
                    executor: self.clone(),
                    index,
                    pipeline: spec.pipeline.clone(),
                    target: DatumTarget {
                        pod,
                        ..template.clone()
                    },
                    stopped: false,
                }) as Box<dyn Worker>
            })
            .collect())
    }

    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError> {
        self.remove_leftovers(project, pipeline, true).await
    }
}

/// One worker pod.
pub struct K8sWorker {
    executor: K8sExecutor,
    index: usize,
    pipeline: String,
    target: DatumTarget,
    stopped: bool,
}

impl fmt::Debug for K8sWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8sWorker")
            .field("pod", &self.target.pod)
            .field("index", &self.index)
            .field("pipeline", &self.pipeline)
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl K8sWorker {
    /// The worker's pod name.
    pub fn pod_name(&self) -> &str {
        &self.target.pod
    }

    /// Turns a failed datum step into an error, asking the API server what happened to the
    /// pod (OOMKilled, Evicted, deleted) so the error carries the Kubernetes reason.
    async fn diagnose(&self, err: DatumError) -> ExecutorError {
        let pod = &self.target.pod;
        let lost = |reason: String| ExecutorError::WorkerLost {
            pipeline: self.pipeline.clone(),
            worker: self.index,
            reason,
        };
        match err {
            DatumError::Invalid { field, message } => ExecutorError::InvalidTask { field, message },
            DatumError::Io { context, source } => ExecutorError::Io { context, source },
            DatumError::Exec(e @ crate::exec::ExecError::Forbidden { .. }) => {
                ExecutorError::Backend {
                    backend: BACKEND,
                    message: "running a datum step".to_string(),
                    source: Some(Box::new(e)),
                }
            }
            DatumError::Step { .. } | DatumError::Exec(_) => {
                let state = match self.executor.inner.pods.get_opt(pod).await {
                    Ok(p) => classify(p.as_ref()),
                    Err(e) => {
                        return lost(format!(
                            "{}; and the pod's state is unknown: {}",
                            ErrorChain(&err),
                            ErrorChain(&e)
                        ));
                    }
                };
                match state {
                    PodState::Failed(f) => lost(format!("pod {pod:?}: {}", f.describe())),
                    PodState::Missing => {
                        lost(format!("pod {pod:?} was deleted ({})", ErrorChain(&err)))
                    }
                    _ => match err {
                        DatumError::Step { .. } => ExecutorError::Backend {
                            backend: BACKEND,
                            message: err.to_string(),
                            source: None,
                        },
                        _ => lost(ErrorChain(&err).to_string()),
                    },
                }
            }
        }
    }
}

#[async_trait]
impl Worker for K8sWorker {
    fn index(&self) -> usize {
        self.index
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        match self.target.run(&task).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(self.diagnose(e).await),
        }
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        if self.stopped {
            return Ok(());
        }
        self.executor.delete_pod(&self.target.pod).await?;
        self.stopped = true;
        Ok(())
    }
}

impl Drop for K8sWorker {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // Best effort; leftovers are also found by label on the next start/remove.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let executor = self.executor.clone();
            let pod = self.target.pod.clone();
            rt.spawn(async move {
                let _ = executor.delete_pod(&pod).await;
            });
        }
    }
}
