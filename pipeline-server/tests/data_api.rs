//! The data API through the client: streamed uploads and downloads in flat memory, uploads
//! that break off (nothing becomes visible), tar refusals, error kinds, streamed listings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use pipeline_core::pfs::{RepoRef, Store};
use pipeline_core::pps::Engine;
use pipeline_server::client::tar_body_of_dir;
use pipeline_server::{AppState, Client, ClientError, ErrorKind, JobRunner};
use tokio::io::AsyncWriteExt;

/// The test that measures the process's peak memory and the one that uses the most run one
/// at a time.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Store,
    state: AppState,
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
    let state = AppState::new(engine, JobRunner::OnWait, local_paths);
    let client = Client::in_process(state.clone());
    store
        .create_repo(&RepoRef::new("data").unwrap(), "")
        .unwrap();
    Fixture {
        _dir: dir,
        root,
        store,
        state,
        client,
    }
}

/// Deterministic bytes, chunk by chunk: the same `seed` gives the same stream.
struct Gen {
    state: u64,
    left: usize,
}

impl Gen {
    fn new(seed: u64, len: usize) -> Self {
        Gen {
            state: seed,
            left: len,
        }
    }

    fn chunk(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(max);
        self.left -= n;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.extend_from_slice(&self.state.to_le_bytes()[..(n - v.len()).min(8)]);
        }
        Some(v)
    }
}

/// A request body generated as it is read (never held whole).
fn generated_body(seed: u64, len: usize) -> Body {
    let stream = futures::stream::unfold(Gen::new(seed, len), |mut g| async move {
        g.chunk(64 << 10)
            .map(|c| (Ok::<_, std::io::Error>(Bytes::from(c)), g))
    });
    Body::from_stream(stream)
}

/// The process's peak resident memory in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn kind<T>(r: Result<T, ClientError>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_file_round_trips_streamed_in_flat_memory() {
    let _one = MEMORY.lock().await;
    let f = fixture(true);
    const LEN: usize = 50 << 20;
    let before = peak_rss_kib();
    let w = f
        .client
        .put_file("data", "master", "/big.bin", generated_body(7, LEN))
        .await
        .unwrap();
    assert!(w.finished && w.error.is_none(), "{w:?}");
    assert_eq!((w.files, w.bytes), (1, LEN as u64));

    let mut dl = f
        .client
        .get_file("data", "master", "/big.bin")
        .await
        .unwrap();
    assert_eq!(dl.info.size, LEN as u64);
    assert_eq!(dl.info.path, "/big.bin");
    let mut expect = Gen::new(7, LEN);
    let mut pending: Vec<u8> = Vec::new();
    let mut got = 0usize;
    while let Some(chunk) = dl.chunk().await.unwrap() {
        assert!(chunk.len() <= 64 << 10, "chunks stay small");
        got += chunk.len();
        pending.extend_from_slice(&chunk);
        while pending.len() >= 64 << 10 {
            let want = expect.chunk(64 << 10).unwrap();
            assert!(
                pending.starts_with(&want),
                "content differs near byte {got}"
            );
            pending.drain(..want.len());
        }
    }
    while let Some(want) = expect.chunk(64 << 10) {
        assert!(pending.starts_with(&want));
        pending.drain(..want.len());
    }
    assert!(pending.is_empty());
    assert_eq!(got, LEN);
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 24,
        "peak memory grew by {grown_mib} MiB moving a 50 MiB file"
    );
}

/// The commits of `data` and whether any is open.
async fn commits(c: &Client) -> (usize, bool) {
    let all = c.list_commits("data", None, 0).await.unwrap();
    (all.len(), all.iter().any(|c| !c.is_finished()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_stream_fails_changes_nothing() {
    let f = fixture(true);
    f.client
        .put_file("data", "master", "/kept", Body::from("kept"))
        .await
        .unwrap();
    let before = commits(&f.client).await;
    let stream = futures::stream::iter(vec![
        Ok(Bytes::from(vec![b'x'; 1 << 20])),
        Err(std::io::Error::other("the client went away")),
    ]);
    let r = f
        .client
        .put_file("data", "master", "/half", Body::from_stream(stream))
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(commits(&f.client).await, before, "no commit left behind");
    assert_eq!(
        kind(f.client.inspect_file("data", "master", "/half").await),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_over_the_socket_changes_nothing() {
    let f = fixture(true);
    let sock = f.root.join("api.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let app = pipeline_server::router(f.state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = Client::unix(&sock);
    client
        .put_file("data", "master", "/kept", Body::from("kept"))
        .await
        .unwrap();
    let before = commits(&client).await;
    for chunked in [false, true] {
        let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked"
        } else {
            "Content-Length: 10485760"
        };
        let head = format!(
            "PUT /api/v1/repos/data/commits/master/file?path=/half HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let part = vec![b'x'; 1 << 20];
        if chunked {
            s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await
                .unwrap();
        }
        s.write_all(&part).await.unwrap();
        s.flush().await.unwrap();
        // Let the server start the write, then go away.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = commits(&client).await;
            if now == before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: {now:?} vs {before:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            kind(client.inspect_file("data", "master", "/half").await),
            ErrorKind::NotFound
        );
    }
}

/// A tar header for `name` (written raw, so names tar builders refuse can be made).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

fn tar_of(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        b.append(&raw_header(name, *kind, data.len() as u64), *data)
            .unwrap();
    }
    b.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_uploads_refuse_escapes_and_links_and_commit_nothing_then() {
    let f = fixture(false);
    let good = tar_of(&[
        (b"./d/a.txt", tar::EntryType::Regular, b"a"),
        (b"d/", tar::EntryType::Directory, b""),
        (b"b.txt", tar::EntryType::Regular, b"bb"),
    ]);
    let w = f
        .client
        .put_tar("data", "master", "/in", Body::from(good))
        .await
        .unwrap();
    assert_eq!((w.files, w.bytes), (2, 3));
    let info = f
        .client
        .inspect_file("data", "master", "/in/d/a.txt")
        .await
        .unwrap();
    assert_eq!(info.size, 1);
    let before = commits(&f.client).await;
    let bad: [(&[u8], tar::EntryType, &str); 3] = [
        (b"../x", tar::EntryType::Regular, "`..`"),
        (b"/etc/x", tar::EntryType::Regular, "absolute"),
        (b"link", tar::EntryType::Symlink, "links"),
    ];
    for (name, ty, why) in bad {
        let body = tar_of(&[
            (b"first.txt", tar::EntryType::Regular, b"1"),
            (name, ty, b""),
        ]);
        let err = f
            .client
            .put_tar("data", "master", "/", Body::from(body))
            .await
            .unwrap_err();
        let shown = String::from_utf8_lossy(name).into_owned();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(
            err.to_string().contains(&shown) && err.to_string().contains(why),
            "{err}"
        );
        assert_eq!(
            commits(&f.client).await,
            before,
            "{shown}: nothing committed"
        );
        assert_eq!(
            kind(f.client.inspect_file("data", "master", "/first.txt").await),
            ErrorKind::NotFound
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_directories_only_where_paths_are_local() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a"), "a").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("leak")).unwrap();
    let local = dir.path().to_str().unwrap();
    let tcp_like = fixture(false);
    assert_eq!(
        kind(
            tcp_like
                .client
                .put_local_dir("data", "master", "/", local)
                .await
        ),
        ErrorKind::Forbidden
    );
    // Over TCP the same directory goes as a tar stream.
    let (body, outcome) = tar_body_of_dir(dir.path().to_path_buf());
    let w = tcp_like
        .client
        .put_tar("data", "master", "/t", body)
        .await
        .unwrap();
    assert_eq!((w.files, outcome.skipped_symlinks()), (1, 1));
    let local_ok = fixture(true);
    let w = local_ok
        .client
        .put_local_dir("data", "master", "/up", local)
        .await
        .unwrap();
    assert_eq!((w.files, w.skipped_symlinks), (1, 1));
    assert_eq!(
        kind(
            local_ok
                .client
                .put_local_dir("data", "master", "/", "relative/dir")
                .await
        ),
        ErrorKind::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bad_and_finished_are_404_400_409() {
    let f = fixture(true);
    let c = &f.client;
    assert_eq!(
        kind(c.put_file("nope", "master", "/a", Body::from("a")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(c.get_file("nope", "master", "/a").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            c.put_file("data", "master", "/a/../b", Body::from("a"))
                .await
        ),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(c.list_files("data", "mas^ter", "/", false).await),
        ErrorKind::Invalid
    );
    let started = c.start_commit("data", "master", "").await.unwrap();
    let id = started.commit.id.to_string();
    c.put_file("data", &id, "/a", Body::from("a"))
        .await
        .unwrap();
    c.finish_commit("data", &id, None).await.unwrap();
    assert_eq!(
        kind(c.put_file("data", &id, "/b", Body::from("b")).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(c.finish_commit("data", &id, None).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(c.get_file("data", "master", "/").await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(c.diff_commit("data", "master", &Default::default()).await),
        ErrorKind::NotFound,
        "the first commit has no parent to diff with"
    );
    // A write into an open commit leaves it open; a branch head `^1` resolves.
    c.put_file("data", "master", "/c", Body::from("c"))
        .await
        .unwrap();
    let prev = c.inspect_commit("data", "master^1").await.unwrap();
    assert_eq!(prev.commit.id.to_string(), id);
    let mut d = c
        .diff_commit("data", "master", &Default::default())
        .await
        .unwrap();
    let first = d.next().await.unwrap().unwrap();
    assert_eq!(first.path, "/c");
    assert!(d.next().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_download_ends_with_the_error_never_quietly() {
    let f = fixture(true);
    let data = vec![b'z'; 200 << 10];
    f.client
        .put_file("data", "master", "/z", Body::from(data.clone()))
        .await
        .unwrap();
    let hex = pipeline_core::hash::ContentHash::of_bytes(&data).to_hex();
    let obj = f.root.join("objects").join(&hex[..2]).join(&hex[2..]);
    let mut perms = std::fs::metadata(&obj).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&obj, perms).unwrap();
    let mut garbled = data.clone();
    garbled[100_000] = b'Z';
    std::fs::write(&obj, &garbled).unwrap();
    let mut dl = f.client.get_file("data", "master", "/z").await.unwrap();
    let err = loop {
        match dl.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a damaged file read to a quiet end"),
            Err(e) => break e,
        }
    };
    assert!(
        err.to_string().contains(&hex) && err.to_string().contains("/z"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_of_100k_files_streams() {
    const N: usize = 100_000;
    let _one = MEMORY.lock().await;
    let f = fixture(true);
    let head = f
        .store
        .start_commit(&RepoRef::new("data").unwrap().branch("master").unwrap(), "")
        .unwrap()
        .commit;
    let files = (0..N).map(|i| (format!("/d/f{i:06}"), &b"x"[..]));
    f.store.put_files(&head, files).unwrap();
    let mut list = f
        .client
        .list_files("data", "master", "/d", true)
        .await
        .unwrap();
    let mut n = 0;
    let mut last = String::new();
    while let Some(info) = list.next().await.unwrap() {
        assert!(info.path > last, "path order");
        last = info.path;
        n += 1;
    }
    assert_eq!(n, N);
    // On the wire: many bounded chunks, not one buffer.
    let req =
        axum::http::Request::get("/api/v1/repos/data/commits/master/files?path=/d&recursive=true")
            .body(Body::empty())
            .unwrap();
    let resp = f.client.send(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let mut body = resp.into_body();
    let (mut frames, mut biggest) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame.unwrap().into_data() {
            frames += 1;
            biggest = biggest.max(d.len());
        }
    }
    assert!(
        frames > 100 && biggest < 64 << 10,
        "{frames} frames, biggest {biggest}"
    );
    let mut globbed = f
        .client
        .glob_files("data", "master", "/d/f00000*")
        .await
        .unwrap();
    let mut g = 0;
    while globbed.next().await.unwrap().is_some() {
        g += 1;
    }
    assert_eq!(g, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_commits_gc_and_fsck() {
    let f = fixture(true);
    let c = &f.client;
    c.put_file("data", "master", "/a", Body::from("a"))
        .await
        .unwrap();
    let body = pipeline_server::routes::branches::PutBranch {
        head: Some("master".into()),
        provenance: vec![],
    };
    let b = c.put_branch("data", "dev", &body).await.unwrap();
    let master = c.inspect_branch("data", "master").await.unwrap();
    assert_eq!(b.head, master.head);
    assert_eq!(c.list_branches("data").await.unwrap().len(), 2);
    c.delete_branch("data", "dev", false).await.unwrap();
    assert_eq!(
        kind(c.inspect_branch("data", "dev").await),
        ErrorKind::NotFound
    );
    let w = c.delete_file("data", "master", "/a").await.unwrap();
    assert!(w.finished);
    assert_eq!(
        c.list_commits("data", Some("master"), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // The deleted file's content stays: the commit before the delete names it.
    let gc = c.gc(0).await.unwrap();
    assert_eq!((gc.live, gc.removed), (1, 0));
    let report = c.fsck(false).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}
