//! A `datum_batching` pipeline end to end through `pipectl` on the process executor: the
//! user process calls `pipectl next datum` (found on its `PATH`) for each of 1,000 datums,
//! reads each datum's variables from `/pfs/.env`, and a datum it reports with `--error`
//! fails the job naming the message.

mod common;

use common::Env;

/// A batching pipeline `name` over repo `data` (glob `/*`) whose shell loop runs `body` per
/// datum, `/pfs/.env` sourced.
fn spec(name: &str, body: &str, extra: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform:\n  cmd: [sh]\n  datum_batching: true\n  stdin:\n    - 'pipectl next datum'\n    - 'while true; do'\n    - '  . /pfs/.env'\n    - '{body}'\n    - 'done'\ninput: {{pfs: {{repo: data, glob: /*}}}}\n{extra}"
    )
}

#[test]
fn a_batching_pipeline_runs_a_thousand_datums_through_pipectl_next_datum() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    for i in 0..1000 {
        e.local(&format!("tree/f{i:04}"), &format!("v{i}"));
    }
    let tree = e.dir.path().join("tree");
    e.ok(&[
        "put",
        "file",
        "data@master:/",
        "-f",
        tree.to_str().unwrap(),
        "-r",
    ]);
    let p = e.local(
        "batch.yaml",
        &spec(
            "up",
            "  tr a-z A-Z < $data > /pfs/out/${data##*/}; pipectl next datum",
            "datum_set_spec: {number: 500}\n",
        ),
    );
    e.ok(&["create", "pipeline", "-f", &p]);
    let jobs = e.json(&["list", "job", "-p", "up", "-o", "json"]);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS", "{}", jobs[0]);
    assert_eq!(jobs[0]["stats"]["datums_processed"], 1000);
    assert_eq!(jobs[0]["stats"]["datum_sets"], 2);
    assert_eq!(e.ok(&["get", "file", "up@master:/f0000"]), "V0");
    assert_eq!(e.ok(&["get", "file", "up@master:/f0999"]), "V999");
    let listed = e.ok(&["list", "file", "up@master:/"]);
    assert_eq!(listed.lines().filter(|l| l.contains("/f")).count(), 1000);

    // `debug datum` cannot rerun batching code (nothing would serve its calls): it says so.
    let id = jobs[0]["id"].as_str().unwrap();
    let datums = e.json(&["list", "datum", &format!("up@{id}"), "-o", "json"]);
    let datum = datums[0]["id"].as_str().unwrap();
    let err = String::from_utf8(
        e.cmd(&["debug", "datum", &format!("up@{id}"), datum])
            .code(2)
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    assert!(err.contains("transform.datum_batching"), "{err}");

    // One datum reports a failure through `pipectl next datum --error`.
    let p = e.local(
        "fail.yaml",
        &spec(
            "picky",
            "  if [ ${data##*/} = f0003 ]; then pipectl next datum --error \"cannot read $data\"; else cp $data /pfs/out/; pipectl next datum; fi",
            "datum_tries: 1\n",
        ),
    );
    // Created, but the job it started failed: exit code 3.
    e.cmd(&["create", "pipeline", "-f", &p]).code(3);
    let jobs = e.json(&["list", "job", "-p", "picky", "-o", "json"]);
    assert_eq!(jobs[0]["state"], "JOB_FAILURE", "{}", jobs[0]);
    assert_eq!(jobs[0]["stats"]["datums_failed"], 1, "{}", jobs[0]);
    assert_eq!(jobs[0]["stats"]["datums_processed"], 999, "{}", jobs[0]);
    let id = jobs[0]["id"].as_str().unwrap();
    let datums = e.json(&["list", "datum", &format!("picky@{id}"), "-o", "json"]);
    let failed: Vec<_> = datums.iter().filter(|d| d["state"] != "SUCCESS").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let text = failed[0].to_string();
    assert!(text.contains("cannot read /pfs/data/f0003"), "{text}");
}
