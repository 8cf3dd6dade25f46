//! Secrets stored in the store (`pachctl create secret`): create/list/inspect/delete, the
//! create-time check of `transform.secrets`, values reaching user code and never its logs.

mod pps_common;

use pipeline_core::pps::secrets::SecretError;
use pipeline_core::pps::{JobState, PpsError};
use pipeline_core::spec::parse_str;
use pps_common::env;

const CREDS: &str = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
  "type": "Opaque", "data": {"token": "czNjcjN0LXZhbHVl"}}"#;

/// The pipeline spec that reads `creds.token` as `$TOKEN`, echoes it and writes it out.
const USES_CREDS: &str = "pipeline: {name: sec}\ntransform:\n  cmd: [sh, -c, 'echo token is $TOKEN; printf %s \"$TOKEN\" > /pfs/out/seen']\n  secrets: [{name: creds, key: token, env_var: TOKEN}]\ndatum_tries: 1\ninput: {pfs: {repo: in, glob: /}}\n";

#[test]
fn create_list_inspect_delete_never_show_values() {
    let e = env();
    let info = e.engine.create_secret(CREDS).unwrap();
    // Only the store's owner can read the values.
    use std::os::unix::fs::PermissionsExt;
    let root = e.store.root().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("meta.redb")) & 0o077, 0);
    assert_eq!(mode(root) & 0o077, 0);
    assert_eq!(info.name, "creds");
    assert_eq!(info.keys, ["token"]);
    assert_eq!(info.secret_type, "Opaque");
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: other}\nstringData: {a: x, b: y}\n";
    e.engine.create_secret(yaml).unwrap();
    let list = e.engine.list_secrets().unwrap();
    let names: Vec<_> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["creds", "other"]);
    let shown = format!(
        "{} {:?} {:?}",
        serde_json::to_string(&list).unwrap(),
        list,
        e.engine.inspect_secret("creds").unwrap()
    );
    assert!(!shown.contains("s3cr3t"), "{shown}");
    // pachd's Kubernetes answer: a second create of a name fails.
    let again = e.engine.create_secret(CREDS).unwrap_err();
    assert!(
        matches!(again, PpsError::Secret(SecretError::Exists(ref n)) if n == "creds"),
        "{again}"
    );
    assert_eq!(again.to_string(), "secret \"creds\" already exists");
    e.engine.delete_secret("other").unwrap();
    let gone = e.engine.inspect_secret("other").unwrap_err();
    assert_eq!(gone.to_string(), "missing Kubernetes secret other");
    assert!(e.engine.delete_secret("other").is_err());
    let bad = e
        .engine
        .create_secret("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata: {k: '%%%'}\n")
        .unwrap_err();
    assert!(bad.to_string().contains("data.k"), "{bad}");
}

#[test]
fn create_pipeline_names_a_missing_secret_or_key() {
    let e = env();
    e.repo("in");
    let parsed = parse_str(USES_CREDS, "p.yaml").unwrap();
    let err = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap_err();
    let PpsError::InvalidSpec { diagnostics, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(diagnostics[0].path.to_string(), "transform.secrets[0]");
    assert_eq!(diagnostics[0].message, "missing Kubernetes secret creds");
    e.engine
        .create_secret(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {other: x}\n",
        )
        .unwrap();
    let err = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Kubernetes secret creds missing key token"),
        "{err}"
    );
    // The library's `validate` reports it too, with the line of the field.
    let report = e.engine.validate(&parsed[0]);
    assert_eq!(report.errors[0].code, "transform.secret.missing");
    assert!(report.errors[0].location.line > 0);
}

#[test]
fn a_stored_secret_reaches_user_code_and_never_its_logs() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.engine.create_secret(CREDS).unwrap();
    e.create(USES_CREDS);
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{:?}", jobs[0]);
    let tree = e.head_tree("sec");
    assert_eq!(tree, [("/seen".to_string(), "s3cr3t-value".to_string())]);
    let logs = e.engine.logs("sec", Some(&jobs[0].id), None).unwrap();
    assert!(
        logs.iter().any(|l| l.message == "token is <redacted>"),
        "{logs:?}"
    );
    let shown = format!(
        "{:?} {}",
        e.engine.inspect_pipeline("sec").unwrap(),
        serde_json::to_string(&e.engine.inspect_pipeline("sec").unwrap()).unwrap()
    );
    assert!(!shown.contains("s3cr3t"));
}

#[test]
fn deleting_a_secret_in_use_fails_the_next_job_naming_it() {
    let e = env();
    e.repo("in");
    e.engine.create_secret(CREDS).unwrap();
    e.create(USES_CREDS);
    e.engine.delete_secret("creds").unwrap();
    e.commit("in", &[], &[("/a", "a")]);
    let jobs = e.run();
    let last = jobs.last().unwrap();
    assert_eq!(last.state, JobState::JobFailure, "{last:?}");
    assert!(
        last.reason.contains("missing Kubernetes secret creds"),
        "{}",
        last.reason
    );
    // `update pipeline` refuses the spec until the secret exists again.
    let parsed = parse_str(USES_CREDS, "p.yaml").unwrap();
    let update = pipeline_core::pps::CreateOptions {
        update: true,
        ..Default::default()
    };
    let err = e.engine.create_pipelines(&parsed, &update).unwrap_err();
    assert!(
        err.to_string().contains("missing Kubernetes secret creds"),
        "{err}"
    );
    e.engine.create_secret(CREDS).unwrap();
    e.engine.create_pipelines(&parsed, &update).unwrap();
}

#[test]
fn the_host_applications_secret_wins_over_the_stored_one() {
    use pipeline_core::executor::{SecretValue, Secrets};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::pfs::Store::open(dir.path()).unwrap();
    pipeline_core::pps::secrets::create_secret(&store, CREDS).unwrap();
    let mut host = Secrets::default();
    host.0
        .entry("creds".into())
        .or_default()
        .insert("token".into(), SecretValue(b"from-host".to_vec()));
    let engine = pipeline_core::pps::Engine::builder(store)
        .executor(Arc::new(
            executor_process::ProcessExecutor::builder()
                .build()
                .unwrap(),
        ))
        .secrets(host)
        .build()
        .unwrap();
    let e = pps_common::Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(USES_CREDS);
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{:?}", jobs[0]);
    assert_eq!(
        e.head_tree("sec"),
        [("/seen".to_string(), "from-host".to_string())]
    );
}

#[test]
fn a_secret_across_the_64k_line_cut_or_in_err_cmd_output_never_leaks() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.engine.create_secret(CREDS).unwrap();
    // 65,530 bytes then the 12-byte value: the 64 KiB cut falls 6 bytes into it.
    let spec = r#"{"pipeline": {"name": "cut"},
      "transform": {"cmd": ["sh", "-c", "head -c 65530 /dev/zero | tr '\\0' y; printf '%s\\n' \"$TOKEN\"; echo \"$TOKEN$TOKEN\" >&2; exit 3"],
        "err_cmd": ["sh", "-c", "echo err_cmd sees $TOKEN >&2; exit 1"],
        "secrets": [{"name": "creds", "key": "token", "env_var": "TOKEN"}]},
      "datum_tries": 1,
      "input": {"pfs": {"repo": "in", "glob": "/"}}}"#;
    e.create(spec);
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobFailure, "{:?}", jobs[0]);
    let logs = e.engine.logs("cut", Some(&jobs[0].id), None).unwrap();
    let all: String = logs.iter().map(|l| format!("{}\n", l.message)).collect();
    for piece in b"s3cr3t-value".windows(4) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!all.contains(piece), "{piece:?} leaked");
    }
    assert!(
        all.contains("err_cmd sees <redacted>"),
        "{}",
        &all[all.len().saturating_sub(400)..]
    );
    assert!(
        all.contains("<redacted>\n"),
        "the cut value is hidden whole"
    );
    let datums = e.datums("cut", &jobs[0].id);
    let shown = format!("{datums:?} {:?}", jobs[0]);
    assert!(!shown.contains("s3cr3t"));
}

/// A backend whose every datum fails with an error quoting the datum's `$TOKEN`.
#[derive(Debug)]
struct Leaky;

#[derive(Debug)]
struct LeakyWorker;

#[async_trait::async_trait]
impl pipeline_core::executor::Executor for Leaky {
    fn name(&self) -> &'static str {
        "leaky"
    }

    async fn start_workers(
        &self,
        _spec: &pipeline_core::executor::WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn pipeline_core::executor::Worker>>, pipeline_core::executor::ExecutorError>
    {
        Ok(vec![Box::new(LeakyWorker)])
    }

    async fn remove_pipeline(
        &self,
        _project: &str,
        _pipeline: &str,
    ) -> Result<usize, pipeline_core::executor::ExecutorError> {
        Ok(0)
    }
}

#[async_trait::async_trait]
impl pipeline_core::executor::Worker for LeakyWorker {
    fn index(&self) -> usize {
        0
    }

    async fn run(
        &mut self,
        task: pipeline_core::executor::DatumTask,
    ) -> Result<pipeline_core::executor::DatumOutcome, pipeline_core::executor::ExecutorError> {
        let token = task
            .env
            .iter()
            .find(|(k, _)| k == "TOKEN")
            .map(|(_, v)| v.clone());
        Err(pipeline_core::executor::ExecutorError::Backend {
            backend: "leaky",
            message: format!("could not run with token {}", token.unwrap_or_default()),
            source: None,
        })
    }

    async fn stop(&mut self) -> Result<(), pipeline_core::executor::ExecutorError> {
        Ok(())
    }
}

#[test]
fn a_backend_error_quoting_a_secret_is_redacted_in_the_failure_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::pfs::Store::open(dir.path()).unwrap();
    let engine = pipeline_core::pps::Engine::builder(store)
        .executor(std::sync::Arc::new(Leaky))
        .build()
        .unwrap();
    let e = pps_common::Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.engine.create_secret(CREDS).unwrap();
    e.create(USES_CREDS);
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobFailure, "{:?}", jobs[0]);
    let datums = e.datums("sec", &jobs[0].id);
    let shown = format!(
        "{datums:?} {:?} {:?}",
        jobs[0],
        e.engine.logs("sec", Some(&jobs[0].id), None).unwrap()
    );
    assert!(
        shown.contains("could not run with token <redacted>"),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t"), "{shown}");
}
