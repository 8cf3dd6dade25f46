//! `squash commit`, `delete commit` and `wait commitset` end to end, each with its refusals
//! and bad input. Run plain and with `PIPECTL_TEST_MODE=server`.

mod common;

use common::Env;
use serde_json::Value;

/// Repo `data` read by pipeline `up` (upper-cases each file); three puts: `/a`, `/b`, then
/// `/a` changed. Returns the three commit IDs, oldest first.
fn three_sets(e: &Env) -> [String; 3] {
    e.ok(&["create", "repo", "data"]);
    let spec = e.local(
        "up.yaml",
        "pipeline: {name: up}\ntransform:\n  cmd: [sh, -c, 'tr a-z A-Z < $data > /pfs/out/${data##*/}']\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let a = e.local("a", "one");
    let b = e.local("b", "two");
    let a2 = e.local("a2", "three");
    e.ok(&["put", "file", "data@master:/a", "-f", &a]);
    e.ok(&["put", "file", "data@master:/b", "-f", &b]);
    e.ok(&["put", "file", "data@master:/a", "-f", &a2]);
    let ids = history(e, "data");
    [ids[2].clone(), ids[1].clone(), ids[0].clone()]
}

/// The commit IDs of `repo@master`, newest first, without the branch's first (empty)
/// commit that creating the pipeline made.
fn history(e: &Env, repo: &str) -> Vec<String> {
    let mut ids: Vec<String> = e
        .json(&["list", "commit", &format!("{repo}@master"), "-o", "json"])
        .iter()
        .map(|c| c["commit"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.pop();
    ids
}

fn one_json(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn squash_commit_keeps_the_data_in_the_children_and_stops_the_sets_jobs() {
    let e = Env::new();
    let [c1, c2, c3] = three_sets(&e);
    let before = e.ok(&["get", "file", "up@master:/b"]);

    let done = one_json(&e.ok(&["squash", "commit", &c2, "-o", "json"]));
    assert_eq!(done["commits"]["op"], "squash");
    let removed: Vec<&str> = done["commits"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commit"]["repo"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["data", "up"]);
    assert_eq!(done["jobs"][0]["state"], "JOB_SUCCESS");
    assert_eq!(history(&e, "data"), [c3.clone(), c1.clone()]);
    assert_eq!(history(&e, "up").len(), 2, "the jobs of c1 and c3 stay");
    assert_eq!(e.ok(&["get", "file", "data@master:/b"]), "two");
    assert_eq!(e.ok(&["get", "file", "up@master:/b"]), before);
    assert_eq!(e.ok(&["get", "file", &format!("up@{c3}:/a")]), "THREE");
    // The squashed job keeps its record, not its datums.
    let datums = e.ok(&["list", "datum", &format!("up@{c2}"), "-o", "json"]);
    assert!(datums.trim().is_empty(), "{datums}");
    e.cmd(&["get", "file", &format!("data@{c2}:/b")]).code(1);

    // The head has no children: Pachyderm's refusal, and which command drops it.
    let err = e.fails(&["squash", "commit", &c3]);
    assert!(
        err.contains("cannot squash a commit that has no children as that would cause data loss"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pipectl delete commit {c3}")),
        "{err}"
    );
    e.ok(&["fsck"]);
}

#[test]
fn delete_commit_drops_the_head_set_and_refuses_a_set_with_children() {
    let e = Env::new();
    let [c1, c2, c3] = three_sets(&e);

    // REPO@COMMIT names the commit's set; the text output says what happened.
    let text = e.ok(&["delete", "commit", &format!("data@{c3}")]);
    assert!(
        text.contains(&format!("dropped commit set {c3}: 2 commit(s) removed")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "branch default/data@master moved from {c3} to {c2}"
        )),
        "{text}"
    );
    assert_eq!(history(&e, "data"), [c2.clone(), c1.clone()]);
    assert_eq!(e.ok(&["get", "file", "up@master:/a"]), "ONE");

    let err = e.fails(&["delete", "commit", &c1]);
    assert!(
        err.contains("cannot drop a commit that has children"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pipectl squash commit {c1}")),
        "{err}"
    );
    assert_eq!(history(&e, "data"), [c2.clone(), c1.clone()]);

    // A new commit builds on the new head, and its job on the remaining job.
    let c = e.local("c", "four");
    e.ok(&["put", "file", "data@master:/c", "-f", &c]);
    let jobs = e.json(&["list", "job", "-p", "up", "-o", "json"]);
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS");
    assert_eq!(jobs[0]["base_job"], c2.as_str());
    assert_eq!(jobs[0]["stats"]["datums_skipped"], 2);
    assert_eq!(e.ok(&["get", "file", "up@master:/a"]), "ONE");
    e.ok(&["fsck"]);
}

#[test]
fn squash_and_delete_commit_bad_input() {
    let e = Env::new();
    three_sets(&e);
    let err = e.cmd(&["squash", "commit", "not-an-id"]).code(2);
    assert!(String::from_utf8_lossy(&err.get_output().stderr).contains("commit-set ID"));
    e.cmd(&["delete", "commit", "data@master:/a"]).code(2);
    let unknown = "0123456789abcdef0123456789abcdef";
    let err = e.fails(&["delete", "commit", unknown]);
    assert!(
        err.contains(&format!("no commits found for commit set {unknown}")),
        "{err}"
    );
    e.cmd(&["squash", "commit", "nope@master"]).code(1);
    e.cmd(&["squash", "commit"]).code(2);
}

#[test]
fn wait_commitset_prints_every_commit_of_the_set() {
    let e = Env::new();
    let [_, _, c3] = three_sets(&e);
    let commits = e.json(&["wait", "commitset", &c3, "-o", "json"]);
    let repos: Vec<&str> = commits
        .iter()
        .map(|c| c["commit"]["repo"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["data", "up"]);
    assert!(commits.iter().all(|c| c["state"] == "FINISHED"));
    let text = e.ok(&["wait", "commitset", "data@master"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains(&c3));

    e.cmd(&["wait", "commitset", "0123456789abcdef0123456789abcdef"])
        .code(1);
    e.cmd(&["wait", "commitset", "zz"]).code(2);
    e.cmd(&["wait", "commitset", &c3, "--timeout", "soon"])
        .code(2);

    // An open commit: exit 1 naming it (at once without a server, after the timeout with).
    e.ok(&["start", "commit", "data@master"]);
    let open = history(&e, "data")[0].clone();
    let err = e.fails(&["wait", "commitset", &open, "--timeout", "200ms"]);
    assert!(err.contains("open"), "{err}");
    assert!(err.contains(&format!("default/data@{open}")), "{err}");
}
