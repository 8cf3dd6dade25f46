//! [`PostgresMetaStore`]: the metadata store on a PostgreSQL server (feature
//! `store-postgres`), so that the store's metadata outlives any one host.
//!
//! | module | concept |
//! |---|---|
//! | `url` | `postgres://` URLs: parsing, our parameters (`schema`, `pool_size`), the password never shown |
//! | `bridge` | the driver's own tokio runtime, reached from blocking calls on any thread |
//! | `shared` | the pool and lock keys a store's transactions share; a pooled connection in a transaction, rolled back when dropped |
//! | `schema` | versioned migrations (`pipeline-core/migrations/`), the stored `schema_version` |
//! | `read` | snapshots and their paged range scans |
//! | `write` | write transactions: the writer lock, buffered changes, durable commit |
//! | `owner` | the owner lock of an exclusive store (one process at a time, like `LOCK`) |
//! | `sql` | the SQL of the key-value tables |
//! | `tasks` | the queue of datum sets the engine hosts sharing the store claim |
//! | `tls` | TLS to the server: libpq's `sslmode` and `sslrootcert`, on rustls |
//!
//! # Decisions
//!
//! **Driver: `tokio-postgres` with a `deadpool-postgres` pool.** Both are maintained, pure
//! Rust, and the most used PostgreSQL client stack of the ecosystem; `tokio-postgres`
//! pipelines queries on one connection and caches prepared statements per connection. The
//! synchronous `postgres` crate was not used: its client runs its own `block_on`, which
//! panics when called from a thread of a tokio runtime, and the store is called from such
//! threads. `sqlx` would add a query layer this key-value schema does not need. The store's
//! API is blocking, so the driver runs on a small runtime of its own (`bridge`): each call
//! hands its future over and waits on a plain channel, which is allowed on any thread.
//! TLS comes from `sslmode`/`sslrootcert` in the URL, as in libpq (`tls`; plain without
//! `sslmode`).
//!
//! **Schema.** One table per metadata table, `kv_<name> (k bytea PRIMARY KEY, v bytea)`.
//! PostgreSQL compares `bytea` bytewise (`memcmp`, then the shorter first), the same order
//! as the embedded store; the conformance suite checks keys with `0x00` and `0xFF` bytes.
//! Migrations are SQL files in `pipeline-core/migrations/`, compiled in; only
//! [`PostgresMetaStore::init`] (`pipectl init --store URL`) applies them, in one
//! transaction, and records the version in `schema_version`. Opening checks that version:
//! no schema or an older one is [`PfsError::MetaNotInitialised`] (saying to run init), a
//! newer one [`PfsError::MetaSchemaTooNew`] naming both versions. `?schema=NAME` in the URL
//! keeps the tables in a PostgreSQL schema of that name (created by init), so several stores
//! can share a database.
//!
//! **Writes: `READ COMMITTED` behind one advisory lock.** Every write transaction begins
//! with `pg_advisory_xact_lock(K)` (K derived from the schema name), so writers of one store
//! run one at a time across processes and hosts, and a second one waits; the lock goes with
//! the transaction's end, also when its connection dies. `READ COMMITTED` is what makes that
//! enough: each statement sees everything committed before it began, so the first statement
//! after the lock sees every earlier writer's commit. (`REPEATABLE READ` would take its
//! snapshot at the lock statement, before the lock is granted, and could miss a commit made
//! while waiting; `SERIALIZABLE` would add retries for conflicts that the lock already rules
//! out.) Since no other writer runs while the lock is held, the transaction is serialisable.
//! Commits are durable: `synchronous_commit` is set `on` for each write. Puts and deletes
//! are buffered (the last change of a key wins) and sent as `unnest` batches before a scan
//! of their table, when 8 MiB are buffered, and at commit; a transaction dropped without
//! commit is rolled back before its connection returns to the pool. A transaction one of
//! whose statements failed refuses to commit (PostgreSQL would silently roll it back).
//!
//! **Reads: `REPEATABLE READ, READ ONLY` snapshots.** A snapshot is one pooled connection in
//! such a transaction, taken at [`MetaStore::read`]. Scans are streamed by keyset
//! pagination (64 pairs, then 512 per query, each page starting after the last key read),
//! never the whole range in memory, forwards or backwards. An open snapshot pins a
//! connection and keeps PostgreSQL's vacuum from reclaiming rows deleted after it began, as a
//! redb snapshot keeps pages: so [`MetaStore::snapshots_hold_space`] is `true`, and long
//! scans of finished commits reopen a short snapshot per chunk instead of holding one for a
//! whole job. The pool has 32 connections (`?pool_size=N`); a call that waits 60 s for one
//! fails with an error saying so, rather than hanging.
//!
//! **One process at a time, unless asked otherwise.** [`PostgresOptions::exclusive`] (what
//! `Store::connect` uses) holds a session advisory lock on a connection of its own while the
//! store is open, as a store directory's `LOCK` file does: a second process gets
//! [`PfsError::StoreInUse`] naming the holder's pid and host. Each write checks, inside its
//! transaction and under the writer lock, that the owner session still holds it (a fence),
//! so a process whose owner connection was lost cannot write after another took over.
//!
//! **Errors.** Every driver error is [`PfsError::MetaServer`] naming the server as
//! `postgres://USER@HOST:PORT/DB` (never the password) and the operation. Connecting times
//! out after 10 s (`connect_timeout=S` in the URL), TCP keepalives and a 60 s TCP user
//! timeout turn a vanished server into an error instead of a hang.

mod bridge;
mod owner;
mod read;
mod schema;
mod shared;
mod sql;
mod tasks;
pub(crate) mod tls;
mod url;
mod write;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use self::bridge::Bridge;
use self::owner::OwnerLock;
use self::shared::{Fence, Shared, server_error};
use super::error::Result;
use super::meta::{MetaRead, MetaStore, MetaWrite};
use super::work_queue::WorkQueue;

pub use self::schema::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;
pub use self::url::is_postgres_url;

/// `url` as errors name it: without its password (and, when it does not parse, with the
/// password masked).
pub(crate) fn shown_url(url: &str) -> String {
    url::parse(url).map_or_else(|_| super::connect::redact(url), |u| u.shown)
}

/// How long [`MetaStore::ownership_lost`] waits for the owner session to answer.
const OWNER_PING: Duration = Duration::from_secs(10);

/// How long a call waits for a pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(60);

/// How [`PostgresMetaStore::open`] opens a store.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// Hold the store's owner lock while open: a second exclusive opener gets
    /// [`PfsError::StoreInUse`](super::PfsError::StoreInUse), and every write checks that
    /// this store still holds it.
    pub exclusive: bool,
}

/// The metadata store on a PostgreSQL server (see the module docs).
pub struct PostgresMetaStore {
    /// Declared first: released before the runtime stops.
    owner: Option<OwnerLock>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresMetaStore")
            .field("server", &self.shared.server)
            .field("exclusive", &self.owner.is_some())
            .finish_non_exhaustive()
    }
}

/// A 64-bit advisory lock key for `purpose` in PostgreSQL schema `namespace`.
fn lock_key(purpose: &str, namespace: Option<&str>) -> i64 {
    let text = format!(
        "pipeline-core store\0{purpose}\0{}",
        namespace.unwrap_or("")
    );
    let hash = crate::hash::ContentHash::of_bytes(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_be_bytes(bytes)
}

/// A pool of connections to `url`.
fn pool(url: &url::ServerUrl) -> Result<Pool> {
    let manager = Manager::from_config(
        url.config.clone(),
        url.tls_connector()?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let connect = url.config.get_connect_timeout().copied();
    Pool::builder(manager)
        .max_size(url.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(connect)
        .build()
        .map_err(|e| server_error(&url.shown, "setting up the connection pool", e))
}

impl PostgresMetaStore {
    /// Creates the store's schema in the database at `url`, or upgrades an older one to
    /// [`POSTGRES_SCHEMA_VERSION`]; returns the version found before (`None`: there was
    /// none). A newer schema is [`PfsError::MetaSchemaTooNew`](super::PfsError) and is left
    /// untouched. Safe to run again, and by several processes at once.
    pub fn init(url: &str) -> Result<Option<u32>> {
        let url = url::parse(url)?;
        let bridge = Bridge::start(&url.shown)?;
        let pool = pool(&url)?;
        let key = lock_key("writer", url.schema.as_deref());
        let shown = url.shown.clone();
        bridge
            .run(async move {
                let client = pool
                    .get()
                    .await
                    .map_err(|e| server_error(&url.shown, "connecting", e))?;
                schema::migrate(&client, &url.shown, url.schema.as_deref(), key).await
            })
            .unwrap_or_else(|| Err(server_error(&shown, "creating the schema", shared::Stopped)))
    }

    /// Connects to the store at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, with
    /// optional `?schema=NAME&pool_size=N` and the driver's own parameters) and checks its
    /// schema version.
    pub fn open(url: &str, options: &PostgresOptions) -> Result<Self> {
        let url = url::parse(url)?;
        let bridge = Bridge::start(&url.shown)?;
        let pool = pool(&url)?;
        let owner_key = lock_key("owner", url.schema.as_deref());
        let (checked_pool, checked_url, exclusive) = (pool.clone(), url.clone(), options.exclusive);
        let owner = bridge
            .run(async move {
                let client = checked_pool
                    .get()
                    .await
                    .map_err(|e| server_error(&checked_url.shown, "connecting", e))?;
                schema::check(&client, &checked_url.shown).await?;
                if !exclusive {
                    return Ok(None);
                }
                owner::acquire(&checked_url, owner_key).await.map(Some)
            })
            .unwrap_or_else(|| Err(server_error(&url.shown, "connecting", shared::Stopped)))?;
        let fence: Option<Fence> = owner.as_ref().map(|o| o.fence);
        let shared = Arc::new(Shared {
            server: url.shown.clone(),
            pool,
            writer_key: lock_key("writer", url.schema.as_deref()),
            fence,
            writer: std::sync::Mutex::new(()),
            bridge,
        });
        Ok(PostgresMetaStore { owner, shared })
    }

    /// The server, as errors name it: `postgres://USER@HOST:PORT/DB` (no password).
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    /// Sets the stored schema version (tests of a database made by a newer build).
    #[cfg(feature = "testkit")]
    pub(crate) fn force_schema_version(&self, version: u32) -> Result<()> {
        let shared = self.shared.clone();
        self.shared.call("setting the schema version", async move {
            let client = shared.clone().connection().await?;
            schema::force_version(&client, &shared.server, version).await
        })
    }
}

impl MetaStore for PostgresMetaStore {
    fn read(&self) -> Result<Box<dyn MetaRead>> {
        Ok(Box::new(read::PgRead::begin(&self.shared)?))
    }

    fn write(&self) -> Result<Box<dyn MetaWrite + '_>> {
        Ok(Box::new(write::PgWrite::begin(&self.shared)?))
    }

    /// An open snapshot pins a pooled connection and holds back vacuum (see the module
    /// docs): long scans of finished commits read a short snapshot per chunk.
    fn snapshots_hold_space(&self) -> bool {
        true
    }

    fn ownership_lost(&self) -> bool {
        let Some(owner) = &self.owner else {
            return false;
        };
        let client = owner.client();
        let alive = self.shared.bridge.run(async move {
            let ping = client.simple_query("SELECT 1");
            !client.is_closed()
                && tokio::time::timeout(OWNER_PING, ping)
                    .await
                    .is_ok_and(|r| r.is_ok())
        });
        !alive.unwrap_or(false)
    }

    fn work_queue(&self) -> Option<Arc<dyn WorkQueue>> {
        Some(Arc::new(tasks::PgWorkQueue {
            shared: self.shared.clone(),
        }))
    }
}
