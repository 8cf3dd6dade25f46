//! A pipeline with `service` end to end through `pipectl` (reference §1.9, §3.6): the service
//! serves the latest commit's file over HTTP on `127.0.0.1:<external_port>`, a new version
//! replaces it (the old job ends SUCCESS), `inspect pipeline` shows where it listens and its
//! last error (a taken port), and an engine that runs one command and exits leaves the service
//! waiting, saying why.
//!
//! A service needs an engine that keeps running, so these tests run `pipectl serve` in both
//! modes ([`Env::with_server`]), except the one about the short-lived engine.

mod common;

use std::time::{Duration, Instant};

use common::Env;
use pipeline_core::testkit::service::{free_port, http_get, service_spec};

/// Polls `GET path` on `port` until its body is `want` (60 s at most).
fn wait_for_body(port: u16, path: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let got = http_get(port, path);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "GET 127.0.0.1:{port}{path}: expected {want:?}, last got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The jobs of `pipeline`, newest first, once `done` holds for them (60 s at most).
fn wait_for_jobs(
    e: &Env,
    pipeline: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let jobs = e.json(&["list", "job", "-p", pipeline, "-o", "json"]);
        if done(&jobs) {
            return jobs;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "jobs of {pipeline}: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `create pipeline -f spec` for a service whose job fails at once: the command exits 0, or 3
/// when the job failed before the command returned (it reports the jobs it saw end).
fn create_failing(e: &Env, spec: &str) {
    let out = e
        .cmd(&["create", "pipeline", "-f", spec])
        .get_output()
        .clone();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn state(j: &serde_json::Value) -> &str {
    j["state"].as_str().unwrap_or_default()
}

#[test]
fn a_service_serves_the_latest_file_and_is_replaced_by_the_next_job() {
    let e = Env::with_server();
    e.ok(&["create", "repo", "in"]);
    let v1 = e.local("v1.txt", "version 1\n");
    e.ok(&["put", "file", "in@master:/hello.txt", "-f", &v1]);
    let port = free_port();
    let spec = e.local(
        "web.yaml",
        &service_spec("web", &format!("127.0.0.1:{port}"), port, port),
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    wait_for_body(port, "/hello.txt", "version 1\n");
    let text = e.ok(&["inspect", "pipeline", "web"]);
    assert!(
        text.contains(&format!("Service: listening on 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("JOB_RUNNING"), "{text}");
    let first = wait_for_jobs(&e, "web", |j| j.len() == 1 && state(&j[0]) == "JOB_RUNNING");
    let first_id = first[0]["id"].as_str().unwrap().to_string();
    let shown = e.ok(&["inspect", "job", &format!("web@{first_id}")]);
    assert!(shown.contains("State: JOB_RUNNING"), "{shown}");

    let v2 = e.local("v2.txt", "version 2\n");
    e.ok(&["put", "file", "in@master:/hello.txt", "-f", &v2]);
    wait_for_body(port, "/hello.txt", "version 2\n");
    let jobs = wait_for_jobs(&e, "web", |j| {
        j.len() == 2 && state(&j[0]) == "JOB_RUNNING" && state(&j[1]) == "JOB_SUCCESS"
    });
    assert_eq!(jobs[1]["id"].as_str(), Some(first_id.as_str()), "{jobs:?}");

    // Stopping the running one frees the port.
    let id = jobs[0]["id"].as_str().unwrap();
    e.ok(&["stop", "job", &format!("web@{id}")]);
    wait_for_jobs(&e, "web", |j| state(&j[0]) == "JOB_KILLED");
    let t0 = Instant::now();
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "port {port} still taken"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_taken_port_is_the_service_jobs_error_in_inspect() {
    let e = Env::with_server();
    e.ok(&["create", "repo", "in"]);
    let f = e.local("a.txt", "a");
    e.ok(&["put", "file", "in@master:/a.txt", "-f", &f]);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let spec = e.local(
        "web.yaml",
        &service_spec("web", &port.to_string(), port, port),
    );
    create_failing(&e, &spec);
    let jobs = wait_for_jobs(&e, "web", |j| j.len() == 1 && state(&j[0]) == "JOB_FAILURE");
    let reason = jobs[0]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert!(reason.starts_with("service.external_port"), "{reason}");
    let text = e.ok(&["inspect", "pipeline", "web"]);
    assert!(text.contains("Service last error: job"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[test]
fn many_datums_fail_the_service_job() {
    let e = Env::with_server();
    e.ok(&["create", "repo", "in"]);
    for name in ["a", "b"] {
        let f = e.local(name, name);
        e.ok(&["put", "file", &format!("in@master:/{name}"), "-f", &f]);
    }
    let spec = e.local(
        "web.yaml",
        &service_spec("web", "1", 1, 0).replace("glob: /}", "glob: /*}"),
    );
    create_failing(&e, &spec);
    let jobs = wait_for_jobs(&e, "web", |j| j.len() == 1 && state(&j[0]) == "JOB_FAILURE");
    let reason = jobs[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("services must have a single datum"),
        "{reason}"
    );
}

/// Without `pipectl serve` the command's engine exits with the command: the service's job
/// waits, saying why, and `pipectl serve` starts it later.
#[test]
fn a_command_without_a_server_leaves_the_service_waiting_for_one() {
    let e = Env::embedded();
    e.ok(&["create", "repo", "in"]);
    let f = e.local("a.txt", "a");
    e.ok(&["put", "file", "in@master:/a.txt", "-f", &f]);
    let port = free_port();
    let spec = e.local(
        "web.yaml",
        &service_spec("web", &format!("127.0.0.1:{port}"), port, port),
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let jobs = e.json(&["list", "job", "-p", "web", "-o", "json"]);
    assert_eq!(state(&jobs[0]), "JOB_STARTING", "{jobs:?}");
    let reason = jobs[0]["reason"].as_str().unwrap();
    assert!(reason.contains("pipectl serve"), "{reason}");
    assert!(http_get(port, "/a.txt").is_none());
}
