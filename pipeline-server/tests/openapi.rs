//! The OpenAPI document in the repo (`pipeline-server/openapi.json`) is the one the code
//! produces, and the one the server serves.

use std::path::PathBuf;

use pipeline_core::pfs::Store;
use pipeline_core::pps::Engine;
use pipeline_server::{AppState, Client, JobRunner};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

fn generated() -> String {
    let mut s = serde_json::to_string_pretty(&pipeline_server::openapi()).unwrap();
    s.push('\n');
    s
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let want = generated();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} differs from pipeline_server::openapi(); regenerate it with\n  \
         UPDATE_OPENAPI=1 cargo test -p pipeline-server --test openapi\nand commit it",
        path.display()
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let engine = Engine::builder(store).build().unwrap();
    let client = Client::in_process(AppState::new(engine, JobRunner::OnWait, true));
    let served: serde_json::Value = client
        .json(
            axum::http::Method::GET,
            "/api/v1/openapi.json",
            pipeline_server::client::NO_BODY,
        )
        .await
        .unwrap();
    let committed: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(served, committed);
}
