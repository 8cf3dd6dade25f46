//! Kill test of pipeline registration: SIGKILL a process in the middle of `create pipeline`
//! and of `delete pipeline` (over a pipeline whose output commit holds 20,000 files) at
//! random moments, then check after every kill:
//! - the store reopens, and no orphan repo (a repo of a pipeline that is not listed) and no
//!   repo-less pipeline (a listed pipeline without its output or cron repo) is visible
//!   through `list_repos` / `list_pipelines`;
//! - the same command, run again in a new process, succeeds and leaves the intended state
//!   (the pipeline with its repos; or neither).
//!
//! The starting stores are built once and copied for every kill. The child mode
//! (`PPS_PIPELINE_KILL_CHILD=create|delete:<store dir>`) opens the store and runs the one
//! command.
//!
//! With `PIPELINE_TEST_STORE=postgres` the metadata is on the test PostgreSQL server, each
//! store in a schema of its own, built anew for each kill (fewer kills: building the
//! 20,000-file output takes seconds).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{FinishOptions, PfsError, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine, JobState};
use pipeline_core::testkit::store::{try_open_test_store, wants_postgres};

/// Kills per command on a store directory (copied from a base store for each kill).
const KILLS: usize = 30;
/// Kills per command with `PIPELINE_TEST_STORE=postgres`, where each kill's starting store is
/// built anew in a schema of its own (no copying a database schema).
const KILLS_POSTGRES: usize = 16;
const OUTPUT_FILES: usize = 20_000;
const CHILD_VAR: &str = "PPS_PIPELINE_KILL_CHILD";

/// Created by the `create` command: reads `data` and a cron input (so creating it makes
/// two repos, input branches and the first job's commits).
const CREATE_SPEC: &str = "pipeline: {name: copy}\ntransform: {cmd: [sh, -c, 'cp -r /pfs/data/. /pfs/out/']}\ninput:\n  cross:\n    - pfs: {repo: data, glob: /}\n    - cron: {name: tick, spec: '@every 1h'}\n";

/// Deleted by the `delete` command: one datum that writes [`OUTPUT_FILES`] files.
fn big_spec() -> String {
    format!(
        "pipeline: {{name: big}}\ntransform: {{cmd: [sh, -c, 'cd /pfs/out && i=0; while [ $i -lt {OUTPUT_FILES} ]; do echo x > f$i; i=$((i+1)); done']}}\ninput: {{pfs: {{repo: data, glob: /}}}}\n"
    )
}

fn engine(store: Store) -> Engine {
    Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap()
}

fn create(e: &Engine) {
    let specs = pipeline_core::spec::parse_str(CREATE_SPEC, "copy.yaml").unwrap();
    e.create_pipelines(&specs, &CreateOptions::default())
        .unwrap();
}

/// The child: one command against the store, then exit (0 on success).
fn child(what: &str, dir: &Path) {
    let e = engine(open_after_kill(dir));
    match what {
        "create" => create(&e),
        "delete" => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(e.delete_pipeline("big", false)).unwrap();
        }
        other => panic!("unknown child command {other}"),
    }
}

fn spawn(what: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD_VAR, format!("{what}:{}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Opens the store once the killed process's locks are gone (a process it was starting at
/// the moment of the kill may hold the lock file, or the database file's lock, a little
/// longer).
fn open_after_kill(dir: &Path) -> Store {
    let t = Instant::now();
    loop {
        match try_open_test_store(dir) {
            Err(e)
                if t.elapsed() < Duration::from_secs(10)
                    && (matches!(e, PfsError::Locked { .. } | PfsError::StoreInUse { .. })
                        || format!("{e:?}").contains("DatabaseAlreadyOpen")) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

/// Whether pipeline `name` is listed; panics on an orphan repo or a repo-less pipeline.
fn consistent(dir: &Path, name: &str) -> bool {
    let store = open_after_kill(dir);
    let e = Engine::builder(store.clone()).build().unwrap();
    let repos: Vec<String> = store
        .list_repos()
        .unwrap()
        .into_iter()
        .map(|r| r.repo.name)
        .collect();
    let pipelines = e.list_pipelines().unwrap();
    let mut owned = vec!["data".to_string()];
    for p in &pipelines {
        owned.push(p.name.clone());
        if p.name == "copy" {
            owned.push("copy_tick".into());
        }
    }
    for r in &repos {
        assert!(owned.contains(r), "orphan repo {r}: repos {repos:?}");
    }
    for o in &owned {
        assert!(repos.contains(o), "repo {o} missing: repos {repos:?}");
    }
    pipelines.iter().any(|p| p.name == name)
}

/// The starting store of `what` at `dir`: a copy of `base`, or on PostgreSQL one built anew.
fn prepare(what: &str, base: &Path, dir: &Path) {
    if !wants_postgres() {
        copy_dir(base, dir);
    } else if what == "create" {
        drop(base_store(dir));
    } else {
        with_big_output(base_store(dir));
    }
}

/// Runs `what` on a copy of `base` and SIGKILLs it after a random delay, [`KILLS`] times;
/// checks the store after each kill and after the re-run. The delays spread over the
/// duration of an uninterrupted run (the mean of those seen so far: the load varies).
fn kill_rounds(what: &str, base: &Path, work: &Path, rng: &mut Rng, want_pipeline: bool) {
    let probe = work.join(format!("probe-{what}"));
    prepare(what, base, &probe);
    let t = Instant::now();
    assert!(spawn(what, &probe).wait().unwrap().success());
    let mut runs = vec![t.elapsed().as_millis() as u64];
    assert_eq!(consistent(&probe, name(what)), want_pipeline);
    std::fs::remove_dir_all(&probe).unwrap();
    let (mut mid_run, mut done_at_kill) = (0, 0);
    let kills = if wants_postgres() {
        KILLS_POSTGRES
    } else {
        KILLS
    };
    for round in 0..kills {
        let dir = work.join(format!("{what}{round}"));
        prepare(what, base, &dir);
        let mut c = spawn(what, &dir);
        let mean = runs.iter().sum::<u64>() / runs.len() as u64;
        std::thread::sleep(Duration::from_millis(rng.next(mean)));
        if c.try_wait().unwrap().is_none() {
            mid_run += 1;
        }
        let _ = c.kill();
        let _ = c.wait();
        let done = consistent(&dir, name(what)) == want_pipeline;
        done_at_kill += usize::from(done);
        let t = Instant::now();
        let status = spawn(what, &dir).wait().unwrap();
        assert!(status.success(), "{what} round {round}: re-run failed");
        if !done {
            runs.push(t.elapsed().as_millis() as u64);
        }
        assert_eq!(
            consistent(&dir, name(what)),
            want_pipeline,
            "{what} round {round}: wrong state after the re-run"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let mean = runs.iter().sum::<u64>() / runs.len() as u64;
    println!(
        "pps_pipeline_kill: {what}: {kills} kills ({mid_run} mid-run, {done_at_kill} found done), runs of {mean} ms on average: ok"
    );
    assert!(
        mid_run >= kills / 3,
        "only {mid_run} kills hit a running {what}"
    );
}

fn name(what: &str) -> &'static str {
    if what == "create" { "copy" } else { "big" }
}

/// A store with repo `data` (one file) and nothing else.
fn base_store(dir: &Path) -> Store {
    let store = open_after_kill(dir);
    let data = RepoRef::new("data").unwrap();
    store.create_repo(&data, "").unwrap();
    let c = store
        .start_commit(&data.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store.put_file_bytes(&c, "/a", b"a\n").unwrap();
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    store
}

/// Adds pipeline `big` and runs its job: an output commit of [`OUTPUT_FILES`] files.
fn with_big_output(store: Store) {
    let e = engine(store.clone());
    let specs = pipeline_core::spec::parse_str(&big_spec(), "big.yaml").unwrap();
    e.create_pipelines(&specs, &CreateOptions::default())
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jobs = rt.block_on(async {
        let jobs = e.run_pending().await.unwrap();
        e.shutdown().await;
        jobs
    });
    assert!(
        jobs.iter().all(|j| j.state == JobState::JobSuccess),
        "{jobs:?}"
    );
    let head = store
        .resolve_commit(&RepoRef::new("big").unwrap(), "master")
        .unwrap();
    assert_eq!(
        store.list_file(&head, "/").unwrap().count(),
        OUTPUT_FILES,
        "the output of big"
    );
}

fn main() {
    if let Ok(arg) = std::env::var(CHILD_VAR) {
        let (what, dir) = arg.split_once(':').unwrap();
        child(what, Path::new(dir));
        return;
    }
    let started = Instant::now();
    // In memory when the machine has a tmpfs: creating 20,000 files is ~20 times faster there,
    // and a SIGKILL (unlike a power cut) loses nothing the page cache holds either way.
    let tmp = tempfile::Builder::new()
        .prefix("pps-pipeline-kill")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("pps_pipeline_kill: seed {seed}");
    let mut rng = Rng(seed);

    // The starting stores, copied for every kill (on PostgreSQL each kill builds its own).
    let create_base = tmp.path().join("create-base");
    let delete_base = tmp.path().join("delete-base");
    if !wants_postgres() {
        drop(base_store(&create_base));
    }
    kill_rounds("create", &create_base, tmp.path(), &mut rng, true);
    if !wants_postgres() {
        let t = Instant::now();
        with_big_output(base_store(&delete_base));
        println!(
            "pps_pipeline_kill: {OUTPUT_FILES}-file output made in {} ms",
            t.elapsed().as_millis()
        );
    }
    kill_rounds("delete", &delete_base, tmp.path(), &mut rng, false);
    println!(
        "pps_pipeline_kill: {} s in all",
        started.elapsed().as_secs()
    );
}
