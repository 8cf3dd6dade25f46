//! `pipectl` engine commands end to end: create pipeline, put file waits for jobs, list/inspect
//! job and datum with `-o json`, logs, update --reprocess, stop/start, wait, run cron, delete.

mod common;

use common::Env;

#[test]
fn pipelines_jobs_datums_logs() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "hello");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: up}\ntransform:\n  cmd: [sh, -c, 'echo processing $data; tr a-z A-Z < $data > /pfs/out/${data##*/}']\ninput: {pfs: {repo: data, glob: /*}}\n---\npipeline: {name: count}\ntransform: {cmd: [sh, -c, 'ls /pfs/up | wc -l > /pfs/out/n']}\ninput: {pfs: {repo: up, glob: /}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let pipes = e.json(&["list", "pipeline", "-o", "json"]);
    assert_eq!(pipes.len(), 2);
    assert_eq!(pipes[1]["executor"], "process");
    assert_eq!(e.ok(&["get", "file", "up@master:/a.txt"]), "HELLO");

    // put file waits for the jobs it started
    let b = e.local("b.txt", "world");
    e.ok(&["put", "file", "data@master:/b.txt", "-f", &b]);
    assert_eq!(e.ok(&["get", "file", "count@master:/n"]).trim(), "2");
    let jobs = e.json(&["list", "job", "-p", "up", "-o", "json"]);
    assert_eq!(jobs.len(), 2);
    let latest = &jobs[0];
    assert_eq!(latest["state"], "JOB_SUCCESS");
    assert_eq!(latest["stats"]["datums_processed"], 1);
    assert_eq!(latest["stats"]["datums_skipped"], 1);
    let id = latest["id"].as_str().unwrap().to_string();
    let job_ref = format!("up@{id}");
    let j = e.json(&["inspect", "job", &job_ref, "-o", "json"]);
    assert_eq!(j[0]["id"], id.as_str());
    // The one datum to run made one datum set (the skipped one is in none).
    assert_eq!(j[0]["stats"]["datum_sets"], 1);
    let text = e.ok(&["inspect", "job", &job_ref]);
    assert!(text.contains("Datum sets: 1 committed"), "{text}");
    let datums = e.json(&["list", "datum", &job_ref, "-o", "json"]);
    let mut states: Vec<String> = datums
        .iter()
        .map(|d| format!("{} {}", d["state"], d["reason"]["kind"]))
        .collect();
    states.sort();
    assert_eq!(states, ["\"SKIPPED\" \"unchanged\"", "\"SUCCESS\" \"new\""]);
    let new = datums.iter().find(|d| d["state"] == "SUCCESS").unwrap();
    let did = new["id"].as_str().unwrap();
    let d = e.json(&["inspect", "datum", &job_ref, &did[..10], "-o", "json"]);
    assert_eq!(d[0]["outputs"][0], "/b.txt");
    let logs = e.json(&[
        "logs", "-p", "up", "--job", &id, "--datum", did, "-o", "json",
    ]);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["message"], "processing /pfs/data/b.txt");
    assert!(logs[0]["ts_ms"].as_u64().unwrap() > 0);
    assert_eq!(e.json(&["logs", "-p", "up", "-o", "json"]).len(), 2);

    // the spec preview still works
    let dir = e.dir.path().join("local");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x"), "1").unwrap();
    let one = e.local(
        "one.yaml",
        "pipeline: {name: up}\ntransform: {cmd: ['true']}\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    let preview = e.ok(&[
        "list",
        "datum",
        "-f",
        &one,
        "--input",
        &format!("data={}", dir.display()),
    ]);
    assert!(preview.contains("/x"), "{preview}");

    // update --reprocess reprocesses everything
    e.ok(&["update", "pipeline", "-f", &spec, "--reprocess"]);
    let jobs = e.json(&["list", "job", "-p", "up", "-o", "json"]);
    assert_eq!(jobs[0]["stats"]["datums_processed"], 2);
    assert_eq!(jobs[0]["version"], 2);

    // stop: no job; start: a job; --no-wait then wait job
    e.ok(&["stop", "pipeline", "count"]);
    let c = e.local("c.txt", "again");
    e.ok(&["--no-wait", "put", "file", "data@master:/c.txt", "-f", &c]);
    let jobs = e.json(&["list", "job", "-p", "up", "-o", "json"]);
    if !e.served() {
        // Embedded, nothing runs it until a command waits; a server starts it at once.
        assert_eq!(jobs[0]["state"], "JOB_CREATED");
    }
    let pending = format!("up@{}", jobs[0]["id"].as_str().unwrap());
    let waited = e.json(&["wait", "job", &pending, "-o", "json"]);
    assert_eq!(waited[0]["state"], "JOB_SUCCESS");
    assert_eq!(
        e.json(&["list", "job", "-p", "count", "-o", "json"]).len(),
        4
    );
    e.ok(&["start", "pipeline", "count"]);
    assert_eq!(e.ok(&["get", "file", "count@master:/n"]).trim(), "3");

    // delete: refused while read by another pipeline, then fine bottom-up
    e.cmd(&["delete", "pipeline", "up"]).failure();
    e.ok(&["delete", "pipeline", "count"]);
    e.ok(&["delete", "pipeline", "up"]);
    assert!(e.json(&["list", "pipeline", "-o", "json"]).is_empty());
}

#[test]
fn cron_and_kubernetes_dry_run() {
    let e = Env::new();
    let spec = e.local(
        "cron.yaml",
        "pipeline: {name: ticker}\ntransform: {cmd: [sh, -c, 'ls /pfs/tick > /pfs/out/ticks']}\ninput: {cron: {name: tick, spec: '@every 1h', overwrite: true}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    e.ok(&["run", "cron", "ticker"]);
    let ticks = e.ok(&["get", "file", "ticker@master:/ticks"]);
    assert_eq!(ticks.lines().count(), 1);
    assert!(ticks.trim().ends_with('Z'), "{ticks}");
    let yaml = e.ok(&[
        "create",
        "pipeline",
        "-f",
        &spec,
        "--executor",
        "kubernetes",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert!(yaml.contains("kind: Pod"), "{yaml}");
}

/// `pipectl serve` ticks a cron input as it falls due until interrupted, then exits cleanly
/// and leaves the store to the next command.
#[test]
fn serve_ticks_cron_until_interrupted() {
    let e = Env::embedded();
    let spec = e.local(
        "cron.yaml",
        "pipeline: {name: ticker}\ntransform: {cmd: [sh, -c, 'ls /pfs/tick > /pfs/out/ticks']}\ninput: {cron: {name: tick, spec: '@every 1s', overwrite: true}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let mut serving = e
        .process()
        .args(["serve", "--poll-ms", "100"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &serving.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = serving.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let ticked = e
        .json(&["list", "job", "-p", "ticker", "-o", "json"])
        .iter()
        .filter(|j| j["state"] == "JOB_SUCCESS" && j["stats"]["datums_processed"] == 1)
        .count();
    assert!(
        ticked >= 2,
        "expected ticks every second, got {ticked} jobs"
    );
}
