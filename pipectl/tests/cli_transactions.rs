//! `start|stop|resume|finish|delete|list|inspect transaction` end to end: the commands a
//! transaction takes are queued ("Added to transaction: ID") and run at `finish
//! transaction` as one commit set, so a cross pipeline runs one job; a failing request
//! applies nothing. Run plain and with `PIPECTL_TEST_MODE=server`.

mod common;

use common::Env;

const CROSS: &str = r#"pipeline: {name: pairs}
transform: {cmd: [sh, -c, 'echo "$(cat $A) $(cat $B)" > /pfs/out/$(basename $A)-$(basename $B)']}
input: {cross: [{pfs: {repo: A, glob: /*}}, {pfs: {repo: B, glob: /*}}]}
"#;

/// Repos A and B with one file each.
fn two_repos() -> Env {
    let e = Env::new();
    for (repo, file) in [("A", "a1"), ("B", "b1")] {
        e.ok(&["create", "repo", repo]);
        let local = e.local(file, file);
        e.ok(&[
            "put",
            "file",
            &format!("{repo}@master:/{file}"),
            "-f",
            &local,
        ]);
    }
    e
}

fn added(e: &Env, args: &[&str], id: &str) {
    let out = e.ok(args);
    assert_eq!(out, format!("Added to transaction: {id}\n"), "{args:?}");
}

#[test]
fn commits_and_a_pipeline_in_one_transaction_make_one_job() {
    let e = two_repos();
    let spec = e.local("pairs.yaml", CROSS);
    let id = e.ok(&["start", "transaction"]).trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    added(&e, &["start", "commit", "A@master"], &id);
    added(&e, &["start", "commit", "B@master"], &id);
    added(&e, &["finish", "commit", "A@master"], &id);
    added(&e, &["finish", "commit", "B@master"], &id);
    added(&e, &["create", "pipeline", "-f", &spec], &id);
    // Nothing ran yet; other commands run at once.
    assert_eq!(e.json(&["list", "commit", "A", "-o", "json"]).len(), 1);
    e.fails(&["inspect", "pipeline", "pairs"]);
    let inspected: serde_json::Value =
        serde_json::from_str(&e.ok(&["inspect", "transaction", "-o", "json"])).unwrap();
    assert_eq!(inspected["id"], id.as_str());
    let kinds: Vec<String> = inspected["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().keys().next().unwrap().clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "start_commit",
            "start_commit",
            "finish_commit",
            "finish_commit",
            "create_pipeline"
        ]
    );
    let listed = e.ok(&["list", "transaction"]);
    assert!(listed.contains(&format!("*{id}")), "{listed}");
    assert!(listed.contains("create pipeline pairs"), "{listed}");

    let out = e.ok(&["finish", "transaction"]);
    assert!(out.contains(&format!("finished transaction {id}")), "{out}");
    assert!(out.contains(": 1 job(s)"), "{out}");
    let jobs = e.json(&["list", "job", "-p", "pairs", "-o", "json"]);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS", "{:?}", jobs[0]);
    let commits = e.json(&["list", "commit", "A", "-o", "json"]);
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0]["commit"]["id"], jobs[0]["id"], "one commit set");
    let commits_b = e.json(&["list", "commit", "B", "-o", "json"]);
    assert_eq!(commits_b[0]["commit"]["id"], jobs[0]["id"]);
    assert!(e.ok(&["list", "transaction", "-o", "json"]).is_empty());
    // The transaction is no longer active: commands run at once again.
    e.ok(&["create", "repo", "C"]);
    e.ok(&["inspect", "repo", "C"]);
}

#[test]
fn stop_resume_inspect_and_delete() {
    let e = Env::new();
    let id = e.ok(&["start", "transaction"]).trim().to_string();
    let again = e.fails(&["start", "transaction"]);
    assert!(
        again.contains(&format!("transaction {id} is active")),
        "{again}"
    );
    e.ok(&["stop", "transaction"]);
    // Stopped: commands run at once.
    assert_eq!(e.ok(&["create", "repo", "now"]), "");
    e.ok(&["inspect", "repo", "now"]);
    e.ok(&["resume", "transaction", &id]);
    added(&e, &["create", "repo", "later"], &id);
    added(&e, &["create", "branch", "now@dev"], &id);
    let text = e.ok(&["inspect", "transaction", &id]);
    assert!(text.contains("State: active"), "{text}");
    assert!(text.contains("1. create repo later"), "{text}");
    assert!(text.contains("2. create branch now@dev"), "{text}");
    // update pipeline cannot be part of a transaction.
    let spec = e.local("p.yaml", CROSS);
    let refused = e.fails(&["update", "pipeline", "-f", &spec]);
    assert!(
        refused.contains("cannot be part of a transaction"),
        "{refused}"
    );
    e.ok(&["delete", "transaction"]);
    e.fails(&["inspect", "repo", "later"]);
    let gone = e.fails(&["inspect", "transaction", &id]);
    assert!(gone.contains("not found"), "{gone}");
    let none = e.fails(&["finish", "transaction"]);
    assert!(none.contains("no active transaction"), "{none}");
    let bad = e.fails(&["resume", "transaction", "not-an-id"]);
    assert!(bad.contains("32 hexadecimal digits"), "{bad}");
    e.ok(&["create", "repo", "after"]);
}

#[test]
fn a_failing_request_fails_the_finish_and_applies_nothing() {
    let e = two_repos();
    let id = e.ok(&["start", "transaction", "-o", "json"]);
    let id: serde_json::Value = serde_json::from_str(&id).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    added(&e, &["create", "repo", "X"], &id);
    added(&e, &["start", "commit", "A@master"], &id);
    added(&e, &["start", "commit", "nope@master"], &id);
    let bad = e.fails(&["start", "commit", "bad name@master"]);
    assert!(bad.contains("start_commit.branch"), "{bad}");
    let err = e.fails(&["finish", "transaction"]);
    assert!(
        err.contains("request 3 (start commit nope@master) failed"),
        "{err}"
    );
    assert!(
        err.contains("nothing of the transaction was applied"),
        "{err}"
    );
    e.fails(&["inspect", "repo", "X"]);
    assert_eq!(e.json(&["list", "commit", "A", "-o", "json"]).len(), 1);
    // Still there and still active, to fix or delete.
    let listed = e.json(&["list", "transaction", "-o", "json"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["requests"].as_array().unwrap().len(), 3);
    e.ok(&["delete", "transaction", &id]);
    assert!(
        e.ok(&["list", "transaction"]).lines().count() == 1,
        "header only"
    );
}
