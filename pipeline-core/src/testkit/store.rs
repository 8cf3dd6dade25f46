//! Test stores on either metadata backend: [`open_test_store`] opens the store a test keeps
//! in a directory on redb (its contents on the test S3 server with
//! `PIPELINE_TEST_OBJECTS=s3`), or on PostgreSQL when `PIPELINE_TEST_STORE=postgres` (a fresh
//! PostgreSQL schema per directory, on the server `PIPELINE_TEST_POSTGRES` names), so a test
//! file runs on both by running it twice. [`postgres_url`] is how PostgreSQL tests find their
//! server: unset or unreachable, they fail under `CI=true` and skip (saying why) elsewhere.

use std::path::Path;

use crate::pfs::{self, PfsError, Store, StoreLocation};

/// The variable naming the test server: `postgres://USER:PASSWORD@HOST:PORT/DB`.
pub const POSTGRES_VAR: &str = "PIPELINE_TEST_POSTGRES";
/// The variable choosing the backend of [`open_test_store`]: `postgres` or `redb` (default).
pub const STORE_VAR: &str = "PIPELINE_TEST_STORE";

/// Whether this is a CI run (`CI=true`), where a missing server is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The test server's URL; `None` (after saying why on stderr) when it is not set or not
/// reachable outside CI. Panics in CI, where the server must be there.
pub fn postgres_url() -> Option<String> {
    let problem = match std::env::var(POSTGRES_VAR) {
        Err(_) => format!("{POSTGRES_VAR} is not set (eval \"$(bash .ci/postgres)\" sets it)"),
        Ok(url) => match reachable(&url) {
            Ok(()) => return Some(url),
            Err(e) => format!(
                "{POSTGRES_VAR} names an unusable server: {}",
                crate::error_chain::ErrorChain(&e)
            ),
        },
    };
    if in_ci() {
        panic!("PostgreSQL test cannot run under CI=true: {problem}");
    }
    eprintln!("skipped: PostgreSQL test: {problem}");
    None
}

/// Connects once; a database without our schema is fine (each test makes its own).
fn reachable(url: &str) -> Result<(), PfsError> {
    match pfs::PostgresMetaStore::open(url, &pfs::PostgresOptions::default()) {
        Ok(_) | Err(PfsError::MetaNotInitialised { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `url` with `?schema=NAME` (or `&schema=NAME`) added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// A PostgreSQL schema name unique to `dir` (so reopening the same directory finds it).
pub fn schema_for(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hash = crate::hash::ContentHash::of_bytes(abs.to_string_lossy().as_bytes()).to_hex();
    format!("t_{}", &hash[..20])
}

/// Whether [`open_test_store`] uses PostgreSQL (`PIPELINE_TEST_STORE=postgres`).
pub fn wants_postgres() -> bool {
    std::env::var(STORE_VAR).is_ok_and(|v| v == "postgres")
}

/// Where [`open_test_store`] keeps the store of `root` on PostgreSQL: a schema of its own,
/// objects in `root/objects`, host state in `root` (the layout of a store directory).
/// Panics when `PIPELINE_TEST_POSTGRES` is not set (asking for PostgreSQL without a server
/// is a mistake, not a reason to skip).
pub fn postgres_location(root: &Path) -> StoreLocation {
    let url = std::env::var(POSTGRES_VAR).unwrap_or_else(|_| {
        panic!("{STORE_VAR}=postgres needs {POSTGRES_VAR} (eval \"$(bash .ci/postgres)\")")
    });
    StoreLocation {
        store: with_schema(&url, &schema_for(root)),
        objects: Some(root.join("objects").display().to_string()),
        local: root.to_path_buf(),
    }
}

/// Opens (creating it the first time) the test store of `root`: a store directory, or with
/// `PIPELINE_TEST_STORE=postgres` a store on the test server. Panics on failure.
pub fn open_test_store(root: &Path) -> Store {
    try_open_test_store(root).unwrap_or_else(|e| {
        panic!(
            "opening the test store {}: {}",
            root.display(),
            crate::error_chain::ErrorChain(&e)
        )
    })
}

/// [`open_test_store`] returning the error (e.g. to check that a second open is refused).
/// With `PIPELINE_TEST_OBJECTS=s3` (and no PostgreSQL) the contents go to the test S3 server
/// ([`super::objects::store_at`]).
pub fn try_open_test_store(root: &Path) -> Result<Store, PfsError> {
    if wants_postgres() {
        return Store::init(&postgres_location(root));
    }
    #[cfg(feature = "store-object")]
    if super::objects::objects_on_s3() {
        return Ok(super::objects::store_at(root));
    }
    Store::open(root)
}

/// Sets the schema version stored by `store` (to test what a database made by a newer build
/// does).
pub fn force_schema_version(store: &pfs::PostgresMetaStore, version: u32) -> Result<(), PfsError> {
    store.force_schema_version(version)
}

/// A plain connection to a PostgreSQL server for tests that set up or read tables (or the
/// server's views) themselves, on a runtime of its own. Panics on any error.
pub struct PlainClient {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl PlainClient {
    /// Connects to `url` without TLS.
    pub fn new(url: &str) -> PlainClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test client");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connecting the test client");
            tokio::spawn(conn);
            client
        });
        PlainClient { rt, client }
    }

    /// Runs `sql` (one or more statements).
    pub fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .expect("test SQL");
    }

    /// The rows `sql` returns, every value as text (`NULL` for a null).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.rt
            .block_on(self.client.simple_query(sql))
            .expect("test query")
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }
}
