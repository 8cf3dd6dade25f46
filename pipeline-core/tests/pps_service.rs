//! Services on the process executor (reference §1.9, §3.6): the shared scenario of
//! `pipeline_core::testkit::service` (serve, replace on a new commit, stop), a relayed port,
//! and the refusals (a taken port, more than one datum, code that exits).

use std::sync::Arc;

use executor_process::ProcessExecutor;
use pipeline_core::pps::{Engine, JobState};
use pipeline_core::testkit::engine::EngineEnv;
use pipeline_core::testkit::service::{
    free_port, scenario_service, scenario_service_refusals, service_spec, wait_for_body,
    wait_for_job,
};

/// An engine with the process executor over a store in `dir`.
fn env(dir: &tempfile::TempDir) -> EngineEnv {
    let store = pipeline_core::testkit::store::open_test_store(&dir.path().join("store"));
    let engine = Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    EngineEnv::new(engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_serves_the_latest_commit_and_is_replaced_by_the_next_job() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let port = free_port();
    scenario_service(&e, &format!("127.0.0.1:{port}"), port, port).await;
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_internal_port_is_relayed_from_the_external_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let (internal, external) = (free_port(), free_port());
    scenario_service(&e, &format!("127.0.0.1:{internal}"), internal, external).await;
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_or_many_datums_fail_the_job_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    scenario_service_refusals(&e, port).await;
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_code_exits_fails_with_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    let port = free_port();
    let spec = service_spec("quits", "x", port, port).replace(
        "[busybox, httpd, -f, -p, 'x', -h, /pfs/in]",
        "[sh, -c, 'exit 3']",
    );
    e.create(&spec);
    e.run().await;
    let id = e.jobs("quits")[0].id.clone();
    let j = wait_for_job(&e, "quits", &id, |j| j.state.is_terminal()).await;
    assert_eq!(j.state, JobState::JobFailure, "{j:?}");
    assert!(j.reason.contains("exit code 3"), "{}", j.reason);
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_running_at_once_and_listed_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.repo("in");
    e.commit("in", &[], &[("/index.html", "hi")]);
    let port = free_port();
    e.create(&service_spec(
        "web",
        &format!("127.0.0.1:{port}"),
        port,
        port,
    ));
    let done = e.run().await;
    assert!(
        done.is_empty(),
        "a service job does not end on its own: {done:?}"
    );
    let jobs = e.jobs("web");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::JobRunning);
    wait_for_body(port, "/index.html", "hi").await;
    // A second round finds nothing to do and does not start it twice.
    assert!(e.run().await.is_empty());
    assert_eq!(e.jobs("web").len(), 1);
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_pipeline_kills_the_service_and_frees_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.repo("in");
    e.commit("in", &[], &[("/index.html", "hi")]);
    let port = free_port();
    e.create(&service_spec(
        "web",
        &format!("127.0.0.1:{port}"),
        port,
        port,
    ));
    e.run().await;
    wait_for_body(port, "/index.html", "hi").await;
    let id = e.jobs("web")[0].id.clone();
    let waiting = e.engine.waiting_for(&e.jobs("web")[0]).unwrap();
    assert_eq!(
        waiting.as_deref(),
        Some(
            format!("serving on 127.0.0.1:{port} until the pipeline's next job replaces it")
                .as_str()
        )
    );
    e.engine.stop_pipeline("web").unwrap();
    let j = wait_for_job(&e, "web", &id, |j| j.state.is_terminal()).await;
    assert_eq!(j.state, JobState::JobKilled, "{j:?}");
    let t0 = std::time::Instant::now();
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 30, "port {port} still taken");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    e.engine.shutdown().await;
}

/// Updating a serving pipeline kills its job (as for any pipeline) and the new version's job
/// serves on the same port once the old code has let it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_kills_the_service_and_the_new_version_serves() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.repo("in");
    e.commit("in", &[], &[("/index.html", "hi")]);
    let port = free_port();
    let spec = service_spec("web", &format!("127.0.0.1:{port}"), port, port);
    e.create(&spec);
    e.run().await;
    wait_for_body(port, "/index.html", "hi").await;
    let old = e.jobs("web")[0].id.clone();
    let opts = pipeline_core::pps::CreateOptions {
        update: true,
        ..Default::default()
    };
    e.create_with(&spec.replace("datum_tries: 1", "datum_tries: 2"), opts);
    e.run().await;
    let killed = wait_for_job(&e, "web", &old, |j| j.state.is_terminal()).await;
    assert_eq!(killed.state, JobState::JobKilled, "{killed:?}");
    let jobs = e.jobs("web");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let new = wait_for_job(&e, "web", &jobs[1].id, |j| j.state == JobState::JobRunning).await;
    assert_eq!(new.version, 2);
    wait_for_body(port, "/index.html", "hi").await;
    e.engine.stop_job("web", &new.id, None).unwrap();
    wait_for_job(&e, "web", &new.id, |j| j.state.is_terminal()).await;
    e.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_exits_0_before_being_replaced_fails() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    let port = free_port();
    let spec = service_spec("quits", "x", port, port).replace(
        "[busybox, httpd, -f, -p, 'x', -h, /pfs/in]",
        "[sh, -c, 'exit 0']",
    );
    e.create(&spec);
    e.run().await;
    let id = e.jobs("quits")[0].id.clone();
    let j = wait_for_job(&e, "quits", &id, |j| j.state.is_terminal()).await;
    assert_eq!(j.state, JobState::JobFailure, "{j:?}");
    assert!(j.reason.contains("exited on its own"), "{}", j.reason);
    e.engine.shutdown().await;
}
