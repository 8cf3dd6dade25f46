//! Spouts through the real `pipectl` binary under `pipectl serve` (reference §1.9, §3.6):
//! Pachyderm's spout101 pair (a spout that makes a commit per file, a processor consuming
//! it) on the process executor with a bare `pipectl` in the spout, and on the Docker
//! executor with the HTTP API from a busybox container; the spout's credential writes only
//! its own output branch; a crashing spout shows its last error and restarts; stop, start
//! and delete stop and restart it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;

/// `pipectl serve` on the store of `e`, stopped (SIGTERM) when dropped.
struct Served(Child);

impl Served {
    fn start(e: &Env) -> Served {
        let child = e
            .process()
            .args(["serve", "--poll-ms", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let socket = e.root().join("api.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "pipectl serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Served(child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it returns `Some` (at most 60 s); on a timeout, names `what` and
/// shows the logs of the pipeline `spout` of `e`.
fn wait_for<T>(e: &Env, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            let logs = e.cmd(&["logs", "-p", "spout"]).get_output().stdout.clone();
            panic!(
                "timed out waiting for {what}; the spout's logs:\n{}",
                String::from_utf8_lossy(&logs)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The paths at `repo@master`, sorted.
fn files(e: &Env, repo: &str) -> Vec<String> {
    let mut paths: Vec<String> = e
        .json(&["list", "file", &format!("{repo}@master"), "-o", "json"])
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

/// The spout's log messages so far.
fn spout_logs(e: &Env, pipeline: &str) -> Vec<String> {
    e.json(&["logs", "-p", pipeline, "-o", "json"])
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether a process whose command line holds `marker` runs on this host.
fn process_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|d| {
        std::fs::read(d.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}

/// The processor of spout101: copies each of the spout's files.
fn processor(e: &Env, executor: &str, image: Option<&str>) -> String {
    let image = image.map_or(String::new(), |i| format!("\"image\": \"{i}\", "));
    let spec = format!(
        r#"{{"pipeline": {{"name": "processor"}},
  "transform": {{{image}"cmd": ["sh", "-c", "cp /pfs/spout/* /pfs/out/"]}},
  "input": {{"pfs": {{"repo": "spout", "branch": "master", "glob": "/*"}}}}}}"#
    );
    let f = e.local(&format!("processor-{executor}.json"), &spec);
    e.ok(&["create", "pipeline", "-f", &f, "--executor", executor]);
    f
}

#[test]
fn spout101_runs_under_serve_on_the_process_executor_and_only_it_writes_its_branch() {
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let _served = Served::start(&e);
    // Five commits (start, put, finish: the spout101 shape), then a write it may not make,
    // then it idles (spouts run until stopped), under a marker this test can find.
    let marker = format!("98{}", std::process::id());
    let spout = format!(
        r#"{{"pipeline": {{"name": "spout"}}, "spout": {{}},
  "transform": {{"cmd": ["sh", "-c", "for i in 1 2 3 4 5; do pipectl start commit spout@master >/dev/null && echo $i | pipectl put file spout@master:/n$i -f - && pipectl finish commit spout@master >/dev/null || echo spout write failed; sleep 0.1; done; echo x | pipectl put file data@master:/x -f - 2>&1 | sed 's/^/refused: /'; exec sleep {marker}"]}}}}"#
    );
    let spout_file = e.local("spout.json", &spout);
    e.ok(&["create", "pipeline", "-f", &spout_file]);
    processor(&e, "process", None);

    let want: Vec<String> = (1..=5).map(|i| format!("/n{i}")).collect();
    wait_for(&e, "the processor to copy the spout's five files", || {
        (files(&e, "processor") == want).then_some(())
    });
    assert_eq!(files(&e, "spout"), want);
    assert_eq!(e.ok(&["get", "file", "processor@master:/n3"]), "3\n");
    // Each of the spout's commits is one commit of its branch, and the processor ran on them.
    let jobs = e.json(&["list", "job", "-p", "processor", "-o", "json"]);
    assert!(jobs.len() >= 5, "{jobs:?}");
    assert!(
        e.json(&["list", "job", "-p", "spout", "-o", "json"])
            .is_empty()
    );

    // Only the spout's credential writes its branch; it writes nothing else.
    let err = e.fails(&["start", "commit", "spout@master"]);
    assert!(
        err.contains("cannot start a commit on an output branch"),
        "{err}"
    );
    let x = e.local("x", "x");
    let err = e.fails(&["put", "file", "spout@master:/y", "-f", &x]);
    assert!(
        err.contains("cannot start a commit on an output branch"),
        "{err}"
    );
    let refused = wait_for(&e, "the spout's refused write in its logs", || {
        spout_logs(&e, "spout")
            .into_iter()
            .find(|l| l.starts_with("refused: "))
    });
    assert!(refused.contains("spout"), "{refused}");
    let err = e.fails(&["list", "file", "data@master"]);
    assert!(
        err.contains("not found"),
        "nothing was written to data: {err}"
    );
    let info = &e.json(&["inspect", "pipeline", "spout", "-o", "json"])[0];
    assert_eq!(info["spout_status"]["state"], "RUNNING", "{info}");
    assert_eq!(info["spout_status"]["restarts"], 0, "{info}");
    assert!(
        e.ok(&["inspect", "pipeline", "spout"])
            .contains("Spout: running, 0 restart(s)")
    );
    assert!(process_with(&format!("sleep {marker}")));

    // Stop ends the spout's process; start runs it again; delete ends it.
    e.ok(&["stop", "pipeline", "spout"]);
    wait_for(&e, "the stopped spout's process to end", || {
        (!process_with(&format!("sleep {marker}"))).then_some(())
    });
    assert!(
        e.ok(&["inspect", "pipeline", "spout"])
            .contains("Spout: stopped")
    );
    e.ok(&["start", "pipeline", "spout"]);
    wait_for(&e, "the started spout's process", || {
        process_with(&format!("sleep {marker}")).then_some(())
    });
    e.ok(&["delete", "pipeline", "processor"]);
    e.ok(&["delete", "pipeline", "spout"]);
    wait_for(&e, "the deleted spout's process to end", || {
        (!process_with(&format!("sleep {marker}"))).then_some(())
    });
}

#[test]
fn a_crashing_spout_shows_its_last_error_and_is_restarted_with_backoff() {
    let e = Env::embedded();
    let _served = Served::start(&e);
    let spec = r#"{"pipeline": {"name": "crashy"}, "spout": {},
  "transform": {"cmd": ["sh", "-c", "echo boom >&2; exit 3"]}}"#;
    let f = e.local("crashy.json", spec);
    e.ok(&["create", "pipeline", "-f", &f]);
    let status = wait_for(&e, "two restarts", || {
        let info = e.json(&["inspect", "pipeline", "crashy", "-o", "json"]);
        let s = info[0]["spout_status"].clone();
        (s["restarts"].as_u64().unwrap_or(0) >= 2).then_some(s)
    });
    assert_eq!(status["last_error"], "exited with code 3", "{status}");
    let text = e.ok(&["inspect", "pipeline", "crashy"]);
    assert!(text.contains("last error: exited with code 3"), "{text}");
    wait_for(&e, "inspect to show the next try while it waits", || {
        let text = e.ok(&["inspect", "pipeline", "crashy"]);
        (text.contains("Spout: restarting,") && text.contains("; next try at 20")).then_some(())
    });
    wait_for(&e, "list pipeline to show it restarting", || {
        e.ok(&["list", "pipeline"])
            .contains(" restarting ")
            .then_some(())
    });
    let logs = spout_logs(&e, "crashy");
    assert!(logs.iter().any(|l| l == "boom"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("exited with code 3; restart 1 in 1000 ms")),
        "{logs:?}"
    );
    e.ok(&["delete", "pipeline", "crashy"]);
}

#[test]
fn a_spout_created_without_a_server_waits_for_one() {
    let e = Env::embedded();
    let spec = r#"{"pipeline": {"name": "later"}, "spout": {},
  "transform": {"cmd": ["sh", "-c", "sleep 1"]}}"#;
    let f = e.local("later.json", spec);
    e.ok(&["create", "pipeline", "-f", &f]);
    assert!(e.ok(&["list", "pipeline"]).contains(" waiting "));
    let text = e.ok(&["inspect", "pipeline", "later"]);
    assert!(
        text.contains(
            "Spout: waiting, 0 restart(s); last error: not started: spouts need a server"
        ) && text.contains("`pipectl serve`"),
        "{text}"
    );
    // Bad input is still refused with the field and position.
    let bad = e.local(
        "bad.json",
        "{\"pipeline\": {\"name\": \"bad\"}, \"spout\": {},\n \"transform\": {\"cmd\": [\"sh\"]},\n \"input\": {\"pfs\": {\"repo\": \"data\", \"glob\": \"/*\"}}}",
    );
    let err = e.fails(&["create", "pipeline", "-f", &bad]);
    assert!(
        err.contains("spout pipelines (without a service) must not have an input"),
        "{err}"
    );
    assert!(err.contains("3:"), "{err}");
}

#[test]
fn spout101_runs_under_serve_on_the_docker_executor_through_the_http_api() {
    use bollard::Docker;
    use executor_docker::testing::{TEST_IMAGE, ensure_test_image};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = match Docker::connect_with_defaults().map(|d| (rt.block_on(d.ping()), d)) {
        Ok((Ok(_), d)) => d,
        Ok((Err(err), _)) | Err(err) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("cli_spout: the Docker daemon is required in CI: {err}");
            }
            eprintln!("skipping the Docker spout test: Docker daemon not reachable: {err}");
            return;
        }
    };
    rt.block_on(ensure_test_image(&docker))
        .expect("building the busybox test image");
    let e = Env::embedded();
    let _served = Served::start(&e);
    // busybox has no pipectl: the spout speaks HTTP/1.0 to $PIPECTL_SERVER with nc.
    let script = "hp=${PIPECTL_SERVER#http://}; h=${hp%:*}; p=${hp##*:}; \
        for i in 1 2 3; do { printf 'PUT /api/v1/repos/spout/commits/master/file?path=/n%s HTTP/1.0\\r\\n\
Authorization: Bearer %s\\r\\nContent-Length: 2\\r\\n\\r\\n%s\\n' $i \"$PIPECTL_TOKEN\" $i; sleep 1; } \
        | nc $h $p | head -n 1; done; \
        { printf 'PUT /api/v1/repos/data/commits/master/file?path=/x HTTP/1.0\\r\\n\
Authorization: Bearer %s\\r\\nContent-Length: 2\\r\\n\\r\\nx\\n' \"$PIPECTL_TOKEN\"; sleep 1; } \
        | nc $h $p | head -n 1 | sed 's/^/other repo: /'; exec sleep 100000";
    let spec = serde_json::json!({
        "pipeline": {"name": "spout"},
        "spout": {},
        "transform": {"image": TEST_IMAGE, "cmd": ["sh", "-c", script]},
    });
    e.ok(&["create", "repo", "data"]);
    let f = e.local("spout.json", &spec.to_string());
    e.ok(&["create", "pipeline", "-f", &f, "--executor", "docker"]);
    processor(&e, "docker", Some(TEST_IMAGE));
    let want = ["/n1", "/n2", "/n3"];
    wait_for(&e, "the processor to copy the spout's three files", || {
        (files(&e, "processor") == want).then_some(())
    });
    assert_eq!(e.ok(&["get", "file", "processor@master:/n2"]), "2\n");
    let other = wait_for(&e, "the spout's write to another repo", || {
        spout_logs(&e, "spout")
            .into_iter()
            .find(|l| l.starts_with("other repo: "))
    });
    assert!(other.contains("403"), "{other}");
    e.ok(&["delete", "pipeline", "processor"]);
    e.ok(&["delete", "pipeline", "spout"]);
}

/// Without a server (the command opens the store itself) nobody writes a spout's output
/// branch either: not a put, a commit, a transaction, a branch move or delete; nothing
/// changes on it.
#[test]
fn without_a_server_no_command_writes_a_spouts_output_branch() {
    let e = Env::embedded();
    let spout = e.local(
        "spout.json",
        r#"{"pipeline": {"name": "spout"}, "spout": {}, "transform": {"cmd": ["true"]}}"#,
    );
    e.ok(&["create", "pipeline", "-f", &spout]);
    let before = (
        e.ok(&["list", "commit", "spout", "-o", "json"]),
        e.ok(&["list", "branch", "spout", "-o", "json"]),
    );
    let x = e.local("x", "x");
    let refused = "cannot start a commit on an output branch";
    for args in [
        vec!["put", "file", "spout@master:/x", "-f", &x],
        vec!["start", "commit", "spout@master"],
        vec!["delete", "branch", "spout@master", "--force"],
        vec!["create", "branch", "spout@master", "--head", "master"],
    ] {
        let err = e.fails(&args);
        assert!(err.contains(refused), "{args:?}: {err}");
    }
    let id = e.ok(&["start", "transaction"]).trim().to_string();
    let err = e.fails(&["start", "commit", "spout@master"]);
    assert!(err.contains(refused), "in transaction {id}: {err}");
    e.ok(&["delete", "transaction"]);
    let after = (
        e.ok(&["list", "commit", "spout", "-o", "json"]),
        e.ok(&["list", "branch", "spout", "-o", "json"]),
    );
    assert_eq!(after, before, "a refused command changed the spout's repo");
}
