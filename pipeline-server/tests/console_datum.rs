//! The datum page: its log line (escaped), inputs linked to the input commit's browser,
//! outputs linked to the output commit's, the reproduce commands, ID prefixes and 404s.

mod console_common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use console_common::{Console, assert_escaped, console};
use pipeline_core::pps::DatumInfo;
use tower::ServiceExt;

/// The datum of `pipeline`'s last job that read `path`, and the job's ID.
fn datum_of(c: &Console, pipeline: &str, path: &str) -> (String, DatumInfo) {
    let job = c.jobs(pipeline).pop().unwrap();
    let d = c
        .engine
        .list_datums(pipeline, &job.id)
        .unwrap()
        .into_iter()
        .find(|d| d.inputs.iter().any(|i| i.path == path))
        .unwrap();
    (job.id, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_datum_shows_its_log_line_escaped_and_how_to_reproduce_it() {
    let c = console().await;
    let (job, d) = datum_of(&c, "check", "/bad.txt");
    let raw_commit = c.jobs("check").pop().unwrap().inputs[0].id.to_string();
    let (status, body) = c
        .get(&format!("/pipelines/check/jobs/{job}/datums/{}", d.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_escaped(&body);
    let logs = body.split("id=\"logs\"").nth(1).unwrap();
    assert!(
        logs.contains("<div class=\"line stdout\">")
            && logs.contains("cannot parse bad.txt &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{logs}"
    );
    assert!(
        body.contains(&format!("data-datum=\"{}\"", d.id)),
        "the script's filter"
    );
    assert!(body.contains("exit code 3") && body.contains(">FAILED<"));
    let input_link = format!("href=\"/repos/raw/commits/{raw_commit}?path=%2F\"");
    assert!(body.contains(&input_link), "{body}");
    assert!(
        body.contains(&format!(
            "pipectl get file raw@{raw_commit}:/bad.txt -o pfs/raw/bad.txt"
        )),
        "{body}"
    );
    assert!(body.contains("Not reproduced: secrets"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_link_to_the_output_commit_and_hostile_names_are_escaped() {
    let c = console().await;
    let (job, d) = datum_of(&c, "upper", "/x<script>alert.txt");
    let (status, body) = c
        .get(&format!("/pipelines/upper/jobs/{job}/datums/{}", d.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_escaped(&body);
    assert!(body.contains("/x&lt;script&gt;alert.txt"), "{body}");
    let output = format!("href=\"/repos/upper/commits/{job}?path=%2F\"");
    assert!(body.contains(&output), "{body}");
    assert!(!body.contains("No output files."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_redirect_to_full_ids_and_unknown_datums_are_404_pages() {
    let c = console().await;
    let (job, d) = datum_of(&c, "check", "/a.txt");
    let req = Request::get(format!(
        "/pipelines/check/jobs/{}/datums/{}",
        &job[..8],
        &d.id[..10]
    ))
    .body(Body::empty())
    .unwrap();
    let resp = pipeline_server::router(c.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(to, format!("/pipelines/check/jobs/{job}/datums/{}", d.id));
    for path in [
        format!("/pipelines/check/jobs/{job}/datums/ffffffffff"),
        format!("/pipelines/check/jobs/{job}/datums/%3Cscript%3Ealert(1)"),
        "/pipelines/check/jobs/ffffffffffff/datums/abc".to_string(),
    ] {
        let (status, body) = c.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body.contains("error-message"));
        assert_escaped(&body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_shows_its_last_200_lines() {
    let c = console().await;
    let spec = "pipeline: {name: chatty}\ntransform: {cmd: [sh, -c, 'seq 1 250; touch /pfs/out/done']}\ninput: {pfs: {repo: raw, glob: /}}\n";
    let parsed = pipeline_core::spec::parse_str(spec, "chatty.yaml").unwrap();
    c.engine
        .create_pipelines(&parsed, &pipeline_core::pps::CreateOptions::default())
        .unwrap();
    c.engine.run_pending().await.unwrap();
    let (job, d) = datum_of(&c, "chatty", "/");
    for path in [
        format!("/pipelines/chatty/jobs/{job}/datums/{}", d.id),
        format!("/pipelines/chatty/jobs/{job}"),
    ] {
        let (status, body) = c.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let logs = body.split("id=\"logs\"").nth(1).unwrap();
        let shown: Vec<&str> = logs
            .split("<span class=\"msg\">")
            .skip(1)
            .map(|s| s.split('<').next().unwrap())
            .collect();
        assert_eq!(shown.len(), 200, "{path}");
        assert_eq!((shown[0], shown[199]), ("51", "250"), "{path}");
        assert!(body.contains("The last 200 lines."), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_and_the_inputs_hash_and_branch_are_shown() {
    let c = console().await;
    let (job, d) = datum_of(&c, "check", "/bad.txt");
    let (status, body) = c
        .get(&format!("/pipelines/check/jobs/{job}/datums/{}", d.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attempts = body.split("id=\"attempts\"").nth(1).expect("attempt table");
    let attempts = attempts.split("</table>").next().unwrap();
    assert_eq!(
        attempts.matches("<tr>").count(),
        1 + 1,
        "header + one attempt: {attempts}"
    );
    assert!(attempts.contains("exit code 3"), "{attempts}");
    let hash = &d.inputs[0].hash;
    assert_eq!(hash.len(), 64, "{d:?}");
    assert!(body.contains(&format!("title=\"{hash}\"")), "input hash");
    assert!(body.contains("<dd>master</dd>"), "input branch");
}
