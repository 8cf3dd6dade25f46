//! Tests against the real Docker Engine on this machine (skipped outside CI when it is absent).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use executor_docker::{DataMode, DockerConfig, DockerExecutor, PullPolicy, labels};
use pipeline_core::executor::policy::{DatumPolicy, Verdict};
use pipeline_core::executor::{
    DatumOutcome, Executor, ExecutorError, LogStream, SecretValue, Secrets,
};
use pipeline_core::spec::{ResourceSpec, SecretMount};
use support::{Lines, executor, executor_with, pool, processes, scratch, shell_task, task};

/// The id of the (only) container of worker 0 of `pipeline`.
async fn container_id(exec: &DockerExecutor, pipeline: &str) -> String {
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![
            format!("{}={}", labels::PIPELINE, pipeline),
            format!("{}=0", labels::WORKER),
        ],
    )]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = exec.client().list_containers(Some(opts)).await.unwrap();
    let mine: Vec<_> = list
        .into_iter()
        .filter(|c| c.labels.as_ref().unwrap()[labels::OWNER] == exec_owner(exec))
        .collect();
    assert_eq!(mine.len(), 1, "one container for worker 0 of {pipeline}");
    mine[0].id.clone().unwrap()
}

fn exec_owner(exec: &DockerExecutor) -> String {
    exec.owner().to_string()
}

async fn datum_round_trip(mode: DataMode, test: &str) {
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = executor(test, mode).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut workers = exec.start_workers(&pool(test, 1, |_| {})).await.unwrap();
    let w = &mut workers[0];
    let first_container = container_id(&exec, test).await;

    let s1 = scratch(tmp.path(), &[("in1/dir/a.txt", "alpha\n")]);
    let logs = Arc::new(Lines::default());
    let script = r#"
        cat "$in1/dir/a.txt" > /pfs/out/a.txt
        mkdir -p /pfs/out/sub && echo nested > /pfs/out/sub/n.txt
        ln -s a.txt /pfs/out/link
        if touch /pfs/in1/new 2>/dev/null; then echo inputs-writable; else echo inputs-readonly; fi
        echo to-stderr >&2
        printf 'no-newline'
    "#;
    // As a non-root user: in archive mode read-only inputs rest on file modes only.
    let mut t = shell_task(&s1, &["in1"], script, logs.clone());
    t.user = Some("65534:65534".into());
    let out = w.run(t).await.unwrap();
    assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(
        std::fs::read_to_string(s1.join("out/a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(s1.join("out/sub/n.txt")).unwrap(),
        "nested\n"
    );
    let link = s1.join("out/link");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some("a.txt"));
    assert_eq!(
        std::fs::read_to_string(s1.join("in1/dir/a.txt")).unwrap(),
        "alpha\n",
        "inputs are back in scratch"
    );
    assert!(!s1.join("in1/new").exists());
    assert_eq!(
        logs.of(LogStream::Stdout),
        ["inputs-readonly", "no-newline"]
    );
    assert_eq!(logs.of(LogStream::Stderr), ["to-stderr"]);

    // The next datum sees only its own /pfs, on the same container.
    let s2 = scratch(tmp.path(), &[("in2/b.txt", "beta")]);
    let logs2 = Arc::new(Lines::default());
    let out = w
        .run(shell_task(
            &s2,
            &["in2"],
            "ls -A /pfs; ls -A /pfs/out; echo ---; cat /pfs/in2/b.txt",
            logs2.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(logs2.of(LogStream::Stdout), ["in2", "out", "---", "beta"]);
    assert_eq!(
        container_id(&exec, test).await,
        first_container,
        "worker reused"
    );

    for w in &mut workers {
        w.stop().await.unwrap();
        w.stop().await.unwrap(); // idempotent
    }
    assert_eq!(exec.remove_pipeline("default", test).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_mode_round_trip() {
    datum_round_trip(DataMode::Bind, "bind").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_mode_round_trip() {
    datum_round_trip(DataMode::Archive, "archive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_signals_and_accepted_codes() {
    let _cleanup = support::Cleanup(support::owner("codes"));
    let Some(exec) = executor("codes", DataMode::Auto).await else {
        return;
    };
    assert_eq!(
        exec.data_mode(),
        DataMode::Bind,
        "unix socket → bind mounts"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = exec.start_workers(&pool("codes", 1, |_| {})).await.unwrap();
    let w = &mut ws[0];
    let logs = Arc::new(Lines::default());
    let s = scratch(tmp.path(), &[]);
    let run = |script: &str| shell_task(&s, &[], script, logs.clone());
    assert_eq!(
        w.run(run("exit 3")).await.unwrap(),
        DatumOutcome::Exited { exit_code: 3 }
    );
    let accept = DatumPolicy {
        accept_return_code: vec![3],
        ..DatumPolicy::default()
    };
    assert_eq!(
        accept.run(&mut **w, run("exit 3")).await.unwrap(),
        Verdict::Success { exit_code: 3 }
    );
    assert_eq!(
        w.run(run("kill -9 $$")).await.unwrap(),
        DatumOutcome::Signaled { signal: 9 }
    );
    // No shell: argv is exec'ed directly, stdin is fed.
    let direct = task(
        &s,
        &[],
        vec!["cat".into()],
        &["line one".into(), "line two".into()],
        logs.clone(),
    );
    assert_eq!(
        w.run(direct).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert!(
        logs.of(LogStream::Stdout)
            .ends_with(&["line one".to_string(), "line two".to_string()])
    );
    let missing = task(&s, &[], vec!["no-such-program".into()], &[], logs.clone());
    assert_eq!(
        w.run(missing).await.unwrap(),
        DatumOutcome::Exited { exit_code: 127 }
    );
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_process_tree_not_the_worker() {
    let _cleanup = support::Cleanup(support::owner("timeout"));
    let Some(exec) = executor("timeout", DataMode::Bind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = exec
        .start_workers(&pool("timeout", 1, |_| {}))
        .await
        .unwrap();
    let w = &mut ws[0];
    let id = container_id(&exec, "timeout").await;
    let logs = Arc::new(Lines::default());
    let s = scratch(tmp.path(), &[]);
    let t = shell_task(&s, &[], "sleep 301 & sleep 302; echo never", logs.clone());
    let policy = DatumPolicy {
        timeout: Some(Duration::from_millis(800)),
        ..DatumPolicy::default()
    };
    let start = Instant::now();
    assert_eq!(policy.run(&mut **w, t).await.unwrap(), Verdict::TimedOut);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    let left = processes(&exec, &id).await;
    assert!(
        !left.iter().any(|p| p.contains("sleep 30")),
        "leftovers: {left:?}"
    );
    assert!(logs.of(LogStream::Stdout).is_empty());

    // A background child of a *successful* datum does not outlive it either.
    let t = shell_task(&s, &[], "sleep 303 & echo started", logs.clone());
    assert_eq!(
        w.run(t).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    let left = processes(&exec, &id).await;
    assert!(
        !left.iter().any(|p| p.contains("sleep 303")),
        "leftovers: {left:?}"
    );

    // User code that kills the wrapper (its parent) leaves nothing running either.
    let t = shell_task(
        &s,
        &[],
        "sleep 306 & kill -9 $PPID; sleep 307",
        logs.clone(),
    );
    assert_eq!(
        w.run(t).await.unwrap(),
        DatumOutcome::Signaled { signal: 9 }
    );
    let left = processes(&exec, &id).await;
    assert!(
        !left.iter().any(|p| p.contains("sleep 30")),
        "leftovers: {left:?}"
    );

    // Cancellation.
    let mut t = shell_task(&s, &[], "sleep 304", logs.clone());
    let cancel = t.cancel.clone();
    t.cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    });
    assert_eq!(w.run(t).await.unwrap(), DatumOutcome::Cancelled);
    let left = processes(&exec, &id).await;
    assert!(
        !left.iter().any(|p| p.contains("sleep 304")),
        "leftovers: {left:?}"
    );

    // A dropped run future kills its datum too.
    let t = shell_task(&s, &[], "sleep 305", logs.clone());
    let _ = tokio::time::timeout(Duration::from_millis(500), w.run(t)).await;
    // The next datum starts at once and is not hit by the dropped datum's kill.
    let t = shell_task(&s, &[], "sleep 1; echo survived", logs.clone());
    assert_eq!(
        w.run(t).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(
        logs.of(LogStream::Stdout).last().map(String::as_str),
        Some("survived")
    );
    assert!(
        support::eventually(Duration::from_secs(5), async || {
            !processes(&exec, &id)
                .await
                .iter()
                .any(|p| p.contains("sleep 305"))
        })
        .await
    );

    // Same container afterwards.
    assert_eq!(
        w.run(shell_task(&s, &[], "true", logs.clone()))
            .await
            .unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(container_id(&exec, "timeout").await, id);
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_is_lost_then_replaced() {
    let _cleanup = support::Cleanup(support::owner("lost"));
    let Some(exec) = executor("lost", DataMode::Bind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = exec.start_workers(&pool("lost", 1, |_| {})).await.unwrap();
    let w = &mut ws[0];
    let id = container_id(&exec, "lost").await;
    let logs = Arc::new(Lines::default());
    let s = scratch(tmp.path(), &[("in/a", "a")]);
    let docker = exec.client().clone();
    let killer = {
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            docker
                .kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>)
                .await
                .unwrap();
        })
    };
    let err = w
        .run(shell_task(
            &s,
            &["in"],
            "echo partial > /pfs/out/p; sleep 60",
            logs.clone(),
        ))
        .await
        .unwrap_err();
    killer.await.unwrap();
    assert!(
        matches!(err, ExecutorError::WorkerLost { worker: 0, .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(s.join("in/a").exists(), "inputs given back");
    assert!(
        !s.join("out/p").exists(),
        "outputs of a lost datum are dropped"
    );

    // The retry runs on a replacement container.
    let out = w
        .run(shell_task(
            &s,
            &["in"],
            "cat /pfs/in/a > /pfs/out/a",
            logs.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(std::fs::read_to_string(s.join("out/a")).unwrap(), "a");
    assert_ne!(container_id(&exec, "lost").await, id);

    // A container removed between datums is replaced before the datum runs.
    let id2 = container_id(&exec, "lost").await;
    exec.client()
        .remove_container(
            &id2,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    let s2 = scratch(tmp.path(), &[]);
    let out = w
        .run(shell_task(&s2, &[], "echo ok > /pfs/out/ok", logs.clone()))
        .await
        .unwrap();
    assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
    assert!(s2.join("out/ok").exists());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_daemon_names_the_address() {
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:9"] {
        let start = Instant::now();
        let err = DockerExecutor::builder()
            .config(DockerConfig {
                host: Some(host.to_string()),
                request_timeout: Duration::from_secs(5),
                ..DockerConfig::default()
            })
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, ExecutorError::Unavailable { .. }), "{err}");
        let msg = err.to_string();
        let shown = host.replace("tcp://", "");
        assert!(msg.contains(&shown), "{msg}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_fails_fast_naming_it() {
    let _cleanup = (
        support::Cleanup(support::owner("noimage")),
        support::Cleanup(support::owner("noimage-never")),
    );
    let Some(exec) = executor_with("noimage", DataMode::Bind, |c| {
        c.pull_timeout = Duration::from_secs(15);
    })
    .await
    else {
        return;
    };
    let image = "executor-docker-test/definitely-missing:7";
    let spec = pool("noimage", 1, |s| {
        s.transform.as_mut().unwrap().image = Some(image.into());
    });
    let start = Instant::now();
    let err = exec.start_workers(&spec).await.unwrap_err();
    assert!(matches!(err, ExecutorError::ImageNotFound { .. }), "{err}");
    assert!(err.to_string().contains(image), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));

    let never = executor_with("noimage-never", DataMode::Bind, |c| {
        c.pull_policy = PullPolicy::Never
    })
    .await
    .unwrap();
    let err = never.start_workers(&spec).await.unwrap_err();
    assert!(err.to_string().contains("pull policy is Never"), "{err}");
    assert_eq!(exec.remove_pipeline("default", "noimage").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_without_a_shell_is_refused_clearly() {
    let _cleanup = support::Cleanup(support::owner("nosh"));
    let Some(exec) = executor("nosh", DataMode::Bind).await else {
        return;
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(3);
    b.append_data(&mut h, "etc/hostname", &b"x\n"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo("executor-docker-test/no-shell")
        .tag("1")
        .build();
    use futures::StreamExt;
    let mut st = exec
        .client()
        .create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
    while let Some(r) = st.next().await {
        r.unwrap();
    }
    let spec = pool("nosh", 1, |s| {
        s.transform.as_mut().unwrap().image = Some("executor-docker-test/no-shell:1".into());
    });
    let err = exec.start_workers(&spec).await.unwrap_err();
    assert!(matches!(err, ExecutorError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string().contains("no-shell:1") && err.to_string().contains("sh"),
        "{err}"
    );
    assert_eq!(
        exec.remove_pipeline("default", "nosh").await.unwrap(),
        0,
        "torn down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_workdir_env_secrets_limits_and_network() {
    let _cleanup = support::Cleanup(support::owner("settings"));
    let Some(exec) = executor("settings", DataMode::Bind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = pool("settings", 1, |s| {
        s.resource_limits = Some(ResourceSpec {
            cpu: Some(0.5),
            memory: Some("64Mi".into()),
            ..Default::default()
        });
        s.resource_requests = Some(ResourceSpec {
            cpu: Some(0.25),
            ..Default::default()
        });
        let t = s.transform.as_mut().unwrap();
        t.secrets = vec![
            SecretMount {
                name: "creds".into(),
                mount_path: Some("/var/secrets/creds".into()),
                ..Default::default()
            },
            SecretMount {
                name: "creds".into(),
                key: Some("token".into()),
                env_var: Some("TOKEN".into()),
                ..Default::default()
            },
        ];
    });
    spec.secrets = Secrets(
        [(
            "creds".to_string(),
            [("token".to_string(), SecretValue(b"s3cr3t-value".to_vec()))].into(),
        )]
        .into(),
    );
    let mut ws = exec.start_workers(&spec).await.unwrap();
    let w = &mut ws[0];
    let id = container_id(&exec, "settings").await;
    let logs = Arc::new(Lines::default());
    let s = scratch(tmp.path(), &[]);
    let mut t = shell_task(
        &s,
        &[],
        "id -u; pwd; echo \"$GREETING\"; cat /var/secrets/creds/token; echo; [ \"$TOKEN\" = s3cr3t-value ] && echo env-ok; ls /sys/class/net; echo hi > /pfs/out/f",
        logs.clone(),
    );
    t.user = Some("65534".into());
    t.working_dir = Some("/tmp".into());
    t.env = vec![
        ("GREETING".into(), "hello".into()),
        ("TOKEN".into(), "s3cr3t-value".into()),
    ];
    assert_eq!(
        w.run(t).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(
        logs.of(LogStream::Stdout),
        ["65534", "/tmp", "hello", "s3cr3t-value", "env-ok", "lo"],
        "stderr: {:?}",
        logs.of(LogStream::Stderr)
    );
    assert!(
        s.join("out/f").exists(),
        "a non-root user can write /pfs/out"
    );

    let info = exec.client().inspect_container(&id, None).await.unwrap();
    let hc = info.host_config.unwrap();
    assert_eq!(hc.memory, Some(64 << 20));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.cpu_shares, Some(256));
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    let cfg = info.config.unwrap();
    let labels_ = cfg.labels.unwrap();
    assert_eq!(labels_[labels::PIPELINE], "settings");
    assert_eq!(labels_[labels::VERSION], "1");
    assert_eq!(labels_[labels::WORKER], "0");
    let shown = format!("{:?} {:?} {labels_:?}", cfg.env, cfg.cmd);
    assert!(
        !shown.contains("s3cr3t"),
        "secret in container config: {shown}"
    );
    assert!(!format!("{spec:?}").contains("s3cr3t"));

    // A user the image does not know is an invalid task naming the field, not a datum failure.
    let mut t = shell_task(&s, &[], "true", logs.clone());
    t.user = Some("no-such-user".into());
    let err = w.run(t).await.unwrap_err();
    assert!(matches!(err, ExecutorError::InvalidTask { .. }), "{err}");
    assert!(err.to_string().starts_with("transform.user:"), "{err}");
    assert!(err.to_string().contains("no-such-user"), "{err}");

    // A secret the host did not supply is a clear error naming the field.
    let mut missing = spec.clone();
    missing.secrets = Secrets::default();
    let err = exec.start_workers(&missing).await.unwrap_err();
    assert!(err.to_string().starts_with("transform.secrets[0]"), "{err}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_workers_leftovers_and_remove_pipeline() {
    let _cleanup = support::Cleanup(support::owner("leftovers"));
    let Some(exec) = executor("leftovers", DataMode::Bind).await else {
        return;
    };
    let spec = pool("leftovers", 2, |_| {});
    let ws = exec.start_workers(&spec).await.unwrap();
    assert_eq!(ws.len(), 2);
    assert_eq!(ws[1].index(), 1);
    // "Crash": forget the workers without stopping them.
    std::mem::forget(ws);
    let again = executor("leftovers", DataMode::Bind).await.unwrap();
    assert_eq!(
        again.remove_pipeline("default", "leftovers").await.unwrap(),
        0,
        "removed on connect"
    );

    let ws = again.start_workers(&spec).await.unwrap();
    assert_eq!(again.remove_pipeline("default", "other").await.unwrap(), 0);
    assert_eq!(
        again.remove_pipeline("default", "leftovers").await.unwrap(),
        2
    );
    drop(ws);
    drop(exec);
}

/// A unix-socket proxy to the real daemon that the test can cut, to lose the daemon mid-run.
async fn cuttable_proxy(dir: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let sock = dir.join("proxy.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let daemon = executor_docker::DockerHost::parse(&DockerConfig::default().address());
    let Some(executor_docker::DockerHost::Unix(daemon)) = daemon else {
        panic!("the proxy test needs a unix-socket daemon");
    };
    let task = tokio::spawn(async move {
        // Connection tasks live in the set: aborting this task drops it and cuts them all.
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let daemon = daemon.clone();
            conns.spawn(async move {
                if let Ok(mut d) = tokio::net::UnixStream::connect(&daemon).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut d).await;
                }
            });
        }
    });
    (format!("unix://{}", sock.display()), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_lost_mid_datum_is_unavailable_not_a_hang() {
    let _cleanup = support::Cleanup(support::owner("cut"));
    let tmp = tempfile::tempdir().unwrap();
    // Make sure the daemon and image exist before going through the proxy.
    if executor("cut", DataMode::Bind).await.is_none() {
        return;
    }
    let (address, proxy) = cuttable_proxy(tmp.path()).await;
    let exec = executor_with("cut", DataMode::Bind, |c| {
        c.host = Some(address.clone());
        c.request_timeout = Duration::from_secs(5);
    })
    .await
    .unwrap();
    let mut ws = exec.start_workers(&pool("cut", 1, |_| {})).await.unwrap();
    let w = &mut ws[0];
    let logs = Arc::new(Lines::default());
    let s = scratch(tmp.path(), &[("in/a", "a")]);
    let ok = w
        .run(shell_task(&s, &["in"], "cat /pfs/in/a", logs.clone()))
        .await;
    assert_eq!(ok.unwrap(), DatumOutcome::Exited { exit_code: 0 });

    let cutter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        proxy.abort();
    });
    let start = Instant::now();
    let err = w
        .run(shell_task(&s, &["in"], "sleep 20", logs.clone()))
        .await
        .unwrap_err();
    cutter.await.unwrap();
    assert!(matches!(err, ExecutorError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains(&address), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(s.join("in/a").exists(), "inputs given back");

    // With the daemon still gone, the next datum fails the same way, promptly.
    let err = w
        .run(shell_task(&s, &["in"], "true", logs.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecutorError::Unavailable { .. }), "{err}");
    std::mem::forget(ws); // its container is removed by the cleanup guard
}

/// Workers of a pipeline whose user code talks to the engine's host (here `s3_out`) join the
/// internal worker network: they reach a server listening on `host_address`, and the host
/// reaches a port they listen on at the worker's address. Other workers keep no network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_that_talk_to_the_host_reach_it_on_the_worker_network() {
    let test = "worker-network";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = executor(test, DataMode::Bind).await else {
        return;
    };
    let spec = pool(test, 1, |s| s.s3_out = true);
    let host = exec.host_address(&spec).await.unwrap();
    assert!(
        !host.is_loopback(),
        "the worker network's gateway, not loopback: {host}"
    );
    let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut conn, _) = listener.accept().await.unwrap();
        conn.write_all(b"hello from the host\n").await.unwrap();
    });
    let mut workers = exec.start_workers(&spec).await.unwrap();
    let w = &mut workers[0];
    assert!(
        !w.address().is_loopback(),
        "a worker on the network has its own address"
    );

    let tmp = tempfile::tempdir().unwrap();
    let s = scratch(tmp.path(), &[]);
    let logs = Arc::new(Lines::default());
    let script = format!("nc {host} {port} < /dev/null > /pfs/out/got");
    let out = w.run(shell_task(&s, &[], &script, logs)).await.unwrap();
    assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
    accept.await.unwrap();
    assert_eq!(
        std::fs::read_to_string(s.join("out/got")).unwrap(),
        "hello from the host\n"
    );

    // The host reaches a port the worker's user code listens on, at the worker's address.
    let address = w.address();
    let s2 = scratch(tmp.path(), &[]);
    let serve = "echo served | nc -l -p 18080";
    let run = w.run(shell_task(&s2, &[], serve, Arc::new(Lines::default())));
    let dial = async {
        for _ in 0..100 {
            if let Ok(mut c) = tokio::net::TcpStream::connect((address, 18080)).await {
                use tokio::io::AsyncReadExt;
                let mut got = String::new();
                c.read_to_string(&mut got).await.unwrap();
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the worker's port never answered at {address}:18080");
    };
    let (out, got) = tokio::join!(run, dial);
    assert_eq!(out.unwrap(), DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(got, "served\n");
    for w in &mut workers {
        w.stop().await.unwrap();
    }

    // A pipeline that does not talk to the host stays without a network.
    let plain = pool("worker-network-plain", 1, |_| {});
    let mut workers = exec.start_workers(&plain).await.unwrap();
    assert!(workers[0].address().is_loopback());
    workers[0].stop().await.unwrap();
}
