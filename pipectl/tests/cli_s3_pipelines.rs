//! Pipelines with `s3: true` inputs and `s3_out: true` (Pachyderm's kubeflow mnist shape)
//! through `pipectl`, on the process and Docker executors: the job's own S3 gateway serves
//! the input as bucket `input` (read-only; `/pfs/input` stays empty) and the output commit
//! as bucket `out`; what user code leaves in `/pfs/out` is not uploaded; every job
//! recomputes every datum and starts from an empty output. The user code's S3 client is
//! `curl --aws-sigv4`, with the variables the job gets (`S3_ENDPOINT`, `AWS_*`).

mod common;

use std::time::{Duration, Instant};

use common::Env;
use serde_json::json;

/// The user code: lists bucket `input`, writes each object upper-cased to `out`, plus a
/// file named after the job; checks that `/pfs/input` is empty, that the input bucket
/// refuses writes (403) and that a bucket the job was not given is not there (404).
const SCRIPT: &str = r#"set -e
s3() { curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
test -d /pfs/input && test -z "$(ls -A /pfs/input)"
echo "secret: $AWS_SECRET_ACCESS_KEY"
s3 -f "$S3_ENDPOINT/input?list-type=2" > /pfs/out/list.xml
for k in $(grep -o '<Key>[^<]*</Key>' /pfs/out/list.xml | sed 's/<[^>]*>//g'); do
  s3 -f "$S3_ENDPOINT/input/$k" | tr a-z A-Z > /pfs/out/up
  s3 -f -T /pfs/out/up "$S3_ENDPOINT/out/$k"
done
echo "$S3_ENDPOINT" > /pfs/out/endpoint
s3 -f -T /pfs/out/endpoint "$S3_ENDPOINT/out/job-$PACH_JOB_ID"
code=$(s3 -o /dev/null -w '%{http_code}' -T /pfs/out/up "$S3_ENDPOINT/input/x")
test "$code" = 403 || { echo "input bucket took a write: $code"; exit 7; }
code=$(s3 -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/master.input-repo/a.txt")
test "$code" = 404 || { echo "a bucket outside the job answered: $code"; exit 8; }
"#;

fn spec(image: Option<&str>) -> String {
    let mut transform = json!({"cmd": ["sh", "-c", SCRIPT]});
    if let Some(i) = image {
        transform["image"] = json!(i);
    }
    json!({
        "pipeline": {"name": "mnist"},
        "input": {"pfs": {"name": "input", "repo": "input-repo", "glob": "/", "s3": true}},
        "transform": transform,
        "s3_out": true,
    })
    .to_string()
}

/// The jobs of `mnist`, newest first, once there are `n` and all have ended (30 s at most).
fn jobs_done(e: &Env, n: usize) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let jobs = e.json(&["list", "job", "-p", "mnist", "-o", "json"]);
        let ended = |j: &serde_json::Value| {
            ["JOB_SUCCESS", "JOB_FAILURE", "JOB_KILLED"].contains(&j["state"].as_str().unwrap())
        };
        if jobs.len() >= n && jobs.iter().all(ended) {
            return jobs;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "mnist has no {n} ended jobs: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn files(e: &Env) -> Vec<String> {
    let mut paths: Vec<String> = e
        .json(&["list", "file", "mnist@master:/", "-o", "json"])
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

/// Runs the mnist-shaped pipeline twice (a second input commit) with `extra` create flags.
fn s3_pipeline_round_trip(image: Option<&str>, extra: &[&str]) {
    let e = Env::new();
    e.ok(&["create", "repo", "input-repo"]);
    let a = e.local("a.txt", "alpha");
    let b = e.local("b.txt", "beta");
    e.ok(&["put", "file", "input-repo@master:/a.txt", "-f", &a]);
    e.ok(&["put", "file", "input-repo@master:/dir/b.txt", "-f", &b]);
    let p = e.local("mnist.json", &spec(image));
    let mut args = vec!["create", "pipeline", "-f", &p];
    args.extend_from_slice(extra);
    let _ = e.cmd(&args);
    let jobs = jobs_done(&e, 1);
    let logs = e.ok(&["logs", "-p", "mnist"]);
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS", "{jobs:?}\n{logs}");
    let first = jobs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        files(&e),
        ["/a.txt", "/dir/", &format!("/job-{first}")],
        "only what was written over S3; /pfs/out is not uploaded"
    );
    assert_eq!(e.ok(&["get", "file", "mnist@master:/a.txt"]), "ALPHA");
    assert_eq!(e.ok(&["get", "file", "mnist@master:/dir/b.txt"]), "BETA");
    let endpoint = e.ok(&["get", "file", &format!("mnist@master:/job-{first}")]);
    assert!(endpoint.starts_with("http://"), "{endpoint}");
    assert!(
        logs.contains("secret: <redacted>"),
        "the job's S3 secret is redacted: {logs}"
    );

    // A new input commit: every datum runs again and the output starts empty.
    let c = e.local("c.txt", "gamma");
    e.ok(&["put", "file", "input-repo@master:/c.txt", "-f", &c]);
    let jobs = jobs_done(&e, 2);
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS", "{jobs:?}");
    let second = jobs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(jobs[0]["stats"]["datums_skipped"], 0, "{jobs:?}");
    assert_eq!(jobs[0]["stats"]["datums_processed"], 1, "{jobs:?}");
    assert_eq!(
        files(&e),
        ["/a.txt", "/c.txt", "/dir/", &format!("/job-{second}")],
        "the first job's file is gone: s3_out wipes the output per job"
    );
    assert_eq!(e.ok(&["get", "file", "mnist@master:/c.txt"]), "GAMMA");
}

#[test]
fn s3_input_and_s3_out_through_the_jobs_gateway() {
    s3_pipeline_round_trip(None, &[]);
}

#[test]
fn s3_input_and_s3_out_in_docker_containers() {
    let Some(image) = curl_image() else {
        return;
    };
    s3_pipeline_round_trip(Some(&image), &["--executor", "docker"]);
}

#[test]
fn s3_input_specs_are_checked_at_create() {
    let e = Env::new();
    let glob = e.local(
        "glob.yaml",
        "pipeline: {name: g}\ntransform: {cmd: ['true']}\ninput: {pfs: {repo: r, glob: '/*', s3: true}}\n",
    );
    let err = e.fails(&["create", "pipeline", "-f", &glob]);
    assert!(err.contains("input.pfs"), "{err}");
    assert!(err.contains("glob"), "{err}");
    let lazy = e.local(
        "lazy.yaml",
        "pipeline: {name: l}\ntransform: {cmd: ['true']}\ninput: {pfs: {repo: r, glob: /, s3: true, lazy: true}}\n",
    );
    let err = e.fails(&["create", "pipeline", "-f", &lazy]);
    assert!(err.contains("lazy"), "{err}");
}

/// The test image with curl, imported into the local daemon (see `common::docker_image`).
fn curl_image() -> Option<String> {
    common::docker_image(
        |d| async move { executor_docker::testing::ensure_curl_test_image(&d).await },
    )
}

/// The same shape with boto3 (the client kubeflow's mnist code uses) as the user code, on
/// the process executor: the Python that has boto3 is exposed to the sandbox read-only.
#[test]
fn boto3_user_code_reads_inputs_and_writes_out_over_s3() {
    let Some(prefix) = python_with_boto3() else {
        return;
    };
    let code = tempfile::tempdir().unwrap();
    let script = code.path().join("to_upper.py");
    std::fs::write(
        &script,
        "import os, boto3\n\
         s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'], region_name='us-east-1')\n\
         pages = s3.get_paginator('list_objects_v2').paginate(Bucket='input')\n\
         keys = [o['Key'] for p in pages for o in p.get('Contents', [])]\n\
         for k in keys:\n\
         \x20   body = s3.get_object(Bucket='input', Key=k)['Body'].read()\n\
         \x20   s3.put_object(Bucket='out', Key='upper/' + k, Body=body.upper())\n\
         try:\n\
         \x20   s3.put_object(Bucket='input', Key='x', Body=b'no')\n\
         \x20   raise SystemExit('the input bucket took a write')\n\
         except s3.exceptions.ClientError as e:\n\
         \x20   assert e.response['Error']['Code'] == 'AccessDenied', e.response\n\
         print('copied', len(keys))\n",
    )
    .unwrap();
    // `--expose` is the store owner's setting (a server's is given to `pipectl serve`).
    let e = Env::embedded();
    e.ok(&["create", "repo", "input-repo"]);
    for (name, body) in [("a.txt", "alpha"), ("b.txt", "beta")] {
        let f = e.local(name, body);
        e.ok(&[
            "put",
            "file",
            &format!("input-repo@master:/{name}"),
            "-f",
            &f,
        ]);
    }
    let spec = json!({
        "pipeline": {"name": "mnist"},
        "input": {"pfs": {"name": "input", "repo": "input-repo", "glob": "/", "s3": true}},
        "transform": {"cmd": [format!("{prefix}/bin/python3"), script.to_str().unwrap()]},
        "s3_out": true,
    });
    let p = e.local("mnist.json", &spec.to_string());
    let code_dir = code.path().to_str().unwrap();
    let _ = e.cmd(&[
        "--expose", &prefix, "--expose", code_dir, "create", "pipeline", "-f", &p,
    ]);
    let jobs = jobs_done(&e, 1);
    let logs = e.ok(&["logs", "-p", "mnist"]);
    assert_eq!(jobs[0]["state"], "JOB_SUCCESS", "{jobs:?}\n{logs}");
    assert!(logs.contains("copied 2"), "{logs}");
    assert_eq!(e.ok(&["get", "file", "mnist@master:/upper/b.txt"]), "BETA");
}

/// The prefix of a Python 3 that imports boto3; `None` (saying why) when there is none
/// outside CI (`.ci/s3` installs it); a panic in CI.
fn python_with_boto3() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys, boto3; print(sys.prefix)"])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("python3 with boto3 is required in CI (.ci/s3 installs it)")
        }
        _ => {
            eprintln!("skipping: no python3 with boto3");
            None
        }
    }
}
