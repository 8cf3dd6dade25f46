//! `resource_limits` on the real Docker Engine: memory over the limit is `OutOfMemory` (not a
//! plain signal 9) and the worker stays usable; a fork loop meets `PidsLimit` and ends
//! cleanly; the limits reach the container's host config.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use executor_docker::DataMode;
use pipeline_core::executor::{DatumOutcome, Executor};
use pipeline_core::spec::ResourceSpec;
use support::{Lines, executor, pool, scratch, shell_task};

/// Allocates and touches 100 MiB (busybox `dd` with one 100 MiB block).
const HOG: &str = "dd if=/dev/zero of=/dev/null bs=100M count=1";

async fn limited(
    test: &str,
    mode: DataMode,
    limits: ResourceSpec,
) -> Option<(
    executor_docker::DockerExecutor,
    pipeline_core::executor::WorkerPoolSpec,
)> {
    let exec = executor(test, mode).await?;
    let spec = pool(test, 1, |s| s.resource_limits = Some(limits));
    Some((exec, spec))
}

async fn oom_is_reported_and_the_worker_survives(mode: DataMode, test: &str) {
    let _cleanup = support::Cleanup(support::owner(test));
    let memory = ResourceSpec {
        memory: Some("32Mi".into()),
        ..Default::default()
    };
    let Some((exec, spec)) = limited(test, mode, memory).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = exec.start_workers(&spec).await.unwrap();
    let w = &mut ws[0];
    let run = |script: &str| {
        let logs = Arc::new(Lines::default());
        shell_task(&scratch(tmp.path(), &[]), &[], script, logs)
    };
    // Over the limit: the kernel kills the datum; the engine gets `oom`.
    assert_eq!(w.run(run(HOG)).await.unwrap(), DatumOutcome::OutOfMemory);
    // The same worker runs the next datum.
    assert_eq!(
        w.run(run("echo fine > /pfs/out/f")).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    // A plain kill -9 is a signal, not memory.
    assert_eq!(
        w.run(run("kill -9 $$")).await.unwrap(),
        DatumOutcome::Signaled { signal: 9 }
    );
    // A second OOM is seen again (the counter is compared per datum).
    assert_eq!(w.run(run(HOG)).await.unwrap(), DatumOutcome::OutOfMemory);
    if mode == DataMode::Bind {
        // With the daemon on this machine the counter is read from the host after every
        // datum: an OOM kill that user code survives (exit 0) is not blamed on a later kill.
        assert_eq!(
            w.run(run(&format!("({HOG}); true"))).await.unwrap(),
            DatumOutcome::Exited { exit_code: 0 }
        );
        assert_eq!(
            w.run(run("kill -9 $$")).await.unwrap(),
            DatumOutcome::Signaled { signal: 9 }
        );
    }
    // Within the limit, the same program succeeds.
    assert_eq!(
        w.run(run("dd if=/dev/zero of=/dev/null bs=1M count=4"))
            .await
            .unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_bind_mode() {
    oom_is_reported_and_the_worker_survives(DataMode::Bind, "oom-bind").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_archive_mode() {
    oom_is_reported_and_the_worker_survives(DataMode::Archive, "oom-archive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_loop_meets_the_pids_limit_and_limits_reach_the_container() {
    let test = "pids";
    let _cleanup = support::Cleanup(support::owner(test));
    let limits = ResourceSpec {
        memory: Some("64Mi".into()),
        pids: Some(16),
        ..Default::default()
    };
    let Some((exec, spec)) = limited(test, DataMode::Bind, limits).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = exec.start_workers(&spec).await.unwrap();
    let w = &mut ws[0];
    let logs = Arc::new(Lines::default());
    let started = Instant::now();
    let fork_loop = "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo all forked";
    let t = shell_task(&scratch(tmp.path(), &[]), &[], fork_loop, logs.clone());
    let outcome = w.run(t).await.unwrap();
    assert_ne!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "{:?}",
        logs.0.lock().unwrap()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the datum ends, its sleeping children killed"
    );
    let all = format!("{:?}", logs.0.lock().unwrap());
    assert!(!all.contains("all forked"), "{all}");
    assert!(all.contains("fork"), "the shell says why: {all}");
    // The worker is usable again: the children are gone, so forking works.
    let t = shell_task(
        &scratch(tmp.path(), &[]),
        &[],
        "sleep 0 & wait; echo ok",
        logs.clone(),
    );
    assert_eq!(
        w.run(t).await.unwrap(),
        DatumOutcome::Exited { exit_code: 0 }
    );

    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!(
            "{}={}",
            executor_docker::labels::OWNER,
            exec.owner()
        )],
    )]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = exec.client().list_containers(Some(opts)).await.unwrap();
    let id = list[0].id.clone().unwrap();
    let hc = exec
        .client()
        .inspect_container(&id, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(hc.pids_limit, Some(16));
    assert_eq!(hc.memory, Some(64 << 20));
    assert_eq!(hc.memory_swap, Some(64 << 20), "no swap beyond the limit");
    w.stop().await.unwrap();
}
