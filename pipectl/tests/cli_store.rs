//! Finding the store (#14 item 6): reads never create one and say where they looked; `init`
//! and writes create it.

mod common;

use common::Env;

#[test]
fn reads_on_a_missing_store_create_nothing_and_say_where_they_looked() {
    if common::skip_on_server_store("creating a store directory") {
        return;
    }
    let e = Env::embedded();
    let reads: [&[&str]; 8] = [
        &["list", "repo"],
        &["list", "pipeline"],
        &["list", "job"],
        &["inspect", "repo", "data"],
        &["get", "file", "data@master:/a"],
        &["list", "file", "data@master:/"],
        &["logs", "-p", "p"],
        &["wait", "job", "p@0123456789abcdef"],
    ];
    for args in reads {
        let a = e.cmd(args).code(1);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains("no store at"), "{args:?}: {err}");
        assert!(
            err.contains(e.root().to_str().unwrap()),
            "{args:?} names where it looked: {err}"
        );
        assert!(err.contains("pipectl init"), "{args:?}: {err}");
        assert!(!e.root().exists(), "{args:?} created the store");
    }
}

#[test]
fn init_and_writes_create_the_store() {
    if common::skip_on_server_store(
        "creating a store directory (PostgreSQL: cli_store_postgres.rs)",
    ) {
        return;
    }
    let e = Env::embedded();
    let out = e.ok(&["init"]);
    assert!(out.contains(e.root().to_str().unwrap()), "{out}");
    assert!(e.root().join("LOCK").exists());
    // Idempotent.
    e.ok(&["init"]);
    assert!(e.ok(&["list", "repo"]).starts_with("PROJECT"));
    let fresh = Env::embedded();
    fresh.ok(&["create", "repo", "data"]);
    assert!(fresh.ok(&["list", "repo"]).contains("data"));
}
