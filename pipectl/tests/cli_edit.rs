//! `pipectl edit pipeline`: the spec opened in an editor (here a `sed` script), applied as
//! an update only when it changed and is valid; invalid edits are kept in a named file.

mod common;

use common::Env;

fn version(e: &Env) -> u64 {
    e.json(&["inspect", "pipeline", "upper", "-o", "json"])[0]["version"]
        .as_u64()
        .unwrap()
}

#[test]
fn edit_pipeline_applies_valid_changes_only() {
    let e = Env::new();
    e.ok(&["create", "repo", "raw"]);
    let f = e.local("a.txt", "alpha\n");
    e.ok(&["put", "file", "raw@master:/a.txt", "-f", &f]);
    let spec = e.local(
        "upper.yaml",
        "pipeline: {name: upper}\ntransform: {cmd: [sh, -c, 'tr a-z A-Z < $raw > /pfs/out/${raw##*/}']}\ninput: {pfs: {repo: raw, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);

    // No change, or a failing editor: nothing applied.
    let a = e
        .cmd(&["edit", "pipeline", "upper", "--editor", "true"])
        .success();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("unchanged"));
    let err = e.fails(&["edit", "pipeline", "upper", "--editor", "false"]);
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(version(&e), 1);

    // An invalid edit names the problem and keeps the edit in a file.
    let err = e.fails(&[
        "edit",
        "pipeline",
        "upper",
        "--editor",
        "sed -i s/glob/glb/",
    ]);
    assert!(err.contains("glb") && err.contains("kept in"), "{err}");
    let kept = err.rsplit("kept in ").next().unwrap().trim();
    assert!(
        std::fs::read_to_string(kept).unwrap().contains("glb"),
        "{kept}"
    );
    assert_eq!(version(&e), 1);

    // A rename is refused.
    let err = e.fails(&[
        "edit",
        "pipeline",
        "upper",
        "--editor",
        "sed -i s/upper/lower/",
    ]);
    assert!(err.contains("renames"), "{err}");
    assert_eq!(version(&e), 1);

    // A valid edit (JSON by default) is an update; with --reprocess every datum runs again.
    e.ok(&[
        "edit",
        "pipeline",
        "upper",
        "--reprocess",
        "--editor",
        "sed -i s/A-Z/A-Y/",
    ]);
    assert_eq!(version(&e), 2);
    assert_eq!(e.ok(&["get", "file", "upper@master:/a.txt"]), "ALPHA\n");
    // The same in YAML.
    e.ok(&[
        "edit",
        "pipeline",
        "upper",
        "-o",
        "yaml",
        "--reprocess",
        "--editor",
        "sed -i s/a-z/b-z/",
    ]);
    assert_eq!(version(&e), 3);
    let info = &e.json(&["inspect", "pipeline", "upper", "-o", "json"])[0];
    let cmd = info["spec"]["transform"]["cmd"][2].as_str().unwrap();
    assert!(cmd.contains("tr b-z A-Y"), "{cmd}");

    let err = e.fails(&["edit", "pipeline", "uper", "--editor", "true"]);
    assert!(err.contains("upper"), "{err}");
}
