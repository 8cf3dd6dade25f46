//! What the `pipectl` end-to-end tests share: a temp directory holding the store (`root/`) and
//! local files, and helpers that run the real binary against it.
//!
//! **Both modes.** With `PIPECTL_TEST_MODE=server`, [`Env::new`] starts `pipectl serve` on the
//! store before the test and stops it after, so every command goes through the server's
//! socket instead of opening the store itself; `.ci/run` runs the CLI tests both ways and they
//! must pass unchanged (same output, same exit codes). Tests of what only embedded mode has
//! (the store lock, a killed command's own recovery, reads finding no store) use
//! [`Env::embedded`].
#![allow(dead_code)] // each test crate uses a different subset

use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// A temp directory: the store lives in `root/`, local files anywhere else.
pub struct Env {
    /// The temp directory.
    pub dir: tempfile::TempDir,
    /// The `pipectl serve` of this store, in server mode.
    server: Option<Child>,
    /// Environment variables every command (and the server) gets.
    vars: Vec<(String, String)>,
}

/// Whether every store is a server store (`PIPECTL_TEST_STORE=postgres-s3`): metadata in a
/// fresh schema on the test PostgreSQL server (`PIPELINE_TEST_POSTGRES`), contents under a
/// fresh prefix of the test S3 server's bucket (`PIPELINE_TEST_S3` and `AWS_*`), `root/`
/// holding only the host's state.
pub fn server_store() -> bool {
    std::env::var("PIPECTL_TEST_STORE").is_ok_and(|m| m == "postgres-s3")
}

/// Whether a test of what only a store directory has (its files, its lock, its disk) is
/// skipped: `true` with `PIPECTL_TEST_STORE=postgres-s3`, saying why on stderr.
pub fn skip_on_server_store(why: &str) -> bool {
    if server_store() {
        eprintln!("skipped with PIPECTL_TEST_STORE=postgres-s3: {why}");
    }
    server_store()
}

/// `PIPECTL_STORE` and `PIPECTL_OBJECTS` (and the S3 endpoint) of a fresh server store,
/// created with `pipectl init`.
fn server_store_vars() -> Vec<(String, String)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("PIPECTL_TEST_STORE=postgres-s3 needs {k}"))
    };
    let unique = format!(
        "cli_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let pg = var("PIPELINE_TEST_POSTGRES");
    let sep = if pg.contains('?') { '&' } else { '?' };
    let bucket =
        std::env::var("PIPELINE_TEST_S3_BUCKET").unwrap_or_else(|_| "pipeline-test".into());
    let vars = vec![
        (
            "PIPECTL_STORE".to_string(),
            format!("{pg}{sep}schema={unique}"),
        ),
        (
            "PIPECTL_OBJECTS".to_string(),
            format!("s3://{bucket}/{unique}"),
        ),
        ("AWS_ENDPOINT_URL".to_string(), var("PIPELINE_TEST_S3")),
        ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
    ];
    let init = StdCommand::new(assert_cmd::cargo::cargo_bin("pipectl"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .arg("init")
        .output()
        .expect("pipectl init");
    assert!(
        init.status.success(),
        "pipectl init of the test's server store: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    vars
}

/// Whether the tests run against a `pipectl serve` (`PIPECTL_TEST_MODE=server`).
pub fn server_mode() -> bool {
    std::env::var("PIPECTL_TEST_MODE").is_ok_and(|m| m == "server")
}

impl Env {
    /// A fresh, empty environment; in server mode with `pipectl serve` running on its store.
    pub fn new() -> Self {
        let mut e = Self::embedded();
        if server_mode() {
            e.server = Some(e.start_server());
        }
        e
    }

    /// A fresh, empty environment with `pipectl serve` running on its store in both modes,
    /// for what only an engine that keeps running does (services).
    pub fn with_server() -> Self {
        let mut e = Self::embedded();
        e.server = Some(e.start_server());
        e
    }

    /// A fresh, empty environment whose commands always open the store themselves.
    pub fn embedded() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            server: None,
            vars: if server_store() {
                server_store_vars()
            } else {
                Vec::new()
            },
        }
    }

    /// Like [`Env::new`], with `vars` in the environment of every command and the server.
    pub fn with_vars(vars: &[(&str, &str)]) -> Self {
        let mut e = Self::embedded();
        e.vars
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if server_mode() {
            e.server = Some(e.start_server());
        }
        e
    }

    /// Whether this environment's commands go through a server.
    pub fn served(&self) -> bool {
        self.server.is_some()
    }

    /// Starts `pipectl serve` on the store and waits until its socket answers.
    fn start_server(&self) -> Child {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("pipectl"))
            .env("PIPECTL_ROOT", self.root())
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .args(["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pipectl serve");
        let socket = self.root().join("api.sock");
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pipectl serve exited at start: {status}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "pipectl serve did not listen on {} within 30 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// The store directory.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `pipectl ARGS` on this store.
    pub fn cmd(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.command().args(args).assert()
    }

    /// `pipectl` on this store, not yet run: for stdin, extra variables, or a timeout.
    pub fn command(&self) -> Command {
        let mut c = Command::cargo_bin("pipectl").unwrap();
        c.env("PIPECTL_ROOT", self.root())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `pipectl` on this store as a plain process, for tests that start it in the
    /// background, signal it or read its output as it comes.
    pub fn process(&self) -> StdCommand {
        let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("pipectl"));
        c.env("PIPECTL_ROOT", self.root())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `pipectl ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs `pipectl ARGS`, which must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).failure().get_output().stderr.clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs `pipectl ARGS -o json`-style commands: one JSON value per stdout line.
    pub fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        self.ok(args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Writes a local file `rel` (parents created); returns its path.
    pub fn local(&self, rel: &str, content: &str) -> String {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Env {
    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    fn drop(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        let _ = StdCommand::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Imports an image into the local Docker daemon with `import` (e.g.
/// `executor_docker::testing::ensure_test_image`) and returns its reference; `None` (saying
/// why) when the daemon is absent outside CI; a panic in CI (`CI=true`).
pub fn docker_image<F, Fut>(import: F) -> Option<String>
where
    F: FnOnce(bollard::Docker) -> Fut,
    Fut: std::future::Future<Output = Result<String, executor_docker::testing::TestImageError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = bollard::Docker::connect_with_defaults()
        .map_err(|e| e.to_string())
        .and_then(|d| rt.block_on(d.ping()).map(|_| d).map_err(|e| e.to_string()));
    match docker {
        Ok(d) => Some(rt.block_on(import(d)).expect("importing the test image")),
        Err(err) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("the Docker daemon is required in CI: {err}")
        }
        Err(err) => {
            eprintln!("skipping: Docker daemon not reachable: {err}");
            None
        }
    }
}
