//! A real server on a temp store: the socket's mode, the token on TCP, `--no-auth` only on
//! loopback, the event stream, 503 once a stop began, and what a hostile client cannot do.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::StreamExt;
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine, Event, JobState};
use pipeline_server::listen::{Limits, ListenError};
use pipeline_server::{Client, ClientError, ErrorKind, ServeError, ServeOptions, Server};

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

fn opts(dir: &std::path::Path) -> ServeOptions {
    ServeOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        poll: Duration::from_secs(30),
        ..ServeOptions::new(dir)
    }
}

/// A raw HTTP/1.1 exchange over TCP; returns the status line and the rest.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_owner_only_and_tcp_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(engine(dir.path()), opts(dir.path()))
        .await
        .unwrap();
    let mode = std::fs::metadata(server.socket_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    // The socket needs no token.
    let unix = Client::unix(server.socket_path());
    assert!(unix.list_repos().await.unwrap().is_empty());

    let url = format!("http://{}", server.tcp_addr().unwrap());
    let token = pipeline_server::auth::load_or_create_token(dir.path()).unwrap();
    for (given, what) in [(None, "no token"), (Some("0".repeat(64)), "wrong token")] {
        let c = Client::from_url(&url, given).unwrap();
        match c.create_repo("sneaky", "").await {
            Err(ClientError::Api { kind, .. }) => {
                assert_eq!(kind, ErrorKind::Unauthorized, "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // Unauthorised requests touched nothing.
    assert!(unix.list_repos().await.unwrap().is_empty());
    let c = Client::from_url(&url, Some(token)).unwrap();
    c.create_repo("data", "").await.unwrap();
    assert_eq!(unix.list_repos().await.unwrap().len(), 1);
    server.stop().await;
    assert!(
        !dir.path().join("api.sock").exists(),
        "the socket is removed at stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_is_refused_off_loopback_and_a_live_socket_refuses_a_second_server() {
    let dir = tempfile::tempdir().unwrap();
    let o = ServeOptions {
        listen: Some("0.0.0.0:0".parse().unwrap()),
        no_auth: true,
        ..ServeOptions::new(dir.path())
    };
    let e = engine(dir.path());
    match Server::start(e.clone(), o).await {
        Err(ServeError::Listen(ListenError::NoAuthNotLoopback(_))) => {}
        other => panic!("{:?}", other.err()),
    }
    let server = Server::start(e.clone(), ServeOptions::new(dir.path()))
        .await
        .unwrap();
    match Server::start(e, ServeOptions::new(dir.path())).await {
        Err(ServeError::Listen(ListenError::SocketInUse(_))) => {}
        other => panic!("{:?}", other.err()),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let stale = std::os::unix::net::UnixListener::bind(dir.path().join("api.sock")).unwrap();
    drop(stale); // the file stays, nobody answers: what a SIGKILLed server leaves
    let server = Server::start(engine(dir.path()), ServeOptions::new(dir.path()))
        .await
        .unwrap();
    Client::unix(server.socket_path())
        .list_repos()
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_a_jobs_states_and_log_lines_and_writes_wake_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let server = Server::start(e.clone(), opts(dir.path())).await.unwrap();
    let client = Client::unix(server.socket_path());
    let mut events = client.events(Some("echo"), None).await.unwrap();
    let store = e.store().clone();
    let data = RepoRef::new("data").unwrap();
    store.create_repo(&data, "").unwrap();
    let c = store
        .start_commit(&data.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store.put_file_bytes(&c, "/a", b"hello").unwrap();
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    let spec = pipeline_core::spec::parse_str(
        r#"{"pipeline": {"name": "echo"}, "input": {"pfs": {"repo": "data", "glob": "/*"}},
            "transform": {"cmd": ["sh", "-c", "echo line-from-user-code; cp $data /pfs/out/"]}}"#,
        "echo.json",
    )
    .unwrap();
    e.create_pipeline(&spec[0].spec, &CreateOptions::default())
        .unwrap();
    // The poll is 30 s: only the write's wake-up can start the job in time.
    server.state().notify_changed();
    let (mut states, mut log, mut datum) = (Vec::new(), None, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !states.contains(&JobState::JobSuccess) {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        match ev {
            Event::Job(j) => states.push(j.state),
            Event::Log(l) => log = Some(l.message),
            Event::Datum(d) => datum |= d.pipeline == "echo",
            Event::CommitFinished(_) | Event::Lagged { .. } => {}
        }
    }
    assert!(states.contains(&JobState::JobRunning), "{states:?}");
    assert_eq!(log.as_deref(), Some("line-from-user-code"));
    assert!(datum);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_stop_began_requests_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(engine(dir.path()), opts(dir.path()))
        .await
        .unwrap();
    let client = Client::unix(server.socket_path());
    server.state().begin_stop();
    match client.list_repos().await {
        Err(ClientError::Api { kind, .. }) => assert_eq!(kind, ErrorKind::Unavailable),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_get_4xx_never_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let o = ServeOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        no_auth: true,
        limits: Limits {
            header_read_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..ServeOptions::new(dir.path())
    };
    let server = Server::start(engine(dir.path()), o).await.unwrap();
    let addr = server.tcp_addr().unwrap();
    let client = Client::from_url(&format!("http://{addr}"), None).unwrap();
    let send = |method: Method, path: &str, ctype: Option<&str>, body: &'static str| {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(c) = ctype {
            b = b.header("content-type", c);
        }
        client.send(b.body(Body::from(body)).unwrap())
    };
    let cases = [
        (
            send(
                Method::POST,
                "/api/v1/repos",
                Some("application/json"),
                "{not json",
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            send(
                Method::POST,
                "/api/v1/repos",
                Some("text/plain"),
                "{\"name\":\"x\"}",
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            send(Method::POST, "/api/v1/repos", None, "").await,
            StatusCode::BAD_REQUEST,
        ),
        (
            send(Method::GET, "/api/v1/nope", None, "").await,
            StatusCode::NOT_FOUND,
        ),
        (
            send(Method::PATCH, "/api/v1/repos", None, "").await,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (i, (resp, want)) in cases.into_iter().enumerate() {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), want, "case {i}");
        let bytes = client.bytes(resp).await.unwrap();
        let body: pipeline_server::ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert!(!body.error.message.is_empty());
    }
    // Oversized headers: 431.
    let big = format!(
        "GET /api/v1/repos HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 << 10)
    );
    let answer = tokio::task::spawn_blocking(move || raw(addr, big.as_bytes()))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    // A client that sends half a request head and stalls is disconnected.
    let started = std::time::Instant::now();
    let answer =
        tokio::task::spawn_blocking(move || raw(addr, b"GET /api/v1/repos HTTP/1.1\r\nhost:"))
            .await
            .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slow header not cut off"
    );
    assert!(!answer.contains("HTTP/1.1 5"), "{answer}");
    // A client that disconnects mid-request leaves the server serving.
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /api/v1/repos HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"na").unwrap();
    })
    .await
    .unwrap();
    assert!(client.list_repos().await.unwrap().is_empty());
    server.stop().await;
}
