//! Reference §2.15 and the err_cmd scenario through the engine with warm worker containers:
//! the shared driver of `pipeline_core::testkit::engine`, which the engine's own tests and the
//! other executors run too. Skipped outside CI when the daemon is absent.

mod support;

use std::sync::Arc;

use executor_docker::DataMode;
use executor_docker::testing::TEST_IMAGE;
use pipeline_core::pfs::Store;
use pipeline_core::pps::{DatumFailure, Engine, JobState};
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

/// A datum-batching spec over input `in` (glob `/*`): a busybox shell speaks the protocol
/// with `echo` and `read` (the image has no `pipectl`), runs `body` per datum with
/// `/pfs/.env` sourced; `$n` numbers the processes of the job.
fn batching_spec(name: &str, body: &str, extra: &str) -> String {
    let head = [
        "f=/tmp/starts-$PACH_JOB_ID; n=$(( $(cat $f 2>/dev/null || echo 0) + 1 )); echo $n > $f",
        "next() { echo \"next $1\" > /pfs/.batch/request && read -r _ < /pfs/.batch/reply; }",
        "next ok",
        "while true; do",
        "  . /pfs/.env",
    ];
    let stdin: String = head
        .into_iter()
        .chain(body.lines())
        .chain(["done"])
        .map(|l| format!("    - '{}'\n", l.replace('\'', "''")))
        .collect();
    format!(
        "pipeline: {{name: {name}}}\ntransform:\n  cmd: [sh]\n  datum_batching: true\n  stdin:\n{stdin}input: {{pfs: {{repo: in, glob: /*}}}}\n{extra}"
    )
}

/// Datum batching in a warm worker container (bind mode): 1,000 datums in one process per
/// datum set, each datum's inputs and `/pfs/.env` swapped in under the running process; a
/// datum reported failed or a process exiting early restarts it for the rest of the set. In
/// archive mode the datums fail naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datum_batching_in_worker_containers() {
    let test = "engine-batching";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some((_dir, e)) = engine_env(test, DataMode::Bind).await else {
        return;
    };
    e.repo("in");
    let files: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("/f{i:04}"), format!("v{i}")))
        .collect();
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    e.commit("in", &[], &puts);
    e.create(&batching_spec(
        "batch",
        "  echo \"$(cat $in) $n\" > /pfs/out/${in##*/}; next ok",
        "datum_set_spec: {number: 500}\n",
    ));
    let jobs = e.run().await;
    let job = jobs.iter().find(|j| j.pipeline == "batch").unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(
        (job.stats.datums_processed, job.stats.datum_sets),
        (1000, 2)
    );
    let tree = e.tree(&job.output_commit);
    assert_eq!(tree.len(), 1000);
    let mut processes = std::collections::BTreeSet::new();
    for (path, content) in &tree {
        let (value, n) = content.trim().split_once(' ').unwrap();
        assert_eq!(
            format!("/f{:04}", &value[1..].parse::<u32>().unwrap()),
            *path
        );
        processes.insert(n.to_string());
    }
    assert_eq!(
        processes.len(),
        2,
        "one process per datum set: {processes:?}"
    );
    engine::delete_pipeline(&e, "batch").await;

    e.create(&batching_spec(
        "flaky",
        "  case ${in##*/} in\n    f0001) next \"error no good\"; continue;;\n    f0002) exit 0;;\n  esac\n  cp $in /pfs/out/; next ok",
        "datum_set_spec: {number: 100}\ndatum_tries: 1\n",
    ));
    let jobs = e.run().await;
    let job = jobs.iter().find(|j| j.pipeline == "flaky").unwrap();
    assert_eq!(job.state, JobState::JobFailure);
    assert_eq!(
        (job.stats.datums_processed, job.stats.datums_failed),
        (998, 2)
    );
    let datums = e.datums("flaky", &job.id);
    let failure = |p: &str| {
        let d = datums.iter().find(|d| d.inputs[0].path == p).unwrap();
        d.failure
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    assert!(
        failure("/f0001").contains("no good"),
        "{}",
        failure("/f0001")
    );
    assert!(
        failure("/f0002").contains("prematurely"),
        "{}",
        failure("/f0002")
    );
    engine::delete_pipeline(&e, "flaky").await;
}

/// Archive mode copies whole runs in and out, so it cannot run datum-batching code: the
/// datums fail saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datum_batching_is_refused_in_archive_mode() {
    let test = "engine-batching-archive";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some((_dir, e)) = engine_env(test, DataMode::Archive).await else {
        return;
    };
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(&batching_spec("batch", "  next ok", ""));
    let jobs = e.run().await;
    let job = jobs.iter().find(|j| j.pipeline == "batch").unwrap();
    assert_eq!(job.state, JobState::JobFailure);
    let d = &e.datums("batch", &job.id)[0];
    let failure = d.failure.as_ref().unwrap().to_string();
    assert!(failure.contains("datum_batching"), "{failure}");
    engine::delete_pipeline(&e, "batch").await;
}
