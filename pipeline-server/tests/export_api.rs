//! `POST .../export`: a commit's tree written into a local directory by the server in one
//! request, verified while it streams, never through a symlink, only where paths are local.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use pipeline_core::hash::ContentHash;
use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::Engine;
use pipeline_server::{AppState, Client, ClientError, ErrorKind, JobRunner};

struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
    store: Store,
    client: Client,
}

fn fixture(local_paths: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let executor = executor_process::ProcessExecutor::builder()
        .build()
        .unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(executor))
        .build()
        .unwrap();
    let client = Client::in_process(AppState::new(engine, JobRunner::OnWait, local_paths));
    store
        .create_repo(&RepoRef::new("data").unwrap(), "")
        .unwrap();
    Fixture {
        dir,
        root,
        store,
        client,
    }
}

impl Fixture {
    async fn put(&self, path: &str, data: &[u8]) {
        self.client
            .put_file("data", "master", path, Body::from(data.to_vec()))
            .await
            .unwrap();
    }

    /// A fresh absolute directory path under the fixture (not created).
    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn export(&self, path: &str, dest: &Path) -> Result<(u64, u64), ClientError> {
        self.client
            .export_local_dir("data", "master", path, dest.to_str().unwrap())
            .await
            .map(|r| (r.files, r.bytes))
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// Names left in `dir` (recursively) that are temp files of an export.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(temp_files(&e.path()));
        } else if e
            .file_name()
            .to_string_lossy()
            .starts_with(".pipectl-export")
        {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_or_a_file_lands_complete_only_where_paths_are_local() {
    let f = fixture(true);
    f.put("/d/a", b"alpha").await;
    f.put("/d/sub/b", b"beta!").await;
    f.put("/top", b"t").await;
    let out = f.out("tree");
    assert_eq!(f.export("/d", &out).await.unwrap(), (2, 10));
    assert_eq!(fs::read(out.join("a")).unwrap(), b"alpha");
    assert_eq!(fs::read(out.join("sub/b")).unwrap(), b"beta!");
    let mode = fs::metadata(out.join("a")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o600, 0o600, "owner can read and write: {mode:o}");
    assert_eq!(mode & 0o111, 0, "not executable: {mode:o}");
    // Again over the existing files: replaced, no temp file left.
    assert_eq!(f.export("/d", &out).await.unwrap(), (2, 10));
    assert!(temp_files(&out).is_empty());
    // A file lands under its own name; the root exports everything.
    let one = f.out("one");
    assert_eq!(f.export("/top", &one).await.unwrap(), (1, 1));
    assert_eq!(fs::read(one.join("top")).unwrap(), b"t");
    let all = f.out("all");
    assert_eq!(f.export("/", &all).await.unwrap(), (3, 11));
    assert_eq!(fs::read(all.join("d/sub/b")).unwrap(), b"beta!");

    // Bad requests: a relative local path, a store path with `..`, a missing path.
    assert_eq!(
        kind(
            f.client
                .export_local_dir("data", "master", "/d", "relative")
                .await
        ),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(f.export("/d/../etc", &f.out("x")).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(f.export("/nope", &f.out("y")).await),
        ErrorKind::NotFound
    );
    assert!(!f.out("y").exists(), "nothing made for a missing path");
    // Over TCP the server's file system is out of reach.
    let tcp_like = fixture(false);
    tcp_like.put("/d/a", b"alpha").await;
    assert_eq!(
        kind(tcp_like.export("/d", &tcp_like.out("t")).await),
        ErrorKind::Forbidden
    );
    assert!(!tcp_like.out("t").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_below_the_destination_are_never_followed() {
    let f = fixture(true);
    f.put("/d/a", b"alpha").await;
    f.put("/d/sub/b", b"beta").await;
    let outside = f.out("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"keep").unwrap();
    let out = f.out("out");
    fs::create_dir(&out).unwrap();
    // A symlink where a file goes is replaced by the file, not written through.
    symlink(outside.join("victim"), out.join("a")).unwrap();
    // A symlink where a directory is needed is refused, naming it.
    symlink(&outside, out.join("sub")).unwrap();
    let err = f.export("/d", &out).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("sub"), "{err}");
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
    assert!(!outside.join("b").exists(), "wrote through the symlink");
    assert!(!fs::symlink_metadata(out.join("a")).unwrap().is_symlink());
    assert_eq!(fs::read(out.join("a")).unwrap(), b"alpha");
    assert!(temp_files(&out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_object_fails_the_export_and_never_reaches_its_name() {
    let f = fixture(true);
    f.put("/d/a", b"fine").await;
    let data = vec![b'z'; 300 << 10];
    f.put("/d/z", &data).await;
    let hex = ContentHash::of_bytes(&data).to_hex();
    let obj = f.root.join("objects").join(&hex[..2]).join(&hex[2..]);
    let mut perms = fs::metadata(&obj).unwrap().permissions();
    perms.set_mode(0o644);
    fs::set_permissions(&obj, perms).unwrap();
    let mut garbled = data.clone();
    garbled[250_000] = b'Z';
    fs::write(&obj, &garbled).unwrap();
    let out = f.out("out");
    let err = f.export("/d", &out).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&hex) && text.contains("/d/z"), "{text}");
    assert_eq!(fs::read(out.join("a")).unwrap(), b"fine");
    assert!(!out.join("z").exists(), "a damaged file reached its name");
    assert!(temp_files(&out).is_empty());
    // A truncated object is caught the same way.
    fs::write(&obj, &data[..1000]).unwrap();
    let err = f.export("/d/z", &f.out("one")).await.unwrap_err();
    assert!(err.to_string().contains("/d/z"), "{err}");
    assert!(!f.out("one").join("z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tree_exports_in_one_request() {
    const N: usize = 10_000;
    let f = fixture(true);
    let head = f
        .store
        .start_commit(&RepoRef::new("data").unwrap().branch("master").unwrap(), "")
        .unwrap()
        .commit;
    let contents: Vec<String> = (0..N).map(|i| format!("file number {i}\n")).collect();
    let files = (0..N).map(|i| (format!("/d{:02}/f{i:06}", i % 50), contents[i].as_bytes()));
    f.store.put_files(&head, files).unwrap();
    let bytes: u64 = contents.iter().map(|c| c.len() as u64).sum();
    let out = f.out("big");
    assert_eq!(f.export("/", &out).await.unwrap(), (N as u64, bytes));
    let mut n = 0;
    for d in fs::read_dir(&out).unwrap() {
        n += fs::read_dir(d.unwrap().path()).unwrap().count();
    }
    assert_eq!(n, N);
    for i in [0, 1, N / 2, N - 1] {
        let p = out.join(format!("d{:02}/f{i:06}", i % 50));
        assert_eq!(fs::read_to_string(p).unwrap(), contents[i]);
    }
}
