//! Reference §2.15 (incremental processing, failures, duplicate outputs) and the err_cmd
//! scenario through the engine API, with the shared driver of `pipeline_core::testkit::engine`
//! (the one the engine's own tests run):
//! (1) with the process executor, always, workers kept warm between jobs as in a long-lived
//!     host;
//! (2) with the Kubernetes executor, its "pods" private mount namespaces of this machine behind
//!     a fake API server (skipped with a printed reason without mount privilege);
//! (3) with worker pods in a real cluster whenever `KUBECONFIG` points at one (see README.md).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeApi, NamespacedExec, mock_client};
use executor_k8s::labels::{LABEL_VERSION, pipeline_selector_labels, selector};
use executor_k8s::{ClusterSource, K8sConfig, K8sExecutor, WorkerPaths};
use executor_process::ProcessExecutor;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use pipeline_core::executor::Executor;
use pipeline_core::pfs::{DEFAULT_PROJECT, Store};
use pipeline_core::pps::Engine;
use pipeline_core::testkit::engine::{self, EngineEnv, PIPELINES};

/// Prints a skip reason where `cargo test` shows it (its capture only covers the print
/// macros, not a direct write to stderr).
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {reason}");
}

/// A store in `dir` and an engine over it with one executor.
fn engine_env(dir: &Path, executor: Arc<dyn Executor>) -> EngineEnv {
    let store = Store::open(dir.join("store")).expect("opening the store");
    let engine = Engine::builder(store)
        .executor(executor)
        .build()
        .expect("building the engine");
    EngineEnv::new(engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_15_with_process_executor() {
    let dir = tempfile::tempdir().unwrap();
    let executor = ProcessExecutor::builder()
        .build()
        .expect("process executor");
    let e = engine_env(dir.path(), Arc::new(executor));
    engine::run_all(&e).await;
    engine::delete_all(&e).await;
}

/// `KUBECONFIG`, or why the real-cluster test is skipped.
fn kubeconfig() -> Result<std::ffi::OsString, String> {
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) else {
        return Err("KUBECONFIG is not set".into());
    };
    let first = std::env::split_paths(&kubeconfig)
        .next()
        .unwrap_or_default();
    if !first.exists() {
        return Err(format!(
            "KUBECONFIG file {} does not exist",
            first.display()
        ));
    }
    Ok(kubeconfig)
}

/// The pods of `pipeline` this test's owner has, as (name, version label, being deleted).
async fn pods_of(pods: &Api<Pod>, owner: &str, pipeline: &str) -> Vec<(String, String, bool)> {
    let labels = pipeline_selector_labels(DEFAULT_PROJECT, pipeline, owner);
    let list = pods
        .list(&ListParams::default().labels(&selector(&labels)))
        .await
        .expect("listing the pipeline's pods");
    list.items
        .into_iter()
        .map(|pod| {
            let version = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_VERSION).cloned())
                .unwrap_or_default();
            (
                pod.metadata.name.unwrap_or_default(),
                version,
                pod.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect()
}

/// The scenarios with worker pods, then `delete_pipeline`: checks through the API that each
/// pipeline's pods (found by the labels the executor removes them by) are the last version's
/// only, and that none is left after the delete. Cleans up if anything fails.
async fn k8s_scenario(executor: K8sExecutor, pods: Api<Pod>, owner: &str, image: String) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_env(dir.path(), Arc::new(executor.clone())).image(image);
    let run = async {
        engine::run_all(&e).await;
        // The last version's worker is still warm, found by the labels delete uses; the
        // earlier versions' pods were deleted when their successors started.
        for (pipeline, version) in PIPELINES {
            let live: Vec<_> = pods_of(&pods, owner, pipeline)
                .await
                .into_iter()
                .filter(|(_, _, deleting)| !deleting)
                .collect();
            assert_eq!(live.len(), 1, "live worker pods of {pipeline}: {live:?}");
            assert_eq!(
                live[0].1,
                version.to_string(),
                "live worker pods of {pipeline}: {live:?}"
            );
        }

        engine::delete_all(&e).await;
        // Every pod of a pipeline is deleted at once, and gone after its grace period.
        for (pipeline, _) in PIPELINES {
            let left = pods_of(&pods, owner, pipeline).await;
            assert!(
                left.iter().all(|(_, _, deleting)| *deleting),
                "pods of {pipeline} not being deleted after delete_pipeline: {left:?}"
            );
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        for (pipeline, _) in PIPELINES {
            loop {
                let left = pods_of(&pods, owner, pipeline).await;
                if left.is_empty() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "pods of {pipeline} still there 120 s after delete_pipeline: {left:?}"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
        // Leave nothing behind in the cluster, then fail with the original message.
        for (pipeline, _) in PIPELINES {
            let _ = executor.remove_pipeline(DEFAULT_PROJECT, pipeline).await;
        }
        std::panic::resume_unwind(panic);
    }
}

/// The same, with "pods" that are private mount namespaces of this machine behind the fake
/// API server (as in `tests/conformance.rs`): everything but the real API server and exec
/// WebSocket, so the Kubernetes path of the scenario runs without a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_15_with_namespace_pods() {
    if let Some(reason) = NamespacedExec::unsupported() {
        skip(&format!("scenario_2_15_with_namespace_pods: {reason}"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(NamespacedExec::new(dir.path()));
    let (client, handle) = mock_client();
    FakeApi::new().serve(handle);
    let owner = "e2e-2-15-local";
    let config = K8sConfig {
        namespace: Some("test-ns".into()),
        owner: owner.into(),
        paths: WorkerPaths {
            pfs: "/pfs".into(),
            control: exec.control.display().to_string(),
            ..WorkerPaths::default()
        },
        ..K8sConfig::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "test-ns");
    let executor = K8sExecutor::builder()
        .config(config)
        .exec_transport(exec)
        .build_on(client);
    k8s_scenario(executor, pods, owner, "unused".into()).await;
}

/// Needs a cluster: `KUBECONFIG=~/.kube/config cargo test -p executor-k8s --test engine_2_15
/// -- --nocapture real_cluster` (see README.md for kind/k3d/minikube).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_scenario_2_15() {
    let kubeconfig = match kubeconfig() {
        Ok(k) => k,
        Err(reason) => {
            skip(&format!("real_cluster_scenario_2_15: {reason}"));
            return;
        }
    };
    let namespace = std::env::var("EXECUTOR_K8S_TEST_NAMESPACE").unwrap_or("default".into());
    let image = std::env::var("EXECUTOR_K8S_TEST_IMAGE").unwrap_or("busybox:1.36".into());
    let owner = format!("e2e-2-15-{}", std::process::id());
    let config = K8sConfig {
        namespace: Some(namespace.clone()),
        owner: owner.clone(),
        ..K8sConfig::default()
    };
    let executor = match K8sExecutor::builder()
        .cluster(ClusterSource::Infer)
        .config(config)
        .build()
        .await
    {
        Ok(e) => e,
        Err(e) => panic!("KUBECONFIG={kubeconfig:?} is set but the cluster is unusable: {e}"),
    };
    // A second client on the same configuration, to look at the pods as a user would.
    let client = kube::Client::try_default()
        .await
        .expect("a client for the same cluster");
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    k8s_scenario(executor, pods, &owner, image).await;
}
