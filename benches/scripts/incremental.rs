//! Issue #19 target 5: a job after a commit that changes nothing, and after one that adds one
//! file, on a repo of N one-file datums (`/*`, null executor), with the engine's O(change)
//! route for unchanged inputs off (every job walks its datums: the baseline) and on, the two
//! interleaved in one run (`benches/scripts/incremental.sh` runs it for several N).
//!
//! Usage: `incremental-jobs DIR N [ROUNDS] [MORE]`: builds a store of N files in `DIR`, runs
//! the first job (every datum new), then ROUNDS (default 3) times, for each engine (walk,
//! then skip): an empty commit and its job; a commit adding one file and its job. Then MORE
//! (default 0) rounds of the skip engine alone, one after another (so each job builds on
//! the last, and the input commits pass compactions every 16 layers). Prints each time, the
//! medians with the ratio skip / walk, and the slowest skip round (commit + job).
//! `INPUT=union`: the pipeline's input is a union of two `/*` inputs over the repo (2N
//! datums, two per file). `INPUT=cross`: the repo's `/*` crossed with a repo `model` of one
//! file (N datums, each a file and the model), the shape of a model applied to every image.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use benches::null_engine::{self, BoxError, NullExecutor};
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{Engine, JobInfo, JobState};

/// One commit to the input repo (`put`: one new file) and the job it starts, run to its end
/// by an engine that skips unchanged jobs when `skip`; (commit seconds, job seconds, job).
async fn commit_and_run(
    store: &Store,
    skip: bool,
    put: Option<&str>,
) -> Result<(f64, f64, JobInfo), BoxError> {
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(NullExecutor { output: false }))
        .skip_unchanged_jobs(skip)
        .build()?;
    let t = Instant::now();
    let repo = RepoRef::new(null_engine::REPO)?;
    let c = store.start_commit(&repo.branch("master")?, "")?.commit;
    if let Some(path) = put {
        store.put_file_bytes(&c, path, path.as_bytes())?;
    }
    store.finish_commit(&c, FinishOptions::default())?;
    let committed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let jobs = engine.run_pending().await?;
    let ran = t.elapsed().as_secs_f64();
    let job = jobs.into_iter().last().ok_or("no job ran")?;
    if job.state != JobState::JobSuccess {
        return Err(format!("job {} ended {:?}: {}", job.id, job.state, job.reason).into());
    }
    Ok((committed, ran, job))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: incremental-jobs DIR N [ROUNDS]";
    let dir = PathBuf::from(args.first().ok_or(usage)?);
    let n: usize = args.get(1).ok_or(usage)?.parse()?;
    let rounds: usize = args.get(2).map_or(Ok(3), |r| r.parse())?;
    let more: usize = args.get(3).map_or(Ok(0), |r| r.parse())?;

    let t = Instant::now();
    let store = null_engine::store_with_inputs(&dir, n, true)?;
    let engine = null_engine::engine(store.clone(), false)?;
    let input = match std::env::var("INPUT").as_deref() {
        Ok("union") => format!(
            "{{union: [{{pfs: {{repo: {r}, name: a, glob: /*}}}}, {{pfs: {{repo: {r}, name: b, glob: /*}}}}]}}",
            r = null_engine::REPO
        ),
        Ok("cross") => {
            let model = RepoRef::new("model")?;
            store.create_repo(&model, "")?;
            let c = store.start_commit(&model.branch("master")?, "")?.commit;
            store.put_file_bytes(&c, "/weights", b"model weights")?;
            store.finish_commit(&c, FinishOptions::default())?;
            format!(
                "{{cross: [{{pfs: {{repo: {}, glob: /*}}}}, {{pfs: {{repo: model, glob: /*}}}}]}}",
                null_engine::REPO
            )
        }
        _ => format!("{{pfs: {{repo: {}, glob: /*}}}}", null_engine::REPO),
    };
    let first = null_engine::run_null_job_over(&engine, 2, &input).await?;
    drop(engine);
    println!(
        "N={n}: first job {:?}, {} datums, in {:.1} s (with the {n}-file commit)",
        first.state,
        first.stats.datums_total,
        t.elapsed().as_secs_f64()
    );

    // times[scenario][engine]: scenario 0 = no-op, 1 = +1 file; engine 0 = walk, 1 = skip.
    let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut commits = [Vec::new(), Vec::new()];
    let mut added = 0usize;
    let mut slowest = 0f64;
    for round in 0..rounds + more {
        let engines: &[(usize, bool)] = if round < rounds {
            &[(0, false), (1, true)]
        } else {
            &[(1, true)]
        };
        for &(e, skip) in engines {
            let (c, s, job) = commit_and_run(&store, skip, None).await?;
            println!(
                "N={n} round {round} no-op  {:5}: commit {c:.3} s, job {s:.3} s ({} skipped, from {:?})",
                if skip { "skip" } else { "walk" },
                job.stats.datums_skipped,
                job.datums_from.is_some()
            );
            times[0][e].push(s);
            commits[0].push(c);
            if skip {
                slowest = slowest.max(c + s);
            }
            added += 1;
            let path = format!("/new{added:07}");
            let (c, s, job) = commit_and_run(&store, skip, Some(&path)).await?;
            println!(
                "N={n} round {round} +1 file {:5}: commit {c:.3} s, job {s:.3} s ({} processed, {} skipped)",
                if skip { "skip" } else { "walk" },
                job.stats.datums_processed,
                job.stats.datums_skipped
            );
            times[1][e].push(s);
            commits[1].push(c);
            if skip {
                slowest = slowest.max(c + s);
            }
        }
    }
    for (i, name) in ["no-op", "+1 file"].iter().enumerate() {
        let walk = median(&mut times[i][0]);
        let skip = median(&mut times[i][1]);
        let commit = median(&mut commits[i]);
        println!(
            "RESULT N={n} {name}: commit {commit:.3} s; job walk (baseline) {walk:.3} s; job skip {skip:.3} s; ratio {:.6}",
            skip / walk
        );
    }
    println!("RESULT N={n} slowest skip round (commit + job): {slowest:.3} s");
    Ok(())
}
