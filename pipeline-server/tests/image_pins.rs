//! `POST /api/v1/pipelines` pins each pipeline's image through its executor before anything
//! is written: the pin is stored with the version and shown by `inspect pipeline`, the
//! console's pipeline page and the reproduce commands; an image the executor refuses is a 400
//! naming pipeline and image, and nothing is created. A rerun keeps the pin; an update takes
//! a new one.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use executor_process::ProcessExecutor;
use pipeline_core::executor::{Executor, ExecutorError, PinnedImage, Worker, WorkerPoolSpec};
use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::{Engine, RerunMode};
use pipeline_core::spec::EffectiveSpec;
use pipeline_server::routes::pipelines::CreatePipelines;
use pipeline_server::{AppState, Client, ClientError, ErrorKind, JobRunner};

/// The process executor, pinning images from a table (`image` → digest) the test changes.
#[derive(Debug)]
struct Pinning {
    inner: ProcessExecutor,
    digests: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Executor for Pinning {
    fn name(&self) -> &'static str {
        "pinning"
    }
    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        self.inner.start_workers(spec).await
    }
    async fn remove_pipeline(&self, project: &str, pipeline: &str) -> Result<usize, ExecutorError> {
        self.inner.remove_pipeline(project, pipeline).await
    }
    async fn pin_image(&self, spec: &EffectiveSpec) -> Result<Option<PinnedImage>, ExecutorError> {
        let image = spec.image().to_string();
        let digests = self.digests.lock().unwrap();
        match digests.iter().find(|(i, _)| *i == image) {
            Some((_, d)) => Ok(Some(PinnedImage {
                reference: format!("{}@{d}", image.split(':').next().unwrap()),
                image,
                digest: d.clone(),
            })),
            None => Err(ExecutorError::ImageNotFound {
                image,
                message: "absent from the daemon".into(),
            }),
        }
    }
}

fn spec(image: &str) -> CreatePipelines {
    CreatePipelines {
        spec: format!(
            "pipeline: {{name: edges}}\ntransform: {{image: '{image}', cmd: [sh, -c, 'true']}}\ninput: {{pfs: {{repo: data, glob: /*}}}}\n"
        ),
        source_name: "edges.yaml".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_record_the_digest_their_executor_pins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    store
        .create_repo(&RepoRef::new("data").unwrap(), "")
        .unwrap();
    let pinning = Arc::new(Pinning {
        inner: ProcessExecutor::builder().build().unwrap(),
        digests: Mutex::new(vec![("edges:latest".into(), "sha256:aaa".into())]),
    });
    let engine = Engine::builder(store)
        .executor(pinning.clone())
        .build()
        .unwrap();
    let state = AppState::new(engine.clone(), JobRunner::OnWait, true);
    let client = Client::in_process(state.clone());

    // Refused: nothing created, the message names pipeline and image.
    let err = client
        .create_pipelines(&spec("absent:1"))
        .await
        .unwrap_err();
    match &err {
        ClientError::Api { kind, message, .. } => {
            assert_eq!(*kind, ErrorKind::Invalid, "{message}");
            assert!(
                message.contains("edges") && message.contains("absent:1"),
                "{message}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(engine.inspect_pipeline("edges").is_err());

    client
        .create_pipelines(&spec("edges:latest"))
        .await
        .unwrap();
    let info = client.inspect_pipeline("edges").await.unwrap();
    let pin = info.image.clone().unwrap();
    assert_eq!(
        (pin.image.as_str(), pin.digest.as_str()),
        ("edges:latest", "sha256:aaa")
    );
    assert_eq!(
        pipeline_core::pps::pool_spec(&info, &Default::default())
            .spec
            .image(),
        "edges@sha256:aaa",
        "workers run the pinned reference"
    );

    // The tag moves; a rerun keeps the pin, an update takes the new digest.
    pinning.digests.lock().unwrap()[0].1 = "sha256:bbb".into();
    client
        .rerun_pipeline("edges", RerunMode::All)
        .await
        .unwrap();
    let info = client.inspect_pipeline("edges").await.unwrap();
    assert_eq!(info.image.unwrap().digest, "sha256:aaa");
    let update = CreatePipelines {
        update: true,
        ..spec("edges:latest")
    };
    client.create_pipelines(&update).await.unwrap();
    let info = client.inspect_pipeline("edges").await.unwrap();
    assert_eq!(info.image.unwrap().digest, "sha256:bbb");

    // The console shows tag and digest.
    let page = console_page(&state, "/pipelines/edges").await;
    assert!(
        page.contains("edges:latest") && page.contains("sha256:bbb"),
        "{page}"
    );
}

/// The console page at `path` (an in-process state needs no sign-in).
async fn console_page(state: &AppState, path: &str) -> String {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = pipeline_server::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&body).into_owned()
}
