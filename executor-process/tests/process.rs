//! Behaviour specific to the process executor (the shared behaviour is in `conformance.rs`).

use std::sync::Arc;
use std::time::Duration;

use executor_process::{PfsMode, PfsRequest, ProcessExecutor};
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, NullLogSink, Program, ProgramKind, Secrets,
    Worker, WorkerPoolSpec,
};
use pipeline_core::spec::EffectiveSpec;
use pipeline_core::testkit::{self, Harness, MARKER_VAR, RecordingLogSink, Scratch, cases};

fn pool(name: &str) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: name.into(),
        version: 1,
        workers: 1,
        spec: Arc::new(EffectiveSpec::default()),
        secrets: Secrets::default(),
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// An executor in `mode`. It does not reap orphans when built: `host_death_cleanup` owns the
/// orphans it creates and checks both ways of removing them, in order.
fn executor(mode: PfsMode) -> ProcessExecutor {
    match ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(mode))
        .reap_orphans(false)
        .build()
    {
        Ok(e) => e,
        Err(e) => panic!("mode {mode}: {e}"),
    }
}

/// The modes this host supports (substitution always; a namespace mode as root).
fn modes() -> Vec<PfsMode> {
    let mut m = vec![PfsMode::Substitution];
    if is_root() {
        m.push(PfsMode::MountNamespace);
    }
    m
}

async fn worker(e: &ProcessExecutor) -> Box<dyn Worker> {
    let mut w = e.start_workers(&pool("process")).await.expect("start");
    w.pop().expect("one worker")
}

fn task(scratch: &Scratch, argv: &[&str], stdin: &[&str]) -> DatumTask {
    DatumTask {
        job_id: "j".repeat(32),
        datum_id: "d".repeat(64),
        scratch: scratch.path().to_path_buf(),
        inputs: scratch.inputs().to_vec(),
        program: Program::new(
            ProgramKind::Cmd,
            argv.iter().map(|s| (*s).to_owned()).collect(),
            &stdin.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        ),
        env: Vec::new(),
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: Arc::new(NullLogSink),
    }
}

#[tokio::test]
async fn auto_mode_as_root_is_a_mount_namespace() {
    // No reaping: `host_death_cleanup` runs beside this and owns its orphans.
    let e = ProcessExecutor::builder()
        .reap_orphans(false)
        .build()
        .expect("build");
    if is_root() {
        assert_eq!(e.pfs_mode(), PfsMode::MountNamespace);
    }
    assert_eq!(e.name(), "process");
    assert_eq!(e.mount_point(), std::path::Path::new("/pfs"));
}

/// A script as Pachyderm users write it, with hard-coded `/pfs/<input>` and `/pfs/out` paths,
/// runs unchanged in every mode.
#[tokio::test]
async fn pachyderm_script_runs_unchanged() {
    let script = [
        "set -e",
        "for f in /pfs/images/*.txt; do",
        "  n=$(basename \"$f\" .txt)",
        "  wc -c < \"$f\" | tr -d ' ' > /pfs/out/$n.size",
        "done",
        "cp /pfs/images/sub/deep.txt /pfs/out/deep.txt",
        "echo \"$images\" > /pfs/out/env_path_ok_if_readable && cat \"$images\" > /pfs/out/via_env",
    ];
    for mode in modes() {
        let e = executor(mode);
        let mut w = worker(&e).await;
        let mut s = Scratch::new(&std::env::temp_dir());
        s.add_input("images", "a.txt", b"12345");
        s.add_input("images", "b.txt", b"1");
        s.add_input("images", "sub/deep.txt", b"deep");
        let mut t = task(&s, &["sh"], &script);
        t.env
            .push(("images".into(), "/pfs/images/sub/deep.txt".into()));
        let logs = RecordingLogSink::new();
        t.logs = logs.clone();
        let got = w.run(t).await.expect("run");
        assert_eq!(
            got,
            DatumOutcome::Exited { exit_code: 0 },
            "{mode}: {:?}",
            logs.lines()
        );
        assert_eq!(s.read_out("a.size"), "5\n", "{mode}");
        assert_eq!(s.read_out("b.size"), "1\n", "{mode}");
        assert_eq!(s.read_out("deep.txt"), "deep", "{mode}");
        assert_eq!(s.read_out("via_env"), "deep", "{mode}");
    }
}

/// Only the namespace mode resolves `/pfs` paths built at run time; substitution cannot.
#[tokio::test]
async fn namespace_mode_resolves_paths_built_at_run_time() {
    if !is_root() {
        eprintln!("skipped: needs root for the mount namespace");
        return;
    }
    for (mode, works) in [
        (PfsMode::MountNamespace, true),
        (PfsMode::Substitution, false),
    ] {
        let e = executor(mode);
        let mut w = worker(&e).await;
        let mut s = Scratch::new(&std::env::temp_dir());
        s.add_input("in", "a", b"A");
        let t = task(
            &s,
            &["sh", "-c", "p=/p; cat ${p}fs/in/a > ${p}fs/out/a"],
            &[],
        );
        let got = w.run(t).await.expect("run");
        assert_eq!(got.is_success(), works, "{mode}: {got:?}");
        if works {
            assert_eq!(s.read_out("a"), "A");
        }
    }
}

#[tokio::test]
async fn user_is_applied_when_root() {
    if !is_root() {
        eprintln!("skipped: needs root to switch users");
        return;
    }
    for mode in modes() {
        let e = executor(mode);
        let mut w = worker(&e).await;
        for (user, uid, gid) in [
            ("nobody", "65534", None),
            ("12345:54321", "12345", Some("54321")),
        ] {
            let s = Scratch::new(&std::env::temp_dir());
            let mut t = task(
                &s,
                &[
                    "sh",
                    "-c",
                    "id -u > /pfs/out/uid; id -g > /pfs/out/gid; id -G > /pfs/out/groups",
                ],
                &[],
            );
            t.user = Some(user.into());
            let logs = RecordingLogSink::new();
            t.logs = logs.clone();
            let got = w.run(t).await.expect("run");
            assert_eq!(
                got,
                DatumOutcome::Exited { exit_code: 0 },
                "{mode} {user}: {:?}",
                logs.lines()
            );
            assert_eq!(s.read_out("uid").trim(), uid, "{mode} {user}");
            if let Some(gid) = gid {
                assert_eq!(s.read_out("gid").trim(), gid, "{mode} {user}");
                assert_eq!(
                    s.read_out("groups").trim(),
                    gid,
                    "{mode} {user}: supplementary groups dropped"
                );
            }
            // The child shares the host's memory until `execve`: switching users there must
            // not reach any thread of the host (glibc's wrappers would change them all).
            assert_eq!(host_thread_ids(), ["0\t0\t0\t0"], "{mode} {user}");
        }
    }
}

/// The distinct `Uid:` and `Gid:` values of every thread of this process.
fn host_thread_ids() -> Vec<String> {
    let mut ids = std::collections::BTreeSet::new();
    for t in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in status.lines() {
            if let Some(v) = l.strip_prefix("Uid:").or_else(|| l.strip_prefix("Gid:")) {
                ids.insert(v.trim().to_owned());
            }
        }
    }
    ids.into_iter().collect()
}

#[tokio::test]
async fn invalid_tasks_are_typed_errors_naming_the_field() {
    let e = executor(PfsMode::Substitution);
    let mut w = worker(&e).await;
    let s = Scratch::new(&std::env::temp_dir());
    type Mutation = Box<dyn Fn(&mut DatumTask)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "transform.user",
            Box::new(|t| t.user = Some("no-such-user-xyz".into())),
        ),
        (
            "transform.user",
            Box::new(|t| t.user = Some("root:no-such-group-xyz".into())),
        ),
        (
            "transform.working_dir",
            Box::new(|t| t.working_dir = Some("/pfs/nope".into())),
        ),
        ("transform.cmd", Box::new(|t| t.program.argv.clear())),
        ("input.name", Box::new(|t| t.inputs = vec!["../etc".into()])),
        ("input.name", Box::new(|t| t.inputs = vec!["out".into()])),
    ];
    for (field, mutate) in cases {
        let mut t = task(&s, &["true"], &[]);
        mutate(&mut t);
        match w.run(t).await {
            Err(ExecutorError::InvalidTask { field: f, message }) => {
                assert_eq!(f, field, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{field}: expected InvalidTask, got {other:?}"),
        }
    }
    // A stopped worker refuses work with a retryable error (the engine's guard, around any
    // worker).
    let mut w = pipeline_core::executor::policy::StopGuard::new("p", w);
    w.stop().await.expect("stop");
    let err = w.run(task(&s, &["true"], &[])).await.expect_err("stopped");
    assert!(
        matches!(err, ExecutorError::WorkerLost { .. }) && err.is_retryable(),
        "{err}"
    );
    // Zero workers is rejected.
    let mut p = pool("zero");
    p.workers = 0;
    assert!(matches!(
        e.start_workers(&p).await,
        Err(ExecutorError::InvalidTask { .. })
    ));
}

/// The user-namespace mode (what a normal user gets) also passes the core checks. Root can
/// create user namespaces too, so this runs here when the kernel allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_core_in_user_namespace_mode() {
    let e = match ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::UserNamespace))
        .reap_orphans(false)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipped: user namespaces unavailable here: {e}");
            return;
        }
    };
    let executor: Arc<dyn Executor> = Arc::new(e);
    let h = Harness::new(executor, pool("conf-userns"))
        .host_process_checks(true)
        .reuse_datums(50);
    cases::pfs_layout(&h).await;
    cases::env_vars(&h).await;
    cases::inputs_read_only(&h).await;
    cases::timeout_kills_tree(&h).await;
    cases::background_killed_on_exit(&h).await;
    cases::outputs(&h).await;
    cases::worker_reuse(&h).await;
}

/// Helper for `host_death_kills_datum`: when started by it, runs one long datum and never
/// returns (the parent kills this process). Does nothing in a normal test run.
#[tokio::test]
async fn helper_run_datum_until_killed() {
    let (Ok(marker), Ok(dir)) = (
        std::env::var("EXECUTOR_PROCESS_HELPER_MARKER"),
        std::env::var("EXECUTOR_PROCESS_HELPER_DIR"),
    ) else {
        return;
    };
    let e = executor(PfsMode::Substitution);
    let mut w = e
        .start_workers(&pool(&marker))
        .await
        .expect("start")
        .pop()
        .expect("worker");
    // Under the parent's temporary directory: this process is killed, so it cannot clean up.
    let s = Scratch::new(std::path::Path::new(&dir));
    let mut t = task(&s, &["sh", "-c", "sleep 100 & sleep 100; :"], &[]);
    t.env.push((MARKER_VAR.into(), marker));
    let _ = w.run(t).await;
}

/// Starts the helper test in a child process, waits until its datum runs, SIGKILLs it, and
/// returns the marker and the datum's processes that survived (its background children).
async fn kill_a_host_mid_datum(dir: &std::path::Path) -> (String, Vec<String>) {
    let marker = format!("host-death-{}", testkit::unique_id());
    let exe = std::env::current_exe().expect("test binary");
    let mut helper = std::process::Command::new(exe)
        .args(["--exact", "helper_run_datum_until_killed", "--nocapture"])
        .env("EXECUTOR_PROCESS_HELPER_MARKER", &marker)
        .env("EXECUTOR_PROCESS_HELPER_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn helper");
    let running = wait_for_marked(&marker, "helper never started its datum", &|n| n >= 3).await;
    helper.kill().expect("SIGKILL helper");
    let _ = helper.wait();
    // The leader (`sh`) dies with the host (PDEATHSIG); its background children survive.
    let survivors = wait_for_marked(&marker, "the datum's leader outlived its host", &|n| {
        n < running.len()
    })
    .await;
    assert!(
        !survivors.is_empty(),
        "expected the background children to survive"
    );
    (marker, survivors)
}

async fn wait_for_marked(marker: &str, what: &str, pred: &dyn Fn(usize) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = testkit::host_processes_with(marker);
        if pred(found.len()) {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {found:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When the host process dies (SIGKILL), the datum's leader dies with it; what survives is
/// killed by `remove_pipeline` (by pipeline label) or by the next executor built on the
/// machine (by dead-host label).
#[tokio::test]
async fn host_death_cleanup() {
    let dir = tempfile::tempdir().expect("helper dir");

    let (marker, survivors) = kill_a_host_mid_datum(dir.path()).await;
    let e = executor(PfsMode::Substitution);
    let killed = e.remove_pipeline("default", &marker).await.expect("remove");
    assert!(
        killed >= survivors.len(),
        "killed {killed} of {survivors:?}"
    );
    wait_for_marked(&marker, "remove_pipeline left processes behind", &|n| {
        n == 0
    })
    .await;
    assert_eq!(
        e.remove_pipeline("default", &marker).await.expect("again"),
        0
    );

    let (marker, _) = kill_a_host_mid_datum(dir.path()).await;
    let _reaping = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::Substitution))
        .build()
        .expect("executor");
    wait_for_marked(&marker, "building an executor left orphans alive", &|n| {
        n == 0
    })
    .await;
}

/// Another executor (another engine, here in the same process) removing a pipeline of the
/// same name leaves this executor's running datum alone; this executor's removal kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_pipeline_kills_only_this_executors_processes() {
    let marker = format!("same-name-{}", testkit::unique_id());
    let ours = executor(PfsMode::Substitution);
    let other = executor(PfsMode::Substitution);
    let mut w = ours
        .start_workers(&pool(&marker))
        .await
        .expect("start")
        .pop()
        .expect("worker");
    let dir = tempfile::tempdir().expect("scratch dir");
    let s = Scratch::new(dir.path());
    let mut t = task(&s, &["sh", "-c", "sleep 100"], &[]);
    t.env.push((MARKER_VAR.into(), marker.clone()));
    let run = tokio::spawn(async move { w.run(t).await });
    wait_for_marked(&marker, "the datum never started", &|n| n >= 1).await;
    let killed = other
        .remove_pipeline("default", &marker)
        .await
        .expect("remove");
    assert_eq!(killed, 0, "another executor's removal killed our datum");
    assert!(!run.is_finished(), "the datum ended");
    let killed = ours
        .remove_pipeline("default", &marker)
        .await
        .expect("remove");
    assert!(killed >= 1, "our removal killed {killed}");
    let ended = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the datum ended once killed");
    assert!(ended.is_ok());
}

/// Unmounts a test mount when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mounts made for a datum stay in its namespace: the host sees neither the datum's `/pfs`
/// nor its read-only input binds while it runs, even when the mount holding them is shared
/// (as `/` is under systemd). The test builds that situation on a shared tmpfs of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_mounts_do_not_reach_the_host() {
    use nix::mount::{MsFlags, mount};
    if !is_root() {
        eprintln!("skipped: needs root for the mount namespace");
        return;
    }
    let base = std::env::temp_dir().join(format!("shared-{}", testkit::unique_id()));
    std::fs::create_dir_all(&base).expect("base");
    let none: Option<&str> = None;
    mount(Some("tmpfs"), &base, Some("tmpfs"), MsFlags::empty(), none).expect("tmpfs");
    let _guard = Unmount(base.clone());
    mount(none, &base, none, MsFlags::MS_SHARED, none).expect("make shared");
    let mount_point = base.join("pfs");
    std::fs::create_dir(&mount_point).expect("mount point");

    let e = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::MountNamespace))
        .mount_point(&mount_point)
        .reap_orphans(false)
        .build()
        .expect("executor");
    let mut w = worker(&e).await;
    let mut s = Scratch::new(&base);
    s.add_input("in", "a", b"A");
    let script = format!(
        "cat {mp}/in/a > {mp}/out/a; echo > {mp}/out/started; sleep 2",
        mp = mount_point.display()
    );
    let t = task(&s, &["sh", "-c", &script], &[]);
    let scratch = s.path().to_path_buf();
    let run = tokio::spawn(async move {
        let got = w.run(t).await;
        (w, got)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !scratch.join("out/started").exists() {
        assert!(std::time::Instant::now() < deadline, "datum never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let host_pfs: Vec<_> = std::fs::read_dir(&mount_point)
        .expect("mount point on the host")
        .collect();
    assert!(
        host_pfs.is_empty(),
        "host mount point is not empty: {host_pfs:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let base_str = base.to_string_lossy();
    let leaked: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(base_str.as_ref()) && l.split(' ').nth(4) != Some(base_str.as_ref()))
        .collect();
    assert!(
        leaked.is_empty(),
        "datum mounts leaked to the host: {leaked:?}"
    );
    let (_w, got) = run.await.expect("join");
    assert_eq!(got.expect("run"), DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(s.read_out("a"), "A");
}

/// A relative `working_dir` is taken from `/`, as Pachyderm does (`<root>/<working_dir>`).
#[tokio::test]
async fn relative_working_dir_starts_at_root() {
    for mode in modes() {
        let e = executor(mode);
        let mut w = worker(&e).await;
        let mut s = Scratch::new(&std::env::temp_dir());
        s.add_input("in", "here.txt", b"x");
        let mut t = task(&s, &["sh", "-c", "ls > /pfs/out/ls"], &[]);
        t.working_dir = Some("pfs/in".into());
        let got = w.run(t).await.expect("run");
        assert_eq!(got, DatumOutcome::Exited { exit_code: 0 }, "{mode}");
        assert_eq!(s.read_out("ls"), "here.txt\n", "{mode}");
    }
}

/// Substitution happens once, even when the scratch directory itself lives under a directory
/// named `pfs`.
#[tokio::test]
async fn substitution_with_a_scratch_path_containing_pfs() {
    let parent = tempfile::tempdir().expect("parent");
    let under_pfs = parent.path().join("pfs");
    std::fs::create_dir(&under_pfs).expect("pfs dir");
    let e = executor(PfsMode::Substitution);
    let mut w = worker(&e).await;
    let mut s = Scratch::new(&under_pfs);
    s.add_input("in", "a.txt", b"A");
    let mut t = task(
        &s,
        &["sh", "-c", "cat a.txt /pfs/in/a.txt > /pfs/out/b"],
        &[],
    );
    t.working_dir = Some("/pfs/in".into());
    let got = w.run(t).await.expect("run");
    assert_eq!(got, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(s.read_out("b"), "AA");
}
