//! The pipeline page: facts, the spec as written and effective (JSON and YAML), versions and
//! `?version=N`, the jobs table newest first (capped), the actions, staleness, and the 404
//! page of an unknown pipeline.

mod console_common;

use std::time::Duration;

use axum::http::StatusCode;
use console_common::{Console, assert_escaped, console};
use pipeline_core::pfs::{FinishOptions, RepoRef};
use pipeline_core::pps::CreateOptions;
use pipeline_core::spec::parse_str;

/// GETs `path`, checks the status and that the page is escaped.
async fn page(c: &Console, path: &str, want: StatusCode) -> String {
    let (status, body) = c.get(path).await;
    assert_eq!(status, want, "{path}: {body}");
    assert_escaped(&body);
    body
}

/// The part of `body` from the `<tag>` with `id` to the next `</tag>`.
fn element<'a>(body: &'a str, tag: &str, id: &str) -> &'a str {
    let at = body
        .find(&format!(" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no id=\"{id}\" in {body}"));
    let start = body[..at]
        .rfind(&format!("<{tag}"))
        .unwrap_or_else(|| panic!("id {id} is not on a <{tag}>"));
    let end = body[start..].find(&format!("</{tag}>")).expect("it ends") + start;
    &body[start..end]
}

/// Updates `upper` with a new command (and no hostile description).
fn update_upper(c: &Console) {
    let spec = "pipeline: {name: upper}\ntransform: {cmd: [sh, -c, 'cp $raw /pfs/out/ # second version']}\ninput: {pfs: {repo: raw, glob: /*}}\n";
    let parsed = parse_str(spec, "update.yaml").unwrap();
    let update = CreateOptions {
        update: true,
        ..Default::default()
    };
    c.engine.create_pipelines(&parsed, &update).unwrap();
}

/// `n` finished commits on `raw@master`, each adding one file.
fn commits_to_raw(c: &Console, n: usize) {
    let store = c.engine.store();
    let branch = RepoRef::new("raw").unwrap().branch("master").unwrap();
    for i in 0..n {
        let commit = store.start_commit(&branch, "").unwrap().commit;
        store
            .put_file_bytes(&commit, &format!("/n{i}.txt"), b"x")
            .unwrap();
        store
            .finish_commit(&commit, FinishOptions::default())
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_facts_both_spec_forms_jobs_and_actions() {
    let c = console().await;
    let body = page(&c, "/pipelines/upper", StatusCode::OK).await;
    let facts = element(&body, "dl", "facts");
    assert!(facts.contains(r#"href="/repos/raw">raw@master"#), "{facts}");
    assert!(
        facts.contains(r#"href="/repos/upper">upper@master"#),
        "{facts}"
    );
    assert!(facts.contains("process"), "{facts}");
    // The spec as written has what the file said; the effective one has the defaults too.
    let written = element(&body, "section", "spec-written");
    let effective = element(&body, "section", "spec-effective");
    for (id, part) in [("written", written), ("effective", effective)] {
        assert!(part.contains(&format!(r#"id="spec-{id}-json""#)), "{part}");
        assert!(part.contains(&format!(r#"id="spec-{id}-yaml""#)), "{part}");
        assert!(part.contains(r#"data-copy="#), "{part}");
        assert!(
            part.contains("&quot;name&quot;: &quot;upper&quot;"),
            "{part}"
        );
        assert!(part.contains("name: upper"), "{part}");
        // The hostile description, escaped.
        assert!(
            part.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{part}"
        );
    }
    assert!(!written.contains("datum_tries"), "{written}");
    assert!(effective.contains("datum_tries"), "{effective}");
    // The jobs table.
    let job = &c.jobs("upper")[0];
    let jobs = element(&body, "table", "jobs");
    assert!(
        jobs.contains(&format!(r#"<tr data-job="{}">"#, job.id)),
        "{jobs}"
    );
    assert!(jobs.contains(&format!(r#"href="/pipelines/upper/jobs/{}""#, job.id)));
    assert!(jobs.contains(&format!(r#"data-live-job-state="upper/{}""#, job.id)));
    assert!(
        !jobs.contains("Stop job"),
        "a finished job cannot be stopped: {jobs}"
    );
    // The actions, each with the CSRF token.
    let csrf = format!(r#"name="csrf" value="{}""#, c.state.csrf());
    let actions = element(&body, "div", "actions");
    assert_eq!(actions.matches(&csrf).count(), 3, "{actions}");
    assert!(
        actions.contains(r#"action="/pipelines/upper/rerun""#),
        "{actions}"
    );
    assert!(
        actions.contains(r#"name="mode" value="failed""#),
        "{actions}"
    );
    assert!(actions.contains(r#"name="mode" value="all""#), "{actions}");
    assert!(actions.contains(r#"data-confirm="Rerun every datum of upper?"#));
    assert!(
        actions.contains(r#"action="/pipelines/upper/stop""#),
        "{actions}"
    );
    assert!(!actions.contains("/start"), "{actions}");
    assert!(body.contains("up to date"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failing_pipeline_says_why_it_would_run_again() {
    let c = console().await;
    let body = page(&c, "/pipelines/check", StatusCode::OK).await;
    let jobs = element(&body, "table", "jobs");
    assert!(jobs.contains("JOB_FAILURE"), "{jobs}");
    assert!(jobs.contains("failed"), "{jobs}");
    let why = element(&body, "div", "why-rerun");
    assert!(why.contains("failed last time"), "{why}");
    assert!(!why.contains("input changed"), "{why}");
    commits_to_raw(&c, 1);
    let body = page(&c, "/pipelines/check", StatusCode::OK).await;
    let why = element(&body, "div", "why-rerun");
    assert!(why.contains("input changed: raw@master"), "{why}");
    assert!(why.contains("failed last time"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_version_shows_its_own_spec() {
    let c = console().await;
    update_upper(&c);
    let current = page(&c, "/pipelines/upper", StatusCode::OK).await;
    let written = element(&current, "section", "spec-written");
    assert!(written.contains("second version"), "{written}");
    assert!(!current.contains(r#"id="old-version""#));
    let versions = element(&current, "ul", "versions");
    assert!(
        versions.contains(r#"href="/pipelines/upper?version=1""#),
        "{versions}"
    );
    assert!(
        versions.contains("<strong>version 2</strong>"),
        "{versions}"
    );
    let why = element(&current, "div", "why-rerun");
    assert!(why.contains("spec changed"), "{why}");

    let old = page(&c, "/pipelines/upper?version=1", StatusCode::OK).await;
    let written = element(&old, "section", "spec-written");
    assert!(!written.contains("second version"), "{written}");
    assert!(written.contains("tr a-z A-Z"), "{written}");
    assert!(old.contains(r#"id="old-version""#) && old.contains("Version 1 of 2"));

    let bad = page(&c, "/pipelines/upper?version=two", StatusCode::BAD_REQUEST).await;
    assert!(bad.contains("version: expected a version number of pipeline upper (1 to 2)"));
    let missing = page(&c, "/pipelines/upper?version=3", StatusCode::NOT_FOUND).await;
    assert!(
        missing.contains("pipeline upper has no version 3"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pipeline_is_a_404_page() {
    let c = console().await;
    let body = page(&c, "/pipelines/nope", StatusCode::NOT_FOUND).await;
    assert!(
        body.contains("404 Not Found") && body.contains("nope"),
        "{body}"
    );
    let hostile = "/pipelines/%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let body = page(&c, hostile, StatusCode::NOT_FOUND).await;
    assert!(body.contains("&lt;script&gt;"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pipeline_offers_start() {
    let c = console().await;
    c.engine.stop_pipeline("upper").unwrap();
    let body = page(&c, "/pipelines/upper", StatusCode::OK).await;
    let actions = element(&body, "div", "actions");
    assert!(
        actions.contains(r#"action="/pipelines/upper/start""#),
        "{actions}"
    );
    assert!(
        !actions.contains(r#"action="/pipelines/upper/stop""#),
        "{actions}"
    );
    let why = element(&body, "div", "why-rerun");
    assert!(why.contains("stopped"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_newest_first_capped_and_unfinished_ones_can_be_stopped() {
    let c = console().await;
    commits_to_raw(&c, 101);
    let discovered = tokio::time::timeout(Duration::from_secs(60), async {
        c.engine.discover_jobs().unwrap()
    })
    .await
    .expect("discovering jobs in time");
    assert!(discovered.len() >= 101, "{}", discovered.len());
    let all = c.jobs("upper");
    assert_eq!(all.len(), 102);
    let body = page(&c, "/pipelines/upper", StatusCode::OK).await;
    let jobs = element(&body, "table", "jobs");
    assert_eq!(jobs.matches("<tr data-job=").count(), 100, "capped at 100");
    assert!(body.contains(r#"id="older-jobs""#), "the cap is said");
    // Newest first: the last job created is the first row; the first job is cut.
    let newest = &all[101].id;
    let first_row = jobs.find("<tr data-job=").unwrap();
    assert!(jobs[first_row..].starts_with(&format!(r#"<tr data-job="{newest}">"#)));
    assert!(!jobs.contains(&all[0].id), "the oldest job is not listed");
    let stop = format!(r#"action="/pipelines/upper/jobs/{newest}/stop""#);
    assert!(jobs.contains(&stop), "an unfinished job can be stopped");
    assert!(jobs.contains("JOB_CREATED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_another_project_is_shown_and_linked_with_its_project() {
    let c = console().await;
    let store = c.engine.store();
    store.create_project("lab", "").unwrap();
    // `upper` again, in `lab`, reading `default/raw`.
    let spec = "pipeline: {name: upper, project: {name: lab}}\ntransform: {cmd: [sh, -c, 'cp $raw /pfs/out/']}\ninput: {pfs: {repo: raw, project: default, glob: /*}}\n";
    let parsed = parse_str(spec, "lab.yaml").unwrap();
    c.engine
        .create_pipelines(&parsed, &CreateOptions::default())
        .unwrap();
    c.engine.run_pending().await.unwrap();
    let overview = page(&c, "/", StatusCode::OK).await;
    assert!(
        overview.contains(r#"href="/pipelines/lab%2Fupper""#),
        "{overview}"
    );
    assert!(
        overview.contains(r#"href="/pipelines/upper""#),
        "{overview}"
    );
    let body = page(&c, "/pipelines/lab%2Fupper", StatusCode::OK).await;
    let facts = element(&body, "dl", "facts");
    assert!(
        facts.contains(r#"href="/repos/lab%2Fupper">lab/upper@master"#),
        "{facts}"
    );
    let job = &c.jobs("lab/upper")[0];
    assert_eq!(job.pipeline, "lab/upper");
    let link = format!("/pipelines/lab%2Fupper/jobs/{}", job.id);
    assert!(body.contains(&format!("href=\"{link}\"")), "{body}");
    let job_page = page(&c, &link, StatusCode::OK).await;
    assert!(job_page.contains("lab/upper"), "{job_page}");
    // The default project's `upper` is another pipeline.
    let default = page(&c, "/pipelines/upper", StatusCode::OK).await;
    assert!(!default.contains("lab/upper"), "{default}");
}

/// A service pipeline's facts say where it listens (`127.0.0.1:<external_port>`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_pipeline_shows_where_it_listens() {
    let c = console().await;
    let spec = "pipeline: {name: web}\ntransform: {cmd: [busybox, httpd, -f, -p, '8080', -h, /pfs/raw]}\ninput: {pfs: {repo: raw, glob: /}}\nservice: {internal_port: 8080, external_port: 30123}\n";
    let parsed = parse_str(spec, "web.yaml").unwrap();
    c.engine
        .create_pipelines(&parsed, &CreateOptions::default())
        .unwrap();
    let body = page(&c, "/pipelines/web", StatusCode::OK).await;
    let facts = element(&body, "dl", "facts");
    assert!(
        facts.contains("listening on <code>127.0.0.1:30123</code>"),
        "{facts}"
    );
}
