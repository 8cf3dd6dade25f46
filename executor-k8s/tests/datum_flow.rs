//! The whole datum flow (pod creation through the API, inputs in by tar over exec, program
//! run in its own process group, outputs out by tar) with the exec sessions run as local
//! processes and the API played by an in-memory fake behind kube's tower-test mock service.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FakeApi, LocalExec, local_config, mock_client};
use executor_k8s::K8sExecutor;
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::policy::{DatumPolicy, Verdict};
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, LogSink, LogStream, Program, ProgramKind,
    Secrets, WorkerPoolSpec,
};
use pipeline_core::spec::{EffectiveSpec, PipelineSpec, SecretMount, Transform};

#[derive(Default)]
struct Lines(Mutex<Vec<(LogStream, String)>>);

impl LogSink for Lines {
    fn line(&self, stream: LogStream, line: &str) {
        self.0.lock().unwrap().push((stream, line.to_string()));
    }
}

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    api: FakeApi,
    exec: Arc<LocalExec>,
    executor: K8sExecutor,
}

fn setup(api: FakeApi) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (client, handle) = mock_client();
    api.serve(handle);
    let exec = Arc::new(LocalExec::default());
    let executor = K8sExecutor::builder()
        .config(local_config(&root))
        .exec_transport(exec.clone())
        .build_on(client);
    Env {
        _dir: dir,
        root,
        api,
        exec,
        executor,
    }
}

fn pool(spec: PipelineSpec, workers: usize) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: "edges".into(),
        version: 1,
        workers,
        spec: Arc::new(EffectiveSpec::from_defaulted(spec)),
        secrets: Secrets::default(),
    }
}

fn scratch(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let s = root.join("scratch").join(name);
    std::fs::create_dir_all(s.join("out")).unwrap();
    for (path, content) in files {
        let p = s.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    s
}

fn task(scratch: PathBuf, script: &str, env: Vec<(&str, String)>, logs: Arc<Lines>) -> DatumTask {
    DatumTask {
        job_id: "job1".into(),
        datum_id: "d".repeat(64),
        scratch,
        inputs: vec!["images".into()],
        program: Program::new(ProgramKind::Cmd, vec!["sh".into()], &[script.to_string()]),
        env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs,
    }
}

fn pid_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

#[tokio::test]
async fn datum_inputs_in_outputs_out_logs_and_env() {
    let env = setup(FakeApi::new());
    let mut workers = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 2))
        .await
        .unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(env.api.pod_names().len(), 2);
    let pfs = env.root.join("pfs").display().to_string();
    let logs = Arc::new(Lines::default());
    let s = scratch(&env.root, "d1", &[("images/dir/a.txt", "hello\n")]);
    let script = r#"
        cat "$images" | tr a-z A-Z > "$PFSROOT/out/upper.txt"
        mkdir -p "$PFSROOT/out/sub" && ln -s ../upper.txt "$PFSROOT/out/sub/link"
        read line; echo "stdin:$line"
        echo "to stderr" >&2
        printf 'no newline'
    "#;
    // stdin is the script itself here (cmd = sh); a second line is read by `read`.
    let mut t = task(
        s.clone(),
        script,
        vec![
            ("images", format!("{pfs}/images/dir/a.txt")),
            ("PFSROOT", pfs.clone()),
        ],
        logs.clone(),
    );
    t.program = Program::new(
        ProgramKind::Cmd,
        vec!["sh".into(), "-c".into(), script.into()],
        &["first line".into()],
    );
    let outcome = workers[0].run(t).await.unwrap();
    assert_eq!(outcome, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(
        std::fs::read_to_string(s.join("out/upper.txt")).unwrap(),
        "HELLO\n"
    );
    let link = s.join("out/sub/link");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../upper.txt")
    );
    let lines = logs.0.lock().unwrap().clone();
    assert!(
        lines.contains(&(LogStream::Stdout, "stdin:first line".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogStream::Stderr, "to stderr".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogStream::Stdout, "no newline".into())),
        "{lines:?}"
    );
    // Nothing of the datum is left in the "pod"'s /pfs.
    assert_eq!(std::fs::read_dir(env.root.join("pfs")).unwrap().count(), 0);

    // The next datum on the same worker sees only its own inputs.
    let s2 = scratch(&env.root, "d2", &[("images/b.txt", "b")]);
    let t2 = task(
        s2.clone(),
        "ls -R \"$PFSROOT\" > \"$PFSROOT/out/listing\"",
        vec![("PFSROOT", pfs.clone())],
        Arc::new(Lines::default()),
    );
    assert!(workers[0].run(t2).await.unwrap().is_success());
    let listing = std::fs::read_to_string(s2.join("out/listing")).unwrap();
    assert!(
        listing.contains("b.txt") && !listing.contains("a.txt"),
        "{listing}"
    );

    for w in &mut workers {
        w.stop().await.unwrap();
        w.stop().await.unwrap(); // idempotent
    }
    assert!(env.api.pod_names().is_empty());
    let calls = env.exec.calls.lock().unwrap().len();
    assert_eq!(calls, 6, "three exec sessions per datum");
}

#[tokio::test]
async fn exit_codes_and_accept_return_code() {
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let logs = Arc::new(Lines::default());
    let mk = |code: i32, accept: Vec<i64>| {
        let t = task(
            scratch(
                &env.root,
                &format!("c{code}-{}", accept.len()),
                &[("images/x", "x")],
            ),
            &format!("exit {code}"),
            vec![],
            logs.clone(),
        );
        let policy = DatumPolicy {
            accept_return_code: accept,
            ..DatumPolicy::default()
        };
        (t, policy)
    };
    let (t, policy) = mk(3, vec![]);
    assert_eq!(
        policy.run(&mut *w[0], t).await.unwrap(),
        Verdict::Failed { exit_code: 3 }
    );
    let (t, policy) = mk(3, vec![3]);
    assert_eq!(
        policy.run(&mut *w[0], t).await.unwrap(),
        Verdict::Success { exit_code: 3 }
    );
    let (mut t, _) = mk(0, vec![]);
    t.program = Program::new(
        ProgramKind::Cmd,
        vec!["sh".into(), "-c".into(), "kill -TERM $$".into()],
        &[],
    );
    assert_eq!(
        w[0].run(t).await.unwrap(),
        DatumOutcome::Signaled { signal: 15 }
    );
    let (mut t, _) = mk(0, vec![]);
    t.program = Program::new(ProgramKind::Cmd, vec!["/no/such/program".into()], &[]);
    assert_eq!(
        w[0].run(t).await.unwrap(),
        DatumOutcome::Exited { exit_code: 127 }
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn working_dir_is_used() {
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let wd = env.root.join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    let s = scratch(&env.root, "wd", &[("images/x", "x")]);
    let mut t = task(s, "pwd > where", vec![], Arc::new(Lines::default()));
    t.working_dir = Some(wd.display().to_string());
    assert!(w[0].run(t).await.unwrap().is_success());
    assert_eq!(
        std::fs::read_to_string(wd.join("where")).unwrap().trim(),
        wd.display().to_string()
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn timeout_and_cancel_kill_the_process_group() {
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let marker = env.root.join("bgpid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", marker.display());

    let t = task(
        scratch(&env.root, "t", &[("images/x", "x")]),
        &script,
        vec![],
        Arc::new(Lines::default()),
    );
    let policy = DatumPolicy {
        timeout: Some(Duration::from_millis(700)),
        ..DatumPolicy::default()
    };
    let started = std::time::Instant::now();
    assert_eq!(policy.run(&mut *w[0], t).await.unwrap(), Verdict::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = std::fs::read_to_string(&marker).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !pid_alive(&pid),
        "background child {pid} outlived the timeout"
    );

    std::fs::remove_file(&marker).unwrap();
    let t = task(
        scratch(&env.root, "c", &[("images/x", "x")]),
        &script,
        vec![],
        Arc::new(Lines::default()),
    );
    let cancel = t.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        cancel.cancel();
    });
    assert_eq!(w[0].run(t).await.unwrap(), DatumOutcome::Cancelled);
    let pid = std::fs::read_to_string(&marker).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !pid_alive(&pid),
        "background child {pid} outlived the cancel"
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn background_children_die_with_a_successful_datum() {
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let marker = env.root.join("bgpid");
    let script = format!("sleep 30 & echo $! > {}; exit 0", marker.display());
    let t = task(
        scratch(&env.root, "s", &[("images/x", "x")]),
        &script,
        vec![],
        Arc::new(Lines::default()),
    );
    let started = std::time::Instant::now();
    assert!(w[0].run(t).await.unwrap().is_success());
    // The child holds the session's stdout open: only killing the group ends the datum.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "datum waited for its child"
    );
    let pid = std::fs::read_to_string(&marker).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !pid_alive(&pid),
        "background child {pid} outlived its datum"
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn missing_secret_and_key_are_named() {
    let spec = |key: &str| PipelineSpec {
        transform: Some(Transform {
            secrets: vec![SecretMount {
                name: "creds".into(),
                key: Some(key.into()),
                env_var: Some("TOKEN".into()),
                mount_path: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let env = setup(FakeApi::new());
    let err = env
        .executor
        .start_workers(&pool(spec("token"), 1))
        .await
        .unwrap_err();
    match err {
        ExecutorError::InvalidTask { field, message } => {
            assert_eq!(field, "transform.secrets[0].name");
            assert!(
                message.contains("\"creds\"") && message.contains("test-ns"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    env.api.add_secret("creds", &["user"]);
    let err = env
        .executor
        .start_workers(&pool(spec("token"), 1))
        .await
        .unwrap_err();
    match err {
        ExecutorError::InvalidTask { field, message } => {
            assert_eq!(field, "transform.secrets[0].key");
            assert!(message.contains("missing key \"token\""), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        env.api.pod_names().is_empty(),
        "no pod is created for a bad spec"
    );
    env.api.add_secret("creds", &["token"]);
    let mut w = env
        .executor
        .start_workers(&pool(spec("token"), 1))
        .await
        .unwrap();
    // The secret's variable is not resent on the exec command line.
    let mut t = task(
        scratch(&env.root, "s", &[("images/x", "x")]),
        "true",
        vec![("TOKEN", "s3cr3t".into())],
        Arc::new(Lines::default()),
    );
    t.inputs = vec!["images".into()];
    assert!(w[0].run(t).await.unwrap().is_success());
    let calls = env.exec.calls.lock().unwrap().clone();
    assert!(
        calls
            .iter()
            .all(|(_, argv)| argv.iter().all(|a| !a.contains("s3cr3t")))
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn leftovers_of_a_crashed_host_are_removed() {
    let api = FakeApi::new();
    let env = setup(api.clone());
    // Another executor instance with the same owner (the same host before a crash).
    let (client2, handle2) = mock_client();
    api.serve(handle2);
    let crashed = K8sExecutor::builder()
        .config(local_config(&env.root))
        .build_on(client2);
    let old = crashed
        .start_workers(&pool(PipelineSpec::default(), 2))
        .await
        .unwrap();
    std::mem::forget(old); // a crash: no stop, no drop
    // A pod of another owner and one of another pipeline must survive.
    let mut other_owner = executor_k8s::build_worker_pod(
        &pool(PipelineSpec::default(), 1),
        &executor_k8s::K8sConfig {
            owner: "host-b".into(),
            ..local_config(&env.root)
        },
        0,
    )
    .unwrap();
    other_owner.metadata.name = Some("other-owner".into());
    api.insert_pod(other_owner);
    let mut other_pipeline = pool(PipelineSpec::default(), 1);
    other_pipeline.pipeline = "montage".into();
    let keep = crashed.start_workers(&other_pipeline).await.unwrap();
    assert_eq!(api.pod_names().len(), 4);

    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let names = api.pod_names();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"other-owner".to_string()));
    assert_eq!(api.state.lock().unwrap().deleted.len(), 2);

    // remove_pipeline removes this owner's pods of the pipeline, live ones included.
    assert_eq!(
        env.executor
            .remove_pipeline("default", "edges")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        env.executor
            .remove_pipeline("default", "edges")
            .await
            .unwrap(),
        0
    );
    assert_eq!(api.pod_names().len(), 2);
    // A worker whose pod is gone reports the loss with the reason.
    let t = task(
        scratch(&env.root, "x", &[("images/x", "x")]),
        "true",
        vec![],
        Arc::new(Lines::default()),
    );
    let _ = w[0].run(t).await; // the local fake still "execs"; stop must stay idempotent
    w[0].stop().await.unwrap();
    drop(keep);
}

#[tokio::test]
async fn shared_volume_links_instead_of_copying() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let shared = root.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let (client, handle) = mock_client();
    FakeApi::new().serve(handle);
    let exec = Arc::new(LocalExec::default());
    let config = executor_k8s::K8sConfig {
        // Locally the "pod" sees the share at the same path as the host.
        shared_volume: Some(executor_k8s::SharedVolume {
            claim_name: "scratch".into(),
            mount_path: shared.display().to_string(),
            host_path: shared.clone(),
        }),
        ..local_config(&root)
    };
    let executor = K8sExecutor::builder()
        .config(config)
        .exec_transport(exec.clone())
        .build_on(client);
    let mut w = executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let pfs = root.join("pfs").display().to_string();
    let s = scratch(&shared, "d1", &[("images/a.txt", "abc")]);
    let t = task(
        s.clone(),
        r#"test -L "$P/images" && cp "$P/images/a.txt" "$P/out/copy.txt""#,
        vec![("P", pfs)],
        Arc::new(Lines::default()),
    );
    assert!(w[0].run(t).await.unwrap().is_success());
    assert_eq!(
        std::fs::read_to_string(s.join("out/copy.txt")).unwrap(),
        "abc"
    );
    let calls = exec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(
        calls[0].1[2].contains("ln -s"),
        "prepare links: {:?}",
        calls[0].1
    );
    assert!(
        calls.iter().all(|(_, argv)| !argv[2].contains("tar ")),
        "no tar stream"
    );
    // A scratch directory outside the share falls back to tar streams.
    let s2 = scratch(&root, "d2", &[("images/a.txt", "abc")]);
    let t2 = task(s2.clone(), "true", vec![], Arc::new(Lines::default()));
    assert!(w[0].run(t2).await.unwrap().is_success());
    assert!(exec.calls.lock().unwrap()[3].1[2].contains("tar -x"));
    w[0].stop().await.unwrap();
}

/// Per-datum cost of the exec data path (three local exec sessions, tar in and out) as a
/// ratio to a baseline measured in the same run: spawning the same user program directly.
/// Not a pass/fail test: `cargo test -p executor-k8s --test datum_flow -- --ignored
/// --nocapture measure_datum_overhead`.
#[tokio::test]
#[ignore = "measurement, prints numbers"]
async fn measure_datum_overhead() {
    const N: usize = 100;
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let pfs = env.root.join("pfs").display().to_string();
    let script = r#"cp "$P/images/a.txt" "$P/out/b.txt""#;

    let baseline_dir = env.root.join("baseline");
    std::fs::create_dir_all(baseline_dir.join("images")).unwrap();
    std::fs::create_dir_all(baseline_dir.join("out")).unwrap();
    std::fs::write(baseline_dir.join("images/a.txt"), vec![b'x'; 4096]).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..N {
        let st = tokio::process::Command::new("sh")
            .args(["-c", script])
            .env("P", &baseline_dir)
            .status()
            .await
            .unwrap();
        assert!(st.success());
    }
    let baseline = started.elapsed();

    let started = std::time::Instant::now();
    for i in 0..N {
        let s = scratch(
            &env.root,
            &format!("m{i}"),
            &[("images/a.txt", &"x".repeat(4096))],
        );
        let t = task(
            s,
            script,
            vec![("P", pfs.clone())],
            Arc::new(Lines::default()),
        );
        let mut t = t;
        t.program = Program::new(
            ProgramKind::Cmd,
            vec!["sh".into(), "-c".into(), script.into()],
            &[],
        );
        assert!(w[0].run(t).await.unwrap().is_success());
    }
    let flow = started.elapsed();
    println!(
        "{N} datums: direct spawn {:?}/datum, exec data path {:?}/datum, ratio {:.1}x",
        baseline / N as u32,
        flow / N as u32,
        flow.as_secs_f64() / baseline.as_secs_f64()
    );
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn unusable_input_names_and_env_are_rejected_before_anything_runs() {
    let env = setup(FakeApi::new());
    let mut w = env
        .executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    for bad in ["..", "a/b", ""] {
        let mut t = task(
            scratch(&env.root, "bad", &[("images/x", "x")]),
            "true",
            vec![],
            Arc::new(Lines::default()),
        );
        t.inputs = vec![bad.into()];
        match w[0].run(t).await {
            Err(ExecutorError::InvalidTask { field, message }) => {
                assert_eq!(field, "input.name");
                assert!(message.contains(&format!("{bad:?}")), "{message}");
            }
            other => panic!("{bad:?}: unexpected {other:?}"),
        }
    }
    let t = task(
        scratch(&env.root, "bad-env", &[("images/x", "x")]),
        "true",
        vec![("A=B", "v".into())],
        Arc::new(Lines::default()),
    );
    assert!(matches!(
        w[0].run(t).await,
        Err(ExecutorError::InvalidTask { field, .. }) if field == "transform.env"
    ));
    assert_eq!(env.exec.calls.lock().unwrap().len(), 0, "nothing ran");
    w[0].stop().await.unwrap();
}

#[tokio::test]
async fn cancel_during_a_slow_upload_returns_promptly() {
    /// Stalls every `prepare` session (the tar upload) until its future is dropped.
    #[derive(Debug, Default)]
    struct StallPrepare(LocalExec);
    #[async_trait::async_trait]
    impl executor_k8s::ExecTransport for StallPrepare {
        async fn exec(
            &self,
            pod: &str,
            container: &str,
            argv: &[String],
            io: executor_k8s::ExecIo,
        ) -> Result<i32, executor_k8s::ExecError> {
            if argv.get(2).is_some_and(|s| s.contains("tar -x")) {
                std::future::pending::<()>().await;
            }
            self.0.exec(pod, container, argv, io).await
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (client, handle) = mock_client();
    FakeApi::new().serve(handle);
    let executor = K8sExecutor::builder()
        .config(local_config(dir.path()))
        .exec_transport(Arc::new(StallPrepare::default()))
        .build_on(client);
    let mut w = executor
        .start_workers(&pool(PipelineSpec::default(), 1))
        .await
        .unwrap();
    let t = task(
        scratch(dir.path(), "c", &[("images/x", "x")]),
        "true",
        vec![],
        Arc::new(Lines::default()),
    );
    let cancel = t.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let outcome = tokio::time::timeout(Duration::from_secs(5), w[0].run(t))
        .await
        .expect("cancel is prompt");
    assert_eq!(outcome.unwrap(), DatumOutcome::Cancelled);
    w[0].stop().await.unwrap();
}
