//! `pipectl create/list/inspect/delete secret` end to end, and a pipeline whose `env_var`
//! secret reaches user code while its logs show it redacted.

mod common;

use common::Env;

const SECRET_YAML: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\ntype: Opaque\ndata:\n  token: c3VwZXItc2VjcmV0LXRva2Vu\n";

#[test]
fn secrets_are_stored_listed_and_never_printed() {
    let e = Env::new();
    let f = e.local("s.yaml", SECRET_YAML);
    e.ok(&["create", "secret", "-f", &f]);
    let again = e.fails(&["create", "secret", "-f", &f]);
    assert!(again.contains("secret \"api\" already exists"), "{again}");
    // JSON from stdin.
    e.command()
        .args(["create", "secret", "-f", "-"])
        .write_stdin(
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"pw":"hunter22"}}"#,
        )
        .assert()
        .success();
    let list = e.json(&["list", "secret", "-o", "json"]);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "api");
    assert_eq!(list[0]["keys"][0], "token");
    assert_eq!(list[0]["type"], "Opaque");
    let text = e.ok(&["list", "secret"]);
    assert!(text.contains("api") && text.contains("token"), "{text}");
    let yaml = e.ok(&["inspect", "secret", "db", "-o", "yaml"]);
    assert!(yaml.contains("name: db"), "{yaml}");
    let all = format!(
        "{text}{yaml}{}{}",
        e.ok(&["inspect", "secret", "api"]),
        e.ok(&["inspect", "secret", "api", "-o", "json"])
    );
    assert!(
        !all.contains("super-secret") && !all.contains("hunter22"),
        "{all}"
    );
    e.ok(&["delete", "secret", "db"]);
    let gone = e.fails(&["inspect", "secret", "db"]);
    assert!(gone.contains("missing Kubernetes secret db"), "{gone}");
    let bad = e.local(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let err = e.fails(&["create", "secret", "-f", &bad]);
    assert!(err.contains("field kind"), "{err}");
}

#[test]
fn a_pipeline_reads_its_secret_and_logs_show_it_redacted() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "a");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: uses}\ntransform:\n  cmd: [sh, -c, 'echo the token is $TOKEN; printf %s \"$TOKEN\" | wc -c > /pfs/out/len']\n  secrets: [{name: api, key: token, env_var: TOKEN}]\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    let missing = e.fails(&["create", "pipeline", "-f", &spec]);
    assert!(
        missing.contains("missing Kubernetes secret api"),
        "{missing}"
    );
    assert!(missing.contains("transform.secrets[0]"), "{missing}");
    let f = e.local("s.yaml", SECRET_YAML);
    e.ok(&["create", "secret", "-f", &f]);
    e.ok(&["create", "pipeline", "-f", &spec]);
    // The job saw the 18-byte value.
    assert_eq!(e.ok(&["get", "file", "uses@master:/len"]).trim(), "18");
    let logs = e.json(&["logs", "-p", "uses", "-o", "json"]);
    assert_eq!(logs[0]["message"], "the token is <redacted>");
    let shown = format!(
        "{}{}",
        e.ok(&["inspect", "pipeline", "uses", "-o", "json"]),
        e.ok(&["logs", "-p", "uses"])
    );
    assert!(!shown.contains("super-secret"), "{shown}");
}

/// A `mount_path` secret on the process executor: user code reads the files at the path its
/// spec names (as on Docker and Kubernetes).
#[test]
fn a_mount_path_secret_is_a_file_on_the_process_executor() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "a");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let f = e.local("s.yaml", SECRET_YAML);
    e.ok(&["create", "secret", "-f", &f]);
    let spec = e.local(
        "p.yaml",
        "pipeline: {name: files}\ntransform:\n  cmd: [sh, -c, 'wc -c < /var/run/api/token > /pfs/out/len']\n  secrets: [{name: api, mount_path: /var/run/api}]\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    assert_eq!(e.ok(&["get", "file", "files@master:/len"]).trim(), "18");
}
