//! `executor-k8s`: runs pipeline user code on Kubernetes.
pub mod config;
pub mod datum;
pub mod exec;
pub mod executor;
pub mod manifest;
pub mod names;
pub mod status;

pub use config::{ClusterSource, K8sConfig, SharedVolume, WorkerPaths};
pub use exec::{ExecError, ExecIo, ExecTransport, KubeExec};
pub use executor::{K8sExecutor, K8sWorker};
pub use manifest::{ManifestError, render_worker_manifests};
