//! The object-store conformance suite: every case runs on the local store, on
//! `RemoteObjectStore` over a `file://` directory and over a real S3 server (`s3s-fs`,
//! started by `.ci/s3`; see `pipeline_core::testkit::objects` for when the S3 cases skip).

use std::io::{self, Read};
use std::sync::Arc;

use pipeline_core::hash::{ContentHash, FileHasher};
use pipeline_core::pfs::object::{Durability, LocalObjectStore, ObjectState, ObjectStore};
use pipeline_core::pfs::{PfsError, RemoteObjectStore};
use pipeline_core::testkit::objects as kit;

/// One store under test, and how to damage an object in it behind its back.
struct Backend {
    store: Arc<dyn ObjectStore>,
    corrupt: Corrupt,
    _dir: tempfile::TempDir,
}

fn local() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalObjectStore::open(&dir.path().join("objects")).unwrap());
    let s = store.clone();
    Backend {
        corrupt: Box::new(move |h, bytes| {
            let p = s.path_of(h);
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, bytes).unwrap();
        }),
        store,
        _dir: dir,
    }
}

/// Overwrites the stored bytes of an object with other bytes.
type Corrupt = Box<dyn Fn(&ContentHash, &[u8]) + Send + Sync>;

fn file_url() -> Backend {
    let (store, corrupt, dir) = remote_file();
    Backend {
        store: Arc::new(store),
        corrupt,
        _dir: dir,
    }
}

fn remote_file() -> (RemoteObjectStore, Corrupt, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let store = RemoteObjectStore::from_url(&format!("file://{}", root.display())).unwrap();
    let corrupt: Corrupt = Box::new(move |h, bytes| {
        let hex = h.to_hex();
        let p = root.join("objects").join(&hex[..2]).join(&hex[2..]);
        std::fs::write(&p, bytes).unwrap();
    });
    (store, corrupt, dir)
}

fn s3(test: &str) -> Option<Backend> {
    let (store, corrupt) = remote_s3(test)?;
    Some(Backend {
        store: Arc::new(store),
        corrupt,
        _dir: tempfile::tempdir().unwrap(),
    })
}

fn remote_s3(test: &str) -> Option<(RemoteObjectStore, Corrupt)> {
    let endpoint = kit::s3_endpoint(test)?;
    let url = kit::fresh_s3_url(test);
    let opts = kit::s3_options(&endpoint);
    let store = RemoteObjectStore::from_url_with(&url, &opts).unwrap();
    let prefix = url
        .trim_start_matches(&format!("s3://{}/", kit::TEST_BUCKET))
        .to_string();
    let corrupt: Corrupt = Box::new(move |h, bytes| raw_put(&opts, &prefix, h, bytes));
    Some((store, corrupt))
}

/// Writes `bytes` over an object's key with a plain `object_store` client (no checks).
fn raw_put(opts: &[(String, String)], prefix: &str, h: &ContentHash, bytes: &[u8]) {
    use object_store::ObjectStoreExt;
    let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(kit::TEST_BUCKET);
    for (k, v) in opts {
        b = b.with_config(k.parse().unwrap(), v);
    }
    let raw = b.build().unwrap();
    let hex = h.to_hex();
    let key =
        object_store::path::Path::from(format!("{prefix}/objects/{}/{}", &hex[..2], &hex[2..]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(raw.put(&key, bytes.to_vec().into())).unwrap();
}

/// Runs `case` on every backend (S3 only when its server is there, see the module docs).
fn on_all(test: &str, case: impl Fn(&Backend)) {
    case(&local());
    case(&file_url());
    if let Some(b) = s3(test) {
        case(&b);
    }
}

fn read_all(s: &dyn ObjectStore, h: &ContentHash) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.open(h).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

/// A deterministic byte stream of `len` bytes that is never all in memory.
struct Pattern {
    left: u64,
    state: u64,
}

impl Pattern {
    fn new(len: u64, seed: u64) -> Pattern {
        Pattern {
            left: len,
            state: seed | 1,
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let b = self.state.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn pattern_hash(len: u64, seed: u64) -> ContentHash {
    let mut h = FileHasher::new();
    let mut p = Pattern::new(len, seed);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = p.read(&mut buf).unwrap();
        if n == 0 {
            return h.finish();
        }
        h.update(&buf[..n]);
    }
}

#[test]
fn put_open_roundtrip_contains_and_missing() {
    on_all("put_open_roundtrip", |b| {
        let s = &*b.store;
        let o = s.put(&mut &b"hello"[..], Durability::Immediate).unwrap();
        assert!(o.new);
        assert_eq!((o.hash, o.size), (ContentHash::of_bytes(b"hello"), 5));
        assert_eq!(read_all(s, &o.hash).unwrap(), b"hello");
        assert!(s.contains(&o.hash).unwrap());
        let other = ContentHash::of_bytes(b"never stored");
        assert!(!s.contains(&other).unwrap());
        match s.open(&other) {
            Err(PfsError::Io { source, .. }) => assert_eq!(source.kind(), io::ErrorKind::NotFound),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("opened a missing object"),
        }
        assert_eq!(s.verify(&other).unwrap(), ObjectState::Missing);
        assert_eq!(s.verify(&o.hash).unwrap(), ObjectState::Intact { size: 5 });
        s.barrier().unwrap();
    });
}

#[test]
fn identical_puts_are_deduplicated_small_medium_and_large() {
    on_all("dedup", |b| {
        let s = &*b.store;
        for len in [3u64, 3 << 20, 9 << 20] {
            let first = s
                .put(&mut Pattern::new(len, 7), Durability::Deferred)
                .unwrap();
            let again = s
                .put(&mut Pattern::new(len, 7), Durability::Deferred)
                .unwrap();
            assert!(first.new, "{len}");
            assert!(
                !again.new,
                "{len}: second put of the same bytes stored them again"
            );
            assert_eq!(first.hash, again.hash);
            assert_eq!(first.hash, pattern_hash(len, 7));
            assert_eq!(first.size, len);
        }
    });
}

#[test]
fn empty_object() {
    on_all("empty_object", |b| {
        let s = &*b.store;
        let o = s.put(&mut io::empty(), Durability::Immediate).unwrap();
        assert_eq!((o.hash, o.size), (ContentHash::of_bytes(b""), 0));
        assert_eq!(read_all(s, &o.hash).unwrap(), b"");
        assert!(!s.put(&mut io::empty(), Durability::Immediate).unwrap().new);
        assert_eq!(s.verify(&o.hash).unwrap(), ObjectState::Intact { size: 0 });
    });
}

#[test]
fn damaged_objects_fail_the_read_and_verify() {
    on_all("damaged", |b| {
        let s = &*b.store;
        let o = s
            .put(&mut &b"precious data"[..], Durability::Immediate)
            .unwrap();
        (b.corrupt)(&o.hash, b"precious DATA");
        s.forget(&o.hash);
        // The local store's reader is raw (the data store verifies around it); a remote
        // store's reader checks by itself.
        if s.local_path(&o.hash).is_none() {
            let e = read_all(s, &o.hash).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains(&o.hash.to_hex()), "{e}");
        }
        match s.verify(&o.hash).unwrap() {
            ObjectState::Corrupt { size, found } => {
                assert_eq!(size, 13);
                assert_eq!(found, ContentHash::of_bytes(b"precious DATA"));
            }
            other => panic!("{other:?}"),
        }
        // A put of the right content over a shorter damaged copy repairs it.
        (b.corrupt)(&o.hash, b"short");
        s.forget(&o.hash);
        s.put(&mut &b"precious data"[..], Durability::Immediate)
            .unwrap();
        assert_eq!(read_all(s, &o.hash).unwrap(), b"precious data");
        // Moving a damaged object aside: it is gone from its name afterwards.
        (b.corrupt)(&o.hash, b"precious DATA");
        s.forget(&o.hash);
        if let Some(moved) = s.quarantine(&o.hash).unwrap() {
            assert!(
                !s.contains(&o.hash).unwrap(),
                "still there after moving to {moved:?}"
            );
        }
    });
}

#[test]
fn remove_and_list() {
    on_all("remove_and_list", |b| {
        let s = &*b.store;
        let a = s.put(&mut &b"a"[..], Durability::Immediate).unwrap();
        let c = s.put(&mut &b"c"[..], Durability::Immediate).unwrap();
        let mut listed: Vec<_> = s.list().map(|o| o.unwrap().hash).collect();
        listed.sort();
        let mut want = vec![a.hash, c.hash];
        want.sort();
        assert_eq!(listed, want);
        s.remove(&a.hash).unwrap();
        s.remove(&a.hash).unwrap(); // removing twice is fine
        assert!(!s.contains(&a.hash).unwrap());
        let listed: Vec<_> = s.list().map(|o| o.unwrap()).collect();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].hash, listed[0].size), (c.hash, 1));
        let age = std::time::SystemTime::now()
            .duration_since(listed[0].modified)
            .unwrap_or_default();
        assert!(age.as_secs() < 600, "modified {age:?} ago");
    });
}

/// More objects than one page of an S3 listing (1,000), all listed, the iterator consumed
/// lazily (the first item arrives before the whole listing is fetched).
#[test]
fn listing_spans_pages() {
    let Some(b) = s3("listing_spans_pages") else {
        return;
    };
    let s = b.store.clone();
    let hashes: Vec<ContentHash> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8u32)
            .map(|w| {
                let s = s.clone();
                scope.spawn(move || {
                    (0..2_500u32)
                        .filter(|i| i % 8 == w)
                        .map(|i| {
                            s.put(&mut &i.to_le_bytes()[..], Durability::Deferred)
                                .unwrap()
                                .hash
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut listed: Vec<ContentHash> = s.list().map(|o| o.unwrap().hash).collect();
    listed.sort();
    let mut want = hashes;
    want.sort();
    assert_eq!(listed.len(), 2_500);
    assert_eq!(listed, want);
    // Stopping early is fine (the listing task stops at its next item).
    assert_eq!(s.list().take(3).count(), 3);
}

/// The trait is synchronous but is called from inside tokio tasks: nothing may panic
/// there (no `block_on` of the caller's runtime), including dropping the store.
#[tokio::test(flavor = "multi_thread")]
async fn works_inside_a_tokio_runtime() {
    let mut backends = vec![file_url()];
    backends.extend(s3("inside_tokio"));
    for b in backends {
        let s = &*b.store;
        let o = s
            .put(&mut Pattern::new(9 << 20, 3), Durability::Immediate)
            .unwrap();
        assert_eq!(o.hash, pattern_hash(9 << 20, 3));
        let mut r = s.open(&o.hash).unwrap();
        assert_eq!(io::copy(&mut r, &mut io::sink()).unwrap(), 9 << 20);
        assert!(s.contains(&o.hash).unwrap());
        assert_eq!(s.list().count(), 1);
        assert!(matches!(
            s.verify(&o.hash).unwrap(),
            ObjectState::Intact { .. }
        ));
        s.remove(&o.hash).unwrap();
        drop(b);
    }
}

/// What is stored is an ordinary S3 object: boto3 lists it under the prefix with its size
/// and reads back the same bytes.
#[test]
fn objects_are_plain_s3_objects_for_boto3() {
    let Some(endpoint) = kit::s3_endpoint("boto3") else {
        return;
    };
    let url = kit::fresh_s3_url("boto3");
    let store = RemoteObjectStore::from_url_with(&url, &kit::s3_options(&endpoint)).unwrap();
    let small = store
        .put(&mut &b"boto3 can read this"[..], Durability::Immediate)
        .unwrap();
    let big = store
        .put(&mut Pattern::new(9 << 20, 11), Durability::Immediate)
        .unwrap();
    let prefix = url.trim_start_matches(&format!("s3://{}/", kit::TEST_BUCKET));
    let script = r#"
import sys, boto3
endpoint, bucket, prefix, key, secret = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/objects/")
for page in pages:
    for o in page.get("Contents", []):
        print(o["Key"], o["Size"])
small = sorted(o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix) for o in p.get("Contents", []) if o["Size"] < 100)[0]
print("BODY", s3.get_object(Bucket=bucket, Key=small)["Body"].read().decode())
"#;
    let opts = kit::s3_options(&endpoint);
    let get = |k: &str| opts.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([&endpoint, kit::TEST_BUCKET, prefix])
        .arg(get("aws_access_key_id"))
        .arg(get("aws_secret_access_key"))
        .output()
        .expect("python3 runs (install boto3: .ci/s3 does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_of = |h: &ContentHash| {
        let hex = h.to_hex();
        format!("{prefix}/objects/{}/{}", &hex[..2], &hex[2..])
    };
    assert!(
        stdout.contains(&format!("{} 19\n", key_of(&small.hash))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} {}\n", key_of(&big.hash), 9 << 20)),
        "{stdout}"
    );
    assert!(stdout.contains("BODY boto3 can read this"), "{stdout}");
}

/// A wrong endpoint, a missing bucket and wrong credentials are errors at open, naming
/// the URL, and no secret appears in them.
#[test]
fn bad_locations_fail_at_open_naming_the_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut opts = kit::s3_options(&format!("http://127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    let e = RemoteObjectStore::from_url_with("s3://nobody-listens/p", &opts).unwrap_err();
    let msg = pipeline_core::error_chain::ErrorChain(&e).to_string();
    assert!(msg.contains("s3://nobody-listens/p"), "{msg}");
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
    let Some(endpoint) = kit::s3_endpoint("bad_locations") else {
        return;
    };
    opts = kit::s3_options(&endpoint);
    let e = RemoteObjectStore::from_url_with("s3://no-such-bucket-here/p", &opts).unwrap_err();
    let msg = pipeline_core::error_chain::ErrorChain(&e).to_string();
    assert!(
        msg.contains("s3://no-such-bucket-here/p") && msg.contains("bucket"),
        "{msg}"
    );
    for (k, v) in opts.iter_mut() {
        if k == "aws_secret_access_key" {
            *v = "wrong-secret-value".into();
        }
    }
    let e = RemoteObjectStore::from_url_with(&kit::fresh_s3_url("bad_creds"), &opts).unwrap_err();
    let msg = pipeline_core::error_chain::ErrorChain(&e).to_string();
    assert!(msg.contains("credentials"), "{msg}");
    assert!(!msg.contains("wrong-secret-value"), "{msg}");
}

/// The data store on a remote object store: files read back verified, inputs materialise
/// by copying (no local file to link), a damaged object fails the read naming it and is
/// found and moved aside by `check`, and garbage collection removes remote objects.
#[test]
fn the_data_store_runs_on_remote_objects() {
    let (file, corrupt, dir) = remote_file();
    store_scenario(file, &corrupt, dir.path());
    if let Some((s3, corrupt)) = remote_s3("data_store") {
        store_scenario(s3, &corrupt, dir.path());
    }
}

fn store_scenario(objects: RemoteObjectStore, corrupt: &Corrupt, scratch: &std::path::Path) {
    use pipeline_core::pfs::{FinishOptions, MemMetaStore, RepoRef, Store};
    let s = Store::with_backends(Box::new(MemMetaStore::new()), Box::new(objects));
    let repo = RepoRef::new("images").unwrap();
    s.create_repo(&repo, "").unwrap();
    let c = s
        .start_commit(&repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    s.put_file_bytes(&c, "/a.txt", b"hello").unwrap();
    s.put_file(&c, "/big", &mut Pattern::new(9 << 20, 1))
        .unwrap();
    s.finish_commit(&c, FinishOptions::default()).unwrap();

    let mut out = String::new();
    s.get_file(&c, "/a.txt")
        .unwrap()
        .1
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hello");
    let dest = scratch.join(format!("materialized-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let st = s.materialize(&c, "/", &dest).unwrap();
    assert_eq!((st.files, st.linked), (2, 0));
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::metadata(dest.join("big")).unwrap().len(), 9 << 20);

    let a = ContentHash::of_bytes(b"hello");
    corrupt(&a, b"HELLO");
    let mut r = s.get_file(&c, "/a.txt").unwrap().1;
    let e = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains(&a.to_hex()), "{e}");
    let report = s.check(false).unwrap();
    assert!(!report.is_clean());
    assert_eq!(s.check(true).unwrap().moved, 1);
    s.put_file_bytes(
        &s.start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit,
        "/again",
        b"hello",
    )
    .unwrap();
    s.delete_repo(&repo, true).unwrap();
    let gc = s.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!(gc.live, 0);
    assert!(gc.removed >= 2, "{gc:?}");
    assert_eq!(s.gc(std::time::Duration::ZERO).unwrap().objects, 0);
}

/// `from_url` alone is configured from the standard environment (`AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`, the key pair, `AWS_REGION`): the test runs its child below in a
/// process of its own with only those set (a test cannot change its own environment).
#[test]
fn configured_from_the_standard_environment() {
    let Some(endpoint) = kit::s3_endpoint("from_env") else {
        return;
    };
    let opts = kit::s3_options(&endpoint);
    let get = |k: &str| opts.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "from_env_child", "--ignored", "--nocapture"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", get("aws_access_key_id"))
        .env("AWS_SECRET_ACCESS_KEY", get("aws_secret_access_key"))
        .env("AWS_REGION", "us-east-1")
        .env("FROM_ENV_URL", kit::fresh_s3_url("from_env"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run by `configured_from_the_standard_environment` only.
#[test]
#[ignore = "a child of configured_from_the_standard_environment"]
fn from_env_child() {
    let url = std::env::var("FROM_ENV_URL").unwrap();
    let s = RemoteObjectStore::from_url(&url).unwrap();
    let o = s
        .put(&mut &b"from the environment"[..], Durability::Immediate)
        .unwrap();
    assert_eq!(read_all(&s, &o.hash).unwrap(), b"from the environment");
}
