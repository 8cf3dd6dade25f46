//! Kill test: SIGKILL the host process at random points while it runs jobs, restart, and
//! check the durability rules after every kill:
//! - the store reopens without repair;
//! - every finished, error-free output commit holds the complete output of its inputs (no
//!   partial output committed as success), and every SUCCESS job's commit is such a commit;
//! - datums whose results were recorded before a kill are not run again after it;
//! - no user-code process outlives the host.
//!
//! Finally a run without kills brings every job to SUCCESS with the complete output.
//!
//! The child mode (`PPS_KILL_CHILD=<store dir>`) opens the store and runs pending jobs.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{CommitRef, FinishOptions, PfsError, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, DatumState, Engine, JobState};
use pipeline_core::testkit::store::try_open_test_store;

const MARKER: &str = "0.0731";
/// Files in the input (each round rewrites half of them, so every round has a job to run).
const FILES: usize = 24;
const ROUNDS: usize = 24;

/// The test's store in `dir` (on PostgreSQL with `PIPELINE_TEST_STORE=postgres`: the same
/// schema for every process), waiting a little while a killed process's session still owns
/// it on the server.
fn open(dir: &Path) -> Store {
    let t0 = std::time::Instant::now();
    loop {
        match try_open_test_store(&dir.join("store")) {
            Ok(store) => return store,
            Err(PfsError::StoreInUse { .. } | PfsError::Locked { .. })
                if t0.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("store reopens after SIGKILL: {e}"),
        }
    }
}

fn engine(store: Store) -> Engine {
    Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap()
}

fn child(dir: &Path) {
    let store = open(dir);
    let e = engine(store);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        e.run_pending().await.unwrap();
        e.shutdown().await;
    });
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn tree(store: &Store, c: &CommitRef) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in store.list_file_recursive(c, "/").unwrap() {
        let f = f.unwrap();
        let (_, mut r) = store.get_file(c, &f.path).unwrap();
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).unwrap();
        out.push((f.path, buf));
    }
    out
}

fn orphans() -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c).contains(MARKER)
        {
            n += 1;
        }
    }
    n
}

/// Checks the durability rules; returns the (job, datum) pairs recorded as processed by
/// jobs that are not finished.
fn check(dir: &Path) -> BTreeSet<(String, String)> {
    let store = open(dir);
    let e = engine(store.clone());
    let repo = RepoRef::new("up").unwrap();
    for c in store.list_commits(&repo, None, usize::MAX).unwrap() {
        if !c.is_finished() || c.error.is_some() {
            continue;
        }
        let input = c
            .direct_provenance
            .first()
            .expect("output commit has an input")
            .clone();
        let expect = tree(&store, &input);
        assert_eq!(
            tree(&store, &c.commit),
            expect,
            "finished output commit {} is partial",
            c.commit
        );
    }
    let mut recorded = BTreeSet::new();
    for j in e.list_jobs(Some("up")).unwrap() {
        if j.state == JobState::JobSuccess {
            let c = store.inspect_commit(&j.output_commit).unwrap();
            assert!(
                c.is_finished() && c.error.is_none(),
                "SUCCESS job {} with commit {c:?}",
                j.id
            );
        }
        if !j.state.is_terminal() {
            for d in e.list_datums("up", &j.id).unwrap() {
                if d.state == DatumState::Success {
                    recorded.insert((j.id.clone(), d.id.clone()));
                }
            }
        }
    }
    recorded
}

fn runs(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn main() {
    if let Ok(dir) = std::env::var("PPS_KILL_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = Rng(std::process::id() as u64 * 2_654_435_761 + 12345);
    {
        let store = open(dir);
        let e = engine(store.clone());
        let repo = RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        let c = store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit;
        for i in 0..FILES {
            store
                .put_file_bytes(&c, &format!("/f{i:02}"), format!("line {i}\n").as_bytes())
                .unwrap();
        }
        store.finish_commit(&c, FinishOptions::default()).unwrap();
        let spec = format!(
            r#"
pipeline: {{name: up}}
transform:
  cmd: [sh, -c, 'echo "$PACH_JOB_ID $PACH_DATUM_ID" >> "$RUNS"; while IFS= read -r l || [ -n "$l" ]; do printf "%s\n" "$l"; done < "$data" > "/pfs/out/${{data##*/}}"; exec sleep {MARKER}']
  env: {{RUNS: {}}}
parallelism_spec: {{constant: 2}}
input: {{pfs: {{repo: data, glob: /*}}}}
"#,
            dir.join("runs.log").display()
        );
        let parsed = pipeline_core::spec::parse_str(&spec, "up.yaml").unwrap();
        e.create_pipelines(&parsed, &CreateOptions::default())
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let mut kills = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            // New work: rewrite half of the files, add one, delete one.
            let store = open(dir);
            let repo = RepoRef::new("data").unwrap();
            let c = store
                .start_commit(&repo.branch("master").unwrap(), "")
                .unwrap()
                .commit;
            for i in (round % 2..FILES).step_by(2) {
                store
                    .put_file_bytes(
                        &c,
                        &format!("/f{i:02}"),
                        format!("round {round} {i}\n").as_bytes(),
                    )
                    .unwrap();
            }
            store
                .put_file_bytes(&c, &format!("/new{round}"), b"new\n")
                .unwrap();
            let _ = store.delete_file(&c, &format!("/new{}", round - 1));
            store.finish_commit(&c, FinishOptions::default()).unwrap();
        }
        let recorded = check(dir);
        let before = runs(dir).len();
        let mut c = Command::new(&exe)
            .env("PPS_KILL_CHILD", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng.next(700)));
        if c.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = c.kill();
        let _ = c.wait();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            orphans(),
            0,
            "round {round}: user-code processes outlived the host"
        );
        let again: Vec<_> = runs(dir)[before..]
            .iter()
            .filter(|r| recorded.contains(r))
            .cloned()
            .collect();
        assert!(
            again.is_empty(),
            "round {round}: recorded datums ran again: {again:?}"
        );
        check(dir);
    }
    // Finish without kills.
    child(dir);
    check(dir);
    let store = open(dir);
    let e = engine(store.clone());
    let jobs = e.list_jobs(Some("up")).unwrap();
    assert!(jobs.iter().all(|j| j.state.is_terminal()), "{jobs:?}");
    let last = jobs.last().unwrap();
    assert_eq!(last.state, JobState::JobSuccess, "{}", last.reason);
    let input = store
        .resolve_commit(&RepoRef::new("data").unwrap(), "master")
        .unwrap();
    assert_eq!(tree(&store, &last.output_commit), tree(&store, &input));
    let restarts: u32 = jobs.iter().map(|j| j.restarts).sum();
    println!(
        "pps_kill: {ROUNDS} rounds, {kills} kills mid-run, {} jobs, {restarts} resumes: ok",
        jobs.len()
    );
    assert!(kills >= 20, "only {kills} kills hit a running host");
}
