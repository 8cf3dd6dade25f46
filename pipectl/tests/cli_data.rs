//! `pipectl` data commands end to end (assert_cmd).

mod common;

use common::Env;

#[test]
fn repo_put_get_list_roundtrip() {
    let e = Env::new();
    e.ok(&["create", "repo", "images", "-d", "pictures"]);
    let repos = e.ok(&["list", "repo", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(repos.lines().next().unwrap()).unwrap();
    assert_eq!(v["repo"]["name"], "images");
    assert_eq!(v["description"], "pictures");

    let a = e.local("src/a.txt", "hello");
    e.ok(&["put", "file", "images@master:/dir/a.txt", "-f", &a]);
    assert_eq!(e.ok(&["get", "file", "images@master:/dir/a.txt"]), "hello");
    // Path ending in '/' gets the local name.
    e.ok(&["put", "file", "images@master:/dir/", "-f", &a]);
    // stdin.
    e.cmd(&["put", "file", "images@master:/in.txt", "-f", "-"])
        .success();
    let out = e
        .command()
        .args(["put", "file", "images@master:/stdin.txt", "-f", "-"])
        .write_stdin("from stdin")
        .assert()
        .success();
    drop(out);
    assert_eq!(
        e.ok(&["get", "file", "images@master:/stdin.txt"]),
        "from stdin"
    );

    let listing = e.ok(&["list", "file", "images@master", "-o", "json"]);
    let paths: Vec<String> = listing
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(paths, ["/dir/", "/in.txt", "/stdin.txt"]);
    let text = e.ok(&["list", "file", "images@master:/dir"]);
    assert!(text.contains("/dir/a.txt"), "{text}");

    // -o LOCAL.
    let dest = e.dir.path().join("out.txt");
    e.ok(&[
        "get",
        "file",
        "images@master:/dir/a.txt",
        "-o",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(dest).unwrap(), "hello");

    // Four puts, four commits, newest first; ^N addressing.
    let commits = e.ok(&["list", "commit", "images@master", "-o", "json"]);
    assert_eq!(commits.lines().count(), 4);
    let first: serde_json::Value = serde_json::from_str(commits.lines().last().unwrap()).unwrap();
    let inspected = e.ok(&["inspect", "commit", "images@master^3", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(v["commit"]["id"], first["commit"]["id"]);
    assert_eq!(v["origin"], "USER");
    assert_eq!(v["state"], "FINISHED");
    let id = v["commit"]["id"].as_str().unwrap().to_string();
    let by_id = e.ok(&["inspect", "commit", &format!("images@{id}")]);
    assert!(by_id.contains(&id));
}

#[test]
fn recursive_put_glob_diff_delete() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    e.local("tree/a.png", "A");
    e.local("tree/b.png", "B");
    e.local("tree/dir/c.png", "C");
    let tree = e.dir.path().join("tree");
    e.ok(&[
        "put",
        "file",
        "data@master:/",
        "-f",
        tree.to_str().unwrap(),
        "-r",
    ]);
    let g = e.ok(&["glob", "file", "data@master:/*", "-o", "json"]);
    let paths: Vec<String> = g
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(paths, ["/a.png", "/b.png", "/dir/"]);

    e.ok(&["delete", "file", "data@master:/a.png"]);
    let d = e.ok(&["diff", "file", "data@master", "data@master^", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
    assert_eq!(v["path"], "/a.png");
    assert_eq!(v["change"], "deleted");
    // Default old = parent.
    assert_eq!(e.ok(&["diff", "file", "data@master", "-o", "json"]), d);

    // A directory without -r is refused with a hint.
    let err = e.fails(&[
        "put",
        "file",
        "data@master:/x",
        "-f",
        tree.to_str().unwrap(),
    ]);
    assert!(err.contains("use -r"), "{err}");
}

/// `get file -r -o DIR` writes the tree (in-process and over the socket: one export
/// request), replaces a file already there, and refuses to write through a symlink in DIR.
#[test]
fn recursive_get_writes_the_tree_and_never_through_a_symlink() {
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    e.local("src/a.txt", "alpha");
    e.local("src/sub/b.txt", "beta");
    let src = e.dir.path().join("src");
    e.ok(&[
        "put",
        "file",
        "-r",
        "data@master:/d",
        "-f",
        src.to_str().unwrap(),
    ]);
    let out = e.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.txt"), "old").unwrap();
    e.ok(&[
        "get",
        "file",
        "-r",
        "data@master:/d",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "alpha");
    assert_eq!(
        std::fs::read_to_string(out.join("sub/b.txt")).unwrap(),
        "beta"
    );

    let elsewhere = e.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let trap = e.dir.path().join("trap");
    std::fs::create_dir_all(&trap).unwrap();
    std::os::unix::fs::symlink(&elsewhere, trap.join("sub")).unwrap();
    let err = e.fails(&[
        "get",
        "file",
        "-r",
        "data@master:/d",
        "-o",
        trap.to_str().unwrap(),
    ]);
    assert!(err.contains("sub") && err.contains("symlink"), "{err}");
    assert!(
        !elsewhere.join("b.txt").exists(),
        "wrote through the symlink"
    );
}

#[test]
fn branches_and_errors() {
    let e = Env::new();
    e.ok(&["create", "repo", "in"]);
    e.ok(&["create", "repo", "out"]);
    let a = e.local("a", "x");
    e.ok(&["put", "file", "in@master:/a", "-f", &a]);
    e.ok(&[
        "create",
        "branch",
        "out@master",
        "--provenance",
        "in@master",
    ]);
    let b = e.ok(&["list", "branch", "out", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(b.trim()).unwrap();
    assert_eq!(v["direct_provenance"][0]["name"], "master");
    let c = e.ok(&["inspect", "commit", "out@master", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&c).unwrap();
    assert_eq!(v["origin"], "AUTO");

    let err = e.fails(&["put", "file", "out@master:/x", "-f", &a]);
    assert!(
        err.contains("cannot start a commit on an output branch"),
        "{err}"
    );
    let err = e.fails(&["get", "file", "in@master:/missing"]);
    assert!(
        err.contains("/missing") && err.contains("not found"),
        "{err}"
    );
    let err = e.fails(&["put", "file", "in@master:/bad*name", "-f", &a]);
    assert!(
        err.contains("invalid file path") && err.contains("bad*name"),
        "{err}"
    );
    let err = e.fails(&["create", "repo", "no good"]);
    assert!(err.contains("repo name"), "{err}");
    let err = e.fails(&["delete", "repo", "in"]);
    assert!(err.contains("provenance"), "{err}");
    e.ok(&["delete", "repo", "in", "--force"]);
    e.ok(&["create", "branch", "out@dev", "--head", "master"]);
    let branches = e.ok(&["list", "branch", "out"]);
    assert!(
        branches.contains("dev") && branches.contains("master"),
        "{branches}"
    );
}

#[test]
fn explicit_commits() {
    let e = Env::new();
    e.ok(&["create", "repo", "r"]);
    let id = e.ok(&["start", "commit", "r@master", "-d", "batch"]);
    let a = e.local("a", "1");
    e.ok(&["put", "file", "r@master:/a", "-f", &a]);
    e.ok(&["put", "file", "r@master:/b", "-f", &a]);
    let open = e.ok(&["inspect", "commit", "r@master", "-o", "json"]);
    assert!(open.contains("\"OPEN\""), "{open}");
    e.ok(&["finish", "commit", "r@master"]);
    let info = e.ok(&[
        "inspect",
        "commit",
        &format!("r@{}", id.trim()),
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["state"], "FINISHED");
    assert_eq!(v["size_bytes"], 2);
    assert_eq!(v["description"], "batch");
}

/// `list datum -f SPEC` reads repos without `--input` from the store (the branch head), and
/// gives the same datums as the same tree passed with `--input`.
#[test]
fn list_datum_preview_reads_repos_from_the_store() {
    let env = Env::new();
    let spec = env.local(
        "spec.json",
        r#"{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
            "input": {"cross": [{"pfs": {"repo": "images", "glob": "/*"}},
                                {"pfs": {"repo": "models", "glob": "/"}}]}}"#,
    );
    // Before the repos exist: a clear error naming the field and the remedy.
    let err = env.fails(&["list", "datum", "-f", &spec]);
    assert!(err.contains("input.cross[0].pfs.repo"), "{err}");
    assert!(err.contains("--input images=DIR"), "{err}");

    env.ok(&["create", "repo", "images"]);
    env.ok(&["create", "repo", "models"]);
    let a = env.local("local/images/a.png", "a");
    let dir_c = env.local("local/images/dir/c.png", "c");
    let m = env.local("local/models/m.bin", "m");
    env.ok(&["put", "file", "images@master:/a.png", "-f", &a]);
    env.ok(&["put", "file", "images@master:/dir/c.png", "-f", &dir_c]);
    env.ok(&["put", "file", "models@master:/m.bin", "-f", &m]);

    let from_store = env.ok(&["list", "datum", "-f", &spec, "-o", "json"]);
    let lines: Vec<serde_json::Value> = from_store
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<(String, String)> = lines
        .iter()
        .map(|d| {
            (
                d["inputs"][0]["path"].as_str().unwrap().to_string(),
                d["inputs"][1]["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [("/a.png".into(), "/".into()), ("/dir/".into(), "/".into())]
    );

    // The same trees given as local directories give the same datum IDs.
    let images_dir = env.dir.path().join("local/images");
    let models_dir = env.dir.path().join("local/models");
    let from_dirs = env.ok(&[
        "list",
        "datum",
        "-f",
        &spec,
        "-o",
        "json",
        "--input",
        &format!("images={}", images_dir.display()),
        "--input",
        &format!("models={}", models_dir.display()),
    ]);
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    assert_eq!(ids(&from_store), ids(&from_dirs));
}

/// `pipectl gc` removes the contents of a deleted repo and keeps what other repos use (through
/// a server, only what is older than an hour).
#[test]
fn gc_frees_deleted_contents() {
    let e = Env::new();
    for r in ["keep", "drop"] {
        e.ok(&["create", "repo", r]);
    }
    let shared = e.local("shared.txt", "shared");
    let only = e.local("only.txt", "only in drop");
    e.ok(&["put", "file", "keep@master:/s.txt", "-f", &shared]);
    e.ok(&["put", "file", "drop@master:/s.txt", "-f", &shared]);
    e.ok(&["put", "file", "drop@master:/o.txt", "-f", &only]);
    let first = &e.json(&["gc", "-o", "json"])[0];
    assert_eq!(
        (first["objects"].as_u64(), first["removed"].as_u64()),
        (Some(2), Some(0))
    );
    e.ok(&["delete", "repo", "drop"]);
    let st = &e.json(&["gc", "-o", "json"])[0];
    if e.served() {
        // Through a server others may be uploading: what is younger than an hour stays.
        assert_eq!(st["removed"].as_u64(), Some(0), "{st}");
        assert_eq!(st["kept_young"].as_u64(), Some(1), "{st}");
    } else {
        assert_eq!(st["removed"].as_u64(), Some(1), "{st}");
        assert_eq!(st["bytes_removed"].as_u64(), Some(12), "{st}");
    }
    assert_eq!(e.ok(&["get", "file", "keep@master:/s.txt"]), "shared");
}
