//! `get file` on damaged content fails naming it, `fsck [--fix]` lists and moves damaged
//! objects, a re-put repairs them, and a damaged store never crashes `pipectl` (exit 101).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Env;

fn object_path(e: &Env, data: &[u8]) -> std::path::PathBuf {
    let hex = pipeline_core::hash::ContentHash::of_bytes(data).to_hex();
    e.root().join("objects").join(&hex[..2]).join(&hex[2..])
}

fn garble(e: &Env, data: &[u8], new: &[u8]) {
    let p = object_path(e, data);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&p, new).unwrap();
}

#[test]
fn damaged_file_fails_get_is_listed_by_fsck_and_repaired_by_a_reput() {
    if common::skip_on_server_store(
        "damages files of the objects directory (S3: pipeline-core/tests/pfs_objects.rs)",
    ) {
        return;
    }
    let e = Env::new();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "hello world");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    assert!(e.ok(&["fsck"]).contains("clean"));
    garble(&e, b"hello world", b"hellO world");
    let err = e.fails(&["get", "file", "data@master:/a.txt"]);
    let hex = pipeline_core::hash::ContentHash::of_bytes(b"hello world").to_hex();
    assert!(
        err.contains("/a.txt") && err.contains("data@") && err.contains(&hex),
        "{err}"
    );
    let out = e.dir.path().join("out.txt");
    e.fails(&[
        "get",
        "file",
        "data@master:/a.txt",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        !out.exists(),
        "no damaged download under the asked-for name"
    );

    let listed = e.cmd(&["fsck"]).code(1).get_output().stdout.clone();
    let listed = String::from_utf8(listed).unwrap();
    assert!(listed.contains(&format!("object {hex}")), "{listed}");
    assert!(listed.contains("file /a.txt in default/data@"), "{listed}");
    let json = e
        .cmd(&["fsck", "-o", "json"])
        .code(1)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let kinds: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["object", "file"]);
    e.cmd(&["fsck", "-o", "yaml"]).code(1);

    let fixed = e
        .cmd(&["fsck", "--fix"])
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(fixed).unwrap().contains("lost+found"));
    assert!(e.root().join("lost+found").join(&hex).exists());
    e.ok(&["put", "file", "data@master:/again.txt", "-f", &a]);
    assert!(e.ok(&["fsck"]).contains("clean"));
    assert_eq!(e.ok(&["get", "file", "data@master:/a.txt"]), "hello world");
}

#[test]
fn missing_metadata_beside_objects_is_refused() {
    if common::skip_on_server_store("the files of a store directory") {
        return;
    }
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "hello");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    std::fs::remove_file(e.root().join("meta.redb")).unwrap();
    let err = e.fails(&["list", "repo"]);
    assert!(
        err.contains("is missing") && err.contains("backup"),
        "{err}"
    );
    assert!(!e.root().join("meta.redb").exists());
}

#[test]
fn damaged_metadata_never_crashes_pipectl() {
    if common::skip_on_server_store("damages the redb file of a store directory") {
        return;
    }
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let a = e.local("a.txt", "hello");
    e.ok(&["put", "file", "data@master:/a.txt", "-f", &a]);
    let meta = e.root().join("meta.redb");
    let good = std::fs::read(&meta).unwrap();
    let mut x: u64 = 0x0013_5eed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..24 {
        let mut bytes = good.clone();
        if i % 3 == 2 {
            bytes.truncate((next() % good.len() as u64) as usize);
        } else {
            for _ in 0..1 + next() % 16 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (next() % 8);
            }
        }
        std::fs::write(&meta, &bytes).unwrap();
        for args in [
            &["list", "file", "data@master"][..],
            &["get", "file", "data@master:/a.txt"],
        ] {
            let code = e.cmd(args).get_output().status.code();
            assert!(
                matches!(code, Some(0 | 1)),
                "iteration {i}: {args:?} exited {code:?}"
            );
        }
    }
}
