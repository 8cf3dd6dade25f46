//! Shared helpers for the Docker tests: daemon gating, the busybox test image, tasks.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use executor_docker::testing::ensure_test_image;
use executor_docker::{DataMode, DockerConfig, DockerExecutor};
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumTask, LogSink, LogStream, Program, ProgramKind, Secrets, WorkerPoolSpec,
};
use pipeline_core::spec::{EffectiveSpec, PipelineSpec, Transform};

/// Connects to the local daemon and makes sure the test image exists. Outside CI a missing
/// daemon skips the test (returns `None` after printing why); with `CI=true` it fails.
pub async fn executor(test: &str, mode: DataMode) -> Option<DockerExecutor> {
    executor_with(test, mode, |_| {}).await
}

/// Like [`executor`], with a chance to adjust the config.
pub async fn executor_with(
    test: &str,
    mode: DataMode,
    adjust: impl FnOnce(&mut DockerConfig),
) -> Option<DockerExecutor> {
    let mut config = DockerConfig {
        owner: owner(test),
        data_mode: mode,
        ..DockerConfig::default()
    };
    adjust(&mut config);
    match DockerExecutor::builder().config(config).build().await {
        Ok(e) => {
            if let Err(err) = ensure_test_image(e.client()).await {
                panic!("building the busybox test image: {err}");
            }
            Some(e)
        }
        Err(err) => {
            if in_ci() {
                panic!("{test}: the Docker daemon is required in CI: {err}");
            }
            eprintln!("skipping {test}: Docker daemon not reachable: {err}");
            None
        }
    }
}

/// Removes every container and work directory of a test's owner when dropped, also when the
/// test panics (a fresh runtime on a fresh thread, since the test's runtime may be gone).
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let owner = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = DockerExecutor::builder()
                    .config(DockerConfig {
                        owner,
                        remove_leftovers_on_connect: true,
                        ..DockerConfig::default()
                    })
                    .build()
                    .await;
            });
        })
        .join();
    }
}

/// Whether this is a CI run (`CI=true` or `1`), where a missing server fails a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// An owner label unique to this test and process, so parallel tests never clean up each other.
pub fn owner(test: &str) -> String {
    format!("edt-{}-{test}", std::process::id())
}

/// A pool spec for the test image.
pub fn pool(
    pipeline: &str,
    workers: usize,
    adjust: impl FnOnce(&mut PipelineSpec),
) -> WorkerPoolSpec {
    let mut spec = PipelineSpec {
        transform: Some(Transform {
            image: Some(executor_docker::testing::TEST_IMAGE.to_string()),
            cmd: vec!["sh".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    adjust(&mut spec);
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: pipeline.into(),
        version: 1,
        workers,
        spec: Arc::new(EffectiveSpec::from_defaulted(spec)),
        secrets: Secrets::default(),
    }
}

/// Collects log lines.
#[derive(Default)]
pub struct Lines(pub Mutex<Vec<(LogStream, String)>>);

impl LogSink for Lines {
    fn line(&self, stream: LogStream, line: &str) {
        self.0.lock().unwrap().push((stream, line.to_string()));
    }
}

impl Lines {
    pub fn of(&self, stream: LogStream) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.clone())
            .collect()
    }
}

/// Creates `scratch/<input>/<path>` files and an empty `scratch/out`.
pub fn scratch(root: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let s = root.join(format!("scratch-{}", unique()));
    std::fs::create_dir_all(s.join("out")).unwrap();
    for (path, content) in files {
        let p = s.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    s
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A task running `sh` with `script` on stdin.
pub fn shell_task(scratch: &Path, inputs: &[&str], script: &str, logs: Arc<Lines>) -> DatumTask {
    task(
        scratch,
        inputs,
        vec!["sh".into()],
        &[script.to_string()],
        logs,
    )
}

/// A task running `argv` with `stdin` lines.
pub fn task(
    scratch: &Path,
    inputs: &[&str],
    argv: Vec<String>,
    stdin: &[String],
    logs: Arc<Lines>,
) -> DatumTask {
    DatumTask {
        job_id: "job1".into(),
        datum_id: "d".repeat(64),
        scratch: scratch.to_path_buf(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        program: Program::new(ProgramKind::Cmd, argv, stdin),
        env: inputs
            .iter()
            .map(|i| (i.to_string(), format!("/pfs/{i}")))
            .collect(),
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs,
    }
}

/// Command lines of the processes running in a container (`docker top`).
pub async fn processes(exec: &DockerExecutor, container: &str) -> Vec<String> {
    let top = exec
        .client()
        .top_processes(container, None::<bollard::query_parameters::TopOptions>)
        .await
        .unwrap();
    let titles = top.titles.unwrap_or_default();
    let cmd_col = titles
        .iter()
        .position(|t| t == "CMD" || t == "COMMAND")
        .unwrap();
    top.processes
        .unwrap_or_default()
        .into_iter()
        .map(|p| p[cmd_col].clone())
        .collect()
}

/// Waits until `f` holds or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f().await
}
