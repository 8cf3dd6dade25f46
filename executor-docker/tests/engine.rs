//! Reference §2.15 and the err_cmd scenario through the engine with warm worker containers:
//! the shared driver of `pipeline_core::testkit::engine`, which the engine's own tests and the
//! other executors run too. Skipped outside CI when the daemon is absent.

mod support;

use std::sync::Arc;

use executor_docker::DataMode;
use executor_docker::testing::TEST_IMAGE;
use pipeline_core::pfs::Store;
use pipeline_core::pps::{DatumFailure, Engine};
use pipeline_core::testkit::engine::{self, EngineEnv};

/// An engine over a fresh store (in the returned temp dir) with warm worker containers in
/// `mode`; `None` when the daemon is absent outside CI.
async fn engine_env(test: &str, mode: DataMode) -> Option<(tempfile::TempDir, EngineEnv)> {
    let exec = support::executor(test, mode).await?;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec))
        .build()
        .unwrap();
    Some((dir, EngineEnv::new(engine).image(TEST_IMAGE)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_scenarios_with_containers() {
    let test = "engine-scenarios";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some((_dir, e)) = engine_env(test, DataMode::Bind).await else {
        return;
    };
    engine::run_all(&e).await;
    engine::delete_all(&e).await;
}

/// A datum over `resource_limits.memory` is recorded with failure kind `oom`; the next job's
/// datums run on the same pipeline's workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datum_over_its_memory_limit_fails_with_kind_oom() {
    let test = "engine-oom";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some((_dir, e)) = engine_env(test, DataMode::Bind).await else {
        return;
    };
    e.repo("in");
    e.commit("in", &[], &[("/big", "100"), ("/small", "1")]);
    e.create(
        "pipeline: {name: mem}\ntransform: {cmd: [sh, -c, 'dd if=/dev/zero of=/dev/null bs=$(cat $in)M count=1 && touch /pfs/out/${in##*/}']}\nresource_limits: {memory: 32Mi}\ndatum_tries: 1\ninput: {pfs: {repo: in, glob: /*}}\n",
    );
    let jobs = e.run().await;
    let job = jobs.iter().find(|j| j.pipeline == "mem").unwrap();
    let datums = e.datums("mem", &job.id);
    let failures: Vec<_> = datums.iter().map(|d| d.failure.clone()).collect();
    assert!(
        failures.contains(&Some(DatumFailure::OutOfMemory)),
        "{failures:?}"
    );
    assert_eq!(e.head_tree("mem").len(), 1, "the small datum's output");
    engine::delete_pipeline(&e, "mem").await;
}

/// `lazy` inputs in both data modes: in bind mode the container reads the named pipes the
/// engine feeds (through the mount, after the inputs were moved into it); in archive mode
/// they are materialised as files. Either way the user code reads the whole file, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_inputs_in_bind_and_archive_mode() {
    for (mode, kind) in [(DataMode::Bind, "pipe"), (DataMode::Archive, "file")] {
        let test = format!("engine-lazy-{kind}");
        let _cleanup = support::Cleanup(support::owner(&test));
        let Some((_dir, e)) = engine_env(&test, mode).await else {
            return;
        };
        e.repo("in");
        e.commit("in", &[], &[("/a", "alpha\n"), ("/d/b", "beta\n")]);
        e.create(
            "pipeline: {name: lazy}\n\
             transform: {cmd: [sh, -c, 'for f in $(find /pfs/in ! -type d); do \
             n=${f##*/}; cat $f $f > /pfs/out/$n; \
             if [ -p $f ]; then echo pipe; else echo file; fi > /pfs/out/$n.kind; done']}\n\
             input: {pfs: {repo: in, glob: /*, lazy: true}}\n",
        );
        let jobs = e.run().await;
        let job = jobs.iter().find(|j| j.pipeline == "lazy").unwrap();
        assert_eq!(
            job.state,
            pipeline_core::pps::JobState::JobSuccess,
            "{mode:?}: {job:?}"
        );
        let kind = format!("{kind}\n");
        assert_eq!(
            e.head_tree("lazy"),
            engine::files(&[
                ("/a", "alpha\nalpha\n"),
                ("/a.kind", &kind),
                ("/b", "beta\nbeta\n"),
                ("/b.kind", &kind),
            ]),
            "{mode:?}"
        );
        engine::delete_pipeline(&e, "lazy").await;
    }
}

/// Pachyderm's shuffle pattern in containers, in both data modes: user code links files of
/// an `empty_files` input into `/pfs/out`, and the output holds their real content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_links_into_inputs_in_bind_and_archive_mode() {
    for mode in [DataMode::Bind, DataMode::Archive] {
        let test = format!("engine-shuffle-{mode:?}").to_lowercase();
        let _cleanup = support::Cleanup(support::owner(&test));
        let Some((_dir, e)) = engine_env(&test, mode).await else {
            return;
        };
        e.repo("in");
        e.commit("in", &[], &[("/x/a", "alpha\n"), ("/y/b", "beta\n")]);
        e.create(
            "pipeline: {name: shuffle}\n\
             transform: {cmd: [sh, -c, 'for f in $(find /pfs/in -type f); do \
             ln -s $f /pfs/out/${f##*/}; done']}\n\
             input: {pfs: {repo: in, glob: /*/*, empty_files: true}}\n",
        );
        let jobs = e.run().await;
        let job = jobs.iter().find(|j| j.pipeline == "shuffle").unwrap();
        assert_eq!(
            job.state,
            pipeline_core::pps::JobState::JobSuccess,
            "{mode:?}: {job:?}"
        );
        assert_eq!(
            e.head_tree("shuffle"),
            engine::files(&[("/a", "alpha\n"), ("/b", "beta\n")]),
            "{mode:?}"
        );
        engine::delete_pipeline(&e, "shuffle").await;
    }
}

/// Services in worker containers (reference §1.9, §3.6): `busybox httpd` listens on port 8080
/// in its container on the `pipeline-workers` network, and is reached on
/// `127.0.0.1:<external_port>` of the host; a new commit replaces it; a taken host port and
/// more than one datum fail the job, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_in_a_container_is_reached_on_its_external_port_and_replaced() {
    use pipeline_core::testkit::service;
    let test = "engine-service";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some((_dir, e)) = engine_env(test, DataMode::Bind).await else {
        return;
    };
    service::scenario_service(&e, "8080", 8080, service::free_port()).await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    service::scenario_service_refusals(&e, held.local_addr().unwrap().port()).await;
    engine::delete_pipeline(&e, "web").await;
}
