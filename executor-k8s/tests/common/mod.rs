//! Test helpers: an in-memory Kubernetes API for pods and secrets played through kube's
//! tower-test mock service, and an exec transport that runs commands as local processes.
#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use executor_k8s::{ExecError, ExecIo, ExecTransport, K8sConfig, WorkerPaths};
use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodStatus, Secret,
};
use kube::client::Body;
use tokio::io::AsyncWriteExt;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A kube client whose requests go to the returned handle.
pub fn mock_client() -> (kube::Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "test-ns"), handle)
}

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

pub fn not_found(kind: &str, name: &str) -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound", "code": 404
        }),
    )
}

/// A pod status that counts as Ready.
pub fn running_status() -> PodStatus {
    PodStatus {
        phase: Some("Running".into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "user".into(),
            image: "img".into(),
            image_id: String::new(),
            ready: true,
            restart_count: 0,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

type StatusFn = Arc<dyn Fn(&Pod) -> PodStatus + Send + Sync>;

/// State of the fake API server.
#[derive(Default)]
pub struct FakeState {
    pub pods: BTreeMap<String, Pod>,
    pub secrets: HashMap<String, Secret>,
    pub created: usize,
    pub deleted: Vec<String>,
    pub requests: Vec<String>,
    /// Event lists served to successive watch requests (each becomes one watch response
    /// body); when empty, a watch ends at once without events.
    pub watch_script: std::collections::VecDeque<Vec<serde_json::Value>>,
}

/// An in-memory API server for pods and secrets, good enough for the executor's calls:
/// create (generateName), get, list (label and field selectors), delete, and secrets get.
#[derive(Clone)]
pub struct FakeApi {
    pub state: Arc<Mutex<FakeState>>,
    status: StatusFn,
}

fn query(uri: &http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn matches_selectors(pod: &Pod, q: &HashMap<String, String>) -> bool {
    if let Some(sel) = q.get("labelSelector") {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for kv in sel.split(',') {
            if let Some((k, v)) = kv.split_once('=')
                && labels.get(k).map(String::as_str) != Some(v)
            {
                return false;
            }
        }
    }
    if let Some(sel) = q.get("fieldSelector")
        && let Some(name) = sel.strip_prefix("metadata.name=")
        && pod.metadata.name.as_deref() != Some(name)
    {
        return false;
    }
    true
}

impl FakeApi {
    /// Pods become Running at once.
    pub fn new() -> Self {
        Self::with_status(|_| running_status())
    }

    /// Pods get the status computed by `f` when created.
    pub fn with_status(f: impl Fn(&Pod) -> PodStatus + Send + Sync + 'static) -> Self {
        FakeApi {
            state: Arc::default(),
            status: Arc::new(f),
        }
    }

    pub fn add_secret(&self, name: &str, keys: &[&str]) {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                keys.iter()
                    .map(|k| (k.to_string(), k8s_openapi::ByteString(b"x".to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.state
            .lock()
            .unwrap()
            .secrets
            .insert(name.into(), secret);
    }

    /// Inserts a pod as if another (crashed) host had created it.
    pub fn insert_pod(&self, pod: Pod) {
        let name = pod.metadata.name.clone().unwrap();
        self.state.lock().unwrap().pods.insert(name, pod);
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.state.lock().unwrap().pods.keys().cloned().collect()
    }

    /// Serves requests from `handle` until the client is dropped.
    pub fn serve(&self, mut handle: Handle) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = this.respond(req).await;
                send.send_response(resp);
            }
        })
    }

    async fn respond(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let path = uri.path().to_string();
        let q = query(&uri);
        let body = req.into_body().collect_bytes().await.unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        st.requests.push(format!("{method} {path}"));
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // api/v1/namespaces/<ns>/<kind>[/<name>]
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["version"]) => json_response(
                StatusCode::OK,
                &serde_json::json!({"major":"1","minor":"33","gitVersion":"v1.33.0",
                    "gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"",
                    "compiler":"","platform":""}),
            ),
            ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
                let mut pod: Pod = serde_json::from_slice(&body).unwrap();
                st.created += 1;
                let name = format!(
                    "{}{:05}",
                    pod.metadata.generate_name.clone().unwrap_or_default(),
                    st.created
                );
                pod.metadata.name = Some(name.clone());
                pod.metadata.namespace = Some(ns.to_string());
                pod.metadata.resource_version = Some("1".into());
                pod.status = Some((self.status)(&pod));
                st.pods.insert(name, pod.clone());
                json_response(StatusCode::CREATED, &serde_json::to_value(&pod).unwrap())
            }
            ("GET", ["api", "v1", "namespaces", _, "pods"]) => {
                if q.get("watch").map(String::as_str) == Some("true") {
                    st.requests.push(format!(
                        "WATCH {}",
                        q.get("resourceVersion").cloned().unwrap_or_default()
                    ));
                    let events = st.watch_script.pop_front().unwrap_or_default();
                    let mut body = Vec::new();
                    for ev in events {
                        if let Ok(pod) = serde_json::from_value::<Pod>(ev["object"].clone())
                            && let Some(name) = pod.metadata.name.clone()
                        {
                            st.pods.insert(name, pod);
                        }
                        body.extend(serde_json::to_vec(&ev).unwrap());
                        body.push(b'\n');
                    }
                    return Response::builder()
                        .status(StatusCode::OK)
                        .body(Body::from(body))
                        .unwrap();
                }
                let items: Vec<_> = st
                    .pods
                    .values()
                    .filter(|p| matches_selectors(p, &q))
                    .cloned()
                    .collect();
                json_response(
                    StatusCode::OK,
                    &serde_json::json!({"kind":"PodList","apiVersion":"v1",
                        "metadata":{"resourceVersion":"1"},"items": items}),
                )
            }
            ("GET", ["api", "v1", "namespaces", _, "pods", name]) => match st.pods.get(*name) {
                Some(p) => json_response(StatusCode::OK, &serde_json::to_value(p).unwrap()),
                None => not_found("pods", name),
            },
            ("DELETE", ["api", "v1", "namespaces", _, "pods", name]) => {
                match st.pods.remove(*name) {
                    Some(p) => {
                        st.deleted.push(name.to_string());
                        json_response(StatusCode::OK, &serde_json::to_value(&p).unwrap())
                    }
                    None => not_found("pods", name),
                }
            }
            ("GET", ["api", "v1", "namespaces", _, "secrets", name]) => {
                match st.secrets.get(*name) {
                    Some(s) => json_response(StatusCode::OK, &serde_json::to_value(s).unwrap()),
                    None => not_found("secrets", name),
                }
            }
            _ => json_response(
                StatusCode::NOT_IMPLEMENTED,
                &serde_json::json!({"kind":"Status","status":"Failure",
                    "message": format!("fake API: {method} {path} not implemented"),
                    "reason":"NotImplemented","code":501}),
            ),
        }
    }
}

/// Runs exec argv as a local process (the pod is this machine), pumping the streams.
#[derive(Debug, Default)]
pub struct LocalExec {
    pub calls: Mutex<Vec<(String, Vec<String>)>>,
}

#[async_trait]
impl ExecTransport for LocalExec {
    async fn exec(
        &self,
        pod: &str,
        _container: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, ExecError> {
        self.calls
            .lock()
            .unwrap()
            .push((pod.to_string(), argv.to_vec()));
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(if io.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| ExecError::Connect {
            pod: pod.into(),
            message: e.to_string(),
            source: None,
        })?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let feed = async {
            if let (Some(mut src), Some(mut dst)) = (io.stdin, stdin) {
                let _ = tokio::io::copy(&mut src, &mut dst).await;
                let _ = dst.shutdown().await;
            }
        };
        let out = async {
            match io.stdout {
                Some(mut w) => {
                    let _ = tokio::io::copy(&mut stdout, &mut w).await;
                    let _ = w.shutdown().await;
                }
                None => {
                    let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
                }
            }
        };
        let err = async {
            match io.stderr {
                Some(mut w) => {
                    let _ = tokio::io::copy(&mut stderr, &mut w).await;
                    let _ = w.shutdown().await;
                }
                None => {
                    let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
                }
            }
        };
        let ((), (), ()) = tokio::join!(feed, out, err);
        let status = child.wait().await.map_err(|e| ExecError::Broken {
            pod: pod.into(),
            message: e.to_string(),
        })?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Config whose in-pod paths are directories of `root` (the "pod" is this machine).
pub fn local_config(root: &std::path::Path) -> K8sConfig {
    let pfs: PathBuf = root.join("pfs");
    let ctl: PathBuf = root.join("ctl");
    std::fs::create_dir_all(&pfs).unwrap();
    std::fs::create_dir_all(&ctl).unwrap();
    K8sConfig {
        namespace: Some("test-ns".into()),
        owner: "host-a".into(),
        startup_timeout: std::time::Duration::from_secs(5),
        kill_grace: std::time::Duration::from_secs(5),
        paths: WorkerPaths {
            pfs: pfs.display().to_string(),
            control: ctl.display().to_string(),
            // A fake cgroup root the tests fill in (absent: the counter is unknown).
            cgroup: root.join("cgroup").display().to_string(),
        },
        ..K8sConfig::default()
    }
}

/// An exec transport whose "pods" are private mount namespaces on this machine: each exec
/// runs under `unshare --mount` with the pod's own directories bind-mounted on `/pfs` and on
/// the control path, so code with hard-coded `/pfs/...` paths runs as it would in a pod.
#[derive(Debug)]
pub struct NamespacedExec {
    pub pods_root: PathBuf,
    pub control: PathBuf,
    inner: LocalExec,
}

impl NamespacedExec {
    /// Why this machine cannot run it (no `unshare`, no privilege, no `/pfs`), if it can't.
    pub fn unsupported() -> Option<String> {
        if let Err(e) = std::fs::create_dir_all("/pfs") {
            return Some(format!("cannot create /pfs: {e}"));
        }
        match std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
        {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!(
                "`unshare --mount` failed ({s}): no mount privilege"
            )),
            Err(e) => Some(format!("`unshare` not available: {e}")),
        }
    }

    pub fn new(root: &std::path::Path) -> Self {
        let control = root.join("ctl");
        std::fs::create_dir_all(&control).unwrap();
        NamespacedExec {
            pods_root: root.join("pods"),
            control,
            inner: LocalExec::default(),
        }
    }
}

#[async_trait]
impl ExecTransport for NamespacedExec {
    async fn exec(
        &self,
        pod: &str,
        container: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, ExecError> {
        let pod_dir = self.pods_root.join(pod);
        for d in ["pfs", "ctl"] {
            std::fs::create_dir_all(pod_dir.join(d)).unwrap();
        }
        let mut wrapped: Vec<String> = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$1" /pfs && mount --bind "$2" "$3" && shift 3 && exec "$@""#,
            "sh",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        wrapped.push(pod_dir.join("pfs").display().to_string());
        wrapped.push(pod_dir.join("ctl").display().to_string());
        wrapped.push(self.control.display().to_string());
        wrapped.extend(argv.iter().cloned());
        self.inner.exec(pod, container, &wrapped, io).await
    }
}
