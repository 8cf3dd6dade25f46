//! What the console reads from the engine: datum pages (reading order, state filter, cursor
//! paging, the order index of jobs recorded before it existed, nothing left after a delete),
//! every attempt of a datum, and each input's branch, hash, size and join key.

mod pps_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, ProgramKind, Worker, WorkerPoolSpec,
};
use pipeline_core::pfs::Store;
use pipeline_core::pps::{
    DatumFailure, DatumInfo, DatumQuery, DatumState, Engine, PpsError, RunEnd, datum_time_us,
    state_rank,
};
use pps_common::{Env, env};

/// A pipeline over `in` whose datums fail when the file name starts with `f`, are recovered
/// by `err_cmd` when it starts with `r`, and copy their input otherwise.
const MIXED: &str = "pipeline: {name: mixed}
transform:
  cmd: [sh, -c, 'case ${in##*/} in f*) exit 3;; r*) exit 4;; esac; cp $in /pfs/out/']
  err_cmd: [sh, -c, 'case ${in##*/} in r*) exit 0;; esac; exit 1']
datum_tries: 1
input: {pfs: {repo: in, glob: /*}}
";

/// A job with every state: `s0..s4` skipped (unchanged since the first job), `n0..n5`
/// processed, `f0..f2` failed, `r0..r1` recovered. Returns the second job's ID.
fn mixed_job(e: &Env) -> String {
    e.repo("in");
    let first: Vec<(String, String)> = (0..5).map(|i| (format!("/s{i}"), "s".into())).collect();
    let first: Vec<(&str, &str)> = first
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    e.commit("in", &[], &first);
    e.create(MIXED);
    e.run();
    let mut second: Vec<(String, String)> = Vec::new();
    second.extend((0..6).map(|i| (format!("/n{i}"), "n".repeat(i + 1))));
    second.extend((0..3).map(|i| (format!("/f{i}"), "f".into())));
    second.extend((0..2).map(|i| (format!("/r{i}"), "r".into())));
    let second: Vec<(&str, &str)> = second
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    e.commit("in", &[], &second);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].id.clone()
}

/// Every datum of `job` (in `state`), `limit` per page, following `next`.
fn paged(e: &Env, job: &str, state: Option<DatumState>, limit: usize) -> Vec<DatumInfo> {
    paged_in(e, job, state, limit, false)
}

/// [`paged`], in either direction.
fn paged_in(
    e: &Env,
    job: &str,
    state: Option<DatumState>,
    limit: usize,
    reverse: bool,
) -> Vec<DatumInfo> {
    let mut q = DatumQuery {
        state,
        after: None,
        limit,
        reverse,
    };
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = e.engine.datum_page("mixed", job, &q).unwrap();
        assert!(
            page.datums.len() <= limit,
            "{} > {limit}",
            page.datums.len()
        );
        out.extend(page.datums);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return out,
        }
    }
    panic!("paging never ended");
}

/// Whether `datums` are in reading order: failed, recovered, success, skipped; within a
/// state the slowest first.
fn in_reading_order(datums: &[DatumInfo]) -> bool {
    datums.windows(2).all(|w| {
        let key = |d: &DatumInfo| {
            (
                state_rank(d.state),
                u64::MAX - datum_time_us(d),
                d.id.clone(),
            )
        };
        key(&w[0]) < key(&w[1])
    })
}

fn names(datums: &[DatumInfo]) -> Vec<String> {
    datums.iter().map(|d| d.inputs[0].path.clone()).collect()
}

#[test]
fn pages_follow_reading_order_filter_by_state_and_page_by_cursor() {
    let e = env();
    let job = mixed_job(&e);
    let all = paged(&e, &job, None, 1000);
    assert_eq!(all.len(), 16);
    assert!(in_reading_order(&all), "{:?}", names(&all));
    let counts = |s| all.iter().filter(|d| d.state == s).count();
    assert_eq!(
        [
            DatumState::Failed,
            DatumState::Recovered,
            DatumState::Success,
            DatumState::Skipped
        ]
        .map(counts),
        [3, 2, 6, 5]
    );
    assert!(names(&all[..3]).iter().all(|n| n.starts_with("/f")));

    // Small pages over several cursors give the same datums, in the same order.
    assert_eq!(paged(&e, &job, None, 3), all);
    assert_eq!(paged(&e, &job, None, 16), all);

    // One state only, paged too.
    let failed = paged(&e, &job, Some(DatumState::Failed), 2);
    assert_eq!(failed, all[..3]);
    let skipped = paged(&e, &job, Some(DatumState::Skipped), 2);
    assert_eq!(skipped, all[11..]);
    let success = paged(&e, &job, Some(DatumState::Success), 4);
    assert_eq!(success, all[5..11]);

    // A cursor of the unfiltered order still works with a filter: what follows it.
    let first_page = e
        .engine
        .datum_page(
            "mixed",
            &job,
            &DatumQuery {
                limit: 4,
                ..Default::default()
            },
        )
        .unwrap();
    let after_it = e
        .engine
        .datum_page(
            "mixed",
            &job,
            &DatumQuery {
                state: Some(DatumState::Recovered),
                after: first_page.next,
                limit: 10,
                reverse: false,
            },
        )
        .unwrap();
    assert_eq!(after_it.datums, all[4..5]);
    assert_eq!(after_it.next, None);
}

#[test]
fn reverse_pages_give_the_reading_order_backwards() {
    let e = env();
    let job = mixed_job(&e);
    for state in [None, Some(DatumState::Success), Some(DatumState::Skipped)] {
        let mut forward = names(&paged(&e, &job, state, 1000));
        forward.reverse();
        for limit in [1, 3, 1000] {
            let backward = names(&paged_in(&e, &job, state, limit, true));
            assert_eq!(backward, forward, "state {state:?}, {limit} per page");
        }
    }
}

#[test]
fn bad_cursors_and_unknown_jobs_are_clear_errors() {
    let e = env();
    let job = mixed_job(&e);
    for bad in ["nope", "9/00000000000000000000/ab", "", "0/1/ab/../x"] {
        let q = DatumQuery {
            after: Some(bad.into()),
            ..Default::default()
        };
        match e.engine.datum_page("mixed", &job, &q) {
            Err(PpsError::Usage(m)) => assert!(m.contains("cursor"), "{m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        e.engine.datum_page("mixed", "0123", &DatumQuery::default()),
        Err(PpsError::JobNotFound { .. })
    ));
}

#[test]
fn a_job_recorded_before_the_index_existed_gets_it_on_first_use() {
    let e = env();
    let job = mixed_job(&e);
    let before = paged(&e, &job, None, 5);
    // Make the store look like one written before the index: no order entries, no marker.
    e.engine
        .store()
        .transact(|txn| -> pipeline_core::pfs::Result<()> {
            txn.engine_delete_prefix(b"O/mixed/")?;
            txn.engine_delete_prefix(b"I/mixed/")
        })
        .unwrap();
    let empty = e.engine.store().engine_scan(b"O/mixed/").unwrap().count();
    assert_eq!(empty, 0);
    assert_eq!(paged(&e, &job, None, 5), before);
    assert_eq!(paged(&e, &job, Some(DatumState::Failed), 1), before[..3]);
    let marker = format!("I/mixed/{job}");
    assert!(
        e.engine
            .store()
            .engine_get(marker.as_bytes())
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_deleted_pipeline_leaves_no_index() {
    let e = env();
    mixed_job(&e);
    let store = e.engine.store().clone();
    assert!(store.engine_scan(b"O/mixed/").unwrap().count() > 0);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(e.engine.delete_pipeline("mixed", false))
        .unwrap();
    for prefix in [&b"O/mixed/"[..], b"I/mixed/", b"D/mixed/"] {
        assert_eq!(store.engine_scan(prefix).unwrap().count(), 0);
    }
}

/// An in-process executor whose user code fails the first `fail_first` attempts of each
/// datum (exit 7), then writes `out/<datum id>`; `err_cmd` always fails (exit 1).
#[derive(Debug)]
struct Flaky {
    fail_first: u32,
    runs: Arc<Mutex<HashMap<String, u32>>>,
}

#[derive(Debug)]
struct FlakyWorker {
    fail_first: u32,
    runs: Arc<Mutex<HashMap<String, u32>>>,
}

#[async_trait]
impl Executor for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn start_workers(
        &self,
        _spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        Ok(vec![Box::new(FlakyWorker {
            fail_first: self.fail_first,
            runs: self.runs.clone(),
        })])
    }

    async fn remove_pipeline(&self, _: &str, _: &str) -> Result<usize, ExecutorError> {
        Ok(0)
    }
}

#[async_trait]
impl Worker for FlakyWorker {
    fn index(&self) -> usize {
        0
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        if task.program.kind == ProgramKind::ErrCmd {
            return Ok(DatumOutcome::Exited { exit_code: 1 });
        }
        let run = {
            let mut runs = self.runs.lock().unwrap();
            let n = runs.entry(task.datum_id.clone()).or_default();
            *n += 1;
            *n
        };
        if run <= self.fail_first {
            return Ok(DatumOutcome::Exited { exit_code: 7 });
        }
        std::fs::write(task.scratch.join("out").join(&task.datum_id), b"done").unwrap();
        Ok(DatumOutcome::Exited { exit_code: 0 })
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

fn flaky_env(fail_first: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let executor = Flaky {
        fail_first,
        runs: Arc::default(),
    };
    let engine = Engine::builder(store)
        .executor(Arc::new(executor))
        .build()
        .unwrap();
    Env::with_engine(dir, engine)
}

#[test]
fn every_attempt_is_recorded_with_how_it_and_err_cmd_ended() {
    let e = flaky_env(2);
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    e.create(
        "pipeline: {name: tries}
transform: {cmd: [run], err_cmd: [recover]}
datum_tries: 3
input: {pfs: {repo: in, glob: /*}}
",
    );
    let jobs = e.run();
    let datums = e.datums("tries", &jobs[0].id);
    let d = &datums[0];
    assert_eq!(d.state, DatumState::Success, "{d:?}");
    assert_eq!(d.attempts, 3);
    let ends: Vec<_> = d
        .attempt_history
        .iter()
        .map(|a| (a.number, a.ended.clone(), a.err_cmd.clone()))
        .collect();
    let exit = |code| RunEnd::Failed {
        failure: DatumFailure::ExitCode { code },
    };
    assert_eq!(
        ends,
        [
            (1, exit(7), Some(exit(1))),
            (2, exit(7), Some(exit(1))),
            (3, RunEnd::Success, None),
        ]
    );
    // Stored and read back (old records without the field still read: serde default).
    let json = serde_json::to_value(d).unwrap();
    assert_eq!(
        json["attempt_history"][0]["ended"]["failure"]["kind"],
        "exit_code"
    );
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("attempt_history");
    let read: DatumInfo = serde_json::from_value(old).unwrap();
    assert!(read.attempt_history.is_empty());
}

#[test]
fn datum_inputs_carry_branch_hash_size_and_join_keys() {
    let e = flaky_env(0);
    e.repo("left");
    e.repo("right");
    e.commit("left", &[], &[("/k1.txt", "left one"), ("/k2.txt", "l2")]);
    let right = e.commit("right", &[], &[("/k1.csv", "right")]);
    e.create(
        r#"pipeline: {name: joined}
transform: {cmd: [run]}
input:
  join:
    - {pfs: {repo: left, glob: "/(*).txt", join_on: "$1"}}
    - {pfs: {repo: right, glob: "/(*).csv", join_on: "$1"}}
"#,
    );
    let jobs = e.run();
    let datums = e.datums("joined", &jobs[0].id);
    assert_eq!(datums.len(), 1, "{datums:?}");
    let inputs = &datums[0].inputs;
    assert_eq!(inputs.len(), 2);
    let left = inputs.iter().find(|i| i.repo == "left").unwrap();
    assert_eq!(
        (
            left.path.as_str(),
            left.branch.as_str(),
            left.size,
            left.join_key.as_str()
        ),
        ("/k1.txt", "master", 8, "k1")
    );
    assert!(left.group_key.is_empty());
    let r = inputs.iter().find(|i| i.repo == "right").unwrap();
    let stored = e.engine.store().inspect_file(&right, "/k1.csv").unwrap();
    assert_eq!(r.hash, stored.hash.to_hex());
    assert_eq!(r.join_key, "k1");

    // Skipped datums carry them too.
    e.commit("left", &[], &[("/k3.txt", "new")]);
    let jobs = e.run();
    let skipped = e.datums("joined", &jobs[0].id);
    assert_eq!(skipped[0].state, DatumState::Skipped, "{skipped:?}");
    assert_eq!(&skipped[0].inputs, inputs);
}
