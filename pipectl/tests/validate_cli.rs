//! `pipectl validate` end to end, through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn pipectl() -> Command {
    Command::cargo_bin("pipectl").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const VALID: &str = "pipeline: {name: edges}\ntransform:\n  image: 'opencv:4'\n  cmd: [python3, /edges.py]\ninput:\n  pfs: {repo: images, glob: '*'}\n";
const INVALID: &str = "pipeline:\n  name: edges\ntransform:\n  image: opencv\n  cmd: [python3, /edges.py]\ninput:\n  cross:\n    - pfs: {repo: images, glob: /*}\n    - pfs: {repo: masks, glob: '/['}\n";

#[test]
fn valid_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "edges.yaml", VALID);
    let out = pipectl().args(["validate", "-f"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("valid (1 spec: edges)"), "{stdout}");
    assert!(out.stderr.is_empty());
}

#[test]
fn invalid_file_exits_1_with_file_line_col_path_message() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "edges.yaml", INVALID);
    let out = pipectl().args(["validate", "-f"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let name = f.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{name}:9:26: input.cross[1].pfs.glob: invalid glob: glob \"/[\", position 1: unclosed character class: expected ']' (Pachyderm only finds this when the job runs, and then retries forever)"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "warning: {name}:4:3: transform.image: image \"opencv\" has no tag"
        )),
        "{stderr}"
    );
}

#[test]
fn parse_errors_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.json",
        "{\n  \"pipeline\": {\"name\": \"a\"},\n  \"enable_stats\": true,\n  \"input\": {\"pfs\": {\"repo\": \"r\", \"glb\": \"/*\"}}\n}\n",
    );
    let out = pipectl().args(["validate", "-f"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let name = f.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:3:3: enable_stats: field `enable_stats` was removed in Pachyderm 2.x"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{name}:4:34: input.pfs.glb: unknown field `glb` in input.pfs; did you mean `glob`?"
        )),
        "{stderr}"
    );
}

#[test]
fn unreadable_file_exits_2_even_with_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", INVALID);
    let out = pipectl()
        .args(["validate", "-f"])
        .arg(&bad)
        .arg("-f")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("missing.yaml: cannot read file"),
        "{stderr}"
    );
    // A directory is unreadable too.
    let out = pipectl()
        .args(["validate", "-f"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn empty_and_binary_files_are_invalid_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.yaml", "");
    let out = pipectl()
        .args(["validate", "-f"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pipeline spec in the file"));
    let bin = dir.path().join("bin.json");
    std::fs::write(&bin, [0xffu8, 0xfe, 0x00, 0x12, 0x80]).unwrap();
    let out = pipectl()
        .args(["validate", "-f"])
        .arg(&bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
}

#[test]
fn json_report() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", VALID);
    let bad = write(dir.path(), "bad.yaml", INVALID);
    let out = pipectl()
        .args(["validate", "-o", "json", "-f"])
        .arg(&good)
        .arg("-f")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["files"][0]["valid"], true);
    let err = &report["files"][1]["specs"][0]["errors"][0];
    assert_eq!(err["path"], "input.cross[1].pfs.glob");
    assert_eq!(err["line"], 9);
    assert_eq!(err["column"], 26);
    assert_eq!(err["code"], "input.glob.syntax");
    assert_eq!(
        report["files"][1]["specs"][0]["warnings"][0]["severity"],
        "warning"
    );
}

#[test]
fn effective_prints_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let two = write(
        dir.path(),
        "two.yaml",
        &format!(
            "{VALID}---\npipeline: {{name: montage}}\ntransform: {{image: 'i:1', cmd: [sh]}}\ninput:\n  cross:\n    - pfs: {{name: z, repo: edges, glob: /}}\n    - pfs: {{repo: images, glob: /}}\n"
        ),
    );
    let out = pipectl()
        .args(["validate", "--effective", "-f"])
        .arg(&two)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["input"]["pfs"]["glob"], "/*");
    assert_eq!(docs[0]["input"]["pfs"]["branch"], "master");
    assert_eq!(docs[0]["datum_tries"], 3);
    assert_eq!(docs[1]["input"]["cross"][0]["pfs"]["name"], "images");
    assert_eq!(docs[1]["pipeline"]["project"]["name"], "default");
}

#[test]
fn stdin_is_read_with_dash() {
    let out = pipectl()
        .args(["validate", "-f", "-"])
        .write_stdin(VALID)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("<stdin>: valid"));
}
