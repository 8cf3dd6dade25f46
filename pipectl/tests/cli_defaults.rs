//! `pipectl create|update|inspect|delete defaults --cluster | --project P` end to end (both
//! modes): documents from files and stdin, bad documents with positions, the flags' rules,
//! defaults merged into `create pipeline` and shown by `inspect pipeline`, `--regenerate`.

mod common;

use common::Env;

const CLUSTER: &str = "create_pipeline_request:\n  datum_tries: 2\n  parallelism_spec: {constant: 2}\n  transform: {env: {LEVEL: cluster}}\n";

const SPEC: &str = "pipeline: {name: p}\ntransform: {cmd: [sh, -c, 'echo $LEVEL > /pfs/out/level']}\ninput: {pfs: {repo: data, glob: /}}\n";

#[test]
fn defaults_are_set_inspected_replaced_and_deleted() {
    let e = Env::new();
    if !e.served() {
        // A read never creates the store (under a server it exists already).
        e.ok(&["init"]);
    }
    assert_eq!(e.ok(&["inspect", "defaults", "--cluster"]).trim(), "{}");
    let f = e.local("cluster.yaml", CLUSTER);
    e.ok(&["create", "defaults", "--cluster", "-f", &f]);
    let shown: serde_json::Value =
        serde_json::from_str(&e.ok(&["inspect", "defaults", "--cluster"])).unwrap();
    assert_eq!(shown["create_pipeline_request"]["datum_tries"], 2);
    let record: serde_json::Value =
        serde_json::from_str(&e.ok(&["inspect", "defaults", "--cluster", "-o", "json"])).unwrap();
    assert_eq!(record["defaults"], shown);
    assert!(record["updated_ms"].as_u64().is_some(), "{record}");
    let yaml = e.ok(&["inspect", "defaults", "--cluster", "-o", "yaml"]);
    assert!(yaml.contains("datum_tries: 2"), "{yaml}");
    // update replaces the whole document (as pachctl), here from stdin.
    e.command()
        .args(["update", "defaults", "--cluster"])
        .write_stdin(r#"{"createPipelineRequest": {"datumTries": 5}}"#)
        .assert()
        .success();
    let shown = e.ok(&["inspect", "defaults", "--cluster"]);
    assert!(shown.contains("\"datumTries\": 5"), "{shown}");
    assert!(!shown.contains("parallelism"), "{shown}");
    // Project defaults sit next to the cluster's.
    let p = e.local(
        "p.json",
        r#"{"create_pipeline_request": {"datum_tries": 7}}"#,
    );
    e.ok(&["create", "defaults", "--project", "default", "-f", &p]);
    let shown = e.ok(&["inspect", "defaults", "--project", "default"]);
    assert!(shown.contains("\"datum_tries\": 7"), "{shown}");
    // Another project's defaults: none until set; a project that does not exist has none
    // to show.
    e.fails(&["inspect", "defaults", "--project", "other"]);
    e.ok(&["create", "project", "other"]);
    assert_eq!(
        e.ok(&["inspect", "defaults", "--project", "other"]).trim(),
        "{}"
    );
    e.ok(&["delete", "defaults", "--project", "default"]);
    assert_eq!(
        e.ok(&["inspect", "defaults", "--project", "default"])
            .trim(),
        "{}"
    );
    e.ok(&["delete", "defaults", "--cluster"]);
    assert_eq!(e.ok(&["inspect", "defaults", "--cluster"]).trim(), "{}");
}

#[test]
fn bad_documents_and_flags_are_refused() {
    let e = Env::new();
    let bad = e.local(
        "bad.yaml",
        "create_pipeline_request:\n  datum_trys: 2\n  parallelism_spec: {constant: many}\n",
    );
    let err = e.fails(&["create", "defaults", "--cluster", "-f", &bad]);
    assert!(
        err.contains("bad.yaml:2:3: create_pipeline_request.datum_trys"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:3:22: create_pipeline_request.parallelism_spec.constant"),
        "{err}"
    );
    assert!(
        err.contains("create_pipeline_request.datum_trys") && err.contains("datum_tries"),
        "{err}"
    );
    let wrapper = e.local("w.json", r#"{"datum_tries": 2}"#);
    let err = e.fails(&["create", "defaults", "--cluster", "-f", &wrapper]);
    assert!(
        err.contains("unknown field `datum_tries` in the defaults document; expected `create_pipeline_request`"),
        "{err}"
    );
    let name = e.local(
        "n.json",
        r#"{"create_pipeline_request": {"pipeline": {"name": "x"}}}"#,
    );
    let err = e.fails(&["create", "defaults", "--cluster", "-f", &name]);
    assert!(err.contains("`pipeline` cannot have a default"), "{err}");
    assert_eq!(e.ok(&["inspect", "defaults", "--cluster"]).trim(), "{}");
    // Exactly one of --cluster and --project (usage errors, exit 2).
    let f = e.local("c.yaml", CLUSTER);
    let err = e
        .cmd(&["create", "defaults", "-f", &f])
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("give --cluster or --project PROJECT"), "{err}");
    let err = e
        .cmd(&["inspect", "defaults", "--cluster", "--project", "x"])
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("are exclusive"), "{err}");
    let err = e.fails(&["inspect", "defaults", "--project", "bad/name"]);
    assert!(err.contains("bad/name"), "{err}");
    let missing = e.fails(&[
        "create",
        "defaults",
        "--cluster",
        "-f",
        "/no/such/file.json",
    ]);
    assert!(missing.contains("/no/such/file.json"), "{missing}");
}

#[test]
fn pipelines_take_the_defaults_and_inspect_shows_the_effective_spec() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "a");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let cluster = e.local("cluster.yaml", CLUSTER);
    e.ok(&["create", "defaults", "--cluster", "-f", &cluster]);
    let project = e.local(
        "project.yaml",
        "create_pipeline_request:\n  transform: {env: {LEVEL: project}}\n",
    );
    e.ok(&["create", "defaults", "--project", "default", "-f", &project]);
    let spec = e.local("p.yaml", SPEC);
    e.ok(&["create", "pipeline", "-f", &spec]);
    assert_eq!(e.ok(&["get", "file", "p@master:/level"]).trim(), "project");
    let text = e.ok(&["inspect", "pipeline", "p"]);
    let effective = text.split("Effective spec:").nth(1).expect(&text);
    assert!(effective.contains("\"datum_tries\": 2"), "{text}");
    assert!(effective.contains("\"constant\": 2"), "{text}");
    let info = &e.json(&["inspect", "pipeline", "p", "-o", "json"])[0];
    assert_eq!(info["effective"]["datum_tries"], 2);
    assert_eq!(info["effective"]["transform"]["env"]["LEVEL"], "project");
    assert!(info["spec"].get("datum_tries").is_none());
    // New defaults wait for --regenerate; --dry-run lists and changes nothing.
    let five = e.local(
        "five.json",
        r#"{"create_pipeline_request": {"datum_tries": 5}}"#,
    );
    let out = e.ok(&[
        "update",
        "defaults",
        "--cluster",
        "-f",
        &five,
        "--regenerate",
        "--dry-run",
    ]);
    assert_eq!(out, "affected pipelines:\n\tp\n");
    assert_eq!(
        e.json(&["inspect", "pipeline", "p", "-o", "json"])[0]["version"],
        1
    );
    let change = e.ok(&[
        "update",
        "defaults",
        "--cluster",
        "-f",
        &five,
        "--regenerate",
        "-o",
        "json",
    ]);
    let change: serde_json::Value = serde_json::from_str(&change).unwrap();
    assert_eq!(change["affected_pipelines"][0], "p");
    let info = &e.json(&["inspect", "pipeline", "p", "-o", "json"])[0];
    assert_eq!(info["version"], 2);
    assert_eq!(info["effective"]["datum_tries"], 5);
    let out = e.ok(&[
        "update",
        "defaults",
        "--cluster",
        "-f",
        &five,
        "--regenerate",
    ]);
    assert_eq!(out, "no affected pipelines\n");
    // A pipeline the defaults make invalid is refused naming the field.
    let spout = e.local(
        "spout.json",
        r#"{"create_pipeline_request": {"spout": {}}}"#,
    );
    e.ok(&["update", "defaults", "--project", "default", "-f", &spout]);
    let other = e.local("q.yaml", &SPEC.replace("name: p", "name: q"));
    let err = e.fails(&["create", "pipeline", "-f", &other]);
    assert!(
        err.contains("3:1: input: spout pipelines (without a service) must not have an input"),
        "{err}"
    );
}
