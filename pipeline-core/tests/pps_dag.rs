//! DAGs: one input commit → one commit set with a job per downstream pipeline; an errored
//! upstream makes the downstream UNRUNNABLE (cascading); store-dependent validation.

mod pps_common;

use pipeline_core::pps::{CreateOptions, JobState, PpsError};
use pipeline_core::testkit::engine::files;
use pps_common::env;

fn stage(name: &str, input: &str, script: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\ninput: {{pfs: {{repo: {input}, glob: /*}}}}\n"
    )
}

#[test]
fn one_commit_one_commit_set_three_jobs_and_unrunnable_cascade() {
    let e = env();
    e.repo("A");
    e.create(&stage("p1", "A", "cp $A /pfs/out/"));
    e.create(&stage("p2", "p1", "cp $p1 /pfs/out/"));
    e.create(&stage("p3", "p2", "cp $p2 /pfs/out/"));
    e.run();
    let c = e.commit("A", &[], &[("/x", "1")]);
    let jobs = e.run();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j.id == c.id.to_string()), "{jobs:?}");
    assert!(jobs.iter().all(|j| j.state == JobState::JobSuccess));
    let order: Vec<_> = jobs.iter().map(|j| j.pipeline.as_str()).collect();
    assert_eq!(order, ["p1", "p2", "p3"]);
    assert_eq!(e.engine.jobs_of_commit_set(c.id.as_str()).unwrap().len(), 3);
    assert_eq!(e.head_tree("p3"), files(&[("/x", "1")]));

    // p1 fails on /bad: p2 and p3 are UNRUNNABLE, their output commits errored
    e.create_with(
        &stage("p1", "A", "[ ${A##*/} != bad ] && cp $A /pfs/out/"),
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    e.run();
    let c = e.commit("A", &[], &[("/bad", "2")]);
    let jobs = e.engine.jobs_of_commit_set(c.id.as_str()).unwrap();
    assert!(jobs.iter().all(|j| !j.state.is_terminal()));
    e.run();
    let jobs = e.engine.jobs_of_commit_set(c.id.as_str()).unwrap();
    let states: Vec<_> = jobs
        .iter()
        .map(|j| (j.pipeline.as_str(), j.state))
        .collect();
    assert_eq!(
        states,
        [
            ("p1", JobState::JobFailure),
            ("p2", JobState::JobUnrunnable),
            ("p3", JobState::JobUnrunnable)
        ]
    );
    assert_eq!(
        jobs[1].reason,
        "unrunnable because the following upstream pipelines failed: p1"
    );
    assert_eq!(
        jobs[2].reason,
        "unrunnable because the following upstream pipelines failed: p2"
    );
    let out3 = e.store.inspect_commit(&jobs[2].output_commit).unwrap();
    assert!(out3.error.is_some());
}

#[test]
fn store_dependent_validation() {
    let e = env();
    e.repo("A");
    e.repo("taken");
    let parse = |y: &str| pipeline_core::spec::parse_str(y, "t.yaml").unwrap();
    let err = |y: &str| {
        e.engine
            .create_pipelines(&parse(y), &CreateOptions::default())
            .unwrap_err()
    };
    // input repo missing
    let PpsError::InvalidSpec { diagnostics, .. } = err(&stage("q", "nope", "true")) else {
        panic!()
    };
    assert_eq!(diagnostics[0].message, "repo default/nope not found");
    assert_eq!(diagnostics[0].path.to_string(), "input.pfs.repo");
    // a repo with the pipeline's name
    let PpsError::InvalidSpec { diagnostics, .. } = err(&stage("taken", "A", "true")) else {
        panic!()
    };
    assert!(
        diagnostics[0]
            .message
            .contains("a repo with the same name already exists")
    );
    // reading its own output
    assert!(matches!(
        err(&stage("self", "self", "true")),
        PpsError::InvalidSpec { .. }
    ));
    // two branches of one repo
    let two = "pipeline: {name: two}\ntransform: {cmd: ['true']}\ninput:\n  cross:\n    - pfs: {repo: A, glob: /*}\n    - pfs: {repo: A, branch: dev, name: A2, glob: /*}\n";
    let PpsError::InvalidSpec { diagnostics, .. } = err(two) else {
        panic!()
    };
    assert!(
        diagnostics
            .iter()
            .any(|d| d.message.contains("multiple branches from the same repo"))
    );
    // exists without update: a different spec is refused; the same spec again is a no-op
    // (so a create re-run after an interruption succeeds)
    e.create(&stage("q", "A", "true"));
    assert!(matches!(
        err(&stage("q", "A", "false")),
        PpsError::PipelineExists(_)
    ));
    let again = e
        .engine
        .create_pipelines(&parse(&stage("q", "A", "true")), &CreateOptions::default())
        .unwrap();
    assert_eq!(again[0].version, 1);
    // a cycle through an update
    e.create(&stage("r", "q", "true"));
    let cyc = e
        .engine
        .create_pipelines(
            &parse(&stage("q", "r", "true")),
            &CreateOptions {
                update: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(cyc.to_string().contains("cycle"), "{cyc}");
}

#[test]
fn stop_start_delete_and_output_branch() {
    let e = env();
    e.repo("A");
    e.commit("A", &[], &[("/a", "a")]);
    e.create("pipeline: {name: s}\noutput_branch: out\ntransform: {cmd: [sh, -c, 'cp $A /pfs/out/']}\ninput: {pfs: {repo: A, glob: /*}}\n");
    assert_eq!(e.run().len(), 1);
    let out = e
        .store
        .resolve_commit(&pipeline_core::pfs::RepoRef::new("s").unwrap(), "out")
        .unwrap();
    assert_eq!(e.tree(&out), files(&[("/a", "a")]));
    e.engine.stop_pipeline("s").unwrap();
    e.commit("A", &[], &[("/b", "b")]);
    assert!(e.run().is_empty());
    e.engine.start_pipeline("s").unwrap();
    let j = e.run().remove(0);
    assert_eq!((j.stats.datums_processed, j.stats.datums_skipped), (1, 1));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(e.engine.delete_pipeline("s", false))
        .unwrap();
    assert!(e.engine.list_pipelines().unwrap().is_empty());
    assert!(
        e.store
            .inspect_repo(&pipeline_core::pfs::RepoRef::new("s").unwrap())
            .is_err()
    );
}

/// An input with `trigger: {commits: 2}` reads its trigger branch (`<pipeline>-trigger-1`):
/// one job per two commits on master, over everything committed so far.
#[test]
fn a_trigger_runs_one_job_per_batch_of_commits() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(
        "pipeline: {name: batch}\ntransform: {cmd: [sh, -c, 'cp -r /pfs/in/. /pfs/out/']}\ninput: {pfs: {repo: in, glob: /, trigger: {commits: 2}}}\n",
    );
    assert_eq!(
        e.run().len(),
        1,
        "the job at creation, over the trigger head"
    );
    let info = e.engine.inspect_pipeline("batch").unwrap();
    assert_eq!(info.inputs[0].name, "batch-trigger-1");
    e.commit("in", &[], &[("/b", "b")]);
    assert!(e.run().is_empty(), "one commit: the trigger does not fire");
    e.commit("in", &[], &[("/c", "c")]);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::JobSuccess);
    let tree = e.head_tree("batch");
    let paths: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/c"]);
}
