//! What the `pipectl` end-to-end tests share: a temp directory holding the store (`root/`) and
//! local files, and helpers that run the real binary against it.
#![allow(dead_code)] // each test crate uses a different subset

use assert_cmd::Command;

/// A temp directory: the store lives in `root/`, local files anywhere else.
pub struct Env {
    /// The temp directory.
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh, empty environment.
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The store directory.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `pipectl ARGS` on this store.
    pub fn cmd(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("pipectl")
            .unwrap()
            .env("PIPECTL_ROOT", self.root())
            .args(args)
            .assert()
    }

    /// Runs `pipectl ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs `pipectl ARGS`, which must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).failure().get_output().stderr.clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs `pipectl ARGS -o json`-style commands: one JSON value per stdout line.
    pub fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        self.ok(args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Writes a local file `rel` (parents created); returns its path.
    pub fn local(&self, rel: &str, content: &str) -> String {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    }
}
