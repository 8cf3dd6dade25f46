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
