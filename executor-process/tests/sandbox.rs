//! Issue #13 on the process executor: user code running as root cannot change stored data or
//! reach the store (item 1), sees only its inputs (item 4), its processes end with its datum
//! (item 2), and its resource limits hold (item 3).
//!
//! These need root (the sandbox with unprivileged ids, cgroups). Without root they skip with
//! a printed reason, and fail under `CI=true`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use executor_process::{KillMethod, PfsMode, PfsRequest, ProcessExecutor};
use pipeline_core::executor::{
    CancellationToken, DatumOutcome, DatumTask, Executor, Program, ProgramKind, Secrets, Worker,
    WorkerPoolSpec,
};
use pipeline_core::spec::{EffectiveSpec, ResourceSpec};
use pipeline_core::testkit::{RecordingLogSink, Scratch, unique_id};

/// Whether the test can run; `false` (after printing why) when it must be skipped.
fn can_run(what: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}: needs root, and CI runs as root"
    );
    eprintln!("skipped {what}: needs root (sandbox with unprivileged ids, cgroups)");
    false
}

fn executor() -> ProcessExecutor {
    ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::MountNamespace))
        .reap_orphans(false)
        .build()
        .expect("root gets the sandbox")
}

fn pool(name: &str, spec: EffectiveSpec) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: name.into(),
        version: 1,
        workers: 1,
        spec: Arc::new(spec),
        secrets: Secrets::default(),
    }
}

async fn worker(e: &ProcessExecutor, name: &str, spec: EffectiveSpec) -> Box<dyn Worker> {
    let mut w = e.start_workers(&pool(name, spec)).await.expect("start");
    w.pop().expect("one worker")
}

fn task(scratch: &Scratch, script: &str, logs: &Arc<RecordingLogSink>) -> DatumTask {
    DatumTask {
        job_id: "j".repeat(32),
        datum_id: "d".repeat(64),
        scratch: scratch.path().to_path_buf(),
        inputs: scratch.inputs().to_vec(),
        program: Program::new(
            ProgramKind::Cmd,
            vec!["sh".into(), "-c".into(), script.into()],
            &[],
        ),
        env: Vec::new(),
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: logs.clone(),
    }
}

/// A store laid out as the engine lays it out: `objects/` (files 0444), `meta.redb` (0600),
/// and datum scratch directories under `scratch/`, whose inputs are hard links to objects.
struct FakeStore {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl FakeStore {
    fn new() -> FakeStore {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("objects")).expect("objects");
        std::fs::create_dir_all(root.join("scratch")).expect("scratch");
        std::fs::write(root.join("meta.redb"), b"metadata").expect("meta");
        std::fs::set_permissions(
            root.join("meta.redb"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod meta");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        FakeStore { _dir: dir, root }
    }

    /// Stores `bytes` as object `name` (0444).
    fn object(&self, name: &str, bytes: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.root.join("objects").join(name);
        std::fs::write(&p, bytes).expect("object");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        p
    }

    /// A scratch directory with input `data/a.txt` hard-linked to object `a`.
    fn scratch(&self, object: &Path) -> Scratch {
        let mut s = Scratch::new(&self.root.join("scratch"));
        s.add_input("data", "a.txt", b"");
        let link = s.path().join("data/a.txt");
        std::fs::remove_file(&link).expect("rm placeholder");
        std::fs::hard_link(object, &link).expect("hard link");
        s
    }
}

/// Every line of `out/results` that says an attempt succeeded.
fn succeeded(s: &Scratch) -> Vec<String> {
    s.read_out("results")
        .lines()
        .filter(|l| l.starts_with("OK"))
        .map(str::to_owned)
        .collect()
}

const TRY: &str =
    r#"r() { if "$@" >/dev/null 2>&1; then echo "OK $*"; else echo "FAIL $*"; fi; } "#;

/// Item 1 (a): as root in the datum, nothing changes a stored object: remount, append,
/// chmod, rm, ln, mv on an input all fail, also from a nested user namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_in_the_datum_cannot_change_an_input() {
    if !can_run("root_in_the_datum_cannot_change_an_input") {
        return;
    }
    let store = FakeStore::new();
    let object = store.object("a", b"stored bytes\n");
    let s = store.scratch(&object);
    let e = executor();
    let mut w = worker(&e, "hostile", EffectiveSpec::default()).await;
    let script = format!(
        "{TRY}
        f=/pfs/data/a.txt
        {{
        r mount -o remount,rw /pfs
        r mount -o remount,rw,bind /pfs
        r umount /pfs
        r umount -l /pfs
        r mount -t tmpfs none /pfs/out
        r mount -t tmpfs none /tmp
        r sh -c 'echo X >> /pfs/data/a.txt'
        r sh -c 'mount -o remount,rw /pfs && echo X >> /pfs/data/a.txt'
        r chmod 666 $f
        r chown 1:1 $f
        r rm -f $f
        r ln $f /pfs/data/b
        r ln $f /pfs/out/b
        r mv $f /pfs/data/c
        r mv $f /pfs/out/c
        r touch -d 2000-01-01 $f
        r unshare -Urm sh -c 'mount -o remount,rw /pfs && echo X >> /pfs/data/a.txt'
        r sh -c 'echo X > /usr/bin/sandbox-test'
        r sh -c 'echo X > /etc/sandbox-test'
        r sh -c 'echo X > /sandbox-test'
        }} > /pfs/out/results
        id -u > /pfs/out/uid"
    );
    let logs = RecordingLogSink::new();
    let got = w.run(task(&s, &script, &logs)).await.expect("run");
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.lines()
    );
    assert_eq!(
        s.read_out("uid").trim(),
        "0",
        "user code is root in its namespace"
    );
    assert_eq!(
        succeeded(&s),
        Vec::<String>::new(),
        "{}",
        s.read_out("results")
    );
    assert_eq!(std::fs::read(&object).expect("object"), b"stored bytes\n");
    let meta = std::fs::metadata(&object).expect("object meta");
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert_eq!(meta.nlink(), 2, "no link added or removed");
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert!(!Path::new("/usr/bin/sandbox-test").exists());
    assert!(!Path::new("/etc/sandbox-test").exists());
}

/// Item 1 (b) and (c), item 4: the datum's mount table shows no host mount point of the
/// store, and nothing of the store but its own inputs is reachable: not another object, not
/// `meta.redb`, not another datum's scratch directory (paths passed in through env).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_not_reachable_from_a_datum() {
    if !can_run("the_store_is_not_reachable_from_a_datum") {
        return;
    }
    let store = FakeStore::new();
    let object = store.object("a", b"mine\n");
    let other = store.object("other-pipeline", b"secret\n");
    let s = store.scratch(&object);
    let neighbour = store.scratch(&other);
    let e = executor();
    let mut w = worker(&e, "reach", EffectiveSpec::default()).await;
    let logs = RecordingLogSink::new();
    let mut t = task(
        &s,
        &format!(
            "{TRY}
            {{
            r cat \"$OTHER\"
            r cat \"$META\"
            r ls \"$STORE\"
            r ls \"$NEIGHBOUR\"
            r cat \"$NEIGHBOUR/data/a.txt\"
            r ls /proc/1/root/
            r cat /proc/1/environ
            }} > /pfs/out/results
            cat /proc/self/mountinfo > /pfs/out/mountinfo
            ls / > /pfs/out/root
            cat /pfs/data/a.txt > /pfs/out/mine"
        ),
        &logs,
    );
    let path = |p: &Path| p.to_string_lossy().into_owned();
    t.env = vec![
        ("OTHER".into(), path(&other)),
        ("META".into(), path(&store.root.join("meta.redb"))),
        ("STORE".into(), path(&store.root)),
        ("NEIGHBOUR".into(), path(neighbour.path())),
    ];
    let got = w.run(t).await.expect("run");
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.lines()
    );
    assert_eq!(s.read_out("mine"), "mine\n", "its own input is readable");
    assert_eq!(
        succeeded(&s),
        Vec::<String>::new(),
        "{}",
        s.read_out("results")
    );
    let mountinfo = s.read_out("mountinfo");
    let store_root = path(&store.root);
    for line in mountinfo.lines() {
        let mount_point = line.split(' ').nth(4).unwrap_or("");
        assert!(
            !mount_point.contains(&store_root) && !mount_point.contains("/work"),
            "a host path is mounted in the datum: {line}"
        );
    }
    let mount_points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    for expected in ["/", "/pfs", "/pfs/out", "/usr", "/tmp", "/proc", "/dev"] {
        assert!(
            mount_points.contains(&expected),
            "{expected} missing: {mount_points:?}"
        );
    }
    let root: Vec<String> = s.read_out("root").lines().map(str::to_owned).collect();
    for name in &root {
        assert!(
            [
                "bin", "sbin", "usr", "lib", "lib32", "lib64", "libx32", "etc", "opt", "proc",
                "tmp", "dev", "pfs"
            ]
            .contains(&name.as_str()),
            "unexpected {name:?} in the datum's root: {root:?}"
        );
    }
}

/// Item 2: a `setsid` daemon started by datum 1 is gone when datum 1 ends and never writes
/// into datum 2's `/pfs/out`; the same after a cancelled datum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_dies_with_its_datum() {
    if !can_run("a_daemon_dies_with_its_datum") {
        return;
    }
    let e = executor();
    assert!(
        e.isolation().kill.is_some(),
        "root must get a cgroup kill here: {:?}",
        e.isolation()
    );
    let store = FakeStore::new();
    let object = store.object("a", b"x\n");
    let mut w = worker(&e, "daemon", EffectiveSpec::default()).await;
    let marker = format!("daemon-{}", unique_id());
    let daemon = format!(
        "setsid sh -c 'while :; do echo x >> /pfs/out/leak; sleep 0.05; done' {marker} \
         </dev/null >/dev/null 2>&1 &"
    );
    // One scratch directory for both datums, as a worker reuses its own.
    let s = store.scratch(&object);
    let logs = RecordingLogSink::new();
    let got = w
        .run(task(
            &s,
            &format!("{daemon} sleep 0.3; echo done > /pfs/out/one"),
            &logs,
        ))
        .await
        .expect("datum 1");
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.lines()
    );
    assert!(
        s.out().join("leak").exists(),
        "the daemon ran during datum 1"
    );
    assert_eq!(
        pgrep(&marker),
        Vec::<String>::new(),
        "daemon outlived datum 1"
    );
    // The engine empties `out` between datums; do the same.
    for entry in std::fs::read_dir(s.out()).expect("out").flatten() {
        std::fs::remove_file(entry.path()).expect("clean out");
    }
    let got = w
        .run(task(&s, "sleep 0.5; echo two > /pfs/out/two", &logs))
        .await
        .expect("datum 2");
    assert_eq!(got, DatumOutcome::Exited { exit_code: 0 });
    let names: Vec<_> = std::fs::read_dir(s.out())
        .expect("out")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["two"], "only datum 2's output");

    // Cancelled: the daemon goes too.
    let mut t = task(&s, &format!("{daemon} sleep 100"), &logs);
    let cancel = t.cancel.clone();
    t.cancel = cancel.clone();
    let run = tokio::spawn(async move { (w.run(t).await, w) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pgrep(&marker).is_empty(), "daemon started");
    cancel.cancel();
    let (got, _w) = run.await.expect("join");
    assert_eq!(got.expect("run"), DatumOutcome::Cancelled);
    assert_eq!(
        pgrep(&marker),
        Vec::<String>::new(),
        "daemon outlived a cancel"
    );
}

/// Host processes whose command line contains `marker`.
fn pgrep(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || name == std::process::id().to_string() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(marker)
        {
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
    }
    found
}

fn limits(memory: Option<&str>, pids: Option<u64>, cpu: Option<f64>) -> EffectiveSpec {
    EffectiveSpec {
        resource_limits: Some(ResourceSpec {
            memory: memory.map(str::to_owned),
            pids,
            cpu,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Item 3: a datum that allocates far more than `resource_limits.memory` is killed and its
/// outcome is `OutOfMemory` (400 MB attempted against 100M: harmless if the limit failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_kills_with_out_of_memory() {
    if !can_run("memory_limit_kills_with_out_of_memory") {
        return;
    }
    let e = executor();
    assert!(
        e.isolation().limits.contains(&"memory"),
        "{:?}",
        e.isolation()
    );
    let store = FakeStore::new();
    let s = store.scratch(&store.object("a", b"x\n"));
    let mut w = worker(&e, "oom", limits(Some("100M"), None, None)).await;
    let logs = RecordingLogSink::new();
    // `head -c` through a pipe into a shell variable keeps it all in memory.
    let got = w
        .run(task(
            &s,
            "x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo ${#x} > /pfs/out/n",
            &logs,
        ))
        .await
        .expect("run");
    assert_eq!(got, DatumOutcome::OutOfMemory, "{:?}", logs.lines());
    // The next datum of the same worker runs normally.
    let got = w
        .run(task(&s, "echo ok > /pfs/out/ok", &logs))
        .await
        .expect("run");
    assert_eq!(got, DatumOutcome::Exited { exit_code: 0 });
}

/// Item 3: `resource_limits.pids: 20` stops a loop that tries to start 100 `sleep`s; the
/// datum fails cleanly and everything it started is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_stops_a_fork_loop() {
    if !can_run("pids_limit_stops_a_fork_loop") {
        return;
    }
    let e = executor();
    assert!(
        e.isolation().limits.contains(&"pids"),
        "{:?}",
        e.isolation()
    );
    let store = FakeStore::new();
    let s = store.scratch(&store.object("a", b"x\n"));
    let mut w = worker(&e, "pids", limits(None, Some(20), None)).await;
    let logs = RecordingLogSink::new();
    // 100 background `sleep`s (a distinctive duration, to find them), then wait for them.
    let script = "for i in $(seq 100); do sleep 31.77 & done; wait";
    let started = std::time::Instant::now();
    let got = w.run(task(&s, script, &logs)).await.expect("run");
    assert!(
        matches!(got, DatumOutcome::Exited { exit_code } if exit_code != 0),
        "{got:?} {:?}",
        logs.lines()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(pgrep("sleep 31.77"), Vec::<String>::new());
}

/// Item 3: the CPU limit lands in the worker's cgroup (read back from the quota file), and
/// the datum runs in that cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limit_is_applied() {
    if !can_run("cpu_limit_is_applied") {
        return;
    }
    let e = executor();
    assert!(e.isolation().limits.contains(&"cpu"), "{:?}", e.isolation());
    let store = FakeStore::new();
    let s = store.scratch(&store.object("a", b"x\n"));
    let mut w = worker(&e, "cpu", limits(None, None, Some(0.5))).await;
    let logs = RecordingLogSink::new();
    let got = w
        .run(task(&s, "cat /proc/self/cgroup > /pfs/out/cgroup", &logs))
        .await
        .expect("run");
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.lines()
    );
    let cgroups = s.read_out("cgroup");
    let (quota_file, expected) = match e.isolation().kill {
        Some(KillMethod::CgroupKill) if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
            ("cpu.max", "50000 100000")
        }
        _ => ("cpu.cfs_quota_us", "50000"),
    };
    let dir = cpu_cgroup_dir(&cgroups).expect("the datum is in a cpu cgroup");
    let quota = std::fs::read_to_string(dir.join(quota_file)).expect("quota file");
    assert_eq!(quota.trim(), expected, "{}", dir.display());
}

/// The host directory of the cpu cgroup named in a `/proc/self/cgroup` text.
fn cpu_cgroup_dir(cgroups: &str) -> Option<PathBuf> {
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "cpu") {
            return Some(Path::new("/sys/fs/cgroup/cpu").join(path));
        }
        if ctrls.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            return Some(Path::new("/sys/fs/cgroup").join(path));
        }
    }
    None
}

/// What a host that died left in its cgroups (a process, in `executor-process-<dead pid>`) is
/// killed, and the cgroup removed, when the next executor is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroups_of_a_dead_host_are_reaped() {
    if !can_run("cgroups_of_a_dead_host_are_reaped") {
        return;
    }
    // Our own cgroup in the v2 hierarchy (hybrid: `unified`; pure v2: the root mount).
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a v2 hierarchy")
        .trim_start_matches('/')
        .to_owned();
    let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|m| m.join("cgroup.procs").exists())
        .expect("v2 mounted");
    let stale = mount.join(&rel).join("executor-process-99999999");
    let worker = stale.join("p-0-0");
    std::fs::create_dir_all(&worker).expect("stale cgroup");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("42.42")
        .spawn()
        .expect("sleep");
    std::fs::write(worker.join("cgroup.procs"), sleeper.id().to_string()).expect("join");
    let _e = ProcessExecutor::builder().build().expect("executor");
    let status = sleeper.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the stale cgroup's process was killed"
    );
    assert!(!stale.exists(), "stale cgroup removed");
}

/// A host directory the executor exposes is visible read-only at its own path (scripts kept
/// beside a project run); without `expose` it is not there; overlapping the scratch directory
/// or exposing `/` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_directory_is_visible_read_only() {
    if !can_run("an_exposed_directory_is_visible_read_only") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let code = tempfile::tempdir().expect("tmp");
    // World-writable, so only the read-only mount can stop a write.
    std::fs::set_permissions(code.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let script = code.path().join("step.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran > /pfs/out/ran\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let store = FakeStore::new();
    let object = store.object("a", b"mine\n");
    let run = |e: ProcessExecutor| {
        let s = store.scratch(&object);
        let script = script.clone();
        async move {
            let mut w = worker(&e, "expose", EffectiveSpec::default()).await;
            let logs = RecordingLogSink::new();
            let cmd = format!(
                "{} && if echo x >> {}; then echo writable > /pfs/out/w; fi",
                script.display(),
                script.display()
            );
            let got = w.run(task(&s, &cmd, &logs)).await.expect("run");
            (got, s)
        }
    };
    let exposed = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::MountNamespace))
        .reap_orphans(false)
        .expose(code.path())
        .build()
        .expect("exposed");
    let (got, s) = run(exposed).await;
    assert_eq!(got, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(s.read_out("ran"), "ran\n");
    assert!(
        !s.path().join("out/w").exists(),
        "the exposed directory is writable"
    );
    assert_eq!(
        std::fs::read_to_string(&script).expect("script"),
        "#!/bin/sh\necho ran > /pfs/out/ran\n"
    );

    let (got, _) = run(executor()).await;
    assert_ne!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "visible without expose"
    );

    for bad in [
        PathBuf::from("/"),
        PathBuf::from("/proc/self"),
        PathBuf::from("rel"),
    ] {
        let err = ProcessExecutor::builder()
            .pfs_mode(PfsRequest::Force(PfsMode::MountNamespace))
            .reap_orphans(false)
            .expose(&bad)
            .build()
            .expect_err("refused");
        assert!(err.to_string().contains("expose"), "{err}");
    }
    let holds_scratch = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::MountNamespace))
        .reap_orphans(false)
        .expose(&store.root)
        .build()
        .expect("a directory is fine until a worker's scratch is inside it");
    let s = store.scratch(&object);
    let mut w = worker(&holds_scratch, "expose-store", EffectiveSpec::default()).await;
    let logs = RecordingLogSink::new();
    let err = w.run(task(&s, "true", &logs)).await.expect_err("refused");
    assert!(err.to_string().contains("scratch"), "{err}");
}

/// `transform.secrets[i].mount_path`: each key is a file user code can read and not change,
/// on a tmpfs the host never sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_files_appear_at_their_mount_path_read_only() {
    use pipeline_core::executor::SecretValue;
    use pipeline_core::spec::SecretMount;
    if !can_run("secret_files_appear_at_their_mount_path_read_only") {
        return;
    }
    let store = FakeStore::new();
    let object = store.object("a", b"mine\n");
    let s = store.scratch(&object);
    let mut spec = EffectiveSpec::default();
    spec.transform.secrets = vec![SecretMount {
        name: "creds".into(),
        mount_path: Some("/var/run/creds".into()),
        ..Default::default()
    }];
    let mut p = pool("secret-files", spec);
    let value = |v: &str| SecretValue(v.as_bytes().to_vec());
    p.secrets.0.insert(
        "creds".into(),
        [
            ("user".into(), value("alice")),
            ("pass".into(), value("pw\n")),
        ]
        .into(),
    );
    let e = executor();
    let mut w = e
        .start_workers(&p)
        .await
        .expect("start")
        .pop()
        .expect("one");
    let logs = RecordingLogSink::new();
    let t = task(
        &s,
        "cat /var/run/creds/user /var/run/creds/pass > /pfs/out/seen; \
         if echo x > /var/run/creds/user; then echo yes > /pfs/out/writable; fi; \
         if touch /var/run/creds/new; then echo yes > /pfs/out/created; fi; \
         ls -l /var/run/creds > /pfs/out/ls",
        &logs,
    );
    let got = w.run(t).await.expect("run");
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.lines()
    );
    assert_eq!(s.read_out("seen"), "alicepw\n");
    assert!(
        !s.path().join("out/writable").exists(),
        "a secret file is writable"
    );
    assert!(
        !s.path().join("out/created").exists(),
        "the secret directory is writable"
    );
    assert!(
        s.read_out("ls").contains("-r--r--r--"),
        "{}",
        s.read_out("ls")
    );
    assert!(
        !Path::new("/var/run/creds/user").exists(),
        "the host sees the secret files"
    );

    let mut missing = pool("secret-missing", EffectiveSpec::default());
    Arc::make_mut(&mut missing.spec).transform.secrets = vec![SecretMount {
        name: "nope".into(),
        mount_path: Some("/var/run/nope".into()),
        ..Default::default()
    }];
    let err = match e.start_workers(&missing).await {
        Ok(_) => panic!("a secret that was not supplied started"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("transform.secrets[0]"), "{err}");
}
