//! The job page: facts, the datum table (failed first, state tabs, server-side pages), job-ID
//! prefixes, errors as pages, and everything from users escaped.

mod console_common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use console_common::{Console, assert_escaped, console};
use pipeline_core::pfs::{FinishOptions, RepoRef};
use pipeline_core::pps::CreateOptions;
use pipeline_core::spec::parse_str;
use tower::ServiceExt;

/// Status and `Location` of a GET (for redirects).
async fn location(c: &Console, path: &str) -> (StatusCode, Option<String>) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = pipeline_server::router(c.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let to = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), to)
}

/// The `data-datum` IDs of the table rows, in page order.
fn row_ids(body: &str) -> Vec<String> {
    body.split("<tr data-datum=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// The "Next page" link of a page, if any (HTML-unescaped).
fn next_link(body: &str) -> Option<String> {
    let at = body.find("class=\"next\" href=\"")?;
    let rest = &body[at + "class=\"next\" href=\"".len()..];
    Some(rest.split('"').next()?.replace("&amp;", "&"))
}

/// Adds repo `many` with 250 files (`/f000`..`/f249`; five named `bad-*` fail) and
/// pipeline `wide` over it; runs it. Returns the job ID.
async fn wide_job(c: &Console) -> String {
    let store = c.engine.store();
    let many = RepoRef::new("many").unwrap();
    store.create_repo(&many, "").unwrap();
    let commit = store
        .start_commit(&many.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    for i in 0..250 {
        let name = if i % 50 == 7 {
            format!("/bad-{i:03}")
        } else {
            format!("/f{i:03}")
        };
        store.put_file_bytes(&commit, &name, b"x").unwrap();
    }
    store
        .finish_commit(&commit, FinishOptions::default())
        .unwrap();
    let spec = "pipeline: {name: wide}\ntransform: {cmd: [sh, -c, 'case $many in *bad-*) exit 1;; esac; cp $many /pfs/out/']}\ndatum_tries: 1\nparallelism_spec: {constant: 4}\ninput: {pfs: {repo: many, glob: /*}}\n";
    let parsed = parse_str(spec, "wide.yaml").unwrap();
    c.engine
        .create_pipelines(&parsed, &CreateOptions::default())
        .unwrap();
    c.engine.run_pending().await.unwrap();
    c.jobs("wide").pop().unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_datum_comes_first_with_its_reason_and_a_link() {
    let c = console().await;
    let job = c.jobs("check").pop().unwrap();
    let failed = c
        .engine
        .list_datums("check", &job.id)
        .unwrap()
        .into_iter()
        .find(|d| d.inputs[0].path == "/bad.txt")
        .unwrap();
    let (status, body) = c.get(&format!("/pipelines/check/jobs/{}", job.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_escaped(&body);
    let rows = row_ids(&body);
    assert_eq!(rows.len(), 4, "{body}");
    assert_eq!(rows[0], failed.id, "the failed datum is the first row");
    let first_row = body.split("<tr data-datum=").nth(1).unwrap();
    assert!(first_row.contains(">FAILED<"), "{first_row}");
    assert!(first_row.contains(">new<"), "the reason: {first_row}");
    assert!(first_row.contains("exit code 3"), "{first_row}");
    let link = format!(
        "class=\"datum-link mono\" href=\"/pipelines/check/jobs/{}/datums/{}\"",
        job.id, failed.id
    );
    assert!(first_row.contains(&link), "{first_row}");
    // Facts, stats, tabs with counts, the live badge, the log line (escaped), no stop button.
    assert!(body.contains("JOB_FAILURE"));
    assert!(body.contains(&format!("data-live-job-state=\"check/{}\"", job.id)));
    assert!(body.contains("data-state=\"FAILED\""), "{body}");
    assert!(
        body.contains("FAILED (1)") && body.contains("SUCCESS (3)") && body.contains("all (4)")
    );
    assert!(
        body.contains("cannot parse bad.txt &lt;script&gt;"),
        "{body}"
    );
    assert!(
        body.contains("href=\"/repos/raw/commits/"),
        "input commit link"
    );
    assert!(!body.contains("Stop job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_filter_shows_only_that_state_and_bad_states_are_named() {
    let c = console().await;
    let job = c.jobs("check").pop().unwrap().id;
    let (_, failed) = c
        .get(&format!("/pipelines/check/jobs/{job}?state=FAILED"))
        .await;
    assert_eq!(row_ids(&failed).len(), 1, "{failed}");
    let (_, ok) = c
        .get(&format!("/pipelines/check/jobs/{job}?state=success"))
        .await;
    assert_eq!(row_ids(&ok).len(), 3);
    let table = ok.split("<table id=\"datums\"").nth(1).unwrap();
    assert!(!table.contains(">FAILED<"), "{table}");
    let (status, body) = c
        .get(&format!("/pipelines/check/jobs/{job}?state=%3Cscript%3E"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("expected one of all, FAILED"), "{body}");
    assert_escaped(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_100_cover_a_250_datum_job_once_each() {
    let c = console().await;
    let job = wide_job(&c).await;
    let mut path = format!("/pipelines/wide/jobs/{job}");
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let (status, body) = c.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rows = row_ids(&body);
        sizes.push(rows.len());
        if seen.is_empty() {
            let failed = body.matches(">FAILED</span></td>").count();
            assert_eq!(failed, 5, "the five failed datums lead page 1");
            assert!(!body.contains("First page"));
        } else {
            assert!(body.contains("First page"));
        }
        seen.extend(rows);
        match next_link(&body) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 250, "every datum exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_id_prefix_redirects_and_unknown_jobs_are_404_pages() {
    let c = console().await;
    let job = c.jobs("check").pop().unwrap().id;
    let (status, to) = location(
        &c,
        &format!("/pipelines/check/jobs/{}?state=FAILED", &job[..8]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        to.as_deref(),
        Some(format!("/pipelines/check/jobs/{job}?state=FAILED").as_str())
    );
    let (status, body) = c.get(&format!("/pipelines/check/jobs/{}", &job[..4])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "too short: {body}");
    let (status, body) = c.get("/pipelines/check/jobs/ffffffffffffffff").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("error-message"));
    let (status, body) = c
        .get("/pipelines/%3Cscript%3Ealert(1)%3C%2Fscript%3E/jobs/x")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_escaped(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_job_offers_stop_and_stopping_kills_it() {
    let c = console().await;
    let raw = RepoRef::new("raw").unwrap();
    let store = c.engine.store();
    let commit = store
        .start_commit(&raw.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store.put_file_bytes(&commit, "/new.txt", b"n").unwrap();
    // The commit stays open: the new jobs wait for it.
    c.engine.discover_jobs().unwrap();
    let job = c.jobs("upper").pop().unwrap();
    assert!(!job.state.is_terminal(), "{:?}", job.state);
    let (_, body) = c.get(&format!("/pipelines/upper/jobs/{}", job.id)).await;
    assert!(body.contains("Stop job"), "{body}");
    assert!(
        body.contains("waiting") || body.contains("open"),
        "the waiting reason: {body}"
    );
    let form = format!("csrf={}", c.state.csrf());
    let (status, _) = c
        .post_form(&format!("/pipelines/upper/jobs/{}/stop", job.id), &form)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, body) = c.get(&format!("/pipelines/upper/jobs/{}", job.id)).await;
    assert!(
        body.contains("JOB_KILLED") && !body.contains("Stop job"),
        "{body}"
    );
}
