//! `pipectl --store postgres://... --objects DIR` end to end on the test PostgreSQL server
//! (`PIPELINE_TEST_POSTGRES`, see `.ci/postgres`; skipped with a message when it is not set
//! outside CI): init creates the schema, data and pipelines work, another process sees the
//! data, a database of a newer schema is a clear error. Runs in both modes: with
//! `PIPECTL_TEST_MODE=server`, through a `pipectl serve --store ...`.

mod common;

use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::server_mode;
use pipeline_core::pfs::{POSTGRES_SCHEMA_VERSION, PostgresMetaStore, PostgresOptions};
use pipeline_core::testkit::store::{force_schema_version, postgres_url, with_schema};

/// A store on the test server (a schema of its own), its objects and host state in a temp
/// directory, and in server mode the `pipectl serve` of it.
struct PgEnv {
    dir: tempfile::TempDir,
    url: String,
    server: Option<Child>,
}

impl PgEnv {
    /// A fresh schema name on `base`; nothing created yet.
    fn new(base: &str) -> PgEnv {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "cli_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        PgEnv {
            dir: tempfile::tempdir().unwrap(),
            url: with_schema(base, &schema),
            server: None,
        }
    }

    fn objects(&self) -> String {
        self.dir.path().join("objects").display().to_string()
    }

    /// `pipectl ARGS` with this store, `--root` at `root` (this "host's" state).
    fn cmd_at(&self, root: &str, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("pipectl")
            .unwrap()
            .env("PIPECTL_ROOT", self.dir.path().join(root))
            .env("PIPECTL_STORE", &self.url)
            .env("PIPECTL_OBJECTS", self.objects())
            .args(args)
            .assert()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .cmd_at("host1", args)
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    }

    fn local(&self, rel: &str, content: &str) -> String {
        let p = self.dir.path().join(rel);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    /// Starts `pipectl serve` with the store (host1's root) and waits for its socket.
    fn serve(&mut self) {
        let root = self.dir.path().join("host1");
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("pipectl"))
            .env("PIPECTL_ROOT", &root)
            .env("PIPECTL_STORE", &self.url)
            .env("PIPECTL_OBJECTS", self.objects())
            .args(["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pipectl serve");
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(root.join("api.sock")).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pipectl serve --store exited at start: {status}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.server = Some(child);
    }

    /// Stops the server (SIGTERM) and waits for it.
    fn stop(&mut self) {
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

impl Drop for PgEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    userinfo.split_once(':').map(|(_, p)| p.to_string())
}

#[test]
fn a_store_on_postgres_runs_pipelines_and_is_shared_between_processes() {
    let Some(base) = postgres_url() else { return };
    let mut e = PgEnv::new(&base);
    // Before init: a clear error saying what to run, without the password.
    let a = e.cmd_at("host1", &["list", "repo"]).code(1);
    let err = stderr(&a);
    assert!(err.contains("pipectl init --store postgres://"), "{err}");
    if let Some(pw) = password(&base) {
        assert!(!err.contains(&pw), "the password leaked: {err}");
    }
    let out = e.ok(&["init"]);
    assert!(
        out.contains(&format!("schema version {POSTGRES_SCHEMA_VERSION}")),
        "{out}"
    );
    assert!(out.contains(&e.objects()), "{out}");
    if let Some(pw) = password(&base) {
        assert!(!out.contains(&pw), "the password leaked: {out}");
    }
    e.ok(&["init"]); // again: harmless
    if server_mode() {
        e.serve();
    }
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "hello");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: up}\ntransform:\n  cmd: [sh, -c, 'tr a-z A-Z < $data > /pfs/out/${data##*/}']\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    assert_eq!(e.ok(&["get", "file", "up@master:/a.txt"]), "HELLO");
    let b = e.local("b.txt", "world");
    e.ok(&["put", "file", "data@master:/b.txt", "-f", &b]);
    assert_eq!(e.ok(&["get", "file", "up@master:/b.txt"]), "WORLD");
    let jobs = e.ok(&["list", "job", "-p", "up", "-o", "json"]);
    assert_eq!(jobs.lines().count(), 2, "{jobs}");
    assert!(jobs.contains("JOB_SUCCESS"), "{jobs}");
    // The contents live in --objects, not under --root.
    assert!(e.dir.path().join("objects").is_dir());
    assert!(!e.dir.path().join("host1/meta.redb").exists());

    if e.server.is_some() {
        // The server owns the store: a process of another host waits, or with
        // --no-wait-lock fails naming the holder.
        let a = e
            .cmd_at("host2", &["--no-wait-lock", "list", "repo"])
            .code(1);
        let err = stderr(&a);
        assert!(err.contains("is in use by another process (pid "), "{err}");
        e.stop();
    }
    // Another process, with its own --root (another host's state), sees the same data.
    let out = e
        .cmd_at("host2", &["list", "repo"])
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("data") && out.contains("up"), "{out}");
    let a = e
        .cmd_at("host2", &["get", "file", "up@master:/a.txt"])
        .success();
    assert_eq!(a.get_output().stdout, b"HELLO");
}

#[test]
fn a_database_of_a_newer_schema_is_a_clear_error() {
    let Some(base) = postgres_url() else { return };
    let e = PgEnv::new(&base);
    e.ok(&["init"]);
    e.ok(&["create", "repo", "data"]);
    let meta = PostgresMetaStore::open(&e.url, &PostgresOptions::default()).unwrap();
    force_schema_version(&meta, 7).unwrap();
    drop(meta);
    for args in [&["list", "repo"][..], &["init"][..]] {
        let a = e.cmd_at("host1", args).code(1);
        let err = stderr(&a);
        assert!(
            err.contains(&format!(
                "has schema version 7, newer than version {POSTGRES_SCHEMA_VERSION} this build understands"
            )),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_store_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::cargo_bin("pipectl").unwrap();
        c.env("PIPECTL_ROOT", dir.path().join("root"))
            .env_remove("PIPECTL_STORE")
            .env_remove("PIPECTL_OBJECTS");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(args).assert()
    };
    let objects = dir.path().join("o").display().to_string();
    // Nothing listens there: an error naming the server, no password, no hang.
    let t0 = Instant::now();
    let a = run(
        &[
            (
                "PIPECTL_STORE",
                "postgres://me:hunter2@127.0.0.1:1/db?connect_timeout=2",
            ),
            ("PIPECTL_OBJECTS", &objects),
        ],
        &["list", "repo"],
    )
    .code(1);
    let err = stderr(&a);
    assert!(err.contains("postgres://me@127.0.0.1:1/db"), "{err}");
    assert!(err.contains("connecting"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    // --objects without --store, an unsupported objects scheme, a missing objects location.
    let a = run(&[], &["--objects", &objects, "list", "repo"]).code(2);
    assert!(stderr(&a).contains("--objects"), "{}", stderr(&a));
    let a = run(
        &[],
        &[
            "--store",
            "postgres://me:hunter2@127.0.0.1:1/db",
            "--objects",
            "ftp://bucket/prefix",
            "list",
            "repo",
        ],
    )
    .code(2);
    let err = stderr(&a);
    assert!(
        err.contains("objects URL scheme ftp is not supported by this build"),
        "{err}"
    );
    let a = run(
        &[],
        &["--store", "postgres://me@127.0.0.1:1/db", "list", "repo"],
    )
    .code(2);
    assert!(
        stderr(&a).contains("needs an objects location"),
        "{}",
        stderr(&a)
    );
    assert!(
        !dir.path().join("root/meta.redb").exists(),
        "no fall-back to a local store"
    );
}
