//! The overview page: the DAG picture (one box per pipeline, the right edges), the pipeline and
//! repo tables with their links, and staleness after input commits and spec updates.

mod console_common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use console_common::{Console, assert_escaped, console};
use pipeline_core::pfs::{FinishOptions, RepoRef};
use pipeline_core::pps::CreateOptions;
use pipeline_core::spec::parse_str;

/// GETs `/`, checks it answered and is escaped.
async fn overview(c: &Console) -> String {
    let (status, body) = c.get("/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_escaped(&body);
    body
}

/// The `<svg …>…</svg>` part of the page.
fn svg(body: &str) -> &str {
    let start = body.find("<svg").expect("the page has an SVG");
    let end = body[start..].find("</svg>").expect("the SVG ends") + start;
    &body[start..end]
}

/// The value of each `attr="…"` in `s`.
fn attr_values<'a>(s: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    s.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &s[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The table row (`<tr data-KEY="VALUE">…</tr>`) of the table with id `table`.
fn row<'a>(body: &'a str, table: &str, key: &str, value: &str) -> &'a str {
    let t = body
        .find(&format!("<table id=\"{table}\""))
        .expect("the table is there");
    let start = body[t..]
        .find(&format!("<tr data-{key}=\"{value}\""))
        .map(|i| i + t)
        .unwrap_or_else(|| panic!("no row {value} in {table}"));
    let end = body[start..].find("</tr>").expect("the row ends") + start;
    &body[start..end]
}

/// One finished commit on `raw@master` adding `path`.
fn commit_to_raw(c: &Console, path: &str) {
    let store = c.engine.store();
    let branch = RepoRef::new("raw").unwrap().branch("master").unwrap();
    let commit = store.start_commit(&branch, "more").unwrap().commit;
    store.put_file_bytes(&commit, path, b"gamma\n").unwrap();
    store
        .finish_commit(&commit, FinishOptions::default())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipeline_and_repo_is_listed_with_links() {
    let c = console().await;
    let body = overview(&c).await;
    for p in ["upper", "count", "check"] {
        let r = row(&body, "pipeline-table", "pipeline", p);
        assert!(r.contains(&format!("href=\"/pipelines/{p}\"")), "{r}");
        let job = &c.jobs(p)[0].id;
        assert!(
            r.contains(&format!("href=\"/pipelines/{p}/jobs/{job}\"")),
            "{r}"
        );
    }
    for r in ["raw", "upper", "count", "check"] {
        let repo_row = row(&body, "repo-table", "repo", r);
        assert!(
            repo_row.contains(&format!("href=\"/repos/{r}\"")),
            "{repo_row}"
        );
        assert!(
            repo_row.contains(&format!("href=\"/repos/{r}/commits/")),
            "{repo_row}"
        );
    }
    // The hostile repo description is shown, escaped.
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let upper = row(&body, "pipeline-table", "pipeline", "upper");
    assert!(
        upper.contains("JOB_SUCCESS") && upper.contains("4/0/0 of 4"),
        "{upper}"
    );
    assert!(upper.contains("up to date"), "{upper}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picture_has_a_box_per_pipeline_and_the_right_edges() {
    let c = console().await;
    let body = overview(&c).await;
    let svg = svg(&body);
    let mut pipelines = attr_values(svg, "data-pipeline");
    pipelines.sort();
    assert_eq!(pipelines, ["check", "count", "upper"]);
    // Output repos share their pipeline's box; only the input repo has its own.
    assert_eq!(attr_values(svg, "data-repo"), ["raw"]);
    assert!(svg.contains(r#"href="/pipelines/check""#) && svg.contains(r#"href="/repos/raw""#));
    let edges: BTreeSet<(&str, &str)> = attr_values(svg, "data-from")
        .into_iter()
        .zip(attr_values(svg, "data-to"))
        .collect();
    let expected = BTreeSet::from([("raw", "check"), ("raw", "upper"), ("upper", "count")]);
    assert_eq!(edges, expected);
    assert_eq!(svg.matches("marker-end=").count(), 3);
    // Layers run left to right: raw, then upper and check, then count.
    let x_of = |name: &str| -> u32 {
        let at = svg.find(&format!("data-pipeline=\"{name}\"")).unwrap();
        attr_values(&svg[at..], "x")[0].parse().unwrap()
    };
    assert!(x_of("upper") < x_of("count"));
    assert_eq!(x_of("upper"), x_of("check"));
    // The failing pipeline's box is coloured by its state.
    let check = &svg[svg.find("data-pipeline=\"check\"").unwrap()..];
    let check = &check[..check.find("</a>").unwrap()];
    assert!(check.contains(r#"class="state bad""#), "{check}");
    assert!(check.contains("failed last time"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_commit_makes_the_pipelines_downstream_stale() {
    let c = console().await;
    let body = overview(&c).await;
    let check = row(&body, "pipeline-table", "pipeline", "check");
    assert!(check.contains("JOB_FAILURE"), "{check}");
    assert!(check.contains("failed last time"), "{check}");
    assert!(!check.contains("input changed"), "{check}");

    commit_to_raw(&c, "/c.txt");
    let body = overview(&c).await;
    let check = row(&body, "pipeline-table", "pipeline", "check");
    // The last job is still the failed one (the new output commit has no job yet).
    assert!(check.contains("JOB_FAILURE"), "{check}");
    assert!(check.contains("input changed: raw@master"), "{check}");
    assert!(check.contains("failed last time"), "{check}");
    let count = row(&body, "pipeline-table", "pipeline", "count");
    assert!(count.contains("input changed: upper@master"), "{count}");
    assert!(!count.contains("up to date"), "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_update_and_a_stop_are_staleness_reasons() {
    let c = console().await;
    let spec = "pipeline: {name: upper}\ntransform: {cmd: [sh, -c, 'cp $raw /pfs/out/']}\ninput: {pfs: {repo: raw, glob: /*}}\n";
    let parsed = parse_str(spec, "update.yaml").unwrap();
    let update = CreateOptions {
        update: true,
        ..Default::default()
    };
    c.engine.create_pipelines(&parsed, &update).unwrap();
    c.engine.stop_pipeline("count").unwrap();
    let body = overview(&c).await;
    let upper = row(&body, "pipeline-table", "pipeline", "upper");
    assert!(upper.contains("spec changed"), "{upper}");
    assert!(upper.contains("The spec is at version 2; the last finished job ran version 1."));
    let count = row(&body, "pipeline-table", "pipeline", "count");
    assert!(count.contains(">stopped<"), "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::pfs::Store::open(dir.path().join("store")).unwrap();
    let engine = pipeline_core::pps::Engine::builder(store).build().unwrap();
    let state = pipeline_server::AppState::new(engine, pipeline_server::JobRunner::OnWait, true);
    let req = axum::http::Request::get("/")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(pipeline_server::router(state), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("Nothing here yet"), "{body}");
    assert!(!body.contains("<svg"), "{body}");
}
