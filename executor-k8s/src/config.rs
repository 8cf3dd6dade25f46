//! Executor configuration: where the cluster is, which namespace, and how workers look.

use std::path::PathBuf;
use std::time::Duration;

/// Where the Kubernetes API server and credentials come from.
#[derive(Debug, Clone, Default)]
pub enum ClusterSource {
    /// kube's standard inference: `KUBECONFIG` / `~/.kube/config` first, then the in-cluster
    /// service account (`KUBERNETES_SERVICE_HOST` + the mounted token).
    #[default]
    Infer,
    /// Only the in-cluster service account of the pod this program runs in.
    InCluster,
    /// A kubeconfig file (`None`: `KUBECONFIG` or `~/.kube/config`), optionally a context.
    Kubeconfig {
        /// The file; `None` uses `KUBECONFIG` or `~/.kube/config`.
        path: Option<PathBuf>,
        /// The context; `None` uses the file's current context.
        context: Option<String>,
    },
    /// A fully built client configuration.
    Explicit(Box<kube::Config>),
}

/// A volume shared between this host and the worker pods, used instead of tar streams.
///
/// The same storage (for example an NFS or CephFS share behind a `ReadWriteMany`
/// PersistentVolumeClaim) must be mounted on the host at [`SharedVolume::host_path`]. When a
/// datum's scratch directory lies under `host_path`, the worker links `/pfs/<input>` and
/// `/pfs/out` to the matching directories on the claim instead of copying data through the
/// exec API; other scratch directories fall back to tar streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVolume {
    /// Name of the PersistentVolumeClaim in the executor's namespace.
    pub claim_name: String,
    /// Where the claim is mounted in the worker pods (absolute, not `/pfs`).
    pub mount_path: String,
    /// Where the same storage is mounted on this host.
    pub host_path: PathBuf,
}

/// In-pod paths the executor uses. The defaults are what user code expects; change them only
/// to run the datum flow against a local fake exec transport (tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPaths {
    /// Where the datum's scratch directory appears (`/pfs`).
    pub pfs: String,
    /// A private directory for the executor's control files (the running process group).
    pub control: String,
    /// The worker container's cgroup root, where the memory cgroup's OOM kill counter is read
    /// (`/sys/fs/cgroup`; see the crate docs, "Memory limits").
    pub cgroup: String,
}

impl Default for WorkerPaths {
    fn default() -> Self {
        WorkerPaths {
            pfs: "/pfs".to_string(),
            control: "/pach-worker".to_string(),
            cgroup: "/sys/fs/cgroup".to_string(),
        }
    }
}

/// Configuration of a [`K8sExecutor`](crate::K8sExecutor).
#[derive(Debug, Clone)]
pub struct K8sConfig {
    /// Namespace for worker pods; `None` uses the client's default namespace (the kubeconfig
    /// context's namespace, the service account's namespace, or `default`).
    pub namespace: Option<String>,
    /// Identifies this host (engine instance) in the owner label of every pod it creates, so
    /// that several engines can share a namespace and a restarted host finds its leftovers.
    /// Default: the `HOSTNAME` environment variable, else `"default"`. Set a stable value
    /// when the engine itself runs in a pod (whose hostname changes on restart), e.g. the
    /// name of its Deployment, or leftovers of the previous pod will not be recognised.
    pub owner: String,
    /// How long a worker pod may take to become Running (image pull, scheduling) before
    /// `start_workers` fails with the pod's last reported state. Default 5 minutes.
    pub startup_timeout: Duration,
    /// How long to wait for a killed datum's exec session to end. Default 30 seconds.
    pub kill_grace: Duration,
    /// Service account of the worker pods; `None` uses the namespace's default. The token is
    /// not mounted unless `automount_service_account_token` is set.
    pub service_account: Option<String>,
    /// Mount the service account token into worker pods. Default `false`: user code gets no
    /// API credentials unless asked for (a `pod_patch` can also turn it on).
    pub automount_service_account_token: bool,
    /// Use a shared volume instead of tar streams where possible.
    pub shared_volume: Option<SharedVolume>,
    /// In-pod paths (see [`WorkerPaths`]).
    pub paths: WorkerPaths,
}

impl Default for K8sConfig {
    fn default() -> Self {
        let owner = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| "default".to_string());
        K8sConfig {
            namespace: None,
            owner,
            startup_timeout: Duration::from_secs(300),
            kill_grace: Duration::from_secs(30),
            service_account: None,
            automount_service_account_token: false,
            shared_volume: None,
            paths: WorkerPaths::default(),
        }
    }
}
