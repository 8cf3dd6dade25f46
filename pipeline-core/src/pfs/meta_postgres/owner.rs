//! The owner lock of an exclusive store: a session-level advisory lock held by a connection
//! of its own for as long as the store is open, the server-side twin of a store directory's
//! `LOCK` file. Its connection's `application_name` says who holds it.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::shared::{Fence, server_error};
use super::sql;
use super::url::ServerUrl;
use crate::pfs::error::{PfsError, Result};

/// What the owner's `application_name` starts with.
const OWNER_PREFIX: &str = "pipeline-store owner: ";

/// A held owner lock; released when dropped (its connection closes).
pub(super) struct OwnerLock {
    /// Keeps the session (and with it the lock) alive.
    client: std::sync::Arc<Client>,
    /// What writes check.
    pub(super) fence: Fence,
}

/// `pid N on host H` of this process.
fn me() -> String {
    format!(
        "pid {} on host {}",
        std::process::id(),
        crate::pfs::host_name()
    )
}

/// Takes the owner lock `key` without waiting; [`PfsError::StoreInUse`] naming the holder
/// when another session has it. Runs on the driver's runtime.
pub(super) async fn acquire(url: &ServerUrl, key: i64) -> Result<OwnerLock> {
    let server = url.shown.as_str();
    let mut config = url.config.clone();
    config.application_name(format!("{OWNER_PREFIX}{}", me()));
    let (client, connection) = config
        .connect(url.tls_connector()?)
        .await
        .map_err(|e| server_error(server, "connecting", e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1), pg_backend_pid()", &[&key])
        .await
        .map_err(|e| server_error(server, "taking the store's owner lock", e))?;
    if row.get::<_, bool>(0) {
        return Ok(OwnerLock {
            fence: Fence {
                key,
                backend_pid: row.get::<_, i32>(1),
            },
            client: std::sync::Arc::new(client),
        });
    }
    let holder = holder(&client, key).await.unwrap_or_default();
    Err(PfsError::StoreInUse {
        store: server.to_string(),
        holder: if holder.is_empty() {
            "unknown holder".into()
        } else {
            holder
        },
    })
}

impl OwnerLock {
    /// The session's client, to check it from the driver's runtime.
    pub(super) fn client(&self) -> std::sync::Arc<Client> {
        self.client.clone()
    }
}

/// What the session holding lock `key` calls itself (`pid N on host H`).
async fn holder(client: &Client, key: i64) -> Option<String> {
    let (class, obj) = sql::lock_parts(key);
    let q = format!(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {class} \
         AND l.objid = {obj} AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    );
    let replies = client.simple_query(&q).await.ok()?;
    replies.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r
            .get(0)
            .map(|name| name.strip_prefix(OWNER_PREFIX).unwrap_or(name).to_string()),
        _ => None,
    })
}
