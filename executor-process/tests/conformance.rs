//! The executor conformance suite (`pipeline_core::testkit`) on the process executor, in every
//! `/pfs` mode this host supports.

use std::sync::Arc;

use executor_process::{PfsMode, PfsRequest, ProcessExecutor};
use pipeline_core::executor::{Executor, Secrets, WorkerPoolSpec};
use pipeline_core::spec::EffectiveSpec;
use pipeline_core::testkit::{self, Harness};

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

fn harness(executor: ProcessExecutor, name: &str) -> Harness {
    let read_only = executor.pfs_mode() != PfsMode::Substitution;
    let executor: Arc<dyn Executor> = Arc::new(executor);
    let h = Harness::new(executor, pool(name))
        .host_process_checks(true)
        .inputs_read_only(read_only)
        .pfs_substitution(!read_only);
    // `transform.user` as a host user only without the sandbox: in it, user code's ids are
    // mapped to an unprivileged host range (`tests/sandbox.rs` checks that mapping, and
    // `tests/process.rs` the ids user code sees).
    if is_root() && !read_only {
        h.user_check("nobody", 65534)
    } else {
        h
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_namespace_mode() {
    let request = if is_root() {
        PfsRequest::Force(PfsMode::MountNamespace)
    } else {
        PfsRequest::Force(PfsMode::UserNamespace)
    };
    let executor = match ProcessExecutor::builder().pfs_mode(request).build() {
        Ok(e) => e,
        Err(e) if !is_root() => {
            eprintln!("skipped: no namespace mode for a normal user here: {e}");
            return;
        }
        Err(e) => panic!("root must get a mount namespace: {e}"),
    };
    testkit::run_all(&harness(executor, "conf-ns")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_substitution_mode() {
    let executor = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::Substitution))
        .build()
        .expect("substitution works everywhere");
    assert_eq!(executor.pfs_mode(), PfsMode::Substitution);
    testkit::run_all(&harness(executor, "conf-subst")).await;
}

/// The suite's leftover-process detection finds a marked process, both through the host's
/// `/proc` and through a probe datum (the path backends without host access use), and the
/// checks also pass with the probe. The stray process is the host's: only a datum without
/// the sandbox may read its environment (sandboxed user code runs as an unprivileged host
/// user), so that part runs in substitution mode; the checks then run sandboxed, where the
/// probe sees the datum's own processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_detection_finds_marked_processes() {
    let executor = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::Substitution))
        .build()
        .expect("executor");
    let marker = format!("stray-{}", testkit::unique_id());
    let mut stray = std::process::Command::new("sleep")
        .arg("30")
        .env(testkit::MARKER_VAR, &marker)
        .spawn()
        .expect("spawn a stray process");
    // `spawn` is glibc's `posix_spawn`, a vfork: it returns once the child's `execve` has
    // dropped the old memory, before the new program's environment is set up, and
    // `/proc/<pid>/environ` reads empty until then (seen in CI). Wait for it to settle.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while testkit::host_processes_with(&marker).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for host in [true, false] {
        let h = harness(executor.clone(), "conf-probe").host_process_checks(host);
        let mut w = h.start_worker("probe").await;
        let found = testkit::processes_with_marker(&h, &mut *w, &marker).await;
        assert_eq!(found.len(), 1, "host={host}: {found:?}");
        assert!(
            found[0].starts_with(&stray.id().to_string()),
            "host={host}: {found:?}"
        );
    }
    stray.kill().expect("kill stray");
    let _ = stray.wait();
    let sandboxed = ProcessExecutor::builder().build().expect("executor");
    let h = harness(sandboxed, "conf-probe").host_process_checks(false);
    testkit::cases::timeout_kills_tree(&h).await;
    testkit::cases::background_killed_on_exit(&h).await;
}
