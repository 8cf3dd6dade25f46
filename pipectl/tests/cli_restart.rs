//! `pipectl restart datum`: arguments, and the refusals a user meets (a finished job, a datum
//! that is not running). Restarting a running datum is covered through the engine in
//! `pipeline-core/tests/pps_restart.rs`.

mod common;

use common::Env;

#[test]
fn restart_datum_refuses_what_it_cannot_restart() {
    let e = Env::new();
    e.ok(&["create", "repo", "raw"]);
    let f = e.local("a.txt", "alpha\n");
    e.ok(&["put", "file", "raw@master:/a.txt", "-f", &f]);
    let spec = e.local(
        "cp.yaml",
        "pipeline: {name: cp}\ntransform: {cmd: [sh, -c, 'cp $raw /pfs/out/']}\ninput: {pfs: {repo: raw, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    let job = e.json(&["list", "job", "-p", "cp", "-o", "json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let err = e.fails(&["restart", "datum", "cp", "/a.txt"]);
    assert!(err.contains("PIPELINE@JOB"), "{err}");
    let err = e.fails(&["restart", "datum", &format!("cp@{job}"), " , "]);
    assert!(err.contains("datum IDs or input paths"), "{err}");
    let err = e.fails(&["restart", "datum", &format!("cp@{job}"), "/a.txt"]);
    assert!(err.contains("finished"), "{err}");
    let err = e.fails(&["restart", "datum", "cp@0123456789abcdef", "/a.txt"]);
    assert!(err.contains("not found"), "{err}");
}
