//! `Engine::squash_commit_set` and `Engine::delete_commit_set` with jobs: the set's jobs are
//! KILLED (or keep their ending) and lose their datum records in the same transaction, and
//! later jobs plan against the right base job afterwards.

mod pps_common;

use std::time::{Duration, Instant};

use pipeline_core::pfs::{CommitId, CommitRef, PfsError, RepoRef};
use pipeline_core::pps::{DatumReason, DatumState, JobState, PpsError};
use pipeline_core::testkit::engine::files;

/// Writes `<name>-<content>` per input file, so that outputs of different versions of a
/// datum have different paths; fails on a file whose content is `bad`.
const NAMED_BY_CONTENT: &str = r#"
pipeline: {name: p}
transform: {cmd: [sh, -c, 'c=$(cat $in); [ "$c" != bad ] || exit 1; echo $c > /pfs/out/$(basename $in)-$c']}
input: {pfs: {repo: in, glob: /*}}
datum_tries: 1
"#;

fn output(id: &CommitId) -> CommitRef {
    RepoRef::new("p").unwrap().commit(id)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn assert_clean(e: &pps_common::Env) {
    let report = e.store.check(false).unwrap();
    assert!(report.is_clean(), "fsck: {:?}", report.problems);
}

/// The job built on a squashed job through a failed one had not run: it must plan against
/// the nearest remaining successful job (whose output its commit now starts from), so no
/// output of the squashed job's version of a datum is left behind.
#[test]
fn a_later_job_whose_base_was_squashed_plans_from_the_nearest_remaining_job() {
    let e = pps_common::env();
    e.repo("in");
    e.create(NAMED_BY_CONTENT);
    let c1 = e.commit("in", &[], &[("/a", "1"), ("/b", "1")]);
    e.run();
    let c2 = e.commit("in", &[], &[("/a", "2")]);
    let j2 = e.run();
    assert_eq!(j2[0].base_job.as_deref(), Some(c1.id.as_str()));
    assert_eq!(
        e.tree(&output(&c2.id)),
        files(&[("/a-2", "2\n"), ("/b-1", "1\n")])
    );
    let c3 = e.commit("in", &[], &[("/x", "bad")]);
    let j3 = e.run();
    assert_eq!(j3[0].state, JobState::JobFailure);
    // The next job is recorded but has not run: its base would have been job 2.
    let c4 = e.commit("in", &["/x"], &[("/a", "3")]);
    e.engine.discover_jobs().unwrap();
    assert_eq!(
        e.engine.inspect_job("p", c4.id.as_str()).unwrap().state,
        JobState::JobCreated
    );

    let done = block_on(e.engine.squash_commit_set(&c2.id)).unwrap();
    assert_eq!(done.commits.rebuilt, vec![output(&c4.id)]);
    let mut merged = done.commits.merged_into.clone();
    merged.sort();
    let mut expected = vec![c3.clone(), output(&c3.id)];
    expected.sort();
    assert_eq!(merged, expected);
    let j2_after = e.engine.inspect_job("p", c2.id.as_str()).unwrap();
    assert_eq!(
        j2_after.state,
        JobState::JobSuccess,
        "an ended job keeps its ending"
    );
    assert!(e.datums("p", c2.id.as_str()).is_empty());
    assert_eq!(done.jobs, vec![j2_after]);
    // The failed job's output is what it was.
    assert_eq!(
        e.tree(&output(&c3.id)),
        files(&[("/a-2", "2\n"), ("/b-1", "1\n")])
    );

    let j4 = e.run();
    assert_eq!(j4.len(), 1);
    assert_eq!(j4[0].state, JobState::JobSuccess, "{}", j4[0].reason);
    assert_eq!(j4[0].base_job.as_deref(), Some(c1.id.as_str()));
    assert_eq!(
        e.tree(&output(&c4.id)),
        files(&[("/a-3", "3\n"), ("/b-1", "1\n")]),
        "no output of the squashed job's version of /a is left"
    );
    let datums = e.datums("p", c4.id.as_str());
    let states: Vec<_> = datums.iter().map(|d| (d.state, d.reason.clone())).collect();
    assert!(states.contains(&(DatumState::Success, DatumReason::Changed)));
    assert!(states.contains(&(
        DatumState::Skipped,
        DatumReason::Unchanged {
            from_job: c1.id.to_string()
        }
    )));
    assert_clean(&e);
}

#[test]
fn deleting_a_set_kills_its_pending_job_and_the_next_job_builds_on_the_parent() {
    let e = pps_common::env();
    e.repo("in");
    e.create(NAMED_BY_CONTENT);
    let c1 = e.commit("in", &[], &[("/a", "1")]);
    e.run();
    let c2 = e.commit("in", &[], &[("/a", "2")]);
    e.engine.discover_jobs().unwrap();

    let done = block_on(e.engine.delete_commit_set(&c2.id)).unwrap();
    let removed: Vec<_> = done
        .commits
        .removed
        .iter()
        .map(|c| c.commit.clone())
        .collect();
    assert_eq!(removed, vec![c2.clone(), output(&c2.id)]);
    let j2 = e.engine.inspect_job("p", c2.id.as_str()).unwrap();
    assert_eq!(j2.state, JobState::JobKilled);
    assert_eq!(
        j2.reason,
        format!("output commit removed: commit set {} was deleted", c2.id)
    );
    assert_eq!(done.jobs, vec![j2]);
    assert!(e.run().is_empty(), "the deleted set's job does not run");
    assert_eq!(e.head_tree("in"), files(&[("/a", "1")]));
    assert_eq!(e.head_tree("p"), files(&[("/a-1", "1\n")]));

    let c3 = e.commit("in", &[], &[("/b", "1")]);
    let j3 = e.run();
    assert_eq!(j3[0].base_job.as_deref(), Some(c1.id.as_str()));
    assert_eq!(j3[0].stats.datums_skipped, 1);
    assert_eq!(
        e.tree(&output(&c3.id)),
        files(&[("/a-1", "1\n"), ("/b-1", "1\n")])
    );
    // The finished head set can be deleted too: its job keeps SUCCESS, its records go.
    block_on(e.engine.delete_commit_set(&c3.id)).unwrap();
    assert_eq!(
        e.engine.inspect_job("p", c3.id.as_str()).unwrap().state,
        JobState::JobSuccess
    );
    assert!(e.datums("p", c3.id.as_str()).is_empty());
    assert!(
        e.engine
            .logs("p", Some(c3.id.as_str()), None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(e.head_tree("p"), files(&[("/a-1", "1\n")]));
    assert_clean(&e);
}

#[test]
fn squashing_a_finished_job_keeps_the_later_output_and_its_plan() {
    let e = pps_common::env();
    e.repo("in");
    e.create(NAMED_BY_CONTENT);
    e.commit("in", &[], &[("/a", "1"), ("/b", "1")]);
    e.run();
    let c2 = e.commit("in", &[], &[("/a", "2")]);
    e.run();
    let c3 = e.commit("in", &[], &[("/b", "2")]);
    e.run();
    let before = e.tree(&output(&c3.id));

    let err = block_on(e.engine.squash_commit_set(&c3.id)).unwrap_err();
    assert!(
        matches!(err, PpsError::Store(PfsError::SquashWithoutChildren { .. })),
        "{err}"
    );
    block_on(e.engine.squash_commit_set(&c2.id)).unwrap();
    assert_eq!(e.tree(&output(&c3.id)), before);
    let c4 = e.commit("in", &[], &[("/c", "1")]);
    let j4 = e.run();
    assert_eq!(j4[0].base_job.as_deref(), Some(c3.id.as_str()));
    assert_eq!(
        (j4[0].stats.datums_processed, j4[0].stats.datums_skipped),
        (1, 2)
    );
    assert_eq!(
        e.tree(&output(&c4.id)),
        files(&[("/a-2", "2\n"), ("/b-2", "2\n"), ("/c-1", "1\n")])
    );
    assert_clean(&e);
}

#[test]
fn deleting_the_set_of_a_running_job_stops_it() {
    let e = pps_common::env();
    e.repo("in");
    e.create(
        r#"
pipeline: {name: p}
transform: {cmd: [sh, -c, 'sleep 60']}
input: {pfs: {repo: in, glob: /*}}
"#,
    );
    let c1 = e.commit("in", &[], &[("/a", "1")]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine = e.engine.clone();
    let running = rt.spawn(async move { engine.run_pending().await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while e
        .engine
        .inspect_job("p", c1.id.as_str())
        .map(|j| j.state != JobState::JobRunning)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let done = rt.block_on(e.engine.delete_commit_set(&c1.id)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let job = e.engine.inspect_job("p", c1.id.as_str()).unwrap();
    assert_eq!(job.state, JobState::JobKilled);
    assert_eq!(
        job.reason,
        format!("output commit removed: commit set {} was deleted", c1.id)
    );
    assert_eq!(done.jobs, vec![job]);
    rt.block_on(running).unwrap().unwrap();
    rt.block_on(e.engine.shutdown());
    assert!(e.datums("p", c1.id.as_str()).is_empty());
    assert_clean(&e);
}

#[test]
fn a_set_made_by_creating_or_updating_a_pipeline_is_refused() {
    let e = pps_common::env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "1")]);
    let created = e.create(NAMED_BY_CONTENT);
    let first = e.run();
    assert_eq!(first[0].version, created.version);
    let opts = pipeline_core::pps::CreateOptions {
        update: true,
        reprocess: true,
        ..Default::default()
    };
    e.create_with(NAMED_BY_CONTENT, opts);
    let updated = e.run();
    assert_eq!(updated[0].version, 2);
    for job in [&first[0], &updated[0]] {
        let id = CommitId::parse(&job.id).unwrap();
        let err = block_on(e.engine.delete_commit_set(&id)).unwrap_err();
        assert!(matches!(err, PpsError::UpdatedPipeline { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot squash commit {} because it updated a pipeline",
                output(&id)
            )
        );
    }
    // A data commit after it is a set of its own, and can go.
    let c = e.commit("in", &[], &[("/b", "1")]);
    e.run();
    block_on(e.engine.delete_commit_set(&c.id)).unwrap();
    assert_eq!(e.head_tree("p"), files(&[("/a-1", "1\n")]));
    assert_clean(&e);
}
