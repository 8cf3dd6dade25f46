//! Egress through `pipectl` to the real servers CI starts, on the process executor and in
//! Docker containers: an S3 server (`s3s-fs`, configured from `AWS_ENDPOINT_URL` and the
//! other `AWS_*` variables) and PostgreSQL (CSV rows `COPY`ed into a table, the password from
//! a secret). The job is SUCCESS only once the output is there.

mod common;

use std::time::{Duration, Instant};

use common::Env;
use pipeline_core::testkit::objects::{fresh_s3_url, s3_endpoint};
use pipeline_core::testkit::store::postgres_url;

/// The newest job of `pipeline`, once it has ended (60 s at most).
fn ended_job(e: &Env, pipeline: &str) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let jobs = e.json(&["list", "job", "-p", pipeline, "-o", "json"]);
        if let Some(j) = jobs.first()
            && ["JOB_SUCCESS", "JOB_FAILURE", "JOB_KILLED"].contains(&j["state"].as_str().unwrap())
        {
            return j.clone();
        }
        if !e.served()
            && let Some(id) = jobs.first().and_then(|j| j["id"].as_str())
        {
            let _ = e.cmd(&["wait", "job", &format!("{pipeline}@{id}")]);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{pipeline}: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `psql URL -Atc SQL`, its output.
fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-Atc", sql])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn egress_round_trip(image: Option<&str>, executor: &[&str]) {
    let (Some(endpoint), Some(pg)) = (s3_endpoint("cli_egress_targets"), postgres_url()) else {
        return;
    };
    let data = std::env::var("PIPELINE_TEST_S3_DATA").expect("PIPELINE_TEST_S3_DATA (.ci/s3)");
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "pipeline-test-key".into());
    let secret =
        std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "pipeline-test-secret".into());
    let e = Env::with_vars(&[
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", &key),
        ("AWS_SECRET_ACCESS_KEY", &secret),
        ("AWS_REGION", "us-east-1"),
    ]);
    e.ok(&["create", "repo", "in"]);
    let people = e.local("people.csv", "id,name\n1,Ada\n2,Bob\n");
    e.ok(&["put", "file", "in@master:/people.csv", "-f", &people]);
    let image = image.map_or(String::new(), |i| format!("image: {i}, "));

    // S3: the output commit's files under the URL's prefix.
    let url = fresh_s3_url("cli-egress");
    let spec = e.local(
        "s3.yaml",
        &format!(
            "pipeline: {{name: tos3}}\ntransform: {{{image}cmd: [sh, -c, 'cp /pfs/in/people.csv /pfs/out/']}}\n\
             input: {{pfs: {{repo: in, glob: /}}}}\negress: {{URL: '{url}'}}\n"
        ),
    );
    let mut args = vec!["create", "pipeline", "-f", &spec];
    args.extend_from_slice(executor);
    let _ = e.cmd(&args);
    let job = ended_job(&e, "tos3");
    assert_eq!(job["state"], "JOB_SUCCESS", "{job}");
    let object = std::path::Path::new(&data)
        .join(url.trim_start_matches("s3://"))
        .join("people.csv");
    assert_eq!(
        std::fs::read_to_string(&object).unwrap_or_else(|e| panic!("{}: {e}", object.display())),
        "id,name\n1,Ada\n2,Bob\n"
    );

    // PostgreSQL: one table per top-level directory, the password from a secret.
    let tag = if image.is_empty() {
        "process"
    } else {
        "docker"
    };
    let schema = format!("cli_egress_{}_{tag}", std::process::id());
    psql(
        &pg,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; CREATE TABLE {schema}.people (id integer, name text)"
        ),
    );
    let (no_password, password) = split_password(&pg);
    let secret_file = e.local(
        "db.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: \"{password}\"}}\n"),
    );
    e.ok(&["create", "secret", "-f", &secret_file]);
    let spec = e.local(
        "pg.yaml",
        &format!(
            "pipeline: {{name: topg}}\ntransform: {{{image}cmd: [sh, -c, 'mkdir -p /pfs/out/{schema}.people && cp /pfs/in/people.csv /pfs/out/{schema}.people/']}}\n\
             input: {{pfs: {{repo: in, glob: /}}}}\n\
             egress: {{sql_database: {{url: \"{no_password}\", file_format: {{type: CSV, columns: [id, name]}}, secret: {{name: db, key: password}}}}}}\n"
        ),
    );
    let mut args = vec!["create", "pipeline", "-f", &spec];
    args.extend_from_slice(executor);
    let _ = e.cmd(&args);
    let job = ended_job(&e, "topg");
    assert_eq!(job["state"], "JOB_SUCCESS", "{job}");
    assert_eq!(
        psql(
            &pg,
            &format!("SELECT id, name FROM {schema}.people ORDER BY id")
        ),
        "1|Ada\n2|Bob\n"
    );
    psql(&pg, &format!("DROP SCHEMA {schema} CASCADE"));
    e.ok(&["delete", "pipeline", "tos3"]);
    e.ok(&["delete", "pipeline", "topg"]);
}

/// `postgres://USER:PASSWORD@HOST…` as the URL without its password, and the password.
fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (format!("{scheme}://{user}@{host}"), password.to_string())
}

#[test]
fn egress_to_s3_and_postgres_from_the_process_executor() {
    egress_round_trip(None, &[]);
}

#[test]
fn egress_to_s3_and_postgres_from_docker_containers() {
    let Some(image) =
        common::docker_image(
            |d| async move { executor_docker::testing::ensure_test_image(&d).await },
        )
    else {
        return;
    };
    egress_round_trip(Some(&image), &["--executor", "docker"]);
}
