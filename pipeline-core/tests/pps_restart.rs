//! `Engine::restart_datum` (pachctl's `restart datum`): a running datum's attempt is cancelled
//! and it starts again at once without using up one of its `datum_tries`; the restart is in
//! its attempt history; a finished job or a datum not running now is a clear error.

mod pps_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, Worker, WorkerPoolSpec,
};
use pipeline_core::pfs::Store;
use pipeline_core::pps::{DatumFailure, DatumState, Engine, JobState, PpsError, RunEnd};
use pps_common::Env;

/// An in-process executor whose first run of every datum hangs until cancelled; later runs
/// write `out/done` and succeed. `started` counts runs.
#[derive(Debug, Default)]
struct HangsOnce {
    started: Arc<Mutex<u32>>,
}

#[derive(Debug)]
struct HangsOnceWorker {
    started: Arc<Mutex<u32>>,
}

#[async_trait]
impl Executor for HangsOnce {
    fn name(&self) -> &'static str {
        "hangs-once"
    }
    async fn start_workers(
        &self,
        _: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        Ok(vec![Box::new(HangsOnceWorker {
            started: self.started.clone(),
        })])
    }
    async fn remove_pipeline(&self, _: &str, _: &str) -> Result<usize, ExecutorError> {
        Ok(0)
    }
}

#[async_trait]
impl Worker for HangsOnceWorker {
    fn index(&self) -> usize {
        0
    }
    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        let first = {
            let mut n = self.started.lock().unwrap();
            *n += 1;
            *n == 1
        };
        if first {
            task.cancel.cancelled().await;
            return Ok(DatumOutcome::Cancelled);
        }
        std::fs::write(task.scratch.join("out").join("done"), b"done").unwrap();
        Ok(DatumOutcome::Exited { exit_code: 0 })
    }
    async fn stop(&mut self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

#[test]
fn a_restarted_datum_runs_again_without_using_a_try() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let exec = HangsOnce::default();
    let started = exec.started.clone();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec))
        .build()
        .unwrap();
    let e = Env::with_engine(dir, engine);
    e.repo("in");
    e.commit("in", &[], &[("/a.txt", "a")]);
    e.create("pipeline: {name: p}\ntransform: {cmd: [x]}\ndatum_tries: 1\ninput: {pfs: {repo: in, glob: /*}}\n");

    let engine = e.engine.clone();
    let restarter = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "the datum never started");
            let jobs = engine.list_jobs(Some("p")).unwrap();
            if let Some(j) = jobs.first()
                && *started.lock().unwrap() == 1
            {
                // Unknown datums and wrong jobs are errors; the input path matches.
                let none = engine.restart_datum("p", &j.id, &["/b.txt".into()]);
                assert!(matches!(none, Err(PpsError::Usage(_))), "{none:?}");
                return engine
                    .restart_datum("p", &j.id, &["/a.txt".into()])
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let jobs = e.run();
    let restarted = restarter.join().unwrap();
    assert_eq!(restarted.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.state, JobState::JobSuccess, "{}", job.reason);
    let d = &e.engine.list_datums("p", &job.id).unwrap()[0];
    assert_eq!(d.id, restarted[0]);
    assert_eq!(d.state, DatumState::Success);
    let ends: Vec<&RunEnd> = d.attempt_history.iter().map(|a| &a.ended).collect();
    assert_eq!(
        ends,
        [
            &RunEnd::Failed {
                failure: DatumFailure::Cancelled
            },
            &RunEnd::Success
        ]
    );
    assert_eq!(
        e.head_tree("p"),
        [("/done".to_string(), "done".to_string())]
    );
    // The job is over: nothing to restart.
    let over = e
        .engine
        .restart_datum("p", &job.id, std::slice::from_ref(&d.id));
    assert!(
        matches!(over, Err(PpsError::JobFinished { .. })),
        "{over:?}"
    );
    let missing = e
        .engine
        .restart_datum("p", "0123456789abcdef", std::slice::from_ref(&d.id));
    assert!(
        matches!(missing, Err(PpsError::JobNotFound { .. })),
        "{missing:?}"
    );
}
