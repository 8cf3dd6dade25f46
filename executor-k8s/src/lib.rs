//! `executor-k8s`: runs pipeline user code on Kubernetes through the
//! [`Executor`](pipeline_core::executor::Executor) trait, so a pipeline that has outgrown one
//! machine runs its datums in a cluster while the host keeps the engine and the store.
//!
//! ```no_run
//! use executor_k8s::{ClusterSource, K8sConfig, K8sExecutor};
//! use pipeline_core::executor::{Executor, ExecutorError, WorkerPoolSpec};
//!
//! # async fn demo(pool: WorkerPoolSpec) -> Result<(), ExecutorError> {
//! // KUBECONFIG / ~/.kube/config, else the in-cluster service account.
//! let config = K8sConfig { namespace: Some("pipelines".into()), ..K8sConfig::default() };
//! let executor = K8sExecutor::builder()
//!     .cluster(ClusterSource::Infer)
//!     .config(config)
//!     .build()
//!     .await?;
//! println!("{}", executor.render_manifests(&pool)?); // review what would be applied
//! let mut workers = executor.start_workers(&pool).await?; // pods Running, or a clear error
//! // ... the engine calls workers[i].run(task) per datum ...
//! for w in &mut workers {
//!     w.stop().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Why kube + k8s-openapi
//!
//! kube is the maintained Rust client (the kube-rs project, a CNCF project) and the only one
//! with the pieces this executor needs: config inference (kubeconfig, in-cluster), typed
//! `Api<Pod>` calls, a watcher that re-lists and re-watches across disconnects and `410 Gone`,
//! the WebSocket exec subresource (feature `ws`), and a `Client::new(service)` seam that
//! lets the tests play the API server with `tower-test`. k8s-openapi provides the generated
//! Kubernetes types kube is built on (`Pod`, `PodSpec`, ...), so manifests are typed values
//! rather than hand-written JSON. Both are heavy to compile (reference P15), which is why this
//! crate is separate and `pipeline-core` never depends on it.
//!
//! # Kubernetes version (k8s-openapi features)
//!
//! k8s-openapi must be built for exactly one Kubernetes API version, chosen by a `v1_*`
//! feature; its build script fails when none or two are enabled. As a library, this crate
//! enables **none** in its `[dependencies]` (otherwise a binary choosing another version would
//! get two). The choice is left to binaries:
//!
//! - **Binaries** (e.g. `pipectl` in `pipectl/`) add `k8s-openapi = { workspace = true,
//!   features = ["latest"] }` (or the `v1_*` of the oldest API server they support; 0.29
//!   offers `v1_33` to `v1_37`). Types of stable APIs built for a newer version work against
//!   older servers because unset optional fields are omitted.
//! - **This workspace** sets `K8S_OPENAPI_ENABLED_VERSION = "1.37"` in `.cargo/config.toml`,
//!   so `cargo clippy/test/doc --workspace` and `cargo doc -p executor-k8s` (which builds no
//!   dev-dependencies) all work from the repository. This crate's dev-dependency enables
//!   `latest`, which for k8s-openapi 0.29 **is** `v1_37`: the build script takes the union of
//!   the variable and the features, so equal values never conflict. When k8s-openapi is
//!   upgraded, update the variable to the new `latest` (a mismatch panics with
//!   "Both v1_x and v1_y features are enabled"), and binaries must enable `latest` or the
//!   same version.
//!
//! # Worker pods
//!
//! [`Executor::start_workers`](pipeline_core::executor::Executor::start_workers) creates one
//! **bare pod per worker** (`parallelism_spec` pods per pipeline version), not a StatefulSet or
//! Deployment, because the engine, not a controller, owns the worker lifecycle:
//!
//! - a failure must **surface** as an error with its Kubernetes reason (OOMKilled, Evicted),
//!   not be hidden by a controller silently replacing the pod mid-datum; the engine then
//!   retries the datum on a fresh worker ([`ExecutorError::WorkerLost`] is retryable);
//! - each [`Worker`] is bound to one pod for its whole life (exec targets a pod by name);
//! - nothing needs to reconcile, so no controller RBAC beyond pods, `pods/exec` and reading
//!   secrets is needed. Pods use `restartPolicy: Never` for the same reason.
//!
//! Pods are reused for every datum and job of that pipeline version, deleted by
//! [`Worker::stop`], by [`Executor::remove_pipeline`](pipeline_core::executor::Executor::remove_pipeline)
//! (all versions), and replaced on update (the engine stops the old version's workers and
//! starts the new one's). Every pod carries labels for project, pipeline, version, worker
//! index and an **owner** ([`K8sConfig::owner`], the host by default); `start_workers` deletes
//! this owner's pods of the pipeline that it is not running (leftovers of a crashed host or an
//! older version), found by label. Naming rules (63-character limits, lowercase, `_`→`-`) are
//! in `names.rs` (public as [`labels`]).
//!
//! The pod spec maps every Kubernetes-relevant field of the pipeline spec, see `manifest.rs`
//! (the table there). [`render_worker_manifests`] (and
//! [`K8sExecutor::render_manifests`]) render the pods as YAML for review; the
//! `pipectl create pipeline --executor kubernetes --dry-run -o yaml` command that prints them
//! comes with the engine/CLI work, not with this crate.
//!
//! # Data path
//!
//! Each datum's inputs go into the pod, and its outputs come back, as **tar streams over the
//! exec API**: no shared storage is needed, any cluster works. With a configured
//! [`SharedVolume`] (a PersistentVolumeClaim also mounted on the host) the pod links to the data
//! instead. The program runs through exec in its own process group; cancel (the engine's
//! `datum_timeout` arrives as one) or dropping the `run` future kill the whole group inside the
//! pod. Details, including what an image must contain (`/bin/sh`, `sleep`, `tar`), are in
//! `datum.rs`.
//!
//! # Failures
//!
//! | Kubernetes | error |
//! |---|---|
//! | no kubeconfig / in-cluster config, API server not answering | [`ExecutorError::Unavailable`] from [`K8sExecutorBuilder::build`] |
//! | `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName` | [`ExecutorError::ImageNotFound`] |
//! | `Evicted`, `OOMKilled`, `CreateContainerConfigError`, `StartError`, pod deleted | [`ExecutorError::WorkerLost`] (at start, or during a datum: the pod is inspected when an exec fails) |
//! | `Unschedulable`, still Pending after [`K8sConfig::startup_timeout`] | [`ExecutorError::Backend`] naming the pod and the scheduler's message |
//! | exec refused (HTTP 401/403 on `pods/exec`) | [`ExecutorError::Backend`] (not retryable) naming the permission |
//! | secret or key named in `transform.secrets` missing | [`ExecutorError::InvalidTask`] naming `transform.secrets[i].name` / `.key` |
//! | a spec field Kubernetes cannot express (bad patch, user name, toleration, `resource_limits.pids`) | [`ExecutorError::InvalidTask`] naming the field |
//!
//! User-code results are [`DatumOutcome`]s, never errors:
//!
//! | the datum's program | outcome |
//! |---|---|
//! | exited with `n` (the in-pod wrapper's status) | [`DatumOutcome::Exited`] `{ exit_code: n }` |
//! | status `128 + s`, `s` a signal number (1–64) | [`DatumOutcome::Signaled`] `{ signal: s }` (a program exiting 137 itself looks the same) |
//! | cancelled, or timed out (`datum_timeout` arrives as a cancel) | [`DatumOutcome::Cancelled`]; the engine reports a timeout |
//! | failed (any status but 0) while the container's OOM kill counter grew, with `resource_limits.memory` set | [`DatumOutcome::OutOfMemory`] (failure kind `oom`) |
//! | the same, but the counter is unreadable | what the status says, usually `Signaled { signal: 9 }`, and one warning per pool |
//!
//! # Memory limits
//!
//! `resource_limits.memory` is the user container's memory limit. The kernel OOM-kills a datum
//! that exceeds it, but Kubernetes does not say so (a pod's `OOMKilled` concerns only the
//! container's main process, which is reported as [`ExecutorError::WorkerLost`]). So with a
//! memory limit the executor reads the container memory cgroup's `oom_kill` counter
//! (cgroup v2 `/sys/fs/cgroup/memory.events`, v1 `/sys/fs/cgroup/memory/memory.oom_control`,
//! the root set by [`WorkerPaths::cgroup`]) in one extra exec session before the program
//! runs and one after a failed run; a success costs one session, a failure two. The counter is
//! read by the executor's own script, never parsed from the program's output or exit status,
//! and only after a run that already failed: user code can at most make its **own** failed
//! datum read as `oom` (by really getting a process OOM-killed, or, in a privileged container,
//! by mounting over `/sys/fs/cgroup`), or hide an OOM as a plain signal 9; it can never turn a
//! failure into a success or a success into a failure. Where the counter is unreadable (a v2
//! node whose containers see the host's cgroup root, kernels before 4.13), `oom` cannot be told
//! from `kill -9` and the executor says so once per worker pool (`tracing::warn!`). The check
//! looks at the whole container, so a leftover process of an earlier datum that is OOM-killed
//! during a later failing datum also makes that one `oom`. Details in `oom.rs`.
//!
//! `resource_limits.pids` is **refused** ([`ExecutorError::InvalidTask`] naming the field):
//! a pod spec has no process limit (it is the kubelet's node-wide `podPidsLimit`), and a limit
//! that is accepted but not enforced is worse than an error. `resource_requests.pids` is
//! ignored, as on the Docker executor.
//!
//! # Secrets
//!
//! `transform.secrets` name **Kubernetes** secrets: `start_workers` checks through the API
//! that each exists in the namespace with the keys used, and the pod gets them through
//! `secretKeyRef` env vars and secret volumes. The values a host may supply in
//! [`WorkerPoolSpec::secrets`](pipeline_core::executor::WorkerPoolSpec::secrets) are not
//! used (nothing is written to the cluster), and secret variables are never repeated on the
//! exec command line, which the API server may log.
//!
//! # Not supported (yet)
//!
//! - `transform.user` as a **name**: Kubernetes needs numeric ids before the pod exists; use
//!   `uid[:gid]` (see `manifest.rs`).
//! - **Read-only inputs** are enforced with file modes, which do not stop a root user.
//! - `datum_batching` (its datums fail, saying so: this executor runs one datum per exec),
//!   and the sidecar resource fields (there is no storage sidecar).
//! - `spout` and `s3`/`s3_out` inputs and outputs: refused with a reason by
//!   `Executor::host_address`, since their user code talks to servers on the engine's host,
//!   which pods cannot reach.
//! - `service` runs (the engine relays `127.0.0.1:<external_port>` to the pod's address, not
//!   tested without a cluster); its Kubernetes Service is rendered ([`build_service`], in
//!   `--dry-run` manifests) but not created.
//! - Images without `/bin/sh` (distroless, `scratch`).
//!
//! [`ExecutorError::Unavailable`]: pipeline_core::executor::ExecutorError::Unavailable
//! [`ExecutorError::ImageNotFound`]: pipeline_core::executor::ExecutorError::ImageNotFound
//! [`ExecutorError::WorkerLost`]: pipeline_core::executor::ExecutorError::WorkerLost
//! [`ExecutorError::Backend`]: pipeline_core::executor::ExecutorError::Backend
//! [`ExecutorError::InvalidTask`]: pipeline_core::executor::ExecutorError::InvalidTask
//! [`Worker`]: pipeline_core::executor::Worker
//! [`Worker::stop`]: pipeline_core::executor::Worker::stop
//! [`DatumOutcome`]: pipeline_core::executor::DatumOutcome
//! [`DatumOutcome::Exited`]: pipeline_core::executor::DatumOutcome::Exited
//! [`DatumOutcome::Signaled`]: pipeline_core::executor::DatumOutcome::Signaled
//! [`DatumOutcome::Cancelled`]: pipeline_core::executor::DatumOutcome::Cancelled
//! [`DatumOutcome::OutOfMemory`]: pipeline_core::executor::DatumOutcome::OutOfMemory

mod config;
mod datum;
mod exec;
mod executor;
mod manifest;
mod names;
mod oom;
mod service;
mod status;

pub use config::{ClusterSource, K8sConfig, SharedVolume, WorkerPaths};
pub use exec::{
    BoxRead, BoxWrite, ExecError, ExecIo, ExecTransport, KubeExec, exit_code_from_status,
};
pub use executor::{K8sExecutor, K8sExecutorBuilder, K8sWorker};
pub use manifest::{
    ManifestError, build_worker_pod, build_worker_pods, parse_user, render_worker_manifests,
};
pub use service::build_service;

/// The labels, annotations and names this executor gives worker pods, to select them with
/// `kubectl` or the API.
pub mod labels {
    pub use crate::names::{
        ANNOTATION_PIPELINE, ANNOTATION_PROJECT, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_OWNER,
        LABEL_PIPELINE, LABEL_PREFIX, LABEL_PROJECT, LABEL_VERSION, LABEL_WORKER, MANAGED_BY,
        MAX_GENERATE_NAME, MAX_LABEL_VALUE, generate_name, label_value, pipeline_selector_labels,
        selector,
    };
}
