//! What a spout's credential can and cannot do (reference §3.6): a real server runs a spout
//! on the process executor that prints the address and token it was given; a client holding
//! them writes the spout's output branch and nothing else (no other branch, no other repo's
//! output branch, no admin or pipeline route), the owner's own clients are refused on that
//! branch, and the token dies with the spout's run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use pipeline_core::pfs::Store;
use pipeline_core::pps::Engine;
use pipeline_server::routes::pipelines::CreatePipelines;
use pipeline_server::{Client, ClientError, ErrorKind, ServeOptions, Server};

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

fn create(spec: &str) -> CreatePipelines {
    CreatePipelines {
        spec: spec.into(),
        source_name: "spec.json".into(),
        update: false,
        reprocess: false,
        executor: None,
        project: None,
    }
}

/// The `PIPECTL_SERVER` and `PIPECTL_TOKEN` the spout printed (the token cut in two: the
/// whole token is redacted from its logs), once it has.
async fn granted(engine: &Engine) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = engine.logs("spout", None, None).unwrap();
        if let Some(l) = lines.iter().find(|l| l.message.starts_with("grant ")) {
            let parts: Vec<&str> = l.message.split(' ').collect();
            let token = format!("{}{}", parts[2], parts[3]);
            let whole = lines
                .iter()
                .find(|l| l.message.starts_with("token "))
                .unwrap();
            assert!(
                !whole.message.contains(&token),
                "the credential is redacted from the spout's logs: {}",
                whole.message
            );
            return (parts[1].to_string(), token);
        }
        assert!(
            Instant::now() < deadline,
            "the spout never printed its grant"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorKind {
    r.expect_err("refused").kind()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spout_token_writes_only_its_own_output_branch() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        poll: Duration::from_millis(100),
        ..ServeOptions::new(dir.path())
    };
    let server = Server::start(engine(dir.path()), opts).await.unwrap();
    let owner = Client::unix(server.socket_path());
    owner.create_repo("data", "").await.unwrap();
    owner
        .create_pipelines(&create(
            r#"{"pipeline": {"name": "other"}, "spout": {},
               "transform": {"cmd": ["sh", "-c", "exec sleep 1000"]}}"#,
        ))
        .await
        .unwrap();
    owner
        .create_pipelines(&create(
            r#"{"pipeline": {"name": "spout"}, "spout": {},
               "transform": {"cmd": ["sh", "-c", "t=$PIPECTL_TOKEN; echo token $t; echo grant $PIPECTL_SERVER ${t%${t#????????}} ${t#????????}; exec sleep 1000"]}}"#,
        ))
        .await
        .unwrap();
    let engine = server.state().engine().clone();
    let (url, token) = granted(&engine).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let spout = Client::from_url(&url, Some(token.clone())).unwrap();

    // Its own branch: start, put, finish; read its own repo.
    spout.start_commit("spout", "master", "").await.unwrap();
    let body = Body::from("1\n");
    spout
        .put_file("spout", "master", "/n1", body)
        .await
        .unwrap();
    spout.finish_commit("spout", "master", None).await.unwrap();
    let head = spout.inspect_commit("spout", "master").await.unwrap();
    assert!(head.is_finished(), "{head:?}");

    // Nothing else.
    let forbidden = ErrorKind::Forbidden;
    assert_eq!(
        kind(spout.start_commit("spout", "side", "").await),
        forbidden
    );
    let body = Body::from("x");
    assert_eq!(
        kind(spout.put_file("data", "master", "/x", body).await),
        forbidden
    );
    assert_eq!(
        kind(spout.start_commit("other", "master", "").await),
        forbidden
    );
    assert_eq!(kind(spout.list_pipelines().await), forbidden);
    assert_eq!(kind(spout.list_repos().await), forbidden);
    assert_eq!(kind(spout.delete_repo("spout", true).await), forbidden);
    assert_eq!(
        kind(spout.delete_branch("spout", "master", true).await),
        forbidden
    );
    assert_eq!(kind(spout.delete_pipeline("spout", false).await), forbidden);
    // No token, or a wrong one, is unauthorized on the spouts' listener.
    let anonymous = Client::from_url(&url, None).unwrap();
    assert_eq!(
        kind(anonymous.inspect_commit("spout", "master").await),
        ErrorKind::Unauthorized
    );

    // The owner is refused on the spout's branch, as in Pachyderm.
    let err = owner.start_commit("spout", "master", "").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot start a commit on an output branch"),
        "{err}"
    );
    let body = Body::from("x");
    let err = owner
        .put_file("spout", "master", "/y", body)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("output branch"), "{err}");

    // The token dies with the run.
    owner.stop_pipeline("spout").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match spout.inspect_commit("spout", "master").await {
            Err(e) if e.kind() == ErrorKind::Unauthorized => break,
            other => assert!(
                Instant::now() < deadline,
                "the stopped spout's token still works: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(engine.spout_status("spout").is_none());
    server.stop().await;
}
