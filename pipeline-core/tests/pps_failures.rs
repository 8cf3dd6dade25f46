//! Failure modes: invalid output names, symlinks leaving /pfs/out, file/directory clashes,
//! datum_timeout, job_timeout, stop_job, every_job, and secrets never reaching logs.

mod pps_common;

use std::sync::Arc;

use pipeline_core::executor::{SecretValue, Secrets};
use pipeline_core::pps::{DatumFailure, DatumReason, DatumState, Engine, JobState, RerunMode};
use pps_common::env;

fn one(name: &str, script: &str, extra: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\ninput: {{pfs: {{repo: in, glob: /*}}}}\n{extra}"
    )
}

#[test]
fn bad_outputs_fail_the_datum() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(&one(
        "names",
        "echo x > \"/pfs/out/bad*name\"",
        "datum_tries: 1\n",
    ));
    e.create(&one(
        "links",
        "ln -s /etc/passwd /pfs/out/leak",
        "datum_tries: 1\n",
    ));
    e.create(&one(
        "slow",
        "sleep 5",
        "datum_tries: 2\ndatum_timeout: 200ms\n",
    ));
    let jobs = e.run();
    for j in &jobs {
        assert_eq!(j.state, JobState::JobFailure, "{j:?}");
        let d = &e.engine.list_datums(&j.pipeline, &j.id).unwrap()[0];
        assert_eq!(d.state, DatumState::Failed);
        match (j.pipeline.as_str(), d.failure.as_ref().unwrap()) {
            ("names", DatumFailure::InvalidOutput { message }) => {
                assert!(message.contains("bad*name"), "{message}")
            }
            ("links", DatumFailure::InvalidOutput { message }) => {
                assert!(message.contains("leak"), "{message}")
            }
            ("slow", DatumFailure::Timeout) => assert_eq!(d.attempts, 2),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn file_directory_clash_names_both_datums_and_every_job_reprocesses() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a"), ("/b", "b")]);
    e.create(&one("clash", "if [ ${in##*/} = a ]; then echo > /pfs/out/x; else mkdir /pfs/out/x; echo > /pfs/out/x/y; fi", ""));
    e.create(&one(
        "every",
        "cp $in /pfs/out/",
        "reprocess_spec: every_job\n",
    ));
    let jobs = e.run();
    let clash = jobs.iter().find(|j| j.pipeline == "clash").unwrap();
    assert_eq!(clash.state, JobState::JobFailure);
    assert!(
        clash
            .reason
            .starts_with("file / directory path collision (/x)"),
        "{}",
        clash.reason
    );
    let ids: Vec<_> = e
        .engine
        .list_datums("clash", &clash.id)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert!(
        ids.iter().all(|id| clash.reason.contains(id.as_str())),
        "{}",
        clash.reason
    );
    e.commit("in", &[], &[]);
    let j = e.run().into_iter().find(|j| j.pipeline == "every").unwrap();
    assert_eq!((j.stats.datums_processed, j.stats.datums_skipped), (2, 0));
    assert!(
        e.engine
            .list_datums("every", &j.id)
            .unwrap()
            .iter()
            .all(|d| d.reason == DatumReason::ReprocessEveryJob)
    );
}

#[test]
fn job_timeout_kills_and_secrets_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::pfs::Store::open(dir.path()).unwrap();
    let mut secrets = Secrets::default();
    secrets
        .0
        .entry("creds".into())
        .or_default()
        .insert("token".into(), SecretValue(b"s3cr3t-value".to_vec()));
    let engine = Engine::builder(store)
        .executor(Arc::new(
            executor_process::ProcessExecutor::builder()
                .build()
                .unwrap(),
        ))
        .secrets(secrets)
        .build()
        .unwrap();
    let e = pps_common::Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a"), ("/b", "b")]);
    e.create("pipeline: {name: sec}\ntransform:\n  cmd: [sh, -c, 'echo token is $TOKEN; echo $TOKEN >&2; exit 1']\n  secrets: [{name: creds, key: token, env_var: TOKEN}]\ndatum_tries: 1\ninput: {pfs: {repo: in, glob: /*}}\n");
    e.create("pipeline: {name: slowjob}\ntransform: {cmd: [sleep, '10']}\njob_timeout: 500ms\ninput: {pfs: {repo: in, glob: /*}}\n");
    let jobs = e.run();
    let sec = jobs.iter().find(|j| j.pipeline == "sec").unwrap();
    let logs = e.engine.logs("sec", Some(&sec.id), None).unwrap();
    assert!(
        logs.iter().any(|l| l.message == "token is <redacted>"),
        "{logs:?}"
    );
    assert!(logs.iter().all(|l| !l.message.contains("s3cr3t")));
    let slow = jobs.iter().find(|j| j.pipeline == "slowjob").unwrap();
    assert_eq!(slow.state, JobState::JobKilled);
    assert!(slow.reason.contains("job_timeout"), "{}", slow.reason);
    let err = e.store.inspect_commit(&slow.output_commit).unwrap().error;
    assert!(err.is_some());
}

#[test]
fn a_resumed_job_keeps_the_failures_it_recorded() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a"), ("/b", "b")]);
    e.create(&one(
        "res",
        "[ ${in##*/} = a ] && exit 1; sleep 2; cp $in /pfs/out/",
        "datum_tries: 1\n",
    ));
    // The host "dies" while /b runs: the runtime is dropped, its datum killed. It dies as
    // soon as /a's failure is recorded (not after a fixed time, which a loaded machine or a
    // remote store can overrun), while /b is still in its sleep.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = e.engine.clone();
    rt.spawn(async move { engine.run_pending().await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let failed = e
            .engine
            .list_jobs(Some("res"))
            .unwrap()
            .first()
            .is_some_and(|job| {
                e.engine
                    .list_datums("res", &job.id)
                    .unwrap()
                    .iter()
                    .any(|d| d.state == DatumState::Failed)
            });
        if failed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/a's failure was not recorded in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(rt);
    let job = e.engine.list_jobs(Some("res")).unwrap().remove(0);
    assert_eq!(job.state, JobState::JobRunning);
    let recorded = e.engine.list_datums("res", &job.id).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].state, DatumState::Failed);
    // A new engine on the same store resumes the job: /b runs, /a does not, the job fails.
    let engine = Engine::builder(e.store.clone())
        .executor(Arc::new(
            executor_process::ProcessExecutor::builder()
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let done = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(engine.run_pending())
        .unwrap();
    assert_eq!(done.len(), 1);
    let j = &done[0];
    assert_eq!(j.restarts, 1);
    assert_eq!(j.state, JobState::JobFailure, "{j:?}");
    let id = &recorded[0].id;
    assert_eq!(
        j.reason,
        format!(
            "datum {id} failed (exit code 1); its logs: `pipectl logs -p res --job {} --datum {id}`",
            j.id
        )
    );
    assert_eq!((j.stats.datums_failed, j.stats.datums_processed), (1, 1));
}

/// `accept_return_code` is the engine's: an accepted exit code is a success on any backend,
/// any other non-zero code a failure with that code.
#[test]
fn accepted_exit_codes_succeed_and_others_fail() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(
        "pipeline: {name: accepting}\n\
         transform: {cmd: [sh, -c, 'echo ok > /pfs/out/ok; exit 3'], accept_return_code: [3]}\n\
         input: {pfs: {repo: in, glob: /*}}\ndatum_tries: 1\n",
    );
    e.create(&one("refusing", "exit 4", "datum_tries: 1\n"));
    let jobs = e.run();
    let accepting = jobs.iter().find(|j| j.pipeline == "accepting").unwrap();
    assert_eq!(accepting.state, JobState::JobSuccess, "{accepting:?}");
    let refusing = jobs.iter().find(|j| j.pipeline == "refusing").unwrap();
    assert_eq!(refusing.state, JobState::JobFailure);
    let d = &e.engine.list_datums("refusing", &refusing.id).unwrap()[0];
    assert_eq!(d.failure, Some(DatumFailure::ExitCode { code: 4 }));
}

#[test]
fn rerun_runs_failed_datums_again_and_reprocess_runs_every_datum() {
    // /b fails while the marker file is missing; the first job fails on it. The marker's
    // directory is exposed to user code read-only.
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags");
    std::fs::create_dir(&flags).unwrap();
    let store = pipeline_core::pfs::Store::open(dir.path().join("store")).unwrap();
    let executor = executor_process::ProcessExecutor::builder()
        .expose(&flags)
        .build()
        .unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(executor))
        .build()
        .unwrap();
    let e = pps_common::Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a"), ("/b", "b")]);
    let marker = flags.join("fixed");
    let script = format!(
        "if [ ${{in##*/}} = b ] && [ ! -e {} ]; then exit 3; fi; cp $in /pfs/out/",
        marker.display()
    );
    e.create(&one("flaky", &script, "datum_tries: 1\n"));
    let first = e.run();
    assert_eq!(first[0].state, JobState::JobFailure);
    std::fs::write(&marker, "").unwrap();

    e.engine
        .rerun_pipeline("flaky", RerunMode::FailedOnly)
        .unwrap();
    let second = e.run();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].state, JobState::JobSuccess);
    assert_eq!(
        second[0].salvage_from.as_deref(),
        Some(first[0].id.as_str())
    );
    // /a succeeded in the failed first job: reused from it, not run again.
    let by_path = |job: &str, path: &str| {
        e.datums("flaky", job)
            .into_iter()
            .find(|d| d.inputs[0].path == path)
            .unwrap()
    };
    let a = by_path(&second[0].id, "/a");
    assert_eq!(a.state, DatumState::Skipped, "{a:?}");
    assert_eq!(
        a.reason,
        DatumReason::Unchanged {
            from_job: first[0].id.clone()
        }
    );
    assert_eq!(a.outputs, ["/a"]);
    let b = by_path(&second[0].id, "/b");
    assert_eq!(b.state, DatumState::Success, "{b:?}");
    assert_eq!(b.reason, DatumReason::PreviousFailure);
    assert_eq!(
        (
            second[0].stats.datums_processed,
            second[0].stats.datums_skipped
        ),
        (1, 1)
    );
    assert_eq!(
        e.tree(&second[0].output_commit),
        pipeline_core::testkit::engine::files(&[("/a", "a"), ("/b", "b")])
    );
    // The next ordinary job builds on the rerun's output; it reuses nothing from elsewhere.
    e.commit("in", &[], &[("/c", "c")]);
    let fourth = e.run();
    assert_eq!(fourth[0].salvage_from, None);
    assert_eq!(fourth[0].stats.datums_skipped, 2, "{fourth:?}");

    e.engine.rerun_pipeline("flaky", RerunMode::All).unwrap();
    let third = e.run();
    assert_eq!(third[0].state, JobState::JobSuccess);
    assert_eq!(third[0].salvage_from, None);
    assert_eq!(third[0].stats.datums_processed, 3, "{third:?}");
    assert_eq!(e.engine.inspect_pipeline("flaky").unwrap().version, 3);
}

#[test]
fn failed_only_rerun_reuses_nothing_that_changed_or_failed() {
    // Every datum fails in the first job: the rerun reuses nothing and runs both.
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a"), ("/b", "b")]);
    e.create(&one("broken", "exit 3", "datum_tries: 1\n"));
    let first = e.run();
    assert_eq!(first[0].state, JobState::JobFailure);
    e.engine
        .rerun_pipeline("broken", RerunMode::FailedOnly)
        .unwrap();
    let second = e.run();
    assert_eq!(second[0].stats.datums_skipped, 0, "{second:?}");
    assert_eq!(second[0].stats.datums_failed, 2, "{second:?}");
}

/// A job whose datums failed says how many, names the first three (failed datums in the
/// order the job page shows them) with how each ended, and gives the command for their logs.
#[test]
fn a_failed_job_s_reason_counts_and_names_its_failed_datums() {
    let e = env();
    e.repo("in");
    e.commit(
        "in",
        &[],
        &[
            ("/a", "3"),
            ("/b", "4"),
            ("/c", "5"),
            ("/d", "6"),
            ("/ok", "0"),
        ],
    );
    e.create(&one("many", "exit $(cat $in)", "datum_tries: 1\n"));
    let j = e.run().remove(0);
    assert_eq!(j.state, JobState::JobFailure);
    assert_eq!(j.stats.datums_failed, 4);
    assert!(
        j.reason.starts_with("4 datums failed, first 3: "),
        "{}",
        j.reason
    );
    assert!(
        j.reason.ends_with(&format!(
            "; their logs: `pipectl logs -p many --job {} --datum ID`",
            j.id
        )),
        "{}",
        j.reason
    );
    let failed: Vec<_> = e
        .engine
        .list_datums("many", &j.id)
        .unwrap()
        .into_iter()
        .filter(|d| d.state == DatumState::Failed)
        .collect();
    let named = failed.iter().filter(|d| j.reason.contains(&d.id)).count();
    assert_eq!(named, 3, "{}", j.reason);
    assert_eq!(j.reason.matches("(exit code ").count(), 3, "{}", j.reason);
}
