//! The service scenario every backend runs (reference §1.9, §3.6): a pipeline with
//! `service` serves its input's latest commit over HTTP (busybox `httpd`) on the engine's
//! host; a new input commit replaces it (the old job ends SUCCESS, its output commit
//! finished), and the new one serves the new data. Also: a taken port and more than one datum
//! fail the job, naming why.
//!
//! User code needs the busybox `httpd` applet, run as `busybox httpd` (so that the host's
//! busybox works for the process executor).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::pps::{JobInfo, JobState};

use super::engine::EngineEnv;

/// How long a service may take to answer or to be replaced before the scenario fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A port on 127.0.0.1 that is free now (the OS's pick).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("binding a free port: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port()
}

/// The body of `GET path` on `127.0.0.1:port` when it answers 200, else `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.split(' ').nth(1) == Some("200"))?;
    Some(body.to_string())
}

/// Polls `GET path` on `port` until its body is `want`; panics after [`PATIENCE`] with what
/// was last seen.
pub async fn wait_for_body(port: u16, path: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let got = tokio::task::spawn_blocking({
            let path = path.to_string();
            move || http_get(port, &path)
        })
        .await
        .ok()
        .flatten();
        if got.as_deref() == Some(want) {
            return;
        }
        if t0.elapsed() > PATIENCE {
            panic!("GET 127.0.0.1:{port}{path}: expected {want:?}, last got {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls job `id` of `pipeline` until `done` holds for it; panics after [`PATIENCE`].
pub async fn wait_for_job(
    e: &EngineEnv,
    pipeline: &str,
    id: &str,
    done: impl Fn(&JobInfo) -> bool,
) -> JobInfo {
    let t0 = Instant::now();
    loop {
        let j = e
            .engine
            .inspect_job(pipeline, id)
            .unwrap_or_else(|err| panic!("inspect_job({pipeline}@{id}): {err}"));
        if done(&j) {
            return j;
        }
        if t0.elapsed() > PATIENCE {
            panic!("job {pipeline}@{id} did not reach the expected state: {j:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service spec named `name` serving input repo `in` (glob `/`): `busybox httpd` listening on
/// `bind` (`PORT` or `IP:PORT`), with the given ports.
pub fn service_spec(name: &str, bind: &str, internal: u16, external: u16) -> String {
    format!(
        "pipeline: {{name: {name}}}\n\
         transform: {{cmd: [busybox, httpd, -f, -p, '{bind}', -h, /pfs/in]}}\n\
         input: {{pfs: {{repo: in, glob: /}}}}\n\
         service: {{internal_port: {internal}, external_port: {external}}}\n\
         datum_tries: 1\n"
    )
}

/// The whole scenario on repo `in` (created here) with a pipeline `web`: `bind`, `internal`
/// and `external` as in [`service_spec`] (the service is reached on `127.0.0.1:external`).
pub async fn scenario_service(e: &EngineEnv, bind: &str, internal: u16, external: u16) {
    e.repo("in");
    e.commit("in", &[], &[("/hello.txt", "version 1\n")]);
    e.create(&service_spec("web", bind, internal, external));
    e.run().await;
    let job = only_job(e, "web");
    assert_eq!(
        job.state,
        JobState::JobRunning,
        "the service job runs at once: {job:?}"
    );
    wait_for_body(external, "/hello.txt", "version 1\n").await;

    e.commit("in", &[], &[("/hello.txt", "version 2\n")]);
    e.run().await;
    let old = wait_for_job(e, "web", &job.id, |j| j.state.is_terminal()).await;
    assert_eq!(old.state, JobState::JobSuccess, "replaced: {old:?}");
    let out = e
        .store
        .inspect_commit(&old.output_commit)
        .unwrap_or_else(|err| panic!("inspect_commit: {err}"));
    assert!(out.is_finished() && out.error.is_none(), "{out:?}");
    wait_for_body(external, "/hello.txt", "version 2\n").await;
    let new = e
        .jobs("web")
        .pop()
        .unwrap_or_else(|| panic!("no job of web"));
    assert_eq!(new.state, JobState::JobRunning, "{new:?}");

    // Stopping it ends it (KILLED) and frees the port.
    e.engine
        .stop_job("web", &new.id, None)
        .unwrap_or_else(|err| panic!("stop_job: {err}"));
    let stopped = wait_for_job(e, "web", &new.id, |j| j.state.is_terminal()).await;
    assert_eq!(stopped.state, JobState::JobKilled, "{stopped:?}");
}

/// The one job of `pipeline`.
fn only_job(e: &EngineEnv, pipeline: &str) -> JobInfo {
    let mut jobs = e.jobs(pipeline);
    assert_eq!(jobs.len(), 1, "one job of {pipeline}: {jobs:?}");
    jobs.remove(0)
}

/// A service whose port is taken fails its job, naming the port; one whose input gives two
/// datums fails with "services must have a single datum". Uses repo `in2` and pipelines
/// `taken`, `many`.
pub async fn scenario_service_refusals(e: &EngineEnv, taken_port: u16) {
    e.repo("in2");
    e.commit("in2", &[], &[("/a", "a"), ("/b", "b")]);
    let taken = service_spec("taken", &taken_port.to_string(), taken_port, taken_port)
        .replace("repo: in,", "repo: in2,")
        .replace("/pfs/in]", "/pfs/in2]");
    e.create(&taken);
    let many = service_spec("many", "1", 1, 0)
        .replace("repo: in, glob: /", "repo: in2, glob: /*")
        .replace("/pfs/in]", "/pfs/in2]");
    e.create(&many);
    e.run().await;
    for (pipeline, want) in [
        ("taken", format!("127.0.0.1:{taken_port}")),
        ("many", "services must have a single datum".to_string()),
    ] {
        let id = only_job(e, pipeline).id;
        let j = wait_for_job(e, pipeline, &id, |j| j.state.is_terminal()).await;
        assert_eq!(j.state, JobState::JobFailure, "{j:?}");
        assert!(j.reason.contains(&want), "{pipeline}: {}", j.reason);
    }
}
