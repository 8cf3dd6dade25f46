//! The console's shell: every page answers with the security headers, actions need the CSRF
//! token, and a TCP listener with a token sends a browser without the cookie to `/login`.

mod console_common;

use axum::http::StatusCode;
use console_common::{assert_escaped, console};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_runs_and_the_overview_answers() {
    let c = console().await;
    assert_eq!(c.jobs("upper").len(), 1);
    assert_eq!(c.jobs("check")[0].state.as_str(), "JOB_FAILURE");
    let (status, body) = c.get("/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_escaped(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_the_csrf_token_is_refused() {
    let c = console().await;
    let (status, body) = c.post_form("/pipelines/upper/stop", "csrf=nope").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!c.engine.inspect_pipeline("upper").unwrap().stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_with_the_token_stop_start_and_rerun() {
    let c = console().await;
    let form = format!("csrf={}", c.state.csrf());
    let (status, _) = c.post_form("/pipelines/upper/stop", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(c.engine.inspect_pipeline("upper").unwrap().stopped);
    let (status, _) = c.post_form("/pipelines/upper/start", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!c.engine.inspect_pipeline("upper").unwrap().stopped);
    let version = c.engine.inspect_pipeline("check").unwrap().version;
    let (status, body) = c
        .post_form("/pipelines/check/rerun", &format!("{form}&mode=sideways"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = c
        .post_form("/pipelines/check/rerun", &format!("{form}&mode=all"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        c.engine.inspect_pipeline("check").unwrap().version,
        version + 1
    );
}
