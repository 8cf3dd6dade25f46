//! Records the git commit pipectl is built from (`pipectl version`), when there is one.
//!
//! Never fails the build: outside a git checkout (a source tarball, a vendored copy) or without
//! `git`, nothing is recorded and `pipectl version` says so. A packager may set
//! `PIPECTL_GIT_COMMIT` instead.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PIPECTL_GIT_COMMIT");
    if std::env::var_os("PIPECTL_GIT_COMMIT").is_some() {
        return;
    }
    let Some(commit) = git(&["rev-parse", "--verify", "HEAD"]) else {
        return;
    };
    // Build again when HEAD moves: HEAD itself, the branch it points at, packed refs.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rustc-env=PIPECTL_GIT_COMMIT={commit}");
}
