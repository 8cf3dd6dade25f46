//! Nobody but the spout writes its output branch, on every write path (reference §3.6): a
//! real server with the S3 gateway runs a spout on the process executor; the spout's own
//! credential writes its branch, while the owner is refused with "cannot start a commit on
//! an output branch" through the S3 gateway (S3 `AccessDenied`, 403, with the message; a
//! real S3 client and raw HTTP), a transaction (refused when queued, and when a request
//! that was fine when queued meets a spout created earlier in the same transaction), and
//! moving, deleting or copying into the branch through the API; nothing changes on the
//! branch, and the spout still writes afterwards.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::{Engine, TransactionRequest};
use pipeline_server::routes::branches::PutBranch;
use pipeline_server::routes::commit_verbs::CopyFile;
use pipeline_server::routes::pipelines::CreatePipelines;
use pipeline_server::{Client, ServeOptions, Server};

const REFUSED: &str = "cannot start a commit on an output branch";

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

/// A spout that prints the address and token it was granted (the token in two halves: the
/// whole token is redacted from its logs), then idles.
const SPOUT: &str = r#"{"pipeline": {"name": "spout"}, "spout": {},
   "transform": {"cmd": ["sh", "-c", "t=$PIPECTL_TOKEN; echo grant $PIPECTL_SERVER ${t%${t#????????}} ${t#????????}; exec sleep 1000"]}}"#;

/// The spout's client, once it printed its grant.
async fn spout_client(engine: &Engine) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = engine.logs("spout", None, None).unwrap();
        if let Some(l) = lines.iter().find(|l| l.message.starts_with("grant ")) {
            let parts: Vec<&str> = l.message.split(' ').collect();
            let token = format!("{}{}", parts[2], parts[3]);
            return Client::from_url(parts[1], Some(token)).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the spout never printed its grant"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn s3_client(addr: SocketAddr, bucket: &str) -> AmazonS3 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    AmazonS3Builder::new()
        .with_endpoint(format!("http://{addr}"))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id("any")
        .with_secret_access_key("any")
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap()
}

/// One unsigned HTTP/1.1 request with `body`; the status and the whole response.
fn raw(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// What a refused write must leave alone: the branch's head, every commit of the repo, its
/// branches and the files at the head.
fn snapshot(store: &Store) -> (String, usize, usize, Vec<String>) {
    let repo = RepoRef::new("spout").unwrap();
    let head = store
        .inspect_branch(&repo.branch("master").unwrap())
        .unwrap();
    let commits = store.list_commits(&repo, None, 0).unwrap().len();
    let branches = store.list_branches(&repo).unwrap().len();
    let c = store.resolve_commit(&repo, "master").unwrap();
    let files = store
        .list_file_recursive(&c, "/")
        .unwrap()
        .map(|f| f.unwrap().path)
        .collect();
    (head.head.to_string(), commits, branches, files)
}

#[track_caller]
fn assert_refused(what: &str, err: impl std::fmt::Display) {
    let err = err.to_string();
    assert!(err.contains(REFUSED), "{what}: {err}");
}

/// Writes through the S3 gateway: PutObject (a real client and unsigned), DeleteObject, a
/// multipart upload and DeleteBucket.
async fn s3_writes_are_refused(addr: SocketAddr) {
    let s3 = s3_client(addr, "master.spout");
    let err = s3
        .put(&ObjPath::from("x"), PutPayload::from("x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert_refused("S3 PutObject", &err);
    let err = s3.delete(&ObjPath::from("n1")).await.unwrap_err();
    assert_refused("S3 DeleteObject", err);
    match s3.put_multipart(&ObjPath::from("big")).await {
        Err(e) => assert_refused("S3 CreateMultipartUpload", e),
        Ok(mut up) => {
            let part = up.put_part(PutPayload::from(vec![7u8; 16])).await;
            let done = match part {
                Ok(()) => up.complete().await.map(drop),
                Err(e) => Err(e),
            };
            assert_refused("S3 multipart upload", done.unwrap_err());
        }
    }
    let (status, body) = raw(addr, "PUT", "/master.spout/y", "y");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert_refused("unsigned S3 PutObject", &body);
    let (status, body) = raw(addr, "DELETE", "/master.spout", "");
    assert_eq!(status, 403, "{body}");
    assert_refused("S3 DeleteBucket", &body);
}

/// Transactions: each write request refused when queued; one that was fine when queued
/// (the spout did not exist yet) refused when the transaction finishes, applying nothing.
async fn transaction_writes_are_refused(owner: &Client, first: &str) {
    let txn = owner.start_transaction().await.unwrap();
    let requests = [
        TransactionRequest::StartCommit {
            branch: "spout@master".into(),
            description: String::new(),
        },
        TransactionRequest::FinishCommit {
            commit: "spout@master".into(),
            error: None,
        },
        TransactionRequest::CreateBranch {
            branch: "spout@master".into(),
            head: Some(first.into()),
            provenance: Vec::new(),
        },
        TransactionRequest::DeleteBranch {
            branch: "spout@master".into(),
            force: true,
        },
    ];
    for r in &requests {
        let err = owner
            .append_transaction_request(&txn.id, r)
            .await
            .unwrap_err();
        assert_refused(&format!("transaction {r:?}"), err);
    }
    assert!(
        owner
            .inspect_transaction(&txn.id)
            .await
            .unwrap()
            .requests
            .is_empty()
    );

    let spec = SPOUT.replace("\"spout\"}", "\"later\"}");
    for r in [
        TransactionRequest::CreateRepo {
            repo: "side".into(),
            description: String::new(),
        },
        TransactionRequest::CreatePipeline {
            spec,
            source_name: "later.json".into(),
            executor: None,
        },
        TransactionRequest::StartCommit {
            branch: "later@master".into(),
            description: String::new(),
        },
    ] {
        owner.append_transaction_request(&txn.id, &r).await.unwrap();
    }
    let err = owner.finish_transaction(&txn.id).await.unwrap_err();
    assert_refused("finishing the transaction", &err);
    assert!(err.to_string().contains("later@master"), "{err}");
    let repos: Vec<String> = owner
        .list_repos()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.repo.name)
        .collect();
    assert!(
        !repos.contains(&"side".to_string()) && !repos.contains(&"later".to_string()),
        "nothing of the refused transaction was applied: {repos:?}"
    );
    owner.delete_transaction(&txn.id).await.unwrap();
}

/// The API's branch and copy routes.
async fn api_writes_are_refused(owner: &Client, first: &str) {
    let back = PutBranch {
        head: Some(first.into()),
        provenance: Vec::new(),
    };
    let err = owner
        .put_branch("spout", "master", &back)
        .await
        .unwrap_err();
    assert_refused("moving the branch", err);
    let err = owner
        .delete_branch("spout", "master", true)
        .await
        .unwrap_err();
    assert_refused("deleting the branch", err);
    let copy = CopyFile {
        src_repo: "data".into(),
        src_commit: "master".into(),
        src_path: "/d".into(),
        path: "/d".into(),
    };
    let err = owner.copy_file("spout", "master", &copy).await.unwrap_err();
    assert_refused("copying into the branch", err);
}

/// A running server (with the S3 gateway) and its spout, which wrote two commits (`/n1`,
/// `/n2`) and left a third open.
struct Running {
    server: Server,
    engine: Engine,
    owner: Client,
    spout: Client,
    /// The spout's first commit.
    first: String,
}

impl Running {
    async fn start(dir: &std::path::Path) -> Running {
        let opts = ServeOptions {
            s3: Some("127.0.0.1:0".parse().unwrap()),
            no_auth: true,
            poll: Duration::from_millis(100),
            ..ServeOptions::new(dir)
        };
        let server = Server::start(engine(dir), opts).await.unwrap();
        let owner = Client::unix(server.socket_path());
        owner.create_repo("data", "").await.unwrap();
        owner
            .put_file("data", "master", "/d", Body::from("d"))
            .await
            .unwrap();
        owner.create_pipelines(&create(SPOUT)).await.unwrap();
        let engine = server.state().engine().clone();
        let spout = spout_client(&engine).await;
        for n in ["n1", "n2"] {
            spout.start_commit("spout", "master", "").await.unwrap();
            let body = Body::from(format!("{n}\n"));
            spout
                .put_file("spout", "master", &format!("/{n}"), body)
                .await
                .unwrap();
            spout.finish_commit("spout", "master", None).await.unwrap();
        }
        let first = spout.inspect_commit("spout", "master^").await.unwrap();
        spout.start_commit("spout", "master", "").await.unwrap();
        Running {
            server,
            engine,
            owner,
            spout,
            first: first.commit.id.to_string(),
        }
    }

    /// Checks that the branch is as `before`, that the spout still writes and finishes its
    /// open commit; stops the server.
    async fn spout_still_writes(self, before: (String, usize, usize, Vec<String>)) {
        assert_eq!(
            snapshot(self.engine.store()),
            before,
            "a refused write changed the branch"
        );
        self.spout
            .put_file("spout", "master", "/n3", Body::from("n3\n"))
            .await
            .unwrap();
        let done = self
            .spout
            .finish_commit("spout", "master", None)
            .await
            .unwrap();
        assert!(done.is_finished(), "{done:?}");
        assert_eq!(snapshot(self.engine.store()).3, ["/n1", "/n2", "/n3"]);
        self.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_gateway_refuses_writes_to_a_spouts_branch() {
    let dir = tempfile::tempdir().unwrap();
    let r = Running::start(dir.path()).await;
    let before = snapshot(r.engine.store());
    s3_writes_are_refused(r.server.s3_addr().unwrap()).await;
    r.spout_still_writes(before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_refuse_writes_to_a_spouts_branch() {
    let dir = tempfile::tempdir().unwrap();
    let r = Running::start(dir.path()).await;
    let before = snapshot(r.engine.store());
    transaction_writes_are_refused(&r.owner, &r.first).await;
    r.spout_still_writes(before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_and_copy_routes_refuse_writes_to_a_spouts_branch() {
    let dir = tempfile::tempdir().unwrap();
    let r = Running::start(dir.path()).await;
    let before = snapshot(r.engine.store());
    api_writes_are_refused(&r.owner, &r.first).await;
    r.spout_still_writes(before).await;
}
