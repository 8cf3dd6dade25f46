//! A job's S3 gateway (`S3JobGateways`, what pipelines with `s3: true` inputs and `s3_out`
//! read and write through) with a real S3 client, the `object_store` crate: input buckets
//! are read-only views of the job's input commits, `out` writes straight into the job's open
//! output commit (multipart too), nothing else is served, the job's key is required, and the
//! gateway stops when its handle is dropped.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store};
use pipeline_core::pps::Engine;
use pipeline_core::pps::job_gateway::{JobBuckets, JobGateways, RunningJobGateway};
use pipeline_server::s3::S3JobGateways;

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

/// A finished commit of repo `name` holding `files`, and an open commit of repo `out`.
fn commits(store: &Store, files: &[(&str, &[u8])]) -> (CommitRef, CommitRef) {
    let repo = RepoRef::new("images").unwrap();
    store.create_repo(&repo, "").unwrap();
    let c = store
        .start_commit(&repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    for (p, b) in files {
        store.put_file_bytes(&c, p, b).unwrap();
    }
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    let out = RepoRef::new("out").unwrap();
    store.create_repo(&out, "").unwrap();
    let o = store
        .start_commit(&out.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    (c, o)
}

fn client(g: &RunningJobGateway, bucket: &str, secret: &str) -> AmazonS3 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    AmazonS3Builder::new()
        .with_endpoint(&g.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(&g.access_key)
        .with_secret_access_key(secret)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap()
}

async fn start(e: &Engine, input: &CommitRef, out: &CommitRef) -> RunningJobGateway {
    let buckets = JobBuckets {
        job: "job1".into(),
        inputs: vec![("training".into(), input.clone())],
        output: Some(out.clone()),
    };
    S3JobGateways::default()
        .start(e.clone(), buckets, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_gateway_serves_its_inputs_read_only_and_writes_out_into_the_output_commit() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let (input, out) = commits(e.store(), &[("/a.png", b"A"), ("/d/b.png", b"BB")]);
    let g = start(&e, &input, &out).await;
    assert!(g.endpoint.starts_with("http://127.0.0.1:"), "{g:?}");
    assert_eq!(g.env()[0].0, "S3_ENDPOINT");

    let training = client(&g, "training", &g.secret_key);
    let mut keys: Vec<String> = training
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["a.png", "d/b.png"]);
    let got = training.get(&ObjPath::from("d/b.png")).await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), Bytes::from_static(b"BB"));
    let refused = training
        .put(&ObjPath::from("x"), PutPayload::from_static(b"no"))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("read-only"), "{refused}");

    let outputs = client(&g, "out", &g.secret_key);
    outputs
        .put(
            &ObjPath::from("model/w.bin"),
            PutPayload::from_static(b"weights"),
        )
        .await
        .unwrap();
    // More than one part: 6 MiB through a multipart upload.
    let big = vec![7u8; 6 << 20];
    let mut up = object_store::WriteMultipart::new_with_chunk_size(
        outputs.put_multipart(&ObjPath::from("big")).await.unwrap(),
        5 << 20,
    );
    up.write(&big);
    up.finish().await.unwrap();
    // Straight into the open output commit, no commit of its own.
    let store = e.store();
    assert!(!store.inspect_commit(&out).unwrap().is_finished());
    let (_, mut r) = store.get_file(&out, "/model/w.bin").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut r, &mut text).unwrap();
    assert_eq!(text, "weights");
    assert_eq!(store.inspect_file(&out, "/big").unwrap().size, 6 << 20);
    assert_eq!(store.list_commits(&out.repo, None, 0).unwrap().len(), 1);

    // Nothing else is served; the job's key is required.
    let other = client(&g, "master.images", &g.secret_key);
    let err = other
        .get(&ObjPath::from("a.png"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("training, out"),
        "names the job's buckets: {err}"
    );
    let forged = client(&g, "training", "not-the-secret");
    let err = forged
        .get(&ObjPath::from("a.png"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SignatureDoesNotMatch") || err.contains("403"),
        "{err}"
    );

    // Dropping the handle stops the gateway.
    let endpoint = g.endpoint.clone();
    drop(g);
    let addr = endpoint.trim_start_matches("http://").to_string();
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the gateway at {addr} still accepts connections");
}
