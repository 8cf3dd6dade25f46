//! Shared fixture of the console tests: a store with a three-pipeline DAG (one datum fails
//! with a log line), names and contents carrying `<script>`, and a way to GET and POST pages
//! through the router in process.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use executor_process::ProcessExecutor;
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine, JobInfo};
use pipeline_core::spec::parse_str;
use pipeline_server::{AppState, JobRunner};
use tower::ServiceExt;

/// A hostile string used in names, paths, log lines and specs: it must never reach a page
/// unescaped.
pub const HOSTILE: &str = "<script>alert(1)</script>";

/// The fixture.
pub struct Console {
    pub _dir: tempfile::TempDir,
    pub engine: Engine,
    pub state: AppState,
}

/// Repo `raw` with `/a.txt`, `/b.txt`, `/bad.txt` and a file named after [`HOSTILE`];
/// pipelines `upper` (raw, `/*`), `count` (upper, `/`) and `check` (raw, `/*`, fails on
/// `/bad.txt` after printing `cannot parse bad.txt <script>…`); every job run once.
pub async fn console() -> Console {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    let raw = RepoRef::new("raw").unwrap();
    store.create_repo(&raw, HOSTILE).unwrap();
    let c = store
        .start_commit(&raw.branch("master").unwrap(), HOSTILE)
        .unwrap()
        .commit;
    for (path, body) in [
        ("/a.txt", "alpha\n"),
        ("/b.txt", "beta\n"),
        ("/bad.txt", "oops\n"),
        ("/x<script>alert.txt", HOSTILE),
    ] {
        store.put_file_bytes(&c, path, body.as_bytes()).unwrap();
    }
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    let specs = [
        "pipeline: {name: upper}\ndescription: \"<script>alert(1)</script>\"\ntransform: {cmd: [sh, -c, 'tr a-z A-Z < $raw > /pfs/out/${raw##*/}']}\ninput: {pfs: {repo: raw, glob: /*}}\n",
        "pipeline: {name: count}\ntransform: {cmd: [sh, -c, 'cat /pfs/upper/* | wc -l > /pfs/out/lines']}\ninput: {pfs: {repo: upper, glob: /}}\n",
        "pipeline: {name: check}\ntransform: {cmd: [sh, -c, 'case $raw in *bad.txt) echo \"cannot parse bad.txt <script>alert(1)</script>\"; exit 3;; esac; cp $raw /pfs/out/']}\ndatum_tries: 1\ninput: {pfs: {repo: raw, glob: /*}}\n",
    ];
    for s in specs {
        let parsed = parse_str(s, "fixture.yaml").unwrap();
        engine
            .create_pipelines(&parsed, &CreateOptions::default())
            .unwrap();
    }
    engine.run_pending().await.unwrap();
    let state = AppState::new(engine.clone(), JobRunner::OnWait, true);
    Console {
        _dir: dir,
        engine,
        state,
    }
}

impl Console {
    /// The jobs of `pipeline`, oldest first.
    pub fn jobs(&self, pipeline: &str) -> Vec<JobInfo> {
        self.engine.list_jobs(Some(pipeline)).unwrap()
    }

    /// GETs `path` from the router: status and body.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).body(Body::empty()).unwrap();
        self.send(req).await
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) to `path`.
    pub async fn post_form(&self, path: &str, form: &str) -> (StatusCode, String) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .unwrap();
        self.send(req).await
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = pipeline_server::router(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Fails unless `body` shows no unescaped `<script>` other than the console's own script tag.
pub fn assert_escaped(body: &str) {
    let own = r#"<script src="/assets/console.js" defer></script>"#;
    let rest = body.replace(own, "");
    assert!(
        !rest.to_ascii_lowercase().contains("<script"),
        "an unescaped <script> reached the page:\n{body}"
    );
}
