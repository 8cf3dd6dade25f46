//! The metadata store conformance suite (`pipeline_core::testkit::meta`) on every backend:
//! in memory, redb, and PostgreSQL (the server `PIPELINE_TEST_POSTGRES` names; see
//! `.ci/postgres`), plus what only a server backend has: schema versions, unreachable
//! servers, the owner lock, calls from inside a tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pipeline_core::pfs::meta::{MetaStore, Table};
use pipeline_core::pfs::{
    MemMetaStore, PfsError, PostgresMetaStore, PostgresOptions, RedbMetaStore, Store, StoreLocation,
};
use pipeline_core::testkit::meta::{self, MetaCase};
use pipeline_core::testkit::store::{postgres_url, with_schema};

#[test]
fn in_memory_store_conforms() {
    meta::run_all(&|| {
        let s: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
        MetaCase {
            store: s.clone(),
            other: s,
        }
    });
}

#[test]
fn redb_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    meta::run_all(&|| {
        let path = dir
            .path()
            .join(format!("{}.redb", n.fetch_add(1, Ordering::SeqCst)));
        let s: Arc<dyn MetaStore> = Arc::new(RedbMetaStore::open(&path).unwrap());
        MetaCase {
            store: s.clone(),
            other: s,
        }
    });
}

/// A URL of a fresh, initialised schema on the test server.
fn fresh_schema(base: &str, tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!(
        "c_{tag}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    );
    let url = with_schema(base, &schema);
    assert_eq!(
        PostgresMetaStore::init(&url).unwrap(),
        None,
        "a fresh schema"
    );
    url
}

fn open(url: &str) -> PostgresMetaStore {
    PostgresMetaStore::open(url, &PostgresOptions::default()).unwrap()
}

#[test]
fn postgres_store_conforms() {
    let Some(base) = postgres_url() else { return };
    meta::run_all(&|| {
        let url = fresh_schema(&base, "conf");
        MetaCase {
            store: Arc::new(open(&url)),
            other: Arc::new(open(&url)),
        }
    });
}

/// The store's blocking calls work on the worker threads of a multi-thread runtime and on
/// the one thread of a current-thread runtime (where a driver's own `block_on` would panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_works_inside_a_multi_thread_runtime() {
    let Some(base) = postgres_url() else { return };
    let s = Arc::new(open(&fresh_schema(&base, "mt")));
    let mut w = s.write().unwrap();
    w.put(Table::Repos, b"k", b"v").unwrap();
    w.commit().unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let r = s.read().unwrap();
                r.get(Table::Repos, b"k").unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Some(b"v".to_vec()));
    }
    drop(s); // dropping inside the runtime must not panic either
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_store_works_inside_a_current_thread_runtime() {
    let Some(base) = postgres_url() else { return };
    let s = open(&fresh_schema(&base, "ct"));
    let mut w = s.write().unwrap();
    w.put(Table::Repos, b"k", b"v").unwrap();
    drop(w);
    assert_eq!(s.read().unwrap().get(Table::Repos, b"k").unwrap(), None);
    drop(s);
}

/// An uninitialised database says to run init; a newer schema names both versions; init
/// again is harmless; an older build's store opens after init.
#[test]
fn postgres_schema_versions_are_checked() {
    let Some(base) = postgres_url() else { return };
    let url = with_schema(&base, &format!("v_{}", std::process::id()));
    let e = PostgresMetaStore::open(&url, &PostgresOptions::default()).unwrap_err();
    assert!(matches!(e, PfsError::MetaNotInitialised { .. }), "{e}");
    assert!(e.to_string().contains("pipectl init --store"), "{e}");
    assert!(!e.to_string().contains(&password(&base)), "{e}");
    assert_eq!(PostgresMetaStore::init(&url).unwrap(), None);
    assert_eq!(
        PostgresMetaStore::init(&url).unwrap(),
        Some(pipeline_core::pfs::POSTGRES_SCHEMA_VERSION)
    );
    let s = open(&url);
    pipeline_core::testkit::store::force_schema_version(&s, 99).unwrap();
    drop(s);
    let e = PostgresMetaStore::open(&url, &PostgresOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            PfsError::MetaSchemaTooNew {
                found: 99,
                supported: pipeline_core::pfs::POSTGRES_SCHEMA_VERSION,
                ..
            }
        ),
        "{e}"
    );
    let text = e.to_string();
    let supported = format!("version {}", pipeline_core::pfs::POSTGRES_SCHEMA_VERSION);
    assert!(text.contains("99") && text.contains(&supported), "{text}");
    let e = PostgresMetaStore::init(&url).unwrap_err();
    assert!(
        matches!(e, PfsError::MetaSchemaTooNew { .. }),
        "init leaves it: {e}"
    );
}

fn password(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(ui, _)| ui.split_once(':'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "\u{0}no password".into())
}

/// Nothing listens: a clear error naming the server, after the connect timeout at most,
/// never a hang or a panic; and the password is not in it.
#[test]
fn an_unreachable_server_is_a_clear_error() {
    let start = Instant::now();
    let url = "postgres://someone:hunter2@127.0.0.1:1/nowhere?connect_timeout=3";
    let e = PostgresMetaStore::open(url, &PostgresOptions::default()).unwrap_err();
    let text = pipeline_core::error_chain::ErrorChain(&e).to_string();
    assert!(matches!(e, PfsError::MetaServer { .. }), "{text}");
    assert!(
        text.contains("postgres://someone@127.0.0.1:1/nowhere"),
        "{text}"
    );
    assert!(text.contains("connecting"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // A non-routable address: the connect timeout ends it.
    let start = Instant::now();
    let url = "postgres://someone@10.255.255.1:5432/x?connect_timeout=2";
    let e = PostgresMetaStore::open(url, &PostgresOptions::default()).unwrap_err();
    assert!(matches!(e, PfsError::MetaServer { .. }), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// A store opened with `Store::connect` is exclusive: a second open is refused naming this
/// process, and works again once the first is closed.
#[test]
fn a_connected_store_is_held_by_one_process() {
    let Some(base) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation {
        store: with_schema(&base, &format!("x_{}", std::process::id())),
        objects: Some(dir.path().join("objects").display().to_string()),
        local: dir.path().join("local"),
    };
    let e = Store::connect(&location).unwrap_err();
    assert!(matches!(e, PfsError::MetaNotInitialised { .. }), "{e}");
    let first = Store::init(&location).unwrap();
    let e = Store::connect(&location).unwrap_err();
    assert!(matches!(e, PfsError::StoreInUse { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    drop(first);
    // The server releases the lock when the owner's connection closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::connect(&location) {
            Ok(_) => break,
            Err(PfsError::StoreInUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    }
}
