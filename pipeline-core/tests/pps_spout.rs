//! Spouts in the engine (reference §1.9, §3.6) with the process executor and a host that
//! grants each run an environment: no jobs for the spout's commits, a run per grant (each
//! revoked when it ends), restarts with backoff and the last error shown, stop and delete
//! ending the run, update replacing it; and an engine without a host that says why its spouts do not run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{BranchRef, PfsError, RepoRef, Store};
use pipeline_core::pps::{
    CreateOptions, Engine, SpoutAccess, SpoutAccessRequest, SpoutHost, SpoutRestart, SpoutState,
    TransactionRequest,
};

/// A host that grants `SPOUT_GRANT=<n>` to run n and counts grants and revocations.
#[derive(Debug, Default)]
struct CountingHost {
    grants: AtomicUsize,
    revoked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl SpoutHost for CountingHost {
    async fn grant(&self, request: &SpoutAccessRequest) -> Result<SpoutAccess, String> {
        assert_eq!(request.executor, "process");
        assert!(request.host.is_loopback());
        let n = self.grants.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(SpoutAccess {
            env: vec![("SPOUT_GRANT".into(), n.to_string())],
            credential: format!("token-{n}"),
        })
    }

    fn revoke(&self, access: &SpoutAccess) {
        self.revoked.lock().unwrap().push(access.credential.clone());
    }

    fn is_granted(&self, _credential: &str, _branch: &BranchRef) -> bool {
        false
    }
}

fn engine(dir: &std::path::Path) -> Engine {
    let store = Store::open(dir).unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    engine.set_spout_restart(SpoutRestart {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        reset_after: Duration::from_secs(60),
    });
    engine
}

fn spout(name: &str, script: &str) -> pipeline_core::spec::PipelineSpec {
    let text = serde_json::json!({
        "pipeline": {"name": name},
        "spout": {},
        "transform": {"cmd": ["sh", "-c", script]},
    })
    .to_string();
    pipeline_core::spec::parse_str(&text, "spout.json")
        .unwrap()
        .remove(0)
        .spec
}

/// Polls `check` (at most 30 s) until it returns `Some`.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spout_runs_per_grant_restarts_with_backoff_and_has_no_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let host = Arc::new(CountingHost::default());
    engine.set_spout_host(host.clone());
    engine
        .create_pipeline(
            &spout("s", "echo run $SPOUT_GRANT as $PPS_PIPELINE_NAME; exit 7"),
            &CreateOptions::default(),
        )
        .unwrap();
    assert!(engine.run_pending().await.unwrap().is_empty());
    let status = wait_for("three restarts", || {
        engine.spout_status("s").filter(|s| s.restarts >= 3)
    })
    .await;
    assert_eq!(status.last_error.as_deref(), Some("exited with code 7"));
    assert!(status.last_exit_ms.is_some());
    let lines: Vec<String> = engine
        .logs("s", Some("spout"), None)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(lines.contains(&"run 1 as s".to_string()), "{lines:?}");
    assert!(lines.contains(&"run 2 as s".to_string()), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "spout s: exited with code 7; restart 1 in 50 ms"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "spout s: exited with code 7; restart 4 in 200 ms"
                || l == "spout s: exited with code 7; restart 3 in 200 ms"),
        "the backoff doubles up to its maximum: {lines:?}"
    );

    // A commit on the spout's branch (here straight in the store) is not a job.
    let out = engine.inspect_pipeline("s").unwrap().output_branch;
    let c = engine.store().start_commit(&out, "").unwrap().commit;
    engine.store().put_file_bytes(&c, "/x", b"x").unwrap();
    engine.run_pending().await.unwrap();
    assert!(engine.list_jobs(Some("s")).unwrap().is_empty());

    // Deleting ends the run and revokes every grant.
    engine.delete_pipeline("s", false).await.unwrap();
    assert!(engine.spout_status("s").is_none());
    let granted = host.grants.load(Ordering::SeqCst);
    assert_eq!(host.revoked.lock().unwrap().len(), granted);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_spout_ends_its_run_and_starting_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let host = Arc::new(CountingHost::default());
    engine.set_spout_host(host.clone());
    engine
        .create_pipeline(&spout("long", "exec sleep 1000"), &CreateOptions::default())
        .unwrap();
    engine.run_pending().await.unwrap();
    wait_for("the spout to run", || {
        engine
            .spout_status("long")
            .filter(|s| s.state == SpoutState::Running)
    })
    .await;
    engine.stop_pipeline("long").unwrap();
    assert!(engine.spout_status("long").is_none());
    wait_for("the grant to be revoked", || {
        (host.revoked.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    engine.start_pipeline("long").unwrap();
    let s = wait_for("the spout to run again", || {
        engine
            .spout_status("long")
            .filter(|s| s.state == SpoutState::Running)
    })
    .await;
    assert_eq!(s.restarts, 0);
    assert_eq!(host.grants.load(Ordering::SeqCst), 2);

    // Updating runs the new version in place of the old one.
    let update = CreateOptions {
        update: true,
        ..CreateOptions::default()
    };
    engine
        .create_pipeline(&spout("long", "exec sleep 1001"), &update)
        .unwrap();
    engine.run_pending().await.unwrap();
    wait_for("version 2 to run", || {
        engine
            .spout_status("long")
            .filter(|s| s.version == 2 && s.state == SpoutState::Running)
    })
    .await;
    assert_eq!(host.grants.load(Ordering::SeqCst), 3);
    engine.shutdown().await;
    assert_eq!(host.revoked.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_without_a_spout_host_says_why_its_spout_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    engine
        .create_pipeline(&spout("idle", "exit 0"), &CreateOptions::default())
        .unwrap();
    assert!(engine.run_pending().await.unwrap().is_empty());
    assert!(engine.spout_status("idle").is_none());
    let info = engine.with_spout_status(engine.inspect_pipeline("idle").unwrap());
    let status = info.spout_status.unwrap();
    assert_eq!(status.state, SpoutState::Waiting);
    assert!(
        status.last_error.unwrap().contains("`pipectl serve`"),
        "the error says where spouts run"
    );
    engine.shutdown().await;
}

/// `spout.service`: the spout's code also serves a port, reached on the host's
/// `127.0.0.1:<external_port>` (relayed to its `internal_port`) for as long as a run lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spout_with_a_service_is_reached_on_its_external_port() {
    use pipeline_core::testkit::service::{free_port, http_get};
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    engine.set_spout_host(Arc::new(CountingHost::default()));
    let (internal, external) = (free_port(), free_port());
    let text = serde_json::json!({
        "pipeline": {"name": "served"},
        "spout": {"service": {"internal_port": internal, "external_port": external}},
        "transform": {"cmd": ["sh", "-c", format!(
            "mkdir -p /pfs/out/www && echo from-the-spout > /pfs/out/www/hello.txt && \
             exec busybox httpd -f -p 127.0.0.1:{internal} -h /pfs/out/www"
        )]},
    })
    .to_string();
    let spec = pipeline_core::spec::parse_str(&text, "spout.json")
        .unwrap()
        .remove(0)
        .spec;
    engine
        .create_pipeline(&spec, &CreateOptions::default())
        .unwrap();
    engine.run_pending().await.unwrap();
    let body = wait_for("the spout's service to answer", || {
        http_get(external, "/hello.txt")
    })
    .await;
    assert_eq!(body, "from-the-spout\n");
    engine.stop_pipeline("served").unwrap();
    wait_for("the relay to stop", || {
        http_get(external, "/hello.txt").is_none().then_some(())
    })
    .await;
    engine.shutdown().await;
}

/// A host whose only valid credential is `right`, for the output branch of spout `idle`.
#[derive(Debug)]
struct OneCredentialHost;

#[async_trait::async_trait]
impl SpoutHost for OneCredentialHost {
    async fn grant(&self, _request: &SpoutAccessRequest) -> Result<SpoutAccess, String> {
        Ok(SpoutAccess {
            env: Vec::new(),
            credential: "right".into(),
        })
    }

    fn revoke(&self, _access: &SpoutAccess) {}

    fn is_granted(&self, credential: &str, branch: &BranchRef) -> bool {
        credential == "right" && branch.repo.name == "idle" && branch.name == "master"
    }
}

/// The engine's rule, without a server: only the spout's granted credential writes its
/// output branch; anyone else (and a transaction) gets Pachyderm's refusal; other branches
/// are not the rule's business.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_spouts_credential_may_write_its_output_branch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    engine.set_spout_host(Arc::new(OneCredentialHost));
    engine
        .create_pipeline(&spout("idle", "exec sleep 1000"), &CreateOptions::default())
        .unwrap();
    let data = RepoRef::new("data").unwrap();
    engine.store().create_repo(&data, "").unwrap();
    let idle = RepoRef::new("idle").unwrap();
    let out = idle.branch("master").unwrap();
    let refused = "cannot start a commit on an output branch: default/idle@master";

    for who in [None, Some("wrong")] {
        let err = engine.check_output_write(&out, who).unwrap_err();
        assert!(matches!(err, PfsError::OutputBranch { .. }), "{err}");
        assert!(err.to_string().contains(refused), "{err}");
    }
    engine.check_output_write(&out, Some("right")).unwrap();
    let err = engine
        .check_commit_write(&idle, "master", None)
        .unwrap_err();
    assert!(err.to_string().contains(refused), "{err}");
    engine
        .check_output_write(&idle.branch("side").unwrap(), None)
        .unwrap();
    engine
        .check_output_write(&data.branch("master").unwrap(), None)
        .unwrap();

    let before = engine.store().inspect_branch(&out).unwrap().head;
    let txn = engine.start_transaction().unwrap();
    let err = engine
        .append_transaction_request(
            &txn.id,
            TransactionRequest::StartCommit {
                branch: "idle@master".into(),
                description: String::new(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains(refused), "{err}");
    assert!(
        engine
            .finish_transaction(&txn.id)
            .await
            .unwrap()
            .commit_set
            .is_none()
    );
    assert_eq!(engine.store().inspect_branch(&out).unwrap().head, before);
    engine.shutdown().await;
}
