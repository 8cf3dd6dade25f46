//! Datum sets (reference §1.4, `datum_set_spec`): how a job's datums to run are cut into
//! sets (`number`, `size_bytes`, `per_worker` and its default), that a worker claims a whole
//! set, that every variant gives the same output as a pipeline without `datum_set_spec`, and
//! that a set is the commit unit: a host dying mid-set reruns that set only.

mod pps_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, Worker, WorkerPoolSpec,
};
use pipeline_core::pfs::Store;
use pipeline_core::pps::{DatumState, Engine, JobState};
use pps_common::{Env, env};

/// A pipeline copying each file of `in` (glob `/*`) to its output, with `extra` spec lines.
fn copy(name: &str, extra: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, 'cp $in /pfs/out/']}}\ninput: {{pfs: {{repo: in, glob: /*}}}}\n{extra}"
    )
}

/// `n` files `/f00` … of a few bytes each.
fn files(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("/f{i:02}"), format!("{i}")))
        .collect()
}

fn commit_files(e: &Env, files: &[(String, String)]) {
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    e.commit("in", &[], &puts);
}

/// Every variant cuts the datums as the reference says and writes what a pipeline without
/// `datum_set_spec` writes; `size_bytes` counts input bytes.
#[test]
fn each_rule_cuts_its_sets_and_the_output_is_unchanged() {
    let e = env();
    e.repo("in");
    let mut fs = files(15);
    // One big file: with size_bytes 10 it closes its set at once.
    fs.push(("/big".into(), "x".repeat(30)));
    commit_files(&e, &fs);
    let variants = [
        ("plain", "", 4),                            // 16 / (1 × 4) per set
        ("num", "datum_set_spec: {number: 3}\n", 6), // 3,3,3,3,3,1
        (
            "num2",
            "datum_set_spec: {number: 3}\nparallelism_spec: {constant: 2}\n",
            6,
        ),
        ("bytes", "datum_set_spec: {size_bytes: 10}\n", 3), // /big; f00..f09; f10..f14
        ("pw", "parallelism_spec: {constant: 2}\n", 8),     // 16 / (2 × 4)
        (
            "pw1",
            "datum_set_spec: {per_worker: 1}\nparallelism_spec: {constant: 2}\n",
            2,
        ),
        ("big", "datum_set_spec: {number: 1000000}\n", 1),
    ];
    for (name, extra, _) in variants {
        e.create(&copy(name, extra));
    }
    let jobs = e.run();
    let want = e.head_tree("plain");
    assert_eq!(want.len(), 16);
    for (name, _, sets) in variants {
        let j = jobs.iter().find(|j| j.pipeline == name).unwrap();
        assert_eq!(j.state, JobState::JobSuccess, "{name}: {}", j.reason);
        assert_eq!(j.stats.datum_sets, sets, "{name}: sets");
        assert_eq!(j.stats.datums_processed, 16, "{name}");
        assert_eq!(e.head_tree(name), want, "{name}: output");
        assert_eq!(e.datums(name, &j.id).len(), 16, "{name}: records");
    }

    // Incrementally, per_worker divides only the datums to run (skipped ones are in no
    // set): 4 new datums on 2 workers × 4 sets each are 4 sets of one.
    commit_files(&e, &files(20)[16..]);
    let jobs = e.run();
    for j in &jobs {
        assert_eq!(
            j.state,
            JobState::JobSuccess,
            "{}: {}",
            j.pipeline,
            j.reason
        );
        assert_eq!(j.stats.datums_skipped, 16, "{}", j.pipeline);
        assert_eq!(j.stats.datums_processed, 4, "{}", j.pipeline);
        assert_eq!(e.head_tree(&j.pipeline), e.head_tree("plain"));
    }
    let sets = |p: &str| {
        jobs.iter()
            .find(|j| j.pipeline == p)
            .unwrap()
            .stats
            .datum_sets
    };
    assert_eq!(sets("pw"), 4);
    assert_eq!(sets("plain"), 4);
    assert_eq!(sets("bytes"), 1);
    assert_eq!(sets("num"), 2);
    assert_eq!(sets("pw1"), 2);
}

/// An explicit all-zero `datum_set_spec` (Pachyderm divides by zero on it) is refused when
/// the pipeline is created, naming the field.
#[test]
fn an_all_zero_datum_set_spec_is_refused() {
    let e = env();
    e.repo("in");
    let parsed = pipeline_core::spec::parse_str(
        &copy(
            "zero",
            "datum_set_spec: {number: 0, size_bytes: 0, per_worker: 0}\n",
        ),
        "zero.yaml",
    )
    .unwrap();
    let err = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("datum_set_spec"), "{err}");
}

/// Runs of an in-process worker: (worker index, input file name), in order.
type Runs = Arc<Mutex<Vec<(usize, String)>>>;

/// An in-process executor with two workers that write `out/<name>` for input file `<name>`
/// and record each run; a run of `hang` hangs until cancelled (the host "dies" then).
#[derive(Debug, Default)]
struct Recorder {
    runs: Runs,
    hang: Option<String>,
}

#[derive(Debug)]
struct RecorderWorker {
    index: usize,
    runs: Runs,
    hang: Option<String>,
}

#[async_trait]
impl Executor for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        Ok((0..spec.workers)
            .map(|index| {
                Box::new(RecorderWorker {
                    index,
                    runs: self.runs.clone(),
                    hang: self.hang.clone(),
                }) as Box<dyn Worker>
            })
            .collect())
    }
    async fn remove_pipeline(&self, _: &str, _: &str) -> Result<usize, ExecutorError> {
        Ok(0)
    }
}

#[async_trait]
impl Worker for RecorderWorker {
    fn index(&self) -> usize {
        self.index
    }
    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        let env: HashMap<_, _> = task.env.iter().cloned().collect();
        let name = env["in"].rsplit('/').next().unwrap_or_default().to_string();
        self.runs.lock().unwrap().push((self.index, name.clone()));
        if self.hang.as_ref() == Some(&name) {
            task.cancel.cancelled().await;
            return Ok(DatumOutcome::Cancelled);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(task.scratch.join("out").join(&name), name.as_bytes()).unwrap();
        Ok(DatumOutcome::Exited { exit_code: 0 })
    }
    async fn stop(&mut self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

fn recorder_env(hang: Option<&str>) -> (Env, Runs) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let exec = Recorder {
        hang: hang.map(str::to_string),
        ..Default::default()
    };
    let runs = exec.runs.clone();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec))
        .build()
        .unwrap();
    (Env::with_engine(dir, engine), runs)
}

/// A worker claims a whole set: each set's datums run on one worker, in plan order.
#[test]
fn a_worker_claims_a_whole_set() {
    let (e, runs) = recorder_env(None);
    e.repo("in");
    commit_files(&e, &files(12));
    e.create("pipeline: {name: p}\ntransform: {cmd: [x]}\nparallelism_spec: {constant: 2}\ndatum_set_spec: {number: 3}\ninput: {pfs: {repo: in, glob: /*}}\n");
    let j = e.run().remove(0);
    assert_eq!(j.state, JobState::JobSuccess, "{}", j.reason);
    assert_eq!(j.stats.datum_sets, 4);
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 12);
    let worker_of: HashMap<String, usize> = runs.iter().map(|(w, n)| (n.clone(), *w)).collect();
    let used: std::collections::BTreeSet<usize> = runs.iter().map(|(w, _)| *w).collect();
    assert_eq!(used.len(), 2, "both workers took sets: {runs:?}");
    for set in files(12).chunks(3) {
        let names: Vec<String> = set.iter().map(|(p, _)| p[1..].to_string()).collect();
        let w = worker_of[&names[0]];
        assert!(
            names.iter().all(|n| worker_of[n] == w),
            "set {names:?} split over workers: {runs:?}"
        );
    }
}

/// A set is the commit unit: the host dies while the second datum of the second set runs;
/// the first set stays recorded, the second set's finished datum is not, and the resumed
/// job runs exactly the second set again.
#[test]
fn a_host_dying_mid_set_reruns_that_set_only() {
    let (e, runs) = recorder_env(Some("f03"));
    e.repo("in");
    commit_files(&e, &files(4));
    e.create("pipeline: {name: p}\ntransform: {cmd: [x]}\ndatum_set_spec: {number: 2}\ninput: {pfs: {repo: in, glob: /*}}\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let run = e.engine.run_pending();
        tokio::pin!(run);
        // Until f03 hangs and f00..f02 were committed or reported.
        loop {
            tokio::select! {
                r = &mut run => panic!("the job ended: {:?}", r.map(|j| j.len())),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            let hung = runs.lock().unwrap().iter().any(|(_, n)| n == "f03");
            let recorded = e
                .engine
                .list_jobs(Some("p"))
                .unwrap()
                .first()
                .map_or(0, |j| e.engine.list_datums("p", &j.id).unwrap().len());
            if hung && recorded == 2 {
                // Give the collector time to commit anything it (wrongly) would.
                tokio::time::sleep(Duration::from_millis(600)).await;
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never reached f03");
        }
    });
    drop(rt);
    let job = e.engine.list_jobs(Some("p")).unwrap().remove(0);
    assert_eq!(job.state, JobState::JobRunning);
    let mut recorded: Vec<String> = e
        .datums("p", &job.id)
        .iter()
        .map(|d| d.inputs[0].path.clone())
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        ["/f00", "/f01"],
        "only the first set is committed"
    );
    assert_eq!(job.stats.datum_sets, 1);

    // A new engine on the same store (whose worker does not hang) resumes the job.
    runs.lock().unwrap().clear();
    let exec = Recorder::default();
    let rerun = exec.runs.clone();
    let engine = Engine::builder(e.store.clone())
        .executor(Arc::new(exec))
        .build()
        .unwrap();
    let done = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(engine.run_pending())
        .unwrap();
    let j = &done[0];
    assert_eq!(
        (j.state, j.restarts),
        (JobState::JobSuccess, 1),
        "{}",
        j.reason
    );
    let names: Vec<String> = rerun
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(names, ["f02", "f03"], "the cut-short set runs again, alone");
    assert_eq!(j.stats.datum_sets, 2);
    assert_eq!(j.stats.datums_processed, 4);
    let ds = engine.list_datums("p", &j.id).unwrap();
    assert!(ds.iter().all(|d| d.state == DatumState::Success));
    assert_eq!(
        e.head_tree("p"),
        pipeline_core::testkit::engine::files(&[
            ("/f00", "f00"),
            ("/f01", "f01"),
            ("/f02", "f02"),
            ("/f03", "f03")
        ])
    );
}
