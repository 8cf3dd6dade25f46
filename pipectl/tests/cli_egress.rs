//! A pipeline with `egress` end to end through `pipectl`: a refused target names its field,
//! a failing egress leaves the job EGRESSING with the error and the next try in `inspect
//! job`, and once the target works the job succeeds and the files are there.

mod common;

use std::time::Duration;

use common::Env;

#[test]
fn egress_failure_is_shown_then_the_job_succeeds() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "alpha");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);

    let bad = e.local(
        "bad.yaml",
        "pipeline: {name: out}\ntransform: {cmd: [sh, -c, 'cp /pfs/data/* /pfs/out/']}\ninput: {pfs: {repo: data, glob: /}}\negress: {URL: 'ftp://host/dir'}\n",
    );
    let err = e.fails(&["create", "pipeline", "-f", &bad]);
    assert!(err.contains("egress.URL"), "{err}");
    assert!(err.contains("scheme ftp:// is not supported"), "{err}");

    // The target is a file where a directory should be: every attempt fails.
    let target = e.dir.path().join("target");
    std::fs::write(&target, "in the way").unwrap();
    let spec = e.local(
        "p.yaml",
        &format!(
            "pipeline: {{name: out}}\ntransform: {{cmd: [sh, -c, 'cp /pfs/data/* /pfs/out/']}}\ninput: {{pfs: {{repo: data, glob: /}}}}\negress: {{URL: 'file://{}'}}\n",
            target.display()
        ),
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let job = wait_for_state(&e, "JOB_EGRESSING");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(
        job["reason"].as_str().unwrap().contains("failed (attempt"),
        "{job}"
    );
    assert!(job["egress"]["last_error"].is_string(), "{job}");
    assert!(job["egress"]["next_try_ms"].is_u64(), "{job}");
    let text = e.ok(&["inspect", "job", &format!("out@{id}")]);
    assert!(text.contains("State: JOB_EGRESSING"), "{text}");
    assert!(text.contains("Egress last error: writing"), "{text}");
    assert!(text.contains("Egress next try: "), "{text}");

    std::fs::remove_file(&target).unwrap();
    let job = wait_for_state(&e, "JOB_SUCCESS");
    assert_eq!(job["egress"]["written"], 1, "{job}");
    assert_eq!(
        std::fs::read_to_string(target.join("a.txt")).unwrap(),
        "alpha"
    );
}

/// Polls `list job -p out` (each call runs due jobs when no server does) until its job is
/// in `state`; at most 30 s.
fn wait_for_state(e: &Env, state: &str) -> serde_json::Value {
    let t0 = std::time::Instant::now();
    loop {
        let jobs = e.json(&["list", "job", "-p", "out", "-o", "json"]);
        if let Some(j) = jobs.iter().find(|j| j["state"] == state) {
            return j.clone();
        }
        if !e.served()
            && let Some(id) = jobs.first().and_then(|j| j["id"].as_str())
        {
            // Without a server, a command that runs jobs makes the due egress attempt.
            let _ = e.cmd(&["wait", "job", &format!("out@{id}")]);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no job of out reached {state}: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
