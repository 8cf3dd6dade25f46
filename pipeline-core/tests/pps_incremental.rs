//! Reference §2.15 step by step, and the err_cmd scenario, with the process executor and its
//! workers stopped after every run. The steps and assertions are the shared ones of
//! `pipeline_core::testkit::engine`, which every executor crate runs with its own backend.

mod pps_common;

use pipeline_core::testkit::engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worked_incremental_scenario() {
    engine::scenario_2_15(&pps_common::env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_cmd_recovers_and_failed_job_is_never_a_base() {
    engine::scenario_err_cmd(&pps_common::env()).await;
}
