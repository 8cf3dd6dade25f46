//! Test support for object stores (features `testkit` and `store-object`): the S3 server
//! the tests share, a fresh prefix per test, and the store the data-store tests run on.
//!
//! `.ci/s3` starts `s3s-fs` and exports `PIPELINE_TEST_S3=http://127.0.0.1:PORT` with the
//! `AWS_*` credentials. When it is unset or does not answer, a test that needs it fails
//! under `CI=true` and is skipped (saying why on stderr) elsewhere.
//!
//! `PIPELINE_TEST_OBJECTS=s3` makes [`store_at`] put file contents on that server, so a
//! test file written against [`store_at`] runs on both object stores.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::pfs::{RemoteObjectStore, Store};

/// The bucket `.ci/s3` creates.
pub const TEST_BUCKET: &str = "pipeline-test";

/// Credentials `.ci/s3` gives the server, used when `AWS_ACCESS_KEY_ID` is unset.
const DEFAULT_KEY: (&str, &str) = ("pipeline-test-key", "pipeline-test-secret");

/// The test S3 endpoint (`PIPELINE_TEST_S3`) if it answers. Otherwise panics under
/// `CI=true` and returns `None` elsewhere, after saying on stderr why `test` is skipped.
pub fn s3_endpoint(test: &str) -> Option<String> {
    let why = match std::env::var("PIPELINE_TEST_S3") {
        Err(_) => {
            "PIPELINE_TEST_S3 is not set (source .ci/s3 to start a local S3 server)".to_string()
        }
        Ok(url) => match answers(&url) {
            Ok(()) => return Some(url),
            Err(e) => format!("the S3 server at PIPELINE_TEST_S3={url} does not answer: {e}"),
        },
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why}; CI=true, so this fails instead of skipping");
    }
    eprintln!("skipping {test}: {why}");
    None
}

/// Whether a TCP connection to the URL's host and port opens within 2 s.
fn answers(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The options that point a store at the test server `endpoint` with the test credentials
/// (from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` when set).
pub fn s3_options(endpoint: &str) -> Vec<(String, String)> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| DEFAULT_KEY.0.into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| DEFAULT_KEY.1.into());
    [
        ("aws_endpoint", endpoint.to_string()),
        ("aws_allow_http", "true".to_string()),
        ("aws_access_key_id", key),
        ("aws_secret_access_key", secret),
        ("aws_region", "us-east-1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A prefix of the test bucket no other test (or run) uses: `s3://pipeline-test/NAME-PID-N-NANOS`.
pub fn fresh_s3_url(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "s3://{TEST_BUCKET}/{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a fresh prefix of the test server, or `None` when the test is skipped (see
/// [`s3_endpoint`]). Panics when the server answers but the store cannot be opened.
pub fn s3_store(test: &str) -> Option<RemoteObjectStore> {
    let endpoint = s3_endpoint(test)?;
    let url = fresh_s3_url(test);
    match RemoteObjectStore::from_url_with(&url, &s3_options(&endpoint)) {
        Ok(s) => Some(s),
        Err(e) => panic!("{test}: {}", crate::error_chain::ErrorChain(&e)),
    }
}

/// Whether `PIPELINE_TEST_OBJECTS=s3` asks the data-store tests to use the S3 server.
pub fn objects_on_s3() -> bool {
    std::env::var("PIPELINE_TEST_OBJECTS").is_ok_and(|v| v == "s3")
}

/// The store a data-store test runs on, under `dir`: [`Store::open`] normally; with
/// `PIPELINE_TEST_OBJECTS=s3`, metadata in `dir` and contents on a fresh prefix of the test
/// server (skipped, falling back to `Store::open`, when there is none outside CI).
pub fn store_at(dir: &Path) -> Store {
    if objects_on_s3()
        && let Some(objects) = s3_store("store_at")
    {
        return Store::with_backends(meta_at(dir), Box::new(objects));
    }
    local_store(dir)
}

#[cfg(feature = "store-redb")]
fn local_store(dir: &Path) -> Store {
    match Store::open(dir) {
        Ok(s) => s,
        Err(e) => panic!(
            "opening the test store: {}",
            crate::error_chain::ErrorChain(&e)
        ),
    }
}

#[cfg(not(feature = "store-redb"))]
fn local_store(dir: &Path) -> Store {
    match crate::pfs::object::LocalObjectStore::open(&dir.join("objects")) {
        Ok(o) => Store::with_backends(meta_at(dir), Box::new(o)),
        Err(e) => panic!(
            "opening the test store: {}",
            crate::error_chain::ErrorChain(&e)
        ),
    }
}

#[cfg(feature = "store-redb")]
fn meta_at(dir: &Path) -> Box<dyn crate::pfs::meta::MetaStore> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("{}: {e}", dir.display());
    }
    match crate::pfs::RedbMetaStore::open(&dir.join("meta.redb")) {
        Ok(m) => Box::new(m),
        Err(e) => panic!(
            "opening the test metadata: {}",
            crate::error_chain::ErrorChain(&e)
        ),
    }
}

#[cfg(not(feature = "store-redb"))]
fn meta_at(_dir: &Path) -> Box<dyn crate::pfs::meta::MetaStore> {
    Box::new(crate::pfs::MemMetaStore::new())
}
