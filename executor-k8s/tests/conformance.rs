//! The executor conformance suite (`pipeline_core::testkit`) against
//! (1) "pods" that are private mount namespaces on this machine, behind the fake API, and
//! (2) a real cluster whenever `KUBECONFIG` points at one (see the crate README).

mod common;

use std::sync::Arc;

use common::{FakeApi, NamespacedExec, mock_client};
use executor_k8s::{ClusterSource, K8sConfig, K8sExecutor, WorkerPaths};
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, NullLogSink, Program, ProgramKind, Secrets, WorkerPoolSpec,
};
use pipeline_core::spec::{EffectiveSpec, PipelineSpec, Transform};
use pipeline_core::testkit::{self, Harness};

/// Prints a skip reason where `cargo test` shows it (its capture only covers the print
/// macros, not a direct write to stderr).
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {reason}");
}

fn template(image: &str) -> WorkerPoolSpec {
    template_as(image, None)
}

fn template_as(image: &str, user: Option<&str>) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: "conf".into(),
        version: 1,
        workers: 1,
        spec: Arc::new(EffectiveSpec::from_defaulted(PipelineSpec {
            transform: Some(Transform {
                image: Some(image.into()),
                user: user.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        })),
        secrets: Secrets::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_namespace_pods() {
    if let Some(reason) = NamespacedExec::unsupported() {
        skip(&format!("conformance_with_namespace_pods: {reason}"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(NamespacedExec::new(dir.path()));
    let (client, handle) = mock_client();
    FakeApi::new().serve(handle);
    let config = K8sConfig {
        namespace: Some("test-ns".into()),
        owner: "conformance".into(),
        paths: WorkerPaths {
            pfs: "/pfs".into(),
            control: exec.control.display().to_string(),
            ..WorkerPaths::default()
        },
        ..K8sConfig::default()
    };
    let executor = K8sExecutor::builder()
        .config(config)
        .exec_transport(exec)
        .build_on(client);
    let harness = Harness::new(Arc::new(executor), template("unused"))
        .scratch_root(dir.path())
        .host_process_checks(true)
        // User code runs as root here, which file modes cannot stop (see crate docs).
        .inputs_read_only(false)
        .large_output_bytes(32 << 20)
        .reuse_datums(40);
    testkit::run_all(&harness).await;
}

/// Needs a cluster: `KUBECONFIG=~/.kube/config cargo test -p executor-k8s --test conformance
/// -- --nocapture real_cluster` (see README.md for kind/k3d/minikube).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_conformance_and_datum_flow() {
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) else {
        skip("real_cluster_conformance_and_datum_flow: KUBECONFIG is not set");
        return;
    };
    let first = std::env::split_paths(&kubeconfig)
        .next()
        .unwrap_or_default();
    if !first.exists() {
        skip(&format!(
            "real_cluster_conformance_and_datum_flow: KUBECONFIG file {} does not exist",
            first.display()
        ));
        return;
    }
    let namespace = std::env::var("EXECUTOR_K8S_TEST_NAMESPACE").unwrap_or("default".into());
    let image = std::env::var("EXECUTOR_K8S_TEST_IMAGE").unwrap_or("busybox:1.36".into());
    let config = K8sConfig {
        namespace: Some(namespace),
        owner: format!("e2e-{}", std::process::id()),
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

    // A simple datum flow first: one input in, one output back.
    let mut pool = template(&image);
    pool.pipeline = "e2e-flow".into();
    let mut workers = executor.start_workers(&pool).await.expect("start_workers");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scratch.path().join("images/dir")).unwrap();
    std::fs::create_dir_all(scratch.path().join("out")).unwrap();
    std::fs::write(scratch.path().join("images/dir/a.txt"), "hello\n").unwrap();
    let task = DatumTask {
        job_id: "0123456789abcdef0123456789abcdef".into(),
        datum_id: "a".repeat(64),
        scratch: scratch.path().to_path_buf(),
        inputs: vec!["images".into()],
        program: Program::new(
            ProgramKind::Cmd,
            vec!["sh".into()],
            &["tr a-z A-Z < /pfs/images/dir/a.txt > /pfs/out/A.txt".into()],
        ),
        env: vec![],
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: Arc::new(NullLogSink),
    };
    let outcome = workers[0].run(task).await.expect("run");
    assert_eq!(outcome, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/A.txt")).unwrap(),
        "HELLO\n"
    );
    workers[0].stop().await.unwrap();
    executor
        .remove_pipeline("default", "e2e-flow")
        .await
        .unwrap();

    // A non-root user, so that read-only inputs are enforced (file modes do not stop root).
    let harness = Harness::new(Arc::new(executor), template_as(&image, Some("1000:1000")))
        .host_process_checks(false)
        .large_output_bytes(16 << 20)
        .reuse_datums(20);
    testkit::run_all(&harness).await;
}
