//! Reference §2.15 step by step, and the err_cmd scenario below it.

mod pps_common;

use pipeline_core::pps::{CreateOptions, DatumReason, DatumState, JobState};
use pps_common::{env, t};

const P: &str = r#"
pipeline: {name: p}
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/A/*; do b=$(basename $f); { cat $f; echo " $VERSION"; } > /pfs/out/$b.out; done'
  env: {VERSION: v1}
input: {pfs: {repo: A, glob: /*}}
"#;

#[test]
fn worked_incremental_scenario() {
    let e = env();
    e.repo("A");
    e.commit("A", &[], &[("/a", "a"), ("/b", "b")]);
    // create P: job 1, 2 processed
    e.create(P);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1);
    let j1 = &jobs[0];
    assert_eq!(j1.state, JobState::JobSuccess, "{}", j1.reason);
    assert_eq!((j1.stats.datums_total, j1.stats.datums_processed), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        t(&[("/a.out", "a v1\n"), ("/b.out", "b v1\n")])
    );

    // change /b, add /c, delete /a: processed 2, skipped 0, total 2
    e.commit("A", &["/a"], &[("/b", "B"), ("/c", "c")]);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1);
    let j2 = &jobs[0];
    assert_eq!(j2.state, JobState::JobSuccess);
    assert_eq!(j2.base_job.as_deref(), Some(j1.id.as_str()));
    let s = &j2.stats;
    assert_eq!(
        (s.datums_total, s.datums_processed, s.datums_skipped),
        (2, 2, 0)
    );
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let mut reasons: Vec<_> = e
        .engine
        .list_datums("p", &j2.id)
        .unwrap()
        .into_iter()
        .map(|d| (d.inputs[0].path.clone(), d.reason))
        .collect();
    reasons.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        reasons,
        [
            ("/b".to_string(), DatumReason::Changed),
            ("/c".to_string(), DatumReason::New)
        ]
    );

    // empty commit: total 2, skipped 2
    e.commit("A", &[], &[]);
    let j3 = e.run().remove(0);
    assert_eq!(
        (
            j3.stats.datums_total,
            j3.stats.datums_skipped,
            j3.stats.datums_processed
        ),
        (2, 2, 0)
    );
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let skipped = e.engine.list_datums("p", &j3.id).unwrap();
    assert!(skipped.iter().all(|d| d.state == DatumState::Skipped
        && d.reason
            == DatumReason::Unchanged {
                from_job: j2.id.clone()
            }));

    // update without reprocess (new code): all skipped, output unchanged
    let v2 = P.replace("VERSION: v1", "VERSION: v2");
    e.create_with(
        &v2,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j4 = e.run().remove(0);
    assert_eq!(j4.version, 2);
    assert_eq!((j4.stats.datums_total, j4.stats.datums_skipped), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );

    // update --reprocess: new salt, 2 processed, rewritten
    e.create_with(
        &v2,
        CreateOptions {
            update: true,
            reprocess: true,
            ..Default::default()
        },
    );
    let j5 = e.run().remove(0);
    assert_eq!((j5.stats.datums_processed, j5.stats.datums_skipped), (2, 0));
    assert!(
        e.engine
            .list_datums("p", &j5.id)
            .unwrap()
            .iter()
            .all(|d| d.reason == DatumReason::SaltChanged)
    );
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v2\n"), ("/c.out", "c v2\n")])
    );

    // a failing datum: job FAILURE, next job builds on job 5's output
    let failing = v2.replace("{ cat $f;", "[ $b != d ] || exit 3; { cat $f;");
    e.create_with(
        &failing,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j6 = e.run().remove(0);
    assert_eq!(j6.stats.datums_skipped, 2);
    e.commit("A", &[], &[("/d", "d"), ("/e", "e")]);
    let j7 = e.run().remove(0);
    assert_eq!(j7.state, JobState::JobFailure);
    assert!(
        j7.reason.starts_with("datum ") && j7.reason.ends_with(" failed"),
        "{}",
        j7.reason
    );
    assert_eq!(j7.stats.datums_failed, 1);
    let failed = e
        .engine
        .list_datums("p", &j7.id)
        .unwrap()
        .into_iter()
        .find(|d| d.state == DatumState::Failed)
        .unwrap();
    assert_eq!(failed.attempts, 3);
    assert_eq!(
        failed.failure,
        Some(pipeline_core::pps::DatumFailure::ExitCode { code: 3 })
    );
    // the failed job keeps a browsable record of its successful datums
    let out7 = e.tree(&j7.output_commit);
    assert!(
        out7.contains(&("/e.out".to_string(), "e v2\n".to_string())),
        "{out7:?}"
    );
    // the branch head is the errored commit (reference §2.15)
    let head = e.store.inspect_commit(&j7.output_commit).unwrap();
    assert_eq!(head.error.as_deref(), Some(j7.reason.as_str()));
    // the next job builds on the last error-free output (job 6 = job 5's content)
    e.commit("A", &["/d"], &[]);
    let j8 = e.run().remove(0);
    assert_eq!(j8.state, JobState::JobSuccess, "{}", j8.reason);
    assert_eq!(j8.base_job.as_deref(), Some(j6.id.as_str()));
    assert_eq!((j8.stats.datums_skipped, j8.stats.datums_processed), (2, 1));
    assert_eq!(
        e.head_tree("p"),
        t(&[
            ("/b.out", "B v2\n"),
            ("/c.out", "c v2\n"),
            ("/e.out", "e v2\n")
        ])
    );

    // fixed /pfs/out/result from every datum: FAILURE naming the path and both datums
    let dup = r#"
pipeline: {name: p}
transform: {cmd: [sh, -c, 'echo x > /pfs/out/result']}
input: {pfs: {repo: A, glob: /*}}
"#;
    e.create_with(
        dup,
        CreateOptions {
            update: true,
            reprocess: true,
            ..Default::default()
        },
    );
    let j9 = e.run().remove(0);
    assert_eq!(j9.state, JobState::JobFailure);
    assert!(
        j9.reason
            .starts_with("duplicate path output by different datums (/result from "),
        "{}",
        j9.reason
    );
    assert_eq!(e.engine.list_jobs(Some("p")).unwrap().len(), 9);
}

#[test]
fn err_cmd_recovers_and_failed_job_is_never_a_base() {
    let e = env();
    e.repo("in");
    e.commit(
        "in",
        &[],
        &[("/file1", "1"), ("/file2", "2"), ("/file3", "3")],
    );
    let spec = r#"
pipeline: {name: errs}
transform:
  cmd: [sh, -c, 'test "$in" = /pfs/in/file1 && cp $in /pfs/out/']
  err_cmd: [sh, -c, 'test "$in" = /pfs/in/file3']
datum_tries: 2
input: {pfs: {repo: in, glob: /*}}
"#;
    e.create(spec);
    let j1 = e.run().remove(0);
    assert_eq!(j1.state, JobState::JobFailure);
    let s = &j1.stats;
    assert_eq!(
        (s.datums_processed, s.datums_recovered, s.datums_failed),
        (1, 1, 1)
    );
    let fixed = spec.replace("'test \"$in\" = /pfs/in/file3'", "'true'");
    e.create_with(
        &fixed,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j2 = e.run().remove(0);
    assert_eq!(j2.state, JobState::JobSuccess, "{}", j2.reason);
    let s = &j2.stats;
    assert_eq!(
        (s.datums_processed, s.datums_skipped, s.datums_recovered),
        (1, 0, 2)
    );
    assert_eq!(e.head_tree("errs"), t(&[("/file1", "1")]));
    // recovered datums are retried by the next job and become processed once fixed
    let ok = r#"
pipeline: {name: errs}
transform: {cmd: [sh, -c, 'cp $in /pfs/out/']}
input: {pfs: {repo: in, glob: /*}}
"#;
    e.create_with(
        ok,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j3 = e.run().remove(0);
    let s = &j3.stats;
    assert_eq!((s.datums_processed, s.datums_skipped), (2, 1));
    let reasons: Vec<_> = e
        .engine
        .list_datums("errs", &j3.id)
        .unwrap()
        .into_iter()
        .filter(|d| d.state == DatumState::Success)
        .map(|d| d.reason)
        .collect();
    assert_eq!(
        reasons,
        [DatumReason::PreviousFailure, DatumReason::PreviousFailure]
    );
    assert_eq!(
        e.head_tree("errs"),
        t(&[("/file1", "1"), ("/file2", "2"), ("/file3", "3")])
    );
}
