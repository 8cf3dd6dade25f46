//! Egress (reference §1.7, §3.7): a job whose datums succeeded goes EGRESSING, pushes its
//! whole output commit to a directory, an S3 bucket (s3s-fs, `source .ci/s3`) or PostgreSQL
//! (`eval "$(bash .ci/postgres)"`), and only then succeeds; a failing target keeps it
//! EGRESSING with the error and the next try visible, until the target works.

mod pps_common;

use std::sync::Arc;
use std::time::Duration;

use executor_process::ProcessExecutor;
use pipeline_core::pps::egress::EgressRetry;
use pipeline_core::pps::{Engine, JobState, PpsError};
use pipeline_core::spec::parse_str;
use pps_common::Env;

/// An engine whose failing egress is retried after `first` (doubling).
fn env_with(first: Duration, options: Vec<(String, String)>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::testkit::store::open_test_store(&dir.path().join("store"));
    let engine = Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .egress_retry(EgressRetry {
            first,
            max: Duration::from_secs(60),
        })
        .egress_options(options)
        .build()
        .unwrap();
    Env::with_engine(dir, engine)
}

/// A pipeline copying every input file to `/pfs/out/SUBDIR/`, with `egress` as given (YAML).
fn copy_spec(name: &str, subdir: &str, egress: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform:\n  cmd: [sh, -c, 'mkdir -p /pfs/out/{subdir} && cp /pfs/in/* /pfs/out/{subdir}/']\ninput: {{pfs: {{repo: in, glob: /}}}}\negress: {egress}\n"
    )
}

#[test]
fn egress_to_a_directory_pushes_the_output_before_the_job_succeeds() {
    let e = env_with(Duration::from_secs(1), Vec::new());
    let target = e.dir.path().join("target");
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "alpha"), ("/b.txt", "beta")]);
    let url = format!("file://{}", target.display());
    e.create(&copy_spec("p", "sub", &format!("{{URL: \"{url}\"}}")));
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    let status = job.egress.as_ref().unwrap();
    assert_eq!((status.attempts, status.written), (1, 2), "{status:?}");
    assert_eq!(status.target, url);
    assert!(status.last_error.is_none());
    let read = |p: &str| std::fs::read_to_string(target.join(p)).unwrap();
    assert_eq!(read("sub/a.txt"), "alpha");
    assert_eq!(read("sub/b.txt"), "beta");
    // No temp file is left beside them.
    let names: Vec<_> = std::fs::read_dir(target.join("sub"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // The new form of the field, and an empty output (nothing to push) counts as done.
    let empty = format!(
        "pipeline: {{name: q}}\ntransform: {{cmd: [sh, -c, 'true']}}\ninput: {{pfs: {{repo: in, glob: /}}}}\negress: {{object_storage: {{url: \"file://{}\"}}}}\n",
        e.dir.path().join("empty").display()
    );
    e.create(&empty);
    let job = e.run().pop().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(job.egress.unwrap().written, 0);
}

#[test]
fn a_failing_egress_stays_egressing_with_its_error_then_succeeds() {
    let e = env_with(Duration::from_millis(200), Vec::new());
    // A file where the target directory should be: every attempt fails.
    let target = e.dir.path().join("blocked");
    std::fs::write(&target, "in the way").unwrap();
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "alpha")]);
    let url = format!("file://{}", target.display());
    e.create(&copy_spec("p", "sub", &format!("{{URL: \"{url}\"}}")));
    // Downstream waits for the output commit, which stays open while EGRESSING.
    e.create("pipeline: {name: down}\ntransform: {cmd: [sh, -c, 'cp -r /pfs/p/* /pfs/out/']}\ninput: {pfs: {repo: p, glob: /}}\n");
    assert!(e.run().is_empty());
    let job = &e.jobs("p")[0];
    assert_eq!(job.state, JobState::JobEgressing);
    let status = job.egress.clone().unwrap();
    assert_eq!(status.attempts, 1);
    let error = status.last_error.unwrap();
    assert!(error.contains(&target.display().to_string()), "{error}");
    let next = status.next_try_ms.unwrap();
    assert!(next >= status.last_try_ms.unwrap() + 200, "{next}");
    assert!(
        job.reason
            .starts_with(&format!("egress to {url} failed (attempt 1): ")),
        "{}",
        job.reason
    );
    assert!(job.reason.contains("next try at "), "{}", job.reason);
    assert!(
        !e.store
            .inspect_commit(&job.output_commit)
            .unwrap()
            .is_finished()
    );
    assert_eq!(e.jobs("down")[0].state, JobState::JobStarting);

    // Not due yet: nothing happens; once due, a second attempt fails too.
    e.run();
    assert_eq!(e.jobs("p")[0].egress.clone().unwrap().attempts, 1);
    std::thread::sleep(Duration::from_millis(250));
    e.run();
    let status = e.jobs("p")[0].egress.clone().unwrap();
    assert_eq!(status.attempts, 2);
    // The wait doubled.
    assert!(status.next_try_ms.unwrap() >= status.last_try_ms.unwrap() + 400);

    // The target works again: the next attempt succeeds, and downstream runs.
    std::fs::remove_file(&target).unwrap();
    std::thread::sleep(Duration::from_millis(450));
    let done = e.run();
    let p = &e.jobs("p")[0];
    assert_eq!(p.state, JobState::JobSuccess, "{}", p.reason);
    assert!(p.reason.is_empty(), "{}", p.reason);
    assert_eq!(p.egress.as_ref().unwrap().attempts, 3);
    assert_eq!(
        std::fs::read_to_string(target.join("sub/a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(e.jobs("down")[0].state, JobState::JobSuccess);
    assert_eq!(done.len(), 2, "{done:?}");
}

#[test]
fn a_restarted_engine_resumes_egress_and_stop_ends_it() {
    let e = env_with(Duration::from_millis(1), Vec::new());
    let target = e.dir.path().join("blocked");
    std::fs::write(&target, "in the way").unwrap();
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "alpha")]);
    let url = format!("file://{}", target.display());
    e.create(&copy_spec("p", "sub", &format!("{{URL: \"{url}\"}}")));
    e.run();
    assert_eq!(e.jobs("p")[0].state, JobState::JobEgressing);

    // A new engine over the same store (the host restarted) picks the egress up.
    std::fs::remove_file(&target).unwrap();
    let engine = Engine::builder(e.store.clone())
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .scratch_dir(e.dir.path().join("scratch2"))
        .build()
        .unwrap();
    let again = Env::with_engine(tempfile::tempdir().unwrap(), engine);
    again.run();
    let job = &again.jobs("p")[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(
        std::fs::read_to_string(target.join("sub/a.txt")).unwrap(),
        "alpha"
    );

    // Stopping an EGRESSING job ends its retries.
    let blocked2 = e.dir.path().join("blocked2");
    std::fs::write(&blocked2, "in the way").unwrap();
    e.create(&copy_spec(
        "r",
        "sub",
        &format!("{{URL: \"file://{}\"}}", blocked2.display()),
    ));
    e.run();
    let job = e.jobs("r")[0].clone();
    assert_eq!(job.state, JobState::JobEgressing);
    let attempts = job.egress.as_ref().unwrap().attempts;
    std::thread::sleep(Duration::from_millis(20));
    let stopped = e.engine.stop_job("r", &job.id, None).unwrap();
    assert_eq!(stopped.state, JobState::JobKilled);
    e.run();
    let job = &e.jobs("r")[0];
    assert_eq!(job.state, JobState::JobKilled);
    assert_eq!(job.egress.as_ref().unwrap().attempts, attempts);

    // So does stopping its pipeline.
    e.create(&copy_spec(
        "s",
        "sub",
        &format!("{{URL: \"file://{}\"}}", blocked2.display()),
    ));
    e.run();
    assert_eq!(e.jobs("s")[0].state, JobState::JobEgressing);
    e.engine.stop_pipeline("s").unwrap();
    e.run();
    let job = &e.jobs("s")[0];
    assert_eq!(job.state, JobState::JobKilled);
    assert!(
        job.reason.contains("pipeline was stopped"),
        "{}",
        job.reason
    );
}

#[test]
fn create_refuses_bad_targets_at_their_field() {
    let e = env_with(Duration::from_secs(1), Vec::new());
    e.repo("in");
    let cases = [
        ("{URL: \"ftp://host/x\"}", "egress.URL", "scheme ftp://"),
        (
            "{object_storage: {url: \"file://relative\"}}",
            "egress.object_storage.url",
            "ABSOLUTE",
        ),
        (
            "{sql_database: {url: \"mysql://u@h:3306/d\", file_format: {type: CSV}, secret: {name: s, key: k}}}",
            "egress.sql_database.url",
            "mysql:// databases are not supported",
        ),
        (
            "{sql_database: {url: \"postgres://u@h:5432/d\", file_format: {type: PARQUET}, secret: {name: s, key: k}}}",
            "egress.sql_database.file_format.type",
            "PARQUET is not supported",
        ),
        (
            "{sql_database: {url: \"postgres://u@h:5432/d\", file_format: {type: CSV}, secret: {name: s, key: k}}}",
            "egress.sql_database.secret",
            "missing Kubernetes secret s",
        ),
        (
            "{sql_database: {url: \"postgres://u@h:5432/d\", file_format: {type: CSV}}}",
            "egress.sql_database.secret",
            "egress.sql_database.secret is required",
        ),
    ];
    for (egress, field, message) in cases {
        let parsed = parse_str(&copy_spec("p", "x", egress), "p.yaml").unwrap();
        let err = e
            .engine
            .create_pipelines(&parsed, &Default::default())
            .unwrap_err();
        let PpsError::InvalidSpec { diagnostics, .. } = &err else {
            panic!("{egress}: {err}");
        };
        let found = diagnostics
            .iter()
            .any(|d| d.path.to_string() == field && d.message.contains(message));
        assert!(found, "{egress}: {diagnostics:?}");
    }
}

#[test]
fn egress_to_s3_streams_every_file_multipart_above_8_mib() {
    use pipeline_core::testkit::objects::{fresh_s3_url, s3_endpoint, s3_options};
    let Some(endpoint) = s3_endpoint("egress_to_s3") else {
        return;
    };
    let options = s3_options(&endpoint);
    let e = env_with(Duration::from_millis(100), options.clone());
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "alpha")]);
    let url = fresh_s3_url("egress");
    let spec = format!(
        "pipeline: {{name: p}}\ntransform:\n  cmd: [sh, -c, 'mkdir -p /pfs/out/d && cp /pfs/in/a.txt /pfs/out/d/ && head -c 9437184 /dev/zero > /pfs/out/big']\ninput: {{pfs: {{repo: in, glob: /}}}}\negress: {{URL: \"{url}\"}}\n"
    );
    e.create(&spec);
    let job = e.run().pop().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(job.egress.as_ref().unwrap().written, 2);

    // Read back with object_store itself.
    use object_store::ObjectStoreExt;
    let parsed = url::Url::parse(&url).unwrap();
    let mut b = object_store::aws::AmazonS3Builder::new().with_url(&url);
    for (k, v) in &options {
        b = b.with_config(k.parse().unwrap(), v);
    }
    let s3 = b.build().unwrap();
    let prefix = parsed.path().trim_start_matches('/').to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |key: &str| {
        let path = object_store::path::Path::from(format!("{prefix}/{key}"));
        rt.block_on(async { s3.get(&path).await.unwrap().bytes().await.unwrap() })
    };
    assert_eq!(&get("d/a.txt")[..], b"alpha");
    let big = get("big");
    assert_eq!(big.len(), 9_437_184);
    assert!(big.iter().all(|b| *b == 0));
}

#[test]
fn sql_egress_replaces_each_table_in_one_transaction() {
    let Some(url) = pipeline_core::testkit::store::postgres_url() else {
        return;
    };
    let db = pipeline_core::testkit::store::PlainClient::new(&url);
    let schema = format!("egress_{}_{}", std::process::id(), nanos());
    db.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.people (id integer, name text, note text); CREATE TABLE {schema}.events (id integer, payload jsonb)"
    ));
    let e = env_with(Duration::from_millis(100), Vec::new());
    let (no_password, password) = split_password(&url);
    e.engine
        .create_secret(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: \"{password}\"}}\n"
        ))
        .unwrap();
    e.repo("in");
    // CSV with a header naming the columns in another order; an empty field is NULL, a
    // quoted empty one the empty string.
    e.commit(
        "in",
        &[],
        &[(
            "/people.csv",
            "name,id,note\n\"Ada\",1,\n\"Bob, Jr.\",2,\"\"\n",
        )],
    );
    let spec = format!(
        "pipeline: {{name: p}}\ntransform:\n  cmd: [sh, -c, 'mkdir -p /pfs/out/{schema}.people && cp /pfs/in/people.csv /pfs/out/{schema}.people/']\ninput: {{pfs: {{repo: in, glob: /}}}}\negress: {{sql_database: {{url: \"{no_password}\", file_format: {{type: CSV, columns: [id, name, note]}}, secret: {{name: db, key: password}}}}}}\n"
    );
    e.create(&spec);
    let job = e.run().pop().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(job.egress.as_ref().unwrap().written, 2);
    let rows = db.rows(&format!(
        "SELECT id::text, name, coalesce(note, 'NULL') FROM {schema}.people ORDER BY id"
    ));
    assert_eq!(rows, [["1", "Ada", "NULL"], ["2", "Bob, Jr.", ""]]);

    // The next job replaces the table's rows (Pachyderm deletes them first).
    e.commit(
        "in",
        &["/people.csv"],
        &[("/people.csv", "name,id,note\nCy,3,x\n")],
    );
    let job = e.run().pop().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    let rows = db.rows(&format!("SELECT id::text, name, note FROM {schema}.people"));
    assert_eq!(rows, [["3", "Cy", "x"]]);

    // JSON rows (one object per row, columns by key), into a table named with its schema,
    // over TLS (`sslmode=require`: a plain connection would be refused by the driver).
    let sep = if no_password.contains('?') { '&' } else { '?' };
    let tls_url = format!("{no_password}{sep}sslmode=require");
    let json = format!(
        "pipeline: {{name: j}}\ntransform:\n  cmd: [sh, -c, 'mkdir -p /pfs/out/{schema}.events && printf %s \"{{\\\"id\\\": 7, \\\"payload\\\": {{\\\"k\\\": [1]}}}}\" > /pfs/out/{schema}.events/e.json']\ninput: {{pfs: {{repo: in, glob: /}}}}\negress: {{sql_database: {{url: \"{tls_url}\", file_format: {{type: JSON}}, secret: {{name: db, key: password}}}}}}\n"
    );
    e.create(&json);
    let job = e.run().pop().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    let rows = db.rows(&format!(
        "SELECT id::text, payload->>'k' FROM {schema}.events"
    ));
    assert_eq!(rows, [["7", "[1]"]]);

    // A bad row fails the attempt as a whole: the table keeps its rows, the job retries.
    e.commit(
        "in",
        &["/people.csv"],
        &[("/people.csv", "name,id,note\nDee,notanumber,x\n")],
    );
    e.run();
    let p = &e.jobs("p")[2];
    assert_eq!(p.state, JobState::JobEgressing, "{}", p.reason);
    let error = p.egress.as_ref().unwrap().last_error.clone().unwrap();
    assert!(error.contains("22P02"), "{error}");
    let rows = db.rows(&format!("SELECT id::text, name, note FROM {schema}.people"));
    assert_eq!(rows, [["3", "Cy", "x"]]);
    e.engine.stop_job("p", &p.id, None).unwrap();
    db.exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `postgres://USER:PASSWORD@HOST…` as the URL without its password, and the password.
fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (format!("{scheme}://{user}@{host}"), password.to_string())
}

#[test]
fn an_unreachable_object_store_keeps_the_job_egressing_with_the_error() {
    use pipeline_core::testkit::objects::s3_options;
    // Nothing listens on port 1.
    let e = env_with(Duration::from_secs(60), s3_options("http://127.0.0.1:1"));
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "alpha")]);
    e.create(&copy_spec("p", "d", "{URL: \"s3://nowhere/prefix\"}"));
    let t0 = std::time::Instant::now();
    e.run();
    let job = &e.jobs("p")[0];
    assert_eq!(job.state, JobState::JobEgressing, "{}", job.reason);
    let error = job.egress.as_ref().unwrap().last_error.clone().unwrap();
    assert!(error.contains("s3://nowhere/prefix/d/a.txt"), "{error}");
    eprintln!(
        "one attempt against a dead endpoint took {:?}",
        t0.elapsed()
    );
}
