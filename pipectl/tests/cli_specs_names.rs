//! Specs from standard input and URLs, `$schema` keys, branch names shaped like commit IDs,
//! `version`, `completion`, and errors that teach (did you mean, use update, old outputs kept).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::Env;

const SPEC: &str = "pipeline: {name: edges}\ntransform: {cmd: [sh, -c, 'cp /pfs/images/* /pfs/out/']}\ninput: {pfs: {repo: images, glob: /*}}\n";

/// A loopback HTTP server answering every request with `status` and `body`; its base URL.
fn http_server(status: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Runs `pipectl ARGS` on the store of `e` with `input` on standard input.
fn with_stdin(e: &Env, args: &[&str], input: impl Into<Vec<u8>>) -> assert_cmd::assert::Assert {
    e.command().args(args).write_stdin(input).assert()
}

fn with_images(e: &Env) {
    e.ok(&["create", "repo", "images"]);
    let a = e.local("a.png", "png");
    e.ok(&["put", "file", "images@master:/a.png", "-f", &a]);
}

fn pipelines(e: &Env) -> usize {
    e.json(&["list", "pipeline", "-o", "json"]).len()
}

#[test]
fn create_and_validate_read_specs_from_stdin_and_urls() {
    let e = Env::new();
    with_images(&e);
    // Standard input, for the dry run and the real thing.
    let out = with_stdin(&e, &["create", "pipeline", "--dry-run", "-f", "-"], SPEC)
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "would create pipeline edges"
    );
    with_stdin(&e, &["create", "pipeline", "-f", "-"], SPEC).success();
    assert_eq!(e.ok(&["get", "file", "edges@master:/a.png"]), "png");
    // Bad input on stdin: not a spec, not UTF-8; named `<stdin>`, nothing created.
    let bad = "pipeline: {name: other}\ntransfrom: {}\n";
    let err = with_stdin(&e, &["create", "pipeline", "-f", "-"], bad)
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("<stdin>: 2:1: transfrom"), "{err}");
    assert!(err.contains("did you mean `transform`"), "{err}");
    with_stdin(
        &e,
        &["create", "pipeline", "-f", "-"],
        vec![0xff, 0xfe, 0x00],
    )
    .code(2);
    assert_eq!(pipelines(&e), 1);

    // A URL, with a `$schema` key at two levels.
    let url = http_server(
        "200 OK",
        "{\"$schema\": \"https://example.invalid/spec.json\", \"pipeline\": {\"name\": \"copy\", \"$schema\": 1},\n\"transform\": {\"cmd\": [\"sh\", \"-c\", \"cp /pfs/images/* /pfs/out/\"]},\n\"input\": {\"pfs\": {\"repo\": \"images\", \"glob\": \"/*\"}}}\n",
    );
    let spec_url = format!("{url}/copy.json");
    let out = e.ok(&["validate", "-f", &spec_url]);
    assert!(
        out.contains(&format!("{spec_url}: valid (1 spec: copy)")),
        "{out}"
    );
    e.ok(&["create", "pipeline", "-f", &spec_url]);
    assert_eq!(e.ok(&["get", "file", "copy@master:/a.png"]), "png");
    assert_eq!(pipelines(&e), 2);
}

#[test]
fn a_url_that_fails_is_an_error_naming_it_and_nothing_is_created() {
    let e = Env::new();
    with_images(&e);
    let missing = format!("{}/nope.yaml", http_server("404 Not Found", "no"));
    let err = e.fails(&["create", "pipeline", "-f", &missing]);
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://user:hunter2@127.0.0.1:{port}/p.yaml");
    for args in [
        vec!["create", "pipeline", "-f", &closed],
        vec!["update", "pipeline", "-f", &closed],
        vec!["create", "pipeline", "--dry-run", "-f", &closed],
    ] {
        let out = e.cmd(&args).code(2).get_output().stderr.clone();
        let err = String::from_utf8(out).unwrap();
        assert!(err.contains(&format!("127.0.0.1:{port}/p.yaml")), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the password is never shown: {err}"
        );
    }
    let out = e.cmd(&["validate", "-f", &missing]).code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains(&missing) && err.contains("404"), "{err}");
    let garbage = format!("{}/x.yaml", http_server("200 OK", "pipeline: [\n"));
    assert!(
        e.fails(&["create", "pipeline", "-f", &garbage])
            .contains(&garbage)
    );
    assert_eq!(pipelines(&e), 0);
}

#[test]
fn branch_names_shaped_like_commit_ids_are_refused() {
    let e = Env::new();
    with_images(&e);
    let commits = e.json(&["list", "commit", "images@master", "-o", "json"]);
    let id = commits[0]["commit"]["id"].as_str().unwrap().to_string();
    for name in [id.clone(), id.to_ascii_uppercase()] {
        let out = e
            .cmd(&["create", "branch", &format!("images@{name}")])
            .code(2)
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(out).unwrap();
        assert!(err.contains("branch name"), "{err}");
        assert!(err.contains("commit ID"), "{err}");
    }
    // The commit's files stay where they were.
    let files = e.ok(&["list", "file", &format!("images@{id}:/")]);
    assert!(files.contains("a.png"), "{files}");
    // One character off the shape is an ordinary name.
    e.ok(&["create", "branch", &format!("images@{}", &id[..31])]);
}

#[test]
fn version_and_completion() {
    let e = Env::new();
    let text = e.ok(&["version"]);
    assert!(
        text.starts_with(&format!(
            "pipectl {} (git commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let v = e.json(&["version", "-o", "json"]);
    assert_eq!(v[0]["name"], "pipectl");
    assert_eq!(v[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(v[0]["git_commit"].is_string() || v[0]["git_commit"].is_null());
    for (shell, marker) in [
        ("bash", "complete -F _pipectl"),
        ("zsh", "#compdef pipectl"),
        ("fish", "complete -c pipectl"),
    ] {
        let script = e.ok(&["completion", shell]);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(script.contains("rerun"), "{shell}");
    }
    e.cmd(&["completion", "tcsh"]).code(2);
    e.cmd(&["completion"]).code(2);
}

#[test]
fn errors_teach() {
    let e = Env::new();
    with_images(&e);
    let spec = e.local("p.yaml", SPEC);
    e.ok(&["create", "pipeline", "-f", &spec]);

    // Mistyped names get the nearest existing one; far-off ones get nothing.
    let err = e.fails(&["inspect", "repo", "imgaes"]);
    assert!(err.contains("did you mean `images`?"), "{err}");
    let err = e.fails(&["list", "file", "image@master:/"]);
    assert!(err.contains("did you mean `images`?"), "{err}");
    let err = e.fails(&["inspect", "pipeline", "edgse"]);
    assert!(err.contains("did you mean `edges`?"), "{err}");
    let err = e.fails(&["inspect", "repo", "zebra"]);
    assert!(!err.contains("did you mean"), "{err}");
    let typo = e.local(
        "typo.yaml",
        "pipeline: {name: t}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: imagse, glob: /*}}\n",
    );
    let err = e.fails(&["create", "pipeline", "-f", &typo]);
    assert!(err.contains("did you mean `images`?"), "{err}");

    // create of an existing pipeline: use update.
    let changed = e.local("p2.yaml", &SPEC.replace("cp /pfs", "cp -v /pfs"));
    let err = e.fails(&["create", "pipeline", "-f", &changed]);
    assert!(err.contains("already exists"), "{err}");
    assert!(
        err.contains(&format!("use `pipectl update pipeline -f {changed}`")),
        "{err}"
    );

    // update without --reprocess after the transform changed: old outputs are kept.
    let out = e.cmd(&["update", "pipeline", "-f", &changed]).success();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        err.contains("outputs of datums it already processed are kept"),
        "{err}"
    );
    assert!(
        err.contains("pipectl rerun pipeline edges --reprocess"),
        "{err}"
    );
    // Not when the transform is the same, nor with --reprocess.
    for args in [
        vec!["update", "pipeline", "-f", &changed],
        vec!["update", "pipeline", "-f", &spec, "--reprocess"],
    ] {
        let out = e.cmd(&args).success();
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(!err.contains("are kept"), "{args:?}: {err}");
    }
    // The hint's command works.
    let out = e
        .cmd(&["rerun", "pipeline", "edges", "--reprocess"])
        .success();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("rerunning pipeline edges"), "{err}");
    let jobs = e.json(&["list", "job", "-p", "edges", "-o", "json"]);
    assert_eq!(jobs[0]["stats"]["datums_processed"], 1, "{:?}", jobs[0]);
    let err = e.fails(&["rerun", "pipeline", "egdes"]);
    assert!(err.contains("did you mean `edges`?"), "{err}");
}
