//! `/api/v1/transactions` through the client: the lifecycle, the error kinds of bad input
//! (a malformed ID or request body, an unknown transaction, a request that fails at finish),
//! and one job for a pipeline whose two inputs change in one transaction.

use std::sync::Arc;

use axum::http::Method;
use executor_process::ProcessExecutor;
use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::{Engine, TransactionRequest};
use pipeline_server::routes::pipelines::CreatePipelines;
use pipeline_server::{AppState, Client, ClientError, ErrorKind, JobRunner};

struct Env {
    _dir: tempfile::TempDir,
    client: Client,
}

/// A store with empty repos `A` and `B` and an in-process client.
fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    for r in ["A", "B"] {
        store.create_repo(&RepoRef::new(r).unwrap(), "").unwrap();
    }
    let client = Client::in_process(AppState::new(engine, JobRunner::OnWait, true));
    Env { _dir: dir, client }
}

fn kind<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (ErrorKind, String) {
    match r {
        Err(ClientError::Api { kind, message }) => (kind, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn start(branch: &str) -> TransactionRequest {
    TransactionRequest::StartCommit {
        branch: branch.into(),
        description: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_and_one_job_for_two_inputs() {
    let e = env();
    let c = &e.client;
    let spec = CreatePipelines {
        spec: "pipeline: {name: both}\ntransform: {cmd: [sh, -c, 'true']}\ninput: {cross: [{pfs: {repo: A, glob: /}}, {pfs: {repo: B, glob: /}}]}\n".into(),
        source_name: "both.yaml".into(),
        ..Default::default()
    };
    c.create_pipelines(&spec).await.unwrap();
    let t = c.start_transaction().await.unwrap();
    c.append_transaction_request(&t.id, &start("A@master"))
        .await
        .unwrap();
    let t2 = c
        .append_transaction_request(&t.id, &start("B@master"))
        .await
        .unwrap();
    assert_eq!(t2.requests.len(), 2);
    assert_eq!(c.list_transactions().await.unwrap(), vec![t2.clone()]);
    assert_eq!(c.inspect_transaction(&t.id).await.unwrap(), t2);
    let done = c.finish_transaction(&t.id).await.unwrap();
    let set = done.commit_set.expect("a commit set");
    assert_eq!(done.jobs.len(), 1, "{:?}", done.jobs);
    assert_eq!(done.jobs[0].pipeline, "both");
    assert_eq!(done.jobs[0].id, set);
    assert_eq!(done.responses.len(), 2);
    assert!(c.list_transactions().await.unwrap().is_empty());
    let (k, _) = kind(c.finish_transaction(&t.id).await);
    assert_eq!(k, ErrorKind::NotFound, "a finished transaction is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_has_the_right_kind() {
    let e = env();
    let c = &e.client;
    let (k, m) = kind(c.inspect_transaction("xyz").await);
    assert_eq!(k, ErrorKind::Invalid, "{m}");
    assert!(m.contains("32 hexadecimal digits"), "{m}");
    let (k, _) = kind(c.delete_transaction(&"a".repeat(32)).await);
    assert_eq!(k, ErrorKind::NotFound);
    let t = c.start_transaction().await.unwrap();
    // A request body of an unknown kind, and a reference that does not parse.
    let path = format!("/api/v1/transactions/{}/requests", t.id);
    let body = serde_json::json!({"squash_everything": {}});
    let (k, _) = kind(c.request(Method::POST, &path, Some(&body)).await);
    assert_eq!(k, ErrorKind::Invalid);
    let (k, m) = kind(c.append_transaction_request(&t.id, &start("A@")).await);
    assert_eq!(k, ErrorKind::Invalid);
    assert!(m.contains("start_commit.branch"), "{m}");
    // A request that fails at finish: its own kind, nothing applied, the transaction kept.
    c.append_transaction_request(&t.id, &start("A@master"))
        .await
        .unwrap();
    c.append_transaction_request(&t.id, &start("nope@master"))
        .await
        .unwrap();
    let (k, m) = kind(c.finish_transaction(&t.id).await);
    assert_eq!(k, ErrorKind::NotFound, "{m}");
    assert!(m.contains("request 2 (start commit nope@master)"), "{m}");
    assert!(c.list_commits("A", None, 0).await.unwrap().is_empty());
    assert_eq!(
        c.inspect_transaction(&t.id).await.unwrap().requests.len(),
        2
    );
    c.delete_transaction(&t.id).await.unwrap();
}
