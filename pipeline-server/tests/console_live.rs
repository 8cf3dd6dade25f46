//! Live updates: a running datum's log lines reach `/api/v1/events` as user code prints
//! them (before the datum ends) and exactly once; the pages carry what the script follows,
//! and the script only ever writes text.

mod console_common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use console_common::console;
use futures::StreamExt;
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine, Event, JobState, PpsError};
use pipeline_server::{Client, ServeOptions, Server};

fn engine(dir: &std::path::Path) -> Engine {
    let store = Store::open(dir).unwrap();
    let ex = executor_process::ProcessExecutor::builder()
        .build()
        .unwrap();
    Engine::builder(store)
        .executor(Arc::new(ex))
        .build()
        .unwrap()
}

/// Repo `data` with one file, and pipeline `slow` whose datum prints `first-line`, sleeps
/// 2 s, prints `second-line` and copies its input.
fn slow_pipeline(e: &Engine) {
    let store = e.store();
    let data = RepoRef::new("data").unwrap();
    store.create_repo(&data, "").unwrap();
    let c = store
        .start_commit(&data.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store.put_file_bytes(&c, "/a", b"hello").unwrap();
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    let spec = pipeline_core::spec::parse_str(
        r#"{"pipeline": {"name": "slow"}, "input": {"pfs": {"repo": "data", "glob": "/*"}},
            "transform": {"cmd": ["sh", "-c", "echo first-line; sleep 2; echo second-line; cp $data /pfs/out/"]}}"#,
        "slow.json",
    )
    .unwrap();
    e.create_pipeline(&spec[0].spec, &CreateOptions::default())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_datums_line_arrives_before_the_datum_ends_and_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let opts = ServeOptions {
        poll: Duration::from_secs(30),
        ..ServeOptions::new(dir.path())
    };
    let server = Server::start(e.clone(), opts).await.unwrap();
    let client = Client::unix(server.socket_path());
    let mut events = client.events(Some("slow"), None).await.unwrap();
    slow_pipeline(&e);
    server.state().notify_changed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut lines, mut datum_seen, mut checked_running) = (Vec::new(), false, false);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        match ev {
            Event::Log(l) => {
                if l.message == "first-line" {
                    assert!(!datum_seen, "the line came only with the datum's record");
                    // The datum has no record yet: it is still running.
                    match e.inspect_datum("slow", &l.job, &l.datum) {
                        Err(PpsError::DatumNotFound { .. }) => checked_running = true,
                        other => panic!("the datum was already stored: {other:?}"),
                    }
                }
                lines.push(l.message);
            }
            Event::Datum(_) => datum_seen = true,
            Event::Job(j) if j.state.is_terminal() => {
                assert_eq!(j.state, JobState::JobSuccess, "{}", j.reason);
                break;
            }
            _ => {}
        }
    }
    assert!(checked_running && datum_seen);
    assert_eq!(
        lines,
        ["first-line", "second-line"],
        "each line exactly once"
    );
    // The stored log has both lines too (published once, stored once).
    let job = e.list_jobs(Some("slow")).unwrap().pop().unwrap();
    let stored: Vec<String> = e
        .logs("slow", Some(&job.id), None)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(stored, ["first-line", "second-line"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_and_datum_pages_tell_the_script_what_to_follow() {
    let c = console().await;
    let job = c.jobs("check").pop().unwrap().id;
    let (_, body) = c.get(&format!("/pipelines/check/jobs/{job}")).await;
    assert!(
        body.contains(&format!("data-pipeline=\"check\" data-job=\"{job}\"")),
        "{body}"
    );
    assert!(body.contains(&format!(
        "data-reload=\"/api/v1/pipelines/check/logs?job={job}\""
    )));
    assert!(body.contains("id=\"datums-note\"") && body.contains(" hidden"));
    let d = c.engine.list_datums("check", &job).unwrap().remove(0).id;
    let (_, body) = c
        .get(&format!("/pipelines/check/jobs/{job}/datums/{d}"))
        .await;
    assert!(body.contains(&format!("data-datum=\"{d}\"")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_follows_events_and_writes_text_only() {
    let c = console().await;
    let (status, js) = c.get("/assets/console.js").await;
    assert_eq!(status, StatusCode::OK);
    for needed in [
        "new EventSource(",
        "addEventListener(\"log\"",
        "addEventListener(\"job\"",
        "addEventListener(\"datum\"",
        "addEventListener(\"lagged\"",
        "\"pagehide\"",
        "msg.textContent = line.message",
    ] {
        assert!(js.contains(needed), "console.js lacks {needed}");
    }
    assert!(
        !js.contains("innerHTML"),
        "console.js must not build markup from data"
    );
    // The script's state classes are the server's.
    for (state, class) in [
        ("JOB_SUCCESS", "ok"),
        ("JOB_FAILURE", "bad"),
        ("JOB_KILLED", "killed"),
    ] {
        assert!(js.contains(&format!("case \"{state}\"")), "{state}");
        assert!(js.contains(&format!("return \"{class}\"")), "{class}");
    }
}
