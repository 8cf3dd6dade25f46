//! Cron inputs: overdue ticks are caught up as one commit (and job) each; earlier ticks are
//! skipped, only the new tick is processed; `overwrite` keeps one tick; `run_cron` ticks now.

mod pps_common;

use pipeline_core::pps::JobState;
use pps_common::env;

fn spec(overwrite: bool, start: u64) -> String {
    let start = pipeline_core::pps::format_ms(start * 1000);
    let start = format!("{}Z", &start[..19]);
    format!(
        "pipeline: {{name: c}}\ntransform: {{cmd: [sh, -c, 'touch /pfs/out/$(basename $tick)']}}\ninput: {{cron: {{name: tick, spec: '@every 10s', overwrite: {overwrite}, start: '{start}'}}}}\n"
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn catch_up_piles_ticks_and_processes_only_the_new_one() {
    let e = env();
    e.create(&spec(false, now() - 35));
    let jobs = e.run();
    let ticks: Vec<_> = jobs
        .iter()
        .filter(|j| j.stats.datums_processed == 1)
        .collect();
    assert_eq!(ticks.len(), 3, "{jobs:?}");
    let last = jobs.last().unwrap();
    assert_eq!(last.state, JobState::JobSuccess);
    assert_eq!((last.stats.datums_total, last.stats.datums_skipped), (3, 2));
    assert_eq!(e.head_tree("c").len(), 3);
    e.engine.run_cron("c").unwrap();
    let j = e.run().remove(0);
    assert_eq!((j.stats.datums_total, j.stats.datums_processed), (4, 1));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(e.engine.delete_pipeline("c", false))
        .unwrap();
    let repos: Vec<_> = e
        .store
        .list_repos()
        .unwrap()
        .into_iter()
        .map(|r| r.repo.name)
        .collect();
    assert!(
        repos.is_empty(),
        "cron repo deleted with its pipeline: {repos:?}"
    );
}

#[test]
fn overwrite_keeps_only_the_newest_tick() {
    let e = env();
    e.create(&spec(true, now() - 25));
    let jobs = e.run();
    let last = jobs.last().unwrap();
    assert_eq!(last.stats.datums_total, 1);
    assert_eq!(
        e.head_tree("c").len(),
        1,
        "outputs of the earlier tick are deleted"
    );
}

/// Five-field schedules tick too: three minutes after `start`, `* * * * *` has fired three
/// times (one commit, and job, per minute boundary).
#[test]
fn five_field_schedules_catch_up_by_the_minute() {
    let e = env();
    let start = pipeline_core::pps::format_ms((now() - 180) * 1000);
    let start = format!("{}Z", &start[..19]);
    e.create(&format!(
        "pipeline: {{name: m}}\ntransform: {{cmd: [sh, -c, 'touch /pfs/out/$(basename $tick)']}}\ninput: {{cron: {{name: tick, spec: '* * * * *', start: '{start}'}}}}\n"
    ));
    let jobs = e.run();
    let ticks = jobs
        .iter()
        .filter(|j| j.stats.datums_processed == 1)
        .count();
    assert_eq!(ticks, 3, "{jobs:?}");
    let files = e.head_tree("m");
    assert!(
        files.iter().all(|(p, _)| p.ends_with(":00Z")),
        "ticks fall on minute boundaries: {files:?}"
    );
}

/// `Engine::serve` ticks cron inputs as they fall due and runs the job a commit made while it
/// serves starts; it returns once cancelled.
#[test]
fn serve_ticks_crons_and_runs_new_commits() {
    use std::time::{Duration, Instant};
    let e = env();
    e.create(&format!(
        "pipeline: {{name: c}}\ntransform: {{cmd: [sh, -c, 'touch /pfs/out/$(basename $tick)']}}\ninput: {{cron: {{name: tick, spec: '@every 1s', overwrite: true, start: '{}Z'}}}}\n",
        &pipeline_core::pps::format_ms(now() * 1000)[..19]
    ));
    e.repo("data");
    e.create(
        "pipeline: {name: up}\ntransform: {cmd: [sh, -c, 'tr a-z A-Z < $data > /pfs/out/$(basename $data)']}\ninput: {pfs: {repo: data, glob: '/*'}}\n",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = rt.spawn({
        let (engine, stop) = (e.engine.clone(), stop.clone());
        async move { engine.serve(Duration::from_millis(50), stop).await }
    });
    e.commit("data", &[], &[("/a.txt", "hello")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = |pipeline: &str, want: usize| {
        e.engine
            .list_jobs(Some(pipeline))
            .unwrap()
            .iter()
            .filter(|j| j.state == JobState::JobSuccess && j.stats.datums_processed > 0)
            .count()
            >= want
    };
    while !(done("up", 1) && done("c", 2)) {
        assert!(
            Instant::now() < deadline,
            "serve did not run the jobs: {:?}",
            e.engine.list_jobs(None).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.cancel();
    rt.block_on(serving).unwrap();
    rt.block_on(e.engine.shutdown());
    assert_eq!(
        e.head_tree("up"),
        vec![("/a.txt".to_string(), "HELLO".to_string())]
    );
}
