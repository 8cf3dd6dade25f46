//! The executor against kube's tower-test mock service: pod creation, watching until
//! Running (with watch reconnects), deletion, pod failure states mapped to errors, the exec
//! request, and an unreachable cluster.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{FakeApi, LocalExec, local_config, mock_client};
use executor_k8s::{
    ClusterSource, ExecError, ExecIo, ExecTransport, K8sConfig, K8sExecutor, KubeExec,
    exit_code_from_status,
};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use kube::api::Api;
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumTask, Executor, ExecutorError, NullLogSink, Program, ProgramKind, Secrets, WorkerPoolSpec,
};
use serde_json::json;

fn pool(workers: usize) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: "edges".into(),
        version: 1,
        workers,
        spec: Arc::new(Default::default()),
        secrets: Secrets::default(),
    }
}

fn executor(api: &FakeApi, config: K8sConfig) -> K8sExecutor {
    let (client, handle) = mock_client();
    api.serve(handle);
    K8sExecutor::builder()
        .config(config)
        .exec_transport(Arc::new(LocalExec::default()))
        .build_on(client)
}

fn cfg() -> (tempfile::TempDir, K8sConfig) {
    let dir = tempfile::tempdir().unwrap();
    let c = local_config(dir.path());
    (dir, c)
}

fn waiting(reason: &str, message: &str) -> PodStatus {
    PodStatus {
        phase: Some("Pending".into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "user".into(),
            image: "registry.example.com/missing:1".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn running_pod(name: &str, rv: &str) -> serde_json::Value {
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("test-ns".into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        spec: None,
        status: Some(common::running_status()),
    };
    serde_json::to_value(pod).unwrap()
}

#[tokio::test]
async fn start_watches_until_running_then_stop_deletes() {
    let api = FakeApi::with_status(|_| waiting("ContainerCreating", ""));
    api.state.lock().unwrap().watch_script.push_back(vec![
        json!({"type": "MODIFIED", "object": running_pod("default-edges-v1-w0-00001", "2")}),
    ]);
    let (_d, c) = cfg();
    let ex = executor(&api, c);
    let mut workers = ex.start_workers(&pool(1)).await.unwrap();
    let requests = api.state.lock().unwrap().requests.clone();
    assert_eq!(
        requests[0], "GET /api/v1/namespaces/test-ns/pods",
        "leftover scan first"
    );
    assert_eq!(requests[1], "POST /api/v1/namespaces/test-ns/pods");
    assert!(requests.iter().any(|r| r == "WATCH 1"), "{requests:?}");
    workers[0].stop().await.unwrap();
    let st = api.state.lock().unwrap();
    assert_eq!(st.deleted, vec!["default-edges-v1-w0-00001".to_string()]);
    assert_eq!(
        st.requests.last().unwrap(),
        "DELETE /api/v1/namespaces/test-ns/pods/default-edges-v1-w0-00001"
    );
}

#[tokio::test]
async fn watch_reconnects_after_a_closed_stream_and_410_gone() {
    let api = FakeApi::with_status(|_| waiting("ContainerCreating", ""));
    {
        let mut st = api.state.lock().unwrap();
        st.watch_script.push_back(vec![]); // connection closed without events
        st.watch_script
            .push_back(vec![json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}})]);
        st.watch_script.push_back(vec![
            json!({"type": "MODIFIED", "object": running_pod("default-edges-v1-w0-00001", "7")}),
        ]);
    }
    let (_d, c) = cfg();
    let ex = executor(&api, c);
    let started = tokio::time::timeout(Duration::from_secs(30), ex.start_workers(&pool(1)))
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(started.len(), 1);
    let requests = api.state.lock().unwrap().requests.clone();
    let watches = requests.iter().filter(|r| r.starts_with("WATCH")).count();
    assert!(watches >= 3, "{requests:?}");
    let lists = requests
        .iter()
        .filter(|r| *r == "GET /api/v1/namespaces/test-ns/pods")
        .count();
    assert!(
        lists >= 3,
        "leftover scan + initial list + re-list after 410: {requests:?}"
    );
}

fn terminated(reason: &str, code: i32) -> PodStatus {
    PodStatus {
        phase: Some("Failed".into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "user".into(),
            image: "img".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    reason: Some(reason.into()),
                    exit_code: code,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

async fn start_error(status: PodStatus, config: Option<K8sConfig>) -> (ExecutorError, FakeApi) {
    let api = FakeApi::with_status(move |_| status.clone());
    let (_d, c) = cfg();
    let ex = executor(&api, config.unwrap_or(c));
    let err = tokio::time::timeout(Duration::from_secs(30), ex.start_workers(&pool(2)))
        .await
        .expect("no hang")
        .unwrap_err();
    (err, api)
}

#[tokio::test]
async fn pod_failures_become_clear_errors_and_leave_nothing_behind() {
    let evicted = PodStatus {
        phase: Some("Failed".into()),
        reason: Some("Evicted".into()),
        message: Some("The node was low on resource: memory.".into()),
        ..Default::default()
    };
    let (err, api) = start_error(evicted, None).await;
    assert!(
        matches!(&err, ExecutorError::WorkerLost { reason, pipeline, .. }
            if reason.contains("Evicted: The node was low on resource: memory.") && pipeline == "edges"),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(api.pod_names().is_empty(), "failed pool is torn down");

    let (err, _) = start_error(terminated("OOMKilled", 137), None).await;
    assert!(
        matches!(&err, ExecutorError::WorkerLost { reason, .. } if reason.contains("OOMKilled")),
        "{err}"
    );

    for reason in ["ImagePullBackOff", "ErrImagePull"] {
        let (err, api) = start_error(waiting(reason, "pull access denied"), None).await;
        match &err {
            ExecutorError::ImageNotFound { image, message } => {
                assert_eq!(image, "registry.example.com/missing:1");
                assert!(
                    message.contains(reason) && message.contains("pull access denied"),
                    "{message}"
                );
            }
            other => panic!("{reason}: unexpected {other:?}"),
        }
        assert!(api.pod_names().is_empty());
    }

    let unschedulable = PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let (err, _) = start_error(unschedulable, None).await;
    let text = err.to_string();
    assert!(
        text.contains("Unschedulable") && text.contains("Insufficient nvidia.com/gpu"),
        "{text}"
    );

    let (err, _) = start_error(
        waiting("CreateContainerConfigError", "secret \"creds\" not found"),
        None,
    )
    .await;
    assert!(
        err.to_string()
            .contains("CreateContainerConfigError: secret \"creds\" not found"),
        "{err}"
    );

    // Stuck in Pending: the startup timeout ends the wait with the last known state.
    let (_d, mut c) = cfg();
    c.startup_timeout = Duration::from_millis(800);
    let (err, api) = start_error(waiting("ContainerCreating", ""), Some(c)).await;
    let text = err.to_string();
    assert!(
        text.contains("not Running after") && text.contains("ContainerCreating"),
        "{text}"
    );
    assert!(api.pod_names().is_empty());
}

/// An exec transport whose sessions always break (the pod went away mid-datum).
#[derive(Debug)]
struct BrokenExec;

#[async_trait]
impl ExecTransport for BrokenExec {
    async fn exec(&self, pod: &str, _: &str, _: &[String], _: ExecIo) -> Result<i32, ExecError> {
        Err(ExecError::Broken {
            pod: pod.into(),
            message: "websocket closed".into(),
        })
    }
}

fn datum(dir: &std::path::Path) -> DatumTask {
    std::fs::create_dir_all(dir.join("out")).unwrap();
    DatumTask {
        job_id: "j".into(),
        datum_id: "d".into(),
        scratch: dir.to_path_buf(),
        inputs: vec![],
        program: Program::new(ProgramKind::Cmd, vec!["true".into()], &[]),
        env: vec![],
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: Arc::new(NullLogSink),
    }
}

#[tokio::test]
async fn a_pod_that_dies_mid_datum_reports_the_kubernetes_reason() {
    let api = FakeApi::new();
    let (dir, c) = cfg();
    let (client, handle) = mock_client();
    api.serve(handle);
    let ex = K8sExecutor::builder()
        .config(c)
        .exec_transport(Arc::new(BrokenExec))
        .build_on(client);
    let mut w = ex.start_workers(&pool(2)).await.unwrap();
    let names = api.pod_names();
    api.state
        .lock()
        .unwrap()
        .pods
        .get_mut(&names[0])
        .unwrap()
        .status = Some(terminated("OOMKilled", 137));
    let err = w[0].run(datum(&dir.path().join("s0"))).await.unwrap_err();
    assert!(
        matches!(&err, ExecutorError::WorkerLost { reason, worker: 0, .. } if reason.contains("OOMKilled")),
        "{err}"
    );
    api.state.lock().unwrap().pods.remove(&names[1]);
    let err = w[1].run(datum(&dir.path().join("s1"))).await.unwrap_err();
    assert!(
        matches!(&err, ExecutorError::WorkerLost { reason, worker: 1, .. } if reason.contains("was deleted")),
        "{err}"
    );
    for w in &mut w {
        w.stop().await.unwrap();
    }
}

#[tokio::test]
async fn kube_exec_sends_the_exec_request_and_reports_the_missing_upgrade() {
    let (client, mut handle) = mock_client();
    let server = tokio::spawn(async move {
        let (req, send) = handle.next_request().await.unwrap();
        let uri = req.uri().to_string();
        send.send_response(
            http::Response::builder()
                .status(http::StatusCode::SWITCHING_PROTOCOLS)
                .body(kube::client::Body::empty())
                .unwrap(),
        );
        uri
    });
    let exec = KubeExec::new(Api::<Pod>::namespaced(client, "test-ns"));
    let err = exec
        .exec(
            "edges-w0",
            "user",
            &["sh".into(), "-c".into(), "echo hi".into()],
            ExecIo {
                stdin: Some(Box::pin(tokio::io::empty())),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let uri = server.await.unwrap();
    assert!(
        uri.starts_with("/api/v1/namespaces/test-ns/pods/edges-w0/exec?"),
        "{uri}"
    );
    for part in [
        "command=sh",
        "command=-c",
        "command=echo+hi",
        "container=user",
        "stdin=true",
        "stdout=true",
        "stderr=true",
    ] {
        assert!(uri.contains(part), "{part} missing in {uri}");
    }
    assert!(!uri.contains("tty=true"));
    assert!(
        matches!(&err, ExecError::Connect { pod, .. } if pod == "edges-w0"),
        "{err}"
    );
}

#[test]
fn exit_codes_from_exec_status() {
    let ok = Status {
        status: Some("Success".into()),
        ..Default::default()
    };
    assert_eq!(exit_code_from_status("p", &ok).unwrap(), 0);
    let nonzero = Status {
        status: Some("Failure".into()),
        reason: Some("NonZeroExitCode".into()),
        message: Some("command terminated with non-zero exit code: exit status 3".into()),
        details: Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("ExitCode".into()),
                message: Some("3".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(exit_code_from_status("p", &nonzero).unwrap(), 3);
    let other = Status {
        status: Some("Failure".into()),
        message: Some("exec: \"sh\": executable file not found in $PATH".into()),
        ..Default::default()
    };
    let err = exit_code_from_status("p", &other).unwrap_err();
    assert!(
        err.to_string().contains("executable file not found"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_cluster_is_a_clear_error() {
    let missing = std::path::PathBuf::from("/nonexistent/kubeconfig.yaml");
    let err = K8sExecutor::builder()
        .cluster(ClusterSource::Kubeconfig {
            path: Some(missing),
            context: None,
        })
        .config(K8sConfig::default())
        .build()
        .await
        .unwrap_err();
    match &err {
        ExecutorError::Unavailable {
            backend,
            address,
            message,
            ..
        } => {
            assert_eq!(*backend, "kubernetes");
            assert!(
                address.contains("/nonexistent/kubeconfig.yaml"),
                "{address}"
            );
            assert!(message.contains("cannot load kubeconfig"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Nothing listens on the discard port of the loopback address.
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let err = K8sExecutor::builder()
        .cluster(ClusterSource::Explicit(Box::new(config)))
        .config(K8sConfig::default())
        .build()
        .await
        .unwrap_err();
    match &err {
        ExecutorError::Unavailable {
            address, message, ..
        } => {
            assert!(address.contains("127.0.0.1:9"), "{address}");
            assert!(message.contains("does not answer"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn render_manifests_uses_the_executor_namespace() {
    let api = FakeApi::new();
    let (_d, mut c) = cfg();
    c.namespace = None; // falls back to the client's default namespace
    let ex = executor(&api, c);
    assert_eq!(ex.namespace(), "test-ns");
    let yaml = ex.render_manifests(&pool(3)).unwrap();
    assert_eq!(yaml.matches("namespace: test-ns").count(), 3);
    for i in 0..3 {
        assert!(yaml.contains(&format!("generateName: default-edges-v1-w{i}-")));
    }
    assert!(
        api.state.lock().unwrap().requests.is_empty(),
        "rendering makes no API call"
    );
}

#[tokio::test]
async fn exec_forbidden_by_rbac_is_not_retryable() {
    let (client, mut handle) = mock_client();
    tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(common::json_response(
            http::StatusCode::FORBIDDEN,
            &json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                "message": "pods \"w0\" is forbidden: cannot create resource \"pods/exec\""}),
        ));
    });
    let exec = KubeExec::new(Api::<Pod>::namespaced(client, "test-ns"));
    let err = exec
        .exec("w0", "user", &["true".into()], ExecIo::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ExecError::Forbidden { pod, status: 403 } if pod == "w0"),
        "{err}"
    );
    assert!(err.to_string().contains("pods/exec"));
}
