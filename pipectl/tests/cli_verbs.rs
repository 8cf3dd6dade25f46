//! pachctl's file, commit and datum verbs end to end, each with its bad input: `glob file`,
//! `diff file` (paths, `--shallow`, `--name-only`), `copy file`, `find commit`,
//! `wait commit`, `subscribe commit`, `list datum` with states and pages, `draw pipeline`.
//! Run plain and with `PIPECTL_TEST_MODE=server`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::Env;
use serde_json::Value;

/// A store with repo `data` and three commits: `/a`, `/d/b` (+ `/d/s/c`), then `/a` changed.
fn three_commits() -> Env {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let one = e.local("one", "1");
    let two = e.local("two", "22");
    e.ok(&["put", "file", "data@master:/a", "-f", &one]);
    e.ok(&["start", "commit", "data@master"]);
    e.ok(&["put", "file", "data@master:/d/b", "-f", &one]);
    e.ok(&["put", "file", "data@master:/d/s/c", "-f", &one]);
    e.ok(&["finish", "commit", "data@master"]);
    e.ok(&["put", "file", "data@master:/a", "-f", &two]);
    e
}

fn paths(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn glob_diff_and_copy_file() {
    let e = three_commits();
    let g = e.json(&["glob", "file", "data@master:/d/*", "-o", "json"]);
    assert_eq!(paths(&g), ["/d/b", "/d/s/"]);
    let bad = e
        .cmd(&["glob", "file", "data@master:/[", "-o", "json"])
        .code(2);
    assert!(String::from_utf8_lossy(&bad.get_output().stderr).contains('['));

    // The whole commit against its parent; one path of each side; one level deep.
    let d = e.json(&["diff", "file", "data@master", "-o", "json"]);
    assert_eq!(paths(&d), ["/a"]);
    assert_eq!(d[0]["change"], "modified");
    let d = e.json(&[
        "diff",
        "file",
        "data@master:/d",
        "data@master^2",
        "-o",
        "json",
    ]);
    assert_eq!(paths(&d), ["/d/b", "/d/s/c"]);
    assert!(d.iter().all(|x| x["change"] == "added"));
    let names = e.ok(&[
        "diff",
        "file",
        "data@master:/",
        "data@master^2",
        "--shallow",
        "--name-only",
    ]);
    assert_eq!(names, "/a\n/d/\n");
    // Two paths compare what is below each: two files compare with each other.
    let names = e.ok(&[
        "diff",
        "file",
        "data@master:/d/b",
        "data@master:/a",
        "--name-only",
    ]);
    assert_eq!(names, "/d/b\n");

    // copy file writes entries only: the copy has the source's hash.
    e.ok(&["copy", "file", "data@master:/d", "data@master:/e"]);
    let inspect = |p: &str| -> Value {
        serde_json::from_str(&e.ok(&["inspect", "file", p, "-o", "json"])).unwrap()
    };
    let (src, dst) = (inspect("data@master:/d"), inspect("data@master:/e"));
    assert_eq!(src["hash"], dst["hash"]);
    assert_eq!(e.ok(&["get", "file", "data@master:/e/s/c"]), "1");
    let d = e.json(&["diff", "file", "data@master", "-o", "json"]);
    assert_eq!(paths(&d), ["/e/b", "/e/s/c"]);

    // Bad input: a path is required, must be valid, and must exist.
    e.cmd(&["copy", "file", "data@master", "data@master:/x"])
        .code(2);
    e.cmd(&["copy", "file", "data@master:/d", "data@master"])
        .code(2);
    e.cmd(&["copy", "file", "data@master:/d/../a", "data@master:/x"])
        .code(2);
    let err = e.fails(&["copy", "file", "data@master:/nothing", "data@master:/x"]);
    assert!(err.contains("/nothing"), "{err}");
    e.cmd(&["copy", "file", "nope@master:/a", "data@master:/x"])
        .code(1);
    e.cmd(&["diff", "file", "data@master:/a/../b"]).code(2);
    let err = e.fails(&["diff", "file", "data@master:/nothing"]);
    assert!(err.contains("/nothing"), "{err}");
    e.cmd(&["diff", "file", "data@nobranch:/a"]).code(1);
}

#[test]
fn find_commit_lists_the_commits_that_changed_a_path_newest_first() {
    let e = three_commits();
    let commits = e.json(&["list", "commit", "data@master", "-o", "json"]);
    let id = |i: usize| commits[i]["commit"]["id"].as_str().unwrap().to_string();
    let found = e.json(&["find", "commit", "data@master:/a", "-o", "json"]);
    let got: Vec<(String, String)> = found
        .iter()
        .map(|f| {
            (
                f["commit"]["commit"]["id"].as_str().unwrap().to_string(),
                f["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (id(0), "modified".to_string()),
            (id(2), "added".to_string())
        ]
    );
    let limited = e.json(&[
        "find",
        "commit",
        "data@master:/a",
        "--limit",
        "1",
        "-o",
        "json",
    ]);
    assert_eq!(limited.len(), 1);
    let dir = e.json(&["find", "commit", "data@master:/d", "-o", "json"]);
    assert_eq!(
        dir.len(),
        1,
        "a directory changes when a file below it does"
    );
    let text = e.ok(&["find", "commit", "data@master:/a"]);
    assert!(text.starts_with("CHANGE"), "{text}");
    assert_eq!(text.lines().count(), 3);
    assert!(
        e.ok(&["find", "commit", "data@master:/none", "-o", "json"])
            .is_empty()
    );

    e.cmd(&["find", "commit", "data@master"]).code(2);
    e.cmd(&["find", "commit", "data@master:"]).code(2);
    e.cmd(&["find", "commit", "data@master:/a/../a"]).code(2);
    e.cmd(&["find", "commit", "nope@master:/a"]).code(1);
    e.cmd(&["find", "commit", "data@master:/a", "--limit", "x"])
        .code(2);
}

#[test]
fn wait_commit_prints_the_finished_commit_and_refuses_bad_input() {
    let e = three_commits();
    let done = e.ok(&["wait", "commit", "data@master", "-o", "json"]);
    let done: Value = serde_json::from_str(&done).unwrap();
    assert_eq!(done["state"], "FINISHED");
    assert!(
        e.ok(&["wait", "commit", "data@master"])
            .contains("State: Finished")
    );

    e.cmd(&["wait", "commit", "data@master", "--timeout", "soon"])
        .code(2);
    e.cmd(&["wait", "commit", "data@master", "--timeout", "5d"])
        .code(2);
    e.cmd(&["wait", "commit", "data@master:/a"]).code(2);
    e.cmd(&["wait", "commit", "nope@master"]).code(1);
    e.cmd(&["wait", "commit", "data@0123456789abcdef0123456789abcdef"])
        .code(1);

    e.ok(&["start", "commit", "data@master"]);
    let err = e.fails(&["wait", "commit", "data@master", "--timeout", "100ms"]);
    if e.served() {
        assert!(err.contains("still open after 100ms"), "{err}");
        // A waiter in the background returns once the commit is finished.
        let waiter = e
            .process()
            .args(["wait", "commit", "data@master", "-o", "json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        e.ok(&["finish", "commit", "data@master"]);
        let out = waiter.wait_with_output().unwrap();
        assert!(out.status.success());
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info["state"], "FINISHED");
    } else {
        assert!(err.contains("no server runs"), "{err}");
        e.ok(&["finish", "commit", "data@master"]);
    }

    // A commit finished with an error: printed, exit 1 naming the error.
    e.ok(&["start", "commit", "data@master"]);
    e.ok(&["finish", "commit", "data@master", "--error", "bad data"]);
    let err = e.fails(&["wait", "commit", "data@master"]);
    assert!(err.contains("bad data"), "{err}");
}

#[test]
fn subscribe_commit_prints_the_history_then_new_commits() {
    let e = three_commits();
    let all = e.json(&["list", "commit", "data@master", "-o", "json"]);
    let oldest_first: Vec<&Value> = all.iter().rev().map(|c| &c["commit"]["id"]).collect();
    if e.served() {
        subscribe_through_server(&e, &all);
    } else {
        let subs = e.json(&["subscribe", "commit", "data@master", "-o", "json"]);
        let ids: Vec<&Value> = subs.iter().map(|c| &c["commit"]["id"]).collect();
        assert_eq!(ids, oldest_first);
        let from = all[2]["commit"]["id"].as_str().unwrap();
        let subs = e.json(&[
            "subscribe",
            "commit",
            "data@master",
            "--from",
            from,
            "-o",
            "json",
        ]);
        assert_eq!(subs.len(), 2);
        assert!(
            e.ok(&["subscribe", "commit", "data@master", "--new"])
                .is_empty()
        );
        // A branch with no commits yet has none to print.
        assert!(e.ok(&["subscribe", "commit", "data@later"]).is_empty());
    }
    e.cmd(&["subscribe", "commit", "nope@master"]).code(1);
    e.cmd(&["subscribe", "commit", "data@master:/a"]).code(2);
    e.cmd(&["subscribe", "commit", "data@master", "--from", "nothing"])
        .code(1);
    e.cmd(&["subscribe", "commit", "data@master", "--new", "--from", "x"])
        .code(2);
    // --from must be a commit of the branch's history.
    e.ok(&["create", "branch", "data@side"]);
    let one = e.local("one", "1");
    e.ok(&["put", "file", "data@side:/x", "-f", &one]);
    let side = e.json(&["list", "commit", "data@side", "-o", "json"]);
    let side_id = side[0]["commit"]["id"].as_str().unwrap();
    let err = e.fails(&["subscribe", "commit", "data@master", "--from", side_id]);
    assert!(err.contains("not a commit of the history"), "{err}");
}

/// Server mode: the history at once, then each commit as it finishes; the subscriber stays
/// until killed.
fn subscribe_through_server(e: &Env, all: &[Value]) {
    let mut child = e
        .process()
        .args(["subscribe", "commit", "data@master", "-o", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a commit line");
        serde_json::from_str(&line).unwrap()
    };
    for c in all.iter().rev() {
        assert_eq!(next()["commit"]["id"], c["commit"]["id"]);
    }
    let one = e.local("one", "1");
    e.ok(&["put", "file", "data@master:/new", "-f", &one]);
    let head = e.json(&[
        "list",
        "commit",
        "data@master",
        "--number",
        "1",
        "-o",
        "json",
    ]);
    assert_eq!(next()["commit"]["id"], head[0]["commit"]["id"]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the subscriber keeps following"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A pipeline whose datums named `f*` fail, over `/a`, `/b`, then `/c`, `/f1`, `/f2` added
/// in one commit: the second job has 1 success, 2 skipped, 2 failed. Returns
/// `PIPELINE@JOB`.
fn mixed_job(e: &Env) -> String {
    e.ok(&["create", "repo", "data"]);
    for name in ["a", "b"] {
        let f = e.local(name, name);
        e.ok(&["put", "file", &format!("data@master:/{name}"), "-f", &f]);
    }
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: p}\ndatum_tries: 1\ntransform:\n  cmd: [sh, -c, 'case $data in */f*) exit 3;; esac; cp $data /pfs/out/']\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    e.ok(&["start", "commit", "data@master"]);
    for name in ["c", "f1", "f2"] {
        let f = e.local(name, name);
        e.ok(&["put", "file", &format!("data@master:/{name}"), "-f", &f]);
    }
    e.cmd(&["finish", "commit", "data@master"]).code(3);
    let jobs = e.json(&["list", "job", "-p", "p", "-o", "json"]);
    format!("p@{}", jobs[0]["id"].as_str().unwrap())
}

fn datum_ids(e: &Env, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["list", "datum"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    e.json(&all)
        .iter()
        .map(|d| {
            (
                d["state"].as_str().unwrap().to_string(),
                d["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn list_datum_filters_states_pages_and_reverses() {
    let e = Env::new();
    let job = mixed_job(&e);
    let all = datum_ids(&e, &[&job]);
    let states: Vec<&str> = all.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        states,
        ["FAILED", "FAILED", "SUCCESS", "SKIPPED", "SKIPPED"],
        "reading order"
    );
    let mut backwards = all.clone();
    backwards.reverse();
    assert_eq!(datum_ids(&e, &[&job, "--reverse"]), backwards);
    assert_eq!(datum_ids(&e, &[&job, "--state", "failed"]), all[..2]);
    let two = datum_ids(&e, &[&job, "--state", "skipped", "--state", "failed"]);
    assert_eq!(two, [&all[..2], &all[3..]].concat());
    let two_rev = datum_ids(
        &e,
        &[&job, "--state", "failed", "--state", "skipped", "--reverse"],
    );
    let mut expect = two.clone();
    expect.reverse();
    assert_eq!(two_rev, expect);
    assert_eq!(
        datum_ids(&e, &[&job, "--page-size", "2", "--page", "1"]),
        all[2..4]
    );
    assert_eq!(
        datum_ids(&e, &[&job, "--page-size", "2", "--page", "2"]),
        all[4..]
    );
    assert!(datum_ids(&e, &[&job, "--page-size", "2", "--page", "3"]).is_empty());
    assert_eq!(
        datum_ids(&e, &[&job, "--page-size", "2"]),
        all,
        "no --page: every page"
    );
    assert_eq!(
        datum_ids(&e, &[&job, "--page-size", "3", "--page", "0", "--reverse"]),
        backwards[..3]
    );
    let text = e.ok(&["list", "datum", &job, "--state", "success"]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().contains("SUCCESS"));

    for bad in [
        vec!["--page", "1"],
        vec!["--page-size", "0"],
        vec!["--page-size", "-1"],
        vec!["--state", "bogus"],
        vec!["--page-size", "99999999999999999999"],
    ] {
        let mut args = vec!["list", "datum", job.as_str()];
        args.extend(bad.iter().copied());
        e.cmd(&args).code(2);
    }
    let huge = usize::MAX.to_string();
    e.cmd(&["list", "datum", &job, "--page-size", "2", "--page", &huge])
        .code(2);
    e.cmd(&["list", "datum", "p@0123456789abcdef", "--state", "failed"])
        .code(1);
    let spec = e.local(
        "q.yaml",
        "pipeline: {name: q}\ntransform: {cmd: [\"true\"]}\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.cmd(&["list", "datum", "-f", &spec, "--reverse"]).code(2);
}

#[test]
fn draw_pipeline_draws_the_dag_deterministically() {
    let e = Env::new();
    if !e.served() {
        e.ok(&["init"]);
    }
    assert!(
        e.ok(&["draw", "pipeline"]).is_empty(),
        "an empty store draws nothing"
    );
    e.ok(&["create", "repo", "data"]);
    e.ok(&["create", "repo", "ref"]);
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: left}\ntransform: {cmd: [\"true\"]}\ninput: {pfs: {repo: data, glob: /}}\n---\npipeline: {name: right}\ntransform: {cmd: [\"true\"]}\ninput: {cross: [{pfs: {repo: data, glob: /}}, {pfs: {repo: ref, glob: /}}]}\n---\npipeline: {name: join}\ntransform: {cmd: [\"true\"]}\ninput: {cross: [{pfs: {repo: left, glob: /}}, {pfs: {repo: right, glob: /}}]}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let text = e.ok(&["draw", "pipeline"]);
    assert_eq!(
        text,
        "data\n├── left\n│   └── join\n└── right\n    └── join (↑ above)\nref\n└── right (↑ above)\n"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80));
    assert_eq!(e.ok(&["draw", "pipeline"]), text, "deterministic");
    let nodes = e.json(&["draw", "pipeline", "-o", "json"]);
    let join = nodes.iter().find(|n| n["name"] == "default/join").unwrap();
    assert_eq!(join["kind"], "pipeline");
    assert_eq!(
        join["inputs"],
        serde_json::json!(["default/left", "default/right"])
    );
    e.cmd(&["draw", "pipeline", "extra"]).code(2);
    e.cmd(&["draw", "pipeline", "-o", "bogus"]).code(2);
}
