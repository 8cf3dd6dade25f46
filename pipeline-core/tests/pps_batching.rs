//! Datum batching (`transform.datum_batching`, reference §3.5) on the process executor: one
//! user process per datum set asking for its datums over `/pfs/.batch`, per-datum variables
//! in `/pfs/.env`, outputs per datum, incremental skipping, and failures per datum (reported
//! errors, premature exits, timeouts, `datum_tries`, `err_cmd`, `restart datum`), also under
//! path substitution.

mod pps_common;

use std::collections::BTreeSet;

use pipeline_core::pps::{DatumFailure, DatumReason, DatumState, JobState};
use pps_common::env;

/// A batching pipeline over input `in` (glob `/*`) whose shell script calls `next` (defined
/// here: the protocol spoken with `echo` and `read`) and runs `body` per datum with
/// `/pfs/.env` sourced; `extra` is more spec.
fn batching(name: &str, body: &str, extra: &str) -> String {
    let head = [
        // Which process this is, counted per job in the worker's private /tmp.
        "f=/tmp/starts-$PACH_JOB_ID; n=$(( $(cat $f 2>/dev/null || echo 0) + 1 )); echo $n > $f",
        "next() { echo \"next $1\" > \"$PIPECTL_NEXT_DATUM_DIR/request\" && read -r _ < \"$PIPECTL_NEXT_DATUM_DIR/reply\"; }",
        "outside=${in:-unset}",
        "next ok",
        "while true; do",
        "  . /pfs/.env",
    ];
    let lines = head.into_iter().chain(body.lines()).chain(["done"]);
    let stdin: String = lines
        .map(|l| format!("    - '{}'\n", l.replace('\'', "''")))
        .collect();
    format!(
        "pipeline: {{name: {name}}}\ntransform:\n  cmd: [sh]\n  datum_batching: true\n  stdin:\n{stdin}input: {{pfs: {{repo: in, glob: /*}}}}\n{extra}"
    )
}

#[test]
fn a_thousand_datums_run_in_one_process_per_set_and_rerun_incrementally() {
    let e = env();
    e.repo("in");
    let files: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("/f{i:04}"), format!("v{i}")))
        .collect();
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    e.commit("in", &[], &puts);
    e.create(&batching(
        "batch",
        "  echo \"$(cat $in) $PACH_DATUM_ID $outside $n\" > /pfs/out/${in##*/}; next ok",
        "datum_set_spec: {number: 250}\n",
    ));
    let jobs = e.run();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(job.stats.datums_processed, 1000);
    assert_eq!(job.stats.datum_sets, 4);
    let tree = e.tree(&job.output_commit);
    assert_eq!(tree.len(), 1000);
    let datums = e.datums("batch", &job.id);
    let mut processes = BTreeSet::new();
    for (path, content) in &tree {
        let parts: Vec<&str> = content.split_whitespace().collect();
        let [value, datum_id, outside, process] = parts[..] else {
            panic!("{path}: {content:?}");
        };
        let i: usize = path[2..].parse().unwrap();
        assert_eq!(value, format!("v{i}"), "{path}: the datum's own input");
        let d = datums.iter().find(|d| d.id == datum_id).unwrap();
        assert_eq!(d.inputs[0].path, *path, "PACH_DATUM_ID in /pfs/.env");
        assert_eq!(d.outputs, vec![path.clone()]);
        assert_eq!(
            outside, "unset",
            "per-datum variables are not in the process env"
        );
        processes.insert(process.to_string());
    }
    // One process per datum set (4 sets of 250 on one worker), not one per datum.
    assert_eq!(processes.len(), 4, "{processes:?}");

    // Change one file and add one: two datums run, the rest are skipped.
    e.commit("in", &[], &[("/f0007", "changed"), ("/new", "n")]);
    let jobs = e.run();
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    assert_eq!(
        (job.stats.datums_processed, job.stats.datums_skipped),
        (2, 999)
    );
    let datums = e.datums("batch", &job.id);
    let reason = |p: &str| {
        let d = datums.iter().find(|d| d.inputs[0].path == p).unwrap();
        (d.state, d.reason.clone())
    };
    assert_eq!(
        reason("/f0007"),
        (DatumState::Success, DatumReason::Changed)
    );
    assert_eq!(reason("/new"), (DatumState::Success, DatumReason::New));
    let tree = e.tree(&job.output_commit);
    assert_eq!(tree.len(), 1001);
    let changed = tree.iter().find(|(p, _)| p == "/f0007").unwrap();
    assert!(changed.1.starts_with("changed "), "{changed:?}");
}

#[test]
fn failed_datums_restart_the_process_with_tries_err_cmd_and_timeouts_per_datum() {
    let e = env();
    e.repo("in");
    e.commit(
        "in",
        &[],
        &[
            ("/ok1", "1"),
            ("/reported", "2"),
            ("/exits", "3"),
            ("/slow", "4"),
            ("/ok2", "5"),
        ],
    );
    let body = "  case ${in##*/} in
    reported) next \"error it went wrong\"; continue;;
    exits) exit 3;;
    slow) sleep 30;;
  esac
  cp $in /pfs/out/; next ok";
    e.create(
        &batching(
            "flaky",
            body,
            "datum_set_spec: {number: 100}\ndatum_tries: 2\ndatum_timeout: 1s\n",
        )
        .replace(
            "  datum_batching: true\n",
            "  datum_batching: true\n  err_cmd: [sh, -c, 'test ${in##*/} = reported']\n",
        ),
    );
    let jobs = e.run();
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobFailure, "{job:?}");
    assert_eq!(job.stats.datum_sets, 1);
    let datums = e.datums("flaky", &job.id);
    let by = |p: &str| datums.iter().find(|d| d.inputs[0].path == p).unwrap();
    for ok in ["/ok1", "/ok2"] {
        assert_eq!(by(ok).state, DatumState::Success, "{ok}: {:?}", by(ok));
        assert_eq!(by(ok).attempts, 1);
    }
    let reported = by("/reported");
    assert_eq!(reported.state, DatumState::Recovered, "{reported:?}");
    assert_eq!(reported.attempts, 2, "tries apply per datum");
    assert!(
        matches!(&reported.failure, Some(DatumFailure::Batching { message }) if message.contains("it went wrong")),
        "{reported:?}"
    );
    let exits = by("/exits");
    assert_eq!(exits.state, DatumState::Failed);
    assert_eq!(exits.attempts, 2);
    assert!(
        matches!(&exits.failure, Some(DatumFailure::Batching { message }) if message.contains("prematurely")),
        "{exits:?}"
    );
    let slow = by("/slow");
    assert_eq!(slow.state, DatumState::Failed);
    assert_eq!(
        (slow.attempts, slow.failure.clone()),
        (2, Some(DatumFailure::Timeout))
    );
    let tree = e.tree(&job.output_commit);
    let paths: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    assert!(paths.is_empty() || paths == ["/ok1", "/ok2"], "{paths:?}");
}

#[test]
fn batching_works_under_path_substitution_too() {
    use executor_process::{PfsMode, PfsRequest, ProcessExecutor};
    use pipeline_core::pps::Engine;
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::testkit::store::open_test_store(&dir.path().join("store"));
    let executor = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(PfsMode::Substitution))
        .build()
        .unwrap();
    let engine = Engine::builder(store)
        .executor(std::sync::Arc::new(executor))
        .build()
        .unwrap();
    let e = pps_common::Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a", "1"), ("/b", "2"), ("/c", "3")]);
    e.create(&batching(
        "subst",
        "  cp $in /pfs/out/; next ok",
        "datum_set_spec: {number: 10}\n",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{}", jobs[0].reason);
    let tree = e.tree(&jobs[0].output_commit);
    let want: Vec<(String, String)> = [("/a", "1"), ("/b", "2"), ("/c", "3")]
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    assert_eq!(
        tree, want,
        "the inputs' paths in /pfs/.env resolve on the host"
    );
}

#[test]
fn a_restarted_datum_gets_a_new_process_without_using_a_try() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "1"), ("/b", "2")]);
    // The first time it sees /a the process hangs (a marker in the worker's own /tmp).
    let body = "  if [ ${in##*/} = a ] && [ ! -e /tmp/hung-$PACH_JOB_ID ]; then
    touch /tmp/hung-$PACH_JOB_ID; echo hanging; sleep 60
  fi
  cp $in /pfs/out/; next ok";
    e.create(&batching(
        "p",
        body,
        "datum_set_spec: {number: 10}\ndatum_tries: 1\n",
    ));
    let engine = e.engine.clone();
    let restarter = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(std::time::Instant::now() < deadline, "/a never hung");
            if let Some(j) = engine.list_jobs(Some("p")).unwrap().first() {
                let (lines, _) = engine.log_tail("p", &j.id, None, 100).unwrap();
                if lines.iter().any(|l| l.message == "hanging") {
                    return engine.restart_datum("p", &j.id, &["/a".into()]).unwrap();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let jobs = e.run();
    assert_eq!(restarter.join().unwrap().len(), 1);
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    let datums = e.datums("p", &job.id);
    let a = datums.iter().find(|d| d.inputs[0].path == "/a").unwrap();
    assert_eq!(a.state, DatumState::Success);
    let ends: Vec<bool> = a
        .attempt_history
        .iter()
        .map(|h| h.ended == pipeline_core::pps::RunEnd::Success)
        .collect();
    assert_eq!(ends, [false, true], "{a:?}");
    assert_eq!(e.tree(&job.output_commit).len(), 2);
}
