//! The incremental scenario of reference §2.15 through the real `pipectl` binary with
//! `--executor docker`, against the real Docker Engine on this machine. The datums run in the
//! busybox test image of `executor_docker::testing`. Outside CI a missing daemon skips the test
//! with a printed reason; with `CI=true` it fails.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use executor_docker::labels;
use executor_docker::testing::{TEST_IMAGE, ensure_test_image};

mod common;

use common::Env;

impl Env {
    /// The newest job of `pipeline` (`list job` prints newest first).
    fn latest_job(&self, pipeline: &str) -> serde_json::Value {
        let jobs = self.json(&["list", "job", "-p", pipeline, "-o", "json"]);
        let id = jobs[0]["id"].as_str().unwrap().to_string();
        let job = self.json(&["inspect", "job", &format!("{pipeline}@{id}"), "-o", "json"]);
        job.into_iter().next().unwrap()
    }

    /// The paths of the files at `repo@master`, sorted.
    fn files(&self, repo: &str) -> Vec<String> {
        let mut paths: Vec<String> = self
            .json(&["list", "file", &format!("{repo}@master"), "-o", "json"])
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        paths.sort();
        paths
    }

    fn get(&self, path: &str) -> String {
        self.ok(&["get", "file", path])
    }
}

/// `state processed skipped failed total` of a job, for one-line asserts.
fn summary(job: &serde_json::Value) -> String {
    let s = &job["stats"];
    format!(
        "{} p{} s{} f{} t{}",
        job["state"].as_str().unwrap(),
        s["datums_processed"],
        s["datums_skipped"],
        s["datums_failed"],
        s["datums_total"]
    )
}

/// Connects to the local daemon and imports the test image; `None` (after printing why) when
/// the daemon is absent outside CI; a panic in CI.
fn docker() -> Option<(tokio::runtime::Runtime, Docker)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reachable = Docker::connect_with_defaults().map(|d| {
        let ping = rt.block_on(d.ping());
        (d, ping)
    });
    let docker = match reachable {
        Ok((d, Ok(_))) => d,
        Ok((_, Err(err))) | Err(err) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            if ci {
                panic!("cli_docker: the Docker daemon is required in CI: {err}");
            }
            eprintln!("skipping cli_docker: Docker daemon not reachable: {err}");
            return None;
        }
    };
    if let Err(err) = rt.block_on(ensure_test_image(&docker)) {
        panic!("building the busybox test image: {err}");
    }
    Some((rt, docker))
}

/// IDs of the containers (running or not) labelled as workers of `pipeline`.
fn containers_of(rt: &tokio::runtime::Runtime, docker: &Docker, pipeline: &str) -> Vec<String> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={pipeline}", labels::PIPELINE)],
    )]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    rt.block_on(docker.list_containers(Some(opts)))
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// A worker container as a crashed `pipectl` process on the same store would leave it (the
/// store's owner label, project and pipeline labels; created, never started).
fn leave_stray(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    owner: &str,
    project: &str,
    pipeline: &str,
) {
    let labels = HashMap::from([
        (labels::OWNER.to_string(), owner.to_string()),
        (labels::PROJECT.to_string(), project.to_string()),
        (labels::PIPELINE.to_string(), pipeline.to_string()),
        (labels::VERSION.to_string(), "1".to_string()),
        (labels::WORKER.to_string(), "0".to_string()),
    ]);
    let body = ContainerCreateBody {
        image: Some(TEST_IMAGE.to_string()),
        cmd: Some(vec!["true".to_string()]),
        labels: Some(labels),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default()
        .name(&format!("{pipeline}-stray"))
        .build();
    rt.block_on(docker.create_container(Some(opts), body))
        .unwrap();
}

/// Removes whatever containers of the pipeline a failed run left behind.
struct Cleanup<'a>(&'a tokio::runtime::Runtime, &'a Docker, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        for id in containers_of(self.0, self.1, &self.2) {
            let _ = self
                .0
                .block_on(self.1.remove_container(&id, Some(opts.clone())));
        }
    }
}

/// The pipeline spec: one datum per file of `A`, writing `<basename>.out` with the file's
/// content and where it ran (`image` only when `/bin/busybox` exists and `/usr` does not,
/// which holds inside the test image but not on the host). `extra` is appended to the
/// command (a no-op change for `update pipeline`). The datum of a file named `bad` exits 1.
fn spec(name: &str, extra: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\n\
         transform:\n  image: {TEST_IMAGE}\n  cmd: [sh, -c, 'f=${{A##*/}}; \
         if [ \"$f\" = bad ]; then echo bad datum >&2; exit 1; fi; \
         if [ -e /bin/busybox ] && [ ! -e /usr ]; then w=image; else w=host; fi; \
         echo ran on $(hostname); \
         {{ cat $A; echo \" $w\"; }} > /pfs/out/$f.out{extra}']\n\
         input: {{pfs: {{repo: A, glob: /*}}}}\n"
    )
}

#[test]
fn reference_2_15_scenario_with_docker_executor() {
    let Some((rt, docker)) = docker() else {
        return;
    };
    let e = Env::new();
    // unique per process, so the container query never sees another run's workers
    let p = format!("dockere2e{}", std::process::id());
    let _cleanup = Cleanup(&rt, &docker, p.clone());
    let out = |f: &str| e.get(&format!("{p}@master:/{f}"));

    e.ok(&["create", "repo", "A"]);
    e.ok(&["start", "commit", "A@master"]);
    let x = e.local("a1", "a1");
    e.ok(&["put", "file", "A@master:/a", "-f", &x]);
    let x = e.local("b1", "b1");
    e.ok(&["put", "file", "A@master:/b", "-f", &x]);
    e.ok(&["finish", "commit", "A@master"]);

    // create P: job 1 processes both datums, in containers of the test image
    let spec_file = e.local("p.yaml", &spec(&p, ""));
    e.ok(&[
        "create",
        "pipeline",
        "-f",
        &spec_file,
        "--executor",
        "docker",
    ]);
    let pipes = e.json(&["list", "pipeline", "-o", "json"]);
    assert_eq!(pipes[0]["executor"], "docker");
    let j1 = e.latest_job(&p);
    assert_eq!(summary(&j1), "JOB_SUCCESS p2 s0 f0 t2");
    assert_eq!(e.files(&p), ["/a.out", "/b.out"]);
    assert_eq!(out("a.out"), "a1 image\n");
    assert_eq!(out("b.out"), "b1 image\n");
    // the datums' hostname is their worker container's, not the host's
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let id1 = j1["id"].as_str().unwrap();
    let logs = e.json(&["logs", "-p", &p, "--job", id1, "-o", "json"]);
    assert_eq!(logs.len(), 2, "{logs:?}");
    for l in &logs {
        let msg = l["message"].as_str().unwrap();
        let name = msg
            .strip_prefix("ran on ")
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(
            !name.is_empty() && name != host.trim(),
            "{msg} vs host {host}"
        );
    }

    // change /b, add /c, delete /a in one commit: processed 2, skipped 0
    e.ok(&["start", "commit", "A@master"]);
    let x = e.local("b2", "b2");
    e.ok(&["put", "file", "A@master:/b", "-f", &x]);
    let x = e.local("c1", "c1");
    e.ok(&["put", "file", "A@master:/c", "-f", &x]);
    e.ok(&["delete", "file", "A@master:/a"]);
    e.ok(&["finish", "commit", "A@master"]);
    let j2 = e.latest_job(&p);
    assert_ne!(j2["id"], j1["id"]);
    assert_eq!(summary(&j2), "JOB_SUCCESS p2 s0 f0 t2");
    assert_eq!(e.files(&p), ["/b.out", "/c.out"]);
    assert_eq!(out("b.out"), "b2 image\n");
    assert_eq!(out("c.out"), "c1 image\n");

    // an empty commit: everything skipped
    e.ok(&["start", "commit", "A@master"]);
    e.ok(&["finish", "commit", "A@master"]);
    let j3 = e.latest_job(&p);
    assert_ne!(j3["id"], j2["id"]);
    assert_eq!(summary(&j3), "JOB_SUCCESS p0 s2 f0 t2");
    assert_eq!(e.files(&p), ["/b.out", "/c.out"]);

    // update pipeline with a changed command: the datum hash ignores code, all skipped
    let spec_file = e.local("p2.yaml", &spec(&p, "; true"));
    e.ok(&[
        "update",
        "pipeline",
        "-f",
        &spec_file,
        "--executor",
        "docker",
    ]);
    let j4 = e.latest_job(&p);
    assert_eq!(j4["version"], 2);
    assert_eq!(summary(&j4), "JOB_SUCCESS p0 s2 f0 t2");
    assert_eq!(e.files(&p), ["/b.out", "/c.out"]);

    // --reprocess: both datums run again
    e.ok(&[
        "update",
        "pipeline",
        "-f",
        &spec_file,
        "--executor",
        "docker",
        "--reprocess",
    ]);
    let j5 = e.latest_job(&p);
    assert_eq!(j5["version"], 3);
    assert_eq!(summary(&j5), "JOB_SUCCESS p2 s0 f0 t2");
    assert_eq!(e.files(&p), ["/b.out", "/c.out"]);
    assert_eq!(out("c.out"), "c1 image\n");

    // a failing datum fails the job
    let x = e.local("bad", "x");
    // exit 3: the file is committed, the job it started failed
    let put = e.cmd(&["put", "file", "A@master:/bad", "-f", &x]).code(3);
    let stderr = String::from_utf8_lossy(&put.get_output().stderr).into_owned();
    assert!(stderr.contains("JOB_FAILURE"), "{stderr}");
    let j6 = e.latest_job(&p);
    assert_eq!(summary(&j6), "JOB_FAILURE p0 s2 f1 t3");
    let id6 = j6["id"].as_str().unwrap();
    let datums = e.json(&["list", "datum", &format!("{p}@{id6}"), "-o", "json"]);
    assert_eq!(
        datums.iter().filter(|d| d["state"] == "FAILED").count(),
        1,
        "{datums:?}"
    );

    // the next good job builds on job 5's output, not on the failed job's
    e.ok(&["delete", "file", "A@master:/bad"]);
    let j7 = e.latest_job(&p);
    assert_eq!(j7["state"], "JOB_SUCCESS", "{j7}");
    assert_eq!(j7["base_job"], j5["id"], "{j7}");
    assert_eq!(e.files(&p), ["/b.out", "/c.out"]);
    assert_eq!(out("b.out"), "b2 image\n");

    // code writing one fixed path from two datums: FAILURE naming the duplicate path
    let dup = e.local(
        "dup.yaml",
        &format!(
            "pipeline: {{name: {p}}}\ntransform:\n  image: {TEST_IMAGE}\n  \
             cmd: [sh, -c, 'hostname > /pfs/out/result']\ninput: {{pfs: {{repo: A, glob: /*}}}}\n"
        ),
    );
    // exit 3: the update is committed, the job it started failed
    e.cmd(&[
        "update",
        "pipeline",
        "-f",
        &dup,
        "--executor",
        "docker",
        "--reprocess",
    ])
    .code(3);
    let j8 = e.latest_job(&p);
    assert_eq!(j8["state"], "JOB_FAILURE", "{j8}");
    let reason = j8["reason"].as_str().unwrap();
    assert!(reason.contains("/result"), "{reason}");

    // no worker container is left once the pipeline is deleted, not even one a crashed
    // host left behind
    let project = pipes[0]["project"].as_str().unwrap_or("default");
    let owner = pipeline_core::pfs::Store::owner_label("pipectl", &e.root());
    // (Under a server the pipeline's warm worker is still up: it outlives the job.)
    let warm = containers_of(&rt, &docker, &p).len();
    leave_stray(&rt, &docker, &owner, project, &p);
    assert_eq!(containers_of(&rt, &docker, &p).len(), warm + 1);
    e.ok(&["delete", "pipeline", &p]);
    assert!(e.json(&["list", "pipeline", "-o", "json"]).is_empty());
    assert_eq!(containers_of(&rt, &docker, &p), Vec::<String>::new());
}

/// `create secret` then a Docker pipeline reading it as an env var and as a file (the logs show
/// it redacted); a Docker pipeline over its memory limit records failure kind `oom`.
#[test]
fn secrets_and_memory_limits_with_docker_executor() {
    let Some((rt, docker)) = docker() else {
        return;
    };
    let _secret_pipeline = Cleanup(&rt, &docker, "dsecret".to_string());
    let _mem_pipeline = Cleanup(&rt, &docker, "dmem".to_string());
    let e = Env::new();
    e.ok(&["create", "repo", "A"]);
    let a = e.local("a", "100");
    e.ok(&["put", "file", "A@master:/a", "-f", &a]);
    let secret = e.local(
        "s.json",
        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"},
            "stringData": {"token": "d0cker-s3cret"}}"#,
    );
    e.ok(&["create", "secret", "-f", &secret]);
    let spec = e.local(
        "dsecret.yaml",
        &format!(
            "pipeline: {{name: dsecret}}\ntransform:\n  image: {TEST_IMAGE}\n  cmd: [sh, -c, 'echo env $TOKEN; cat /var/secrets/api/token > /pfs/out/file; printf %s \"$TOKEN\" > /pfs/out/env']\n  secrets:\n  - {{name: api, key: token, env_var: TOKEN}}\n  - {{name: api, mount_path: /var/secrets/api}}\ninput: {{pfs: {{repo: A, glob: /*}}}}\n"
        ),
    );
    e.ok(&["create", "pipeline", "--executor", "docker", "-f", &spec]);
    assert_eq!(e.get("dsecret@master:/env"), "d0cker-s3cret");
    assert_eq!(e.get("dsecret@master:/file"), "d0cker-s3cret");
    let logs = e.ok(&["logs", "-p", "dsecret"]);
    assert!(logs.contains("env <redacted>"), "{logs}");
    assert!(!logs.contains("d0cker"), "{logs}");

    let spec = e.local(
        "dmem.yaml",
        &format!(
            "pipeline: {{name: dmem}}\ntransform:\n  image: {TEST_IMAGE}\n  cmd: [sh, -c, 'dd if=/dev/zero of=/dev/null bs=$(cat $A)M count=1']\nresource_limits: {{memory: 32Mi}}\ndatum_tries: 1\ninput: {{pfs: {{repo: A, glob: /*}}}}\n"
        ),
    );
    e.cmd(&["create", "pipeline", "--executor", "docker", "-f", &spec]);
    let job = e.latest_job("dmem");
    assert_eq!(job["state"], "JOB_FAILURE", "{job}");
    let id = job["id"].as_str().unwrap();
    let datums = e.json(&["list", "datum", &format!("dmem@{id}"), "-o", "json"]);
    assert_eq!(datums[0]["failure"]["kind"], "oom", "{datums:?}");
    e.ok(&["delete", "pipeline", "dmem"]);
    e.ok(&["delete", "pipeline", "dsecret"]);
}

/// A service in a worker container through `pipectl serve` (services need an engine that
/// keeps running): `busybox httpd` on port 8080 of its container serves the latest commit on
/// `127.0.0.1:<external_port>`; a new version replaces it and the old job ends SUCCESS.
#[test]
fn a_service_in_a_container_serves_the_latest_commit() {
    use pipeline_core::testkit::service::{free_port, http_get, service_spec};
    let Some((rt, docker)) = docker() else {
        return;
    };
    let e = Env::with_server();
    let p = format!("dockerweb{}", std::process::id());
    let _cleanup = Cleanup(&rt, &docker, p.clone());
    let body = |port: u16, want: &str| {
        let t0 = std::time::Instant::now();
        loop {
            let got = http_get(port, "/hello.txt");
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(90),
                "GET 127.0.0.1:{port}/hello.txt: expected {want:?}, last got {got:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    e.ok(&["create", "repo", "in"]);
    let v1 = e.local("v1", "version 1\n");
    e.ok(&["put", "file", "in@master:/hello.txt", "-f", &v1]);
    let port = free_port();
    let spec = service_spec(&p, "8080", 8080, port).replace(
        "transform: {cmd:",
        &format!("transform: {{image: {TEST_IMAGE}, cmd:"),
    );
    let spec_file = e.local("web.yaml", &spec);
    e.ok(&[
        "create",
        "pipeline",
        "-f",
        &spec_file,
        "--executor",
        "docker",
    ]);
    body(port, "version 1\n");
    let first = e.latest_job(&p);
    assert_eq!(first["state"], "JOB_RUNNING", "{first}");
    let text = e.ok(&["inspect", "pipeline", &p]);
    assert!(
        text.contains(&format!("Service: listening on 127.0.0.1:{port}")),
        "{text}"
    );

    let v2 = e.local("v2", "version 2\n");
    e.ok(&["put", "file", "in@master:/hello.txt", "-f", &v2]);
    body(port, "version 2\n");
    let id = first["id"].as_str().unwrap();
    let old = e.json(&["inspect", "job", &format!("{p}@{id}"), "-o", "json"]);
    assert_eq!(old[0]["state"], "JOB_SUCCESS", "{old:?}");
    e.ok(&["delete", "pipeline", &p]);
}

/// A `datum_batching` pipeline over 1,000 datums through `pipectl --executor docker`: the
/// busybox image has no `pipectl`, so its shell speaks the next-datum protocol over the
/// named pipes in `/pfs/.batch`; one process per datum set reads each datum's variables from
/// `/pfs/.env`.
#[test]
fn datum_batching_with_docker_executor() {
    let Some((rt, docker)) = docker() else {
        return;
    };
    let e = Env::new();
    let p = format!("dockerbatch{}", std::process::id());
    let _cleanup = Cleanup(&rt, &docker, p.clone());
    e.ok(&["create", "repo", "A"]);
    for i in 0..1000 {
        e.local(&format!("tree/f{i:04}"), &format!("v{i}"));
    }
    let tree = e.dir.path().join("tree");
    e.ok(&[
        "put",
        "file",
        "A@master:/",
        "-f",
        tree.to_str().unwrap(),
        "-r",
    ]);
    let spec = format!(
        "pipeline: {{name: {p}}}\ntransform:\n  image: {TEST_IMAGE}\n  cmd: [sh]\n  datum_batching: true\n  stdin:\n\
         \x20   - 'next() {{ echo \"next $1\" > /pfs/.batch/request && read -r _ < /pfs/.batch/reply; }}'\n\
         \x20   - 'next ok'\n\
         \x20   - 'while true; do . /pfs/.env; {{ cat $A; echo \" $PACH_DATUM_ID\"; }} > /pfs/out/${{A##*/}}; next ok; done'\n\
         input: {{pfs: {{repo: A, glob: /*}}}}\ndatum_set_spec: {{number: 500}}\n"
    );
    let spec_file = e.local("batch.yaml", &spec);
    e.ok(&[
        "create",
        "pipeline",
        "-f",
        &spec_file,
        "--executor",
        "docker",
    ]);
    let job = e.latest_job(&p);
    assert_eq!(summary(&job), "JOB_SUCCESS p1000 s0 f0 t1000");
    assert_eq!(job["stats"]["datum_sets"], 2);
    assert_eq!(e.files(&p).len(), 1000);
    let (value, id) = e
        .get(&format!("{p}@master:/f0042"))
        .trim()
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert_eq!(value, "v42");
    let job_id = job["id"].as_str().unwrap();
    let datum = e.json(&[
        "inspect",
        "datum",
        &format!("{p}@{job_id}"),
        &id,
        "-o",
        "json",
    ]);
    assert_eq!(datum[0]["inputs"][0]["path"], "/f0042", "{}", datum[0]);
    e.ok(&["delete", "pipeline", &p]);
}
