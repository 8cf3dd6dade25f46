//! Signing in to the console over TCP, on a real `Server`: pages redirect to `/login`, a wrong
//! token sets no cookie, the right one sets an `HttpOnly; SameSite=Strict` cookie and goes
//! back to a local `next` only, the cookie opens pages and API reads but never API writes, and
//! console actions need the CSRF token on every listener (`--no-auth` included).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine};
use pipeline_core::spec::parse_str;
use pipeline_server::{ServeOptions, Server};

/// A store with repo `raw` and pipeline `upper` (raw, `/*`) served over a loopback TCP
/// listener, with a token unless `no_auth`.
struct Served {
    _dir: tempfile::TempDir,
    server: Server,
    engine: Engine,
    addr: SocketAddr,
    token: String,
}

async fn served(no_auth: bool) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let executor = executor_process::ProcessExecutor::builder()
        .build()
        .unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(executor))
        .build()
        .unwrap();
    store
        .create_repo(&RepoRef::new("raw").unwrap(), "")
        .unwrap();
    let spec =
        "pipeline: {name: upper}\ntransform: {cmd: [cat]}\ninput: {pfs: {repo: raw, glob: /*}}\n";
    engine
        .create_pipelines(
            &parse_str(spec, "upper.yaml").unwrap(),
            &CreateOptions::default(),
        )
        .unwrap();
    // The first job ends before the server starts: an action racing the runner is not what
    // these tests are about.
    engine.run_pending().await.unwrap();
    let opts = ServeOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        no_auth,
        poll: Duration::from_secs(30),
        ..ServeOptions::new(dir.path())
    };
    let server = Server::start(engine.clone(), opts).await.unwrap();
    let addr = server.tcp_addr().unwrap();
    let token = if no_auth {
        String::new()
    } else {
        pipeline_server::auth::load_or_create_token(dir.path()).unwrap()
    };
    Served {
        _dir: dir,
        server,
        engine,
        addr,
        token,
    }
}

/// One HTTP answer: status, header lines (`name: value`, names lowercased) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `headers` and `body` over a fresh connection (closed after the
/// answer; reads time out after 10 s so a hung server fails the test).
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    tokio::task::spawn_blocking(move || exchange(addr, &request))
        .await
        .unwrap()
}

fn exchange(addr: SocketAddr, request: &str) -> Answer {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    send(addr, "GET", path, headers, "").await
}

async fn post_form(addr: SocketAddr, path: &str, headers: &[&str], form: &str) -> Answer {
    let mut all = vec!["Content-Type: application/x-www-form-urlencoded"];
    all.extend_from_slice(headers);
    send(addr, "POST", path, &all, form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_redirect_to_login_and_only_the_right_token_signs_in() {
    let s = served(false).await;
    let a = get(s.addr, "/", &[]).await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("location"), Some("/login?next=%2F"));
    let a = get(s.addr, "/pipelines/upper?x=1", &[]).await;
    assert_eq!(
        a.header("location"),
        Some("/login?next=%2Fpipelines%2Fupper%3Fx%3D1")
    );
    let a = get(s.addr, "/login?next=%2F", &[]).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains(r#"name="token""#), "{}", a.body);

    let wrong = format!("token={}&next=%2F", "0".repeat(64));
    let a = post_form(s.addr, "/login", &[], &wrong).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a.header("set-cookie").is_none(), "{a:?}");
    assert!(a.body.contains("not this server"), "{}", a.body);

    let right = format!("token={}&next=%2Fpipelines%2Fupper", s.token);
    let a = post_form(s.addr, "/login", &[], &right).await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("location"), Some("/pipelines/upper"));
    let cookie = a.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with(&format!("pipectl_token={};", s.token)));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_opens_pages_and_api_reads_but_not_api_writes() {
    let s = served(false).await;
    let cookie = format!("Cookie: pipectl_token={}", s.token);
    for path in ["/", "/pipelines/upper", "/repos/raw"] {
        let a = get(s.addr, path, &[&cookie]).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert!(a.header("content-security-policy").is_some(), "{path}");
    }
    let a = get(s.addr, "/api/v1/repos", &[&cookie]).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("raw"), "{}", a.body);
    let wrong_cookie = format!("Cookie: pipectl_token={}", "0".repeat(64));
    let a = get(s.addr, "/", &[&wrong_cookie]).await;
    assert_eq!(a.status, 303, "a wrong cookie signs nobody in: {a:?}");

    // A write through the API with only the cookie (what another site could make a signed-in
    // browser send) is refused and changes nothing; the bearer token still works.
    let json = ["Content-Type: application/json", cookie.as_str()];
    let body = r#"{"name": "sneaky"}"#;
    let a = send(s.addr, "POST", "/api/v1/repos", &json, body).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a.body.contains("Authorization: Bearer"), "{}", a.body);
    let a = send(s.addr, "DELETE", "/api/v1/repos/raw", &[&cookie], "").await;
    assert_eq!(a.status, 401, "{a:?}");
    let names: Vec<String> = s
        .engine
        .store()
        .list_repos()
        .unwrap()
        .into_iter()
        .map(|r| r.repo.name.to_string())
        .collect();
    assert!(
        names.contains(&"raw".to_string()) && !names.contains(&"sneaky".to_string()),
        "a cookie-only API write changed the store: {names:?}"
    );
    let bearer = format!("Authorization: Bearer {}", s.token);
    let json = ["Content-Type: application/json", bearer.as_str()];
    let a = send(s.addr, "POST", "/api/v1/repos", &json, body).await;
    assert!((200..300).contains(&a.status), "{a:?}");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_never_sends_a_browser_off_site() {
    let s = served(false).await;
    for next in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
    ] {
        let form = format!("token={}&next={next}", s.token);
        let a = post_form(s.addr, "/login", &[], &form).await;
        assert_eq!(a.status, 303, "{next}: {a:?}");
        assert_eq!(a.header("location"), Some("/"), "{next}");
        let a = get(s.addr, &format!("/login?next={next}"), &[]).await;
        assert!(
            a.body.contains(r#"name="next" value="/""#),
            "{next}: {}",
            a.body
        );
    }
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_load_without_signing_in() {
    let s = served(false).await;
    for (file, kind) in [("console.css", "text/css"), ("console.js", "javascript")] {
        let a = get(s.addr, &format!("/assets/{file}"), &[]).await;
        assert_eq!(a.status, 200, "{file}: {a:?}");
        let content_type = a.header("content-type").unwrap_or_default();
        assert!(content_type.contains(kind), "{file}: {content_type}");
    }
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_actions_still_need_the_csrf_token() {
    let s = served(false).await;
    let cookie = format!("Cookie: pipectl_token={}", s.token);
    let a = post_form(s.addr, "/pipelines/upper/stop", &[], "").await;
    assert_eq!(a.status, 401, "no cookie, no token: {a:?}");
    let a = post_form(s.addr, "/pipelines/upper/stop", &[&cookie], "csrf=nope").await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(!s.engine.inspect_pipeline("upper").unwrap().stopped);
    let form = format!("csrf={}", s.server.state().csrf());
    let a = post_form(s.addr, "/pipelines/upper/stop", &[&cookie], &form).await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("location"), Some("/pipelines/upper"));
    assert!(s.engine.inspect_pipeline("upper").unwrap().stopped);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_loopback_needs_no_sign_in_but_actions_need_the_csrf_token() {
    let s = served(true).await;
    let a = get(s.addr, "/", &[]).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = post_form(s.addr, "/pipelines/upper/stop", &[], "").await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(!s.engine.inspect_pipeline("upper").unwrap().stopped);
    let form = format!("csrf={}", s.server.state().csrf());
    let a = post_form(s.addr, "/pipelines/upper/stop", &[], &form).await;
    assert_eq!(a.status, 303, "{a:?}");
    assert!(s.engine.inspect_pipeline("upper").unwrap().stopped);
    s.server.stop().await;
}
