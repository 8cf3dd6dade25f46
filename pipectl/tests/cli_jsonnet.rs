//! `create|update pipeline --jsonnet TEMPLATE --arg K=V`: Jsonnet templates evaluated to
//! specs (pachctl's flags); errors show the template's source line and create nothing.

mod common;

use common::Env;

#[test]
fn jsonnet_templates_create_and_update_pipelines() {
    let e = Env::new();
    e.ok(&["create", "repo", "images"]);
    let f = e.local("a.txt", "alpha\n");
    e.ok(&["put", "file", "images@master:/a.txt", "-f", &f]);
    e.local("lib.libsonnet", "{ glob: '/*' }");
    let tpl = e.local(
        "edges.jsonnet",
        "local lib = import 'lib.libsonnet';\nfunction(suffix, cmd='cp') {\n  pipeline: { name: 'edges-' + suffix },\n  transform: { cmd: ['sh', '-c', cmd + ' $images /pfs/out/'] },\n  input: { pfs: { repo: 'images', glob: lib.glob } },\n}\n",
    );
    e.ok(&[
        "create",
        "pipeline",
        "--jsonnet",
        &tpl,
        "--arg",
        "suffix=v1",
    ]);
    assert_eq!(e.ok(&["get", "file", "edges-v1@master:/a.txt"]), "alpha\n");
    e.ok(&[
        "update",
        "pipeline",
        "--jsonnet",
        &tpl,
        "--arg",
        "suffix=v1",
        "--arg",
        "cmd=cp -p",
        "--reprocess",
    ]);
    let info = &e.json(&["inspect", "pipeline", "edges-v1", "-o", "json"])[0];
    assert_eq!(info["version"], 2);
    assert!(
        info["spec"]["transform"]["cmd"][2]
            .as_str()
            .unwrap()
            .starts_with("cp -p")
    );

    // A template error names the template and shows the line; nothing is created.
    let bad = e.local(
        "bad.jsonnet",
        "function(suffix) {\n  pipeline: { name: 'x-' + suffx },\n}\n",
    );
    let out = e
        .cmd(&["create", "pipeline", "--jsonnet", &bad, "--arg", "suffix=1"])
        .failure()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("suffx") && err.contains("bad.jsonnet"),
        "{err}"
    );
    // A missing top-level argument, an --arg without a template, -f with --jsonnet.
    let err = e.fails(&["create", "pipeline", "--jsonnet", &tpl]);
    assert!(err.contains("suffix"), "{err}");
    let err = e.fails(&["create", "pipeline", "-f", &tpl, "--arg", "suffix=1"]);
    assert!(err.contains("--jsonnet"), "{err}");
    let err = e.fails(&["create", "pipeline", "-f", &tpl, "--jsonnet", &tpl]);
    assert!(err.contains("cannot be used with"), "{err}");
    let list = e.json(&["list", "pipeline", "-o", "json"]);
    assert_eq!(list.len(), 1, "{list:?}");
}
