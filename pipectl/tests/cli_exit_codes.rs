//! `pipectl`'s documented exit codes (README "Exit codes"): 0 done, 1 failed and nothing
//! changed, 2 usage, 3 committed but a job it started failed or could not run; and `wait job`
//! saying what a job waits for.

mod common;

use std::fs::File;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;

fn pipeline(e: &Env, name: &str, cmd: &str) -> String {
    e.local(
        &format!("{name}.yaml"),
        &format!(
            "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{cmd}']}}\ninput: {{pfs: {{repo: data, glob: /*}}}}\n"
        ),
    )
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn a_failed_job_after_a_committed_put_exits_3_naming_the_commit() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let spec = pipeline(&e, "bad", "exit 7");
    e.ok(&["create", "pipeline", "-f", &spec]);
    let f = e.local("a.txt", "a");
    let a = e
        .cmd(&["put", "file", "data@master:/a.txt", "-f", &f])
        .code(3);
    let err = stderr(&a);
    let head = e.ok(&["list", "commit", "data@master", "-o", "json"]);
    let head: serde_json::Value = serde_json::from_str(head.lines().next().unwrap()).unwrap();
    let id = head["commit"]["id"].as_str().unwrap();
    assert!(err.contains(&format!("data@{id} committed")), "{err}");
    assert!(err.contains("JOB_FAILURE"), "{err}");
    // The data is there.
    assert_eq!(e.ok(&["get", "file", "data@master:/a.txt"]), "a");
}

#[test]
fn usage_errors_exit_2_and_failed_writes_exit_1_with_nothing_changed() {
    let e = Env::new();
    e.cmd(&["put", "file"]).code(2);
    e.ok(&["create", "repo", "data"]);
    let f = e.local("a.txt", "a");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &f]);
    let before = e.ok(&["list", "commit", "data@master"]);
    let missing = e.dir.path().join("missing");
    let a = e
        .cmd(&[
            "put",
            "file",
            "data@master:/b.txt",
            "-f",
            missing.to_str().unwrap(),
        ])
        .code(1);
    assert!(stderr(&a).contains("missing"), "{}", stderr(&a));
    e.cmd(&["delete", "file", "data@master:/nope"]).code(1);
    assert_eq!(e.ok(&["list", "commit", "data@master"]), before);
    // A job that succeeds: 0.
    let spec = pipeline(&e, "good", "true");
    e.ok(&["create", "pipeline", "-f", &spec]);
    e.cmd(&["put", "file", "data@master:/c.txt", "-f", &f])
        .code(0);
}

/// Another process holds the store (embedded mode): a command waits for it, saying so, and
/// `--no-wait-lock` fails at once with exit 1 and nothing changed.
#[test]
fn a_store_in_use_is_waited_for_or_refused_with_no_wait_lock() {
    if common::skip_on_server_store("the lock file of a store directory") {
        return;
    }
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let lock = File::open(e.root().join("LOCK")).unwrap();
    lock.try_lock().unwrap();
    // As a real holder does, name ourselves in the lock file (a holder named there that is
    // gone would be waited for briefly and silently: its children may still be on their way
    // out).
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let me = format!("pid {} on host {}", std::process::id(), host.trim());
    std::fs::write(e.root().join("LOCK"), me).unwrap();
    let f = e.local("a.txt", "a");
    // Commands wait for a busy store unless told not to.
    let a = e
        .cmd(&[
            "--no-wait-lock",
            "put",
            "file",
            "data@master:/a.txt",
            "-f",
            &f,
        ])
        .code(1);
    assert!(stderr(&a).contains("in use"), "{}", stderr(&a));
    e.cmd(&["--no-wait-lock", "list", "commit", "data"]).code(1);
    let put = e
        .process()
        .args(["put", "file", "data@master:/a.txt", "-f", &f])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(lock);
    let out = put.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("waiting for the store"), "{err}");
    assert_eq!(e.ok(&["get", "file", "data@master:/a.txt"]), "a");
    assert_eq!(e.json(&["list", "commit", "data", "-o", "json"]).len(), 1);
}

/// A put holds the store from its open through the jobs it waits for (one connection per
/// command; nothing reopens the store after the commit), so no other process can take it
/// in between: a process grabbing the lock the moment it is free gets it only when the put
/// is done, and the put never waits for the store nor fails with it in use.
#[test]
fn a_put_holds_the_store_from_its_commit_through_its_jobs() {
    if common::skip_on_server_store("the lock file of a store directory") {
        return;
    }
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let spec = pipeline(&e, "good", "true");
    e.ok(&["create", "pipeline", "-f", &spec]);
    for attempt in 0..5 {
        let mut child = e
            .process()
            .args([
                "put",
                "file",
                &format!("data@master:/f{attempt}"),
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let lock_path = e.root().join("LOCK");
        let t0 = Instant::now();
        while !std::fs::read_to_string(&lock_path)
            .unwrap_or_default()
            .contains(&format!("pid {pid} "))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "put never opened the store"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"data").unwrap();
        let lock = File::open(&lock_path).unwrap();
        drop(stdin);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if lock.try_lock().is_ok() {
                // Held: a put that still needed the store would now wait for it.
                std::thread::sleep(Duration::from_millis(300));
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        let out = child.wait_with_output().unwrap();
        drop(lock);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "attempt {attempt}: {err}");
        assert!(
            !err.contains("waiting for the store") && !err.contains("in use"),
            "attempt {attempt}: {err}"
        );
        assert_eq!(
            e.ok(&["get", "file", &format!("data@master:/f{attempt}")]),
            "data"
        );
    }
}

#[test]
fn wait_job_names_the_open_input_commit_it_waits_for() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let spec = pipeline(&e, "good", "true");
    e.ok(&["create", "pipeline", "-f", &spec]);
    let id = e.ok(&["start", "commit", "data@master"]).trim().to_string();
    let f = e.local("a.txt", "a");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &f]);
    // Before anything ran it: list job already says what the job waits for.
    let jobs = e.ok(&["list", "job"]);
    assert!(
        jobs.contains(&format!(
            "waiting for input commit default/data@{id} (open)"
        )),
        "{jobs}"
    );
    let a = e.cmd(&["wait", "job", &format!("good@{id}")]).code(1);
    let err = stderr(&a);
    assert!(
        err.contains(&format!(
            "waiting for input commit default/data@{id} (open)"
        )),
        "{err}"
    );
    assert!(err.contains("JOB_STARTING"), "{err}");
    let jobs = e.ok(&["list", "job"]);
    assert!(
        jobs.contains(&format!(
            "waiting for input commit default/data@{id} (open)"
        )),
        "{jobs}"
    );
    e.ok(&["finish", "commit", "data@master"]);
    e.cmd(&["wait", "job", &format!("good@{id}")]).code(0);
}

#[test]
fn put_file_refuses_a_path_segment_over_255_bytes() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let f = e.local("a.txt", "a");
    let long = "n".repeat(256);
    let a = e
        .cmd(&["put", "file", &format!("data@master:/{long}"), "-f", &f])
        .code(2);
    let err = stderr(&a);
    assert!(err.contains(&long) && err.contains("255 bytes"), "{err}");
    assert!(e.json(&["list", "commit", "data", "-o", "json"]).is_empty());
}
