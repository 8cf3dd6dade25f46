//! One null-executor job over a stored commit of N one-file datums, for whole-job
//! measurements of the engine alone (`benches/scripts/engine_memory.sh`): its time, the
//! metadata file's growth per datum, and (under `/usr/bin/time`) its peak memory.
//!
//! Usage:
//! - `engine-job build DIR N [distinct]`: a store in `DIR` with one commit of N files;
//! - `engine-job run DIR [WORKERS] [output]`: runs the job (`/*`, null executor);
//! - `engine-job list DIR [REPO]`: walks the input commit, or the head of `REPO@master`
//!   (the baseline: the store alone).
//!
//! Each step is meant to run in its own process, so that a peak RSS measured around it is
//! that step's. Allocator settings come from the environment: `MALLOC_ARENA_MAX` (glibc)
//! and `ENGINE_JOB_TRIM_MS` (a thread calling `malloc_trim` every that many ms).

use std::path::{Path, PathBuf};
use std::time::Instant;

use benches::null_engine::{self, BoxError};
use pipeline_core::pfs::Store;

/// Size of the metadata database of the store in `dir`.
fn meta_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("meta.redb")).map_or(0, |m| m.len())
}

fn build(dir: &Path, n: usize, distinct: bool) -> Result<(), BoxError> {
    let t = Instant::now();
    null_engine::store_with_inputs(dir, n, distinct)?;
    println!(
        "build: {n} files in {:.1} s; meta.redb {} bytes",
        t.elapsed().as_secs_f64(),
        meta_bytes(dir)
    );
    Ok(())
}

/// With `ENGINE_JOB_TRIM_MS` set, a thread that hands glibc's free pages back to the system
/// every that many milliseconds (`malloc_trim`), to measure what the arenas keep.
fn start_trimming() {
    let Some(ms) = std::env::var("ENGINE_JOB_TRIM_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            // SAFETY: malloc_trim only returns free memory of the allocator to the system.
            #[allow(unsafe_code)]
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

async fn run(dir: &Path, workers: usize, output: bool) -> Result<(), BoxError> {
    start_trimming();
    let before = meta_bytes(dir);
    let engine = null_engine::engine(Store::open(dir)?, output)?;
    let t = Instant::now();
    let job = null_engine::run_null_job(&engine, workers).await?;
    let took = t.elapsed().as_secs_f64();
    let n = job.stats.datums_total.max(1);
    drop(engine);
    let after = meta_bytes(dir);
    println!(
        "job: {:?}, {} datums ({} processed) in {took:.2} s: {:.1} µs per datum",
        job.state,
        job.stats.datums_total,
        job.stats.datums_processed,
        took * 1e6 / n as f64
    );
    println!(
        "meta.redb: {before} -> {after} bytes: {:.0} bytes per datum",
        after.saturating_sub(before) as f64 / n as f64
    );
    Ok(())
}

fn list(dir: &Path, repo: Option<&String>) -> Result<(), BoxError> {
    let store = Store::open(dir)?;
    let commit = match repo {
        Some(name) => {
            let repo = pipeline_core::pfs::RepoRef::new(name)?;
            let head = store.inspect_branch(&repo.branch("master")?)?.head;
            repo.commit(&head)
        }
        None => null_engine::input_commit(&store)?,
    };
    let t = Instant::now();
    let mut entries = 0u64;
    for e in store.walk(&commit)? {
        e?;
        entries += 1;
    }
    println!(
        "walk: {entries} entries in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: engine-job build DIR N [distinct] | run DIR [WORKERS] [output] | list DIR [REPO]";
    let (Some(cmd), Some(dir)) = (args.first(), args.get(1)) else {
        return Err(usage.into());
    };
    let dir = PathBuf::from(dir);
    let flag = |name: &str| args.iter().skip(2).any(|a| a == name);
    match cmd.as_str() {
        "build" => {
            let n = args.get(2).ok_or(usage)?.parse()?;
            build(&dir, n, flag("distinct"))
        }
        "run" => {
            let workers = match args.get(2) {
                Some(w) if w != "output" => w.parse()?,
                _ => 2,
            };
            run(&dir, workers, flag("output")).await
        }
        "list" => list(&dir, args.get(2)),
        _ => Err(usage.into()),
    }
}
