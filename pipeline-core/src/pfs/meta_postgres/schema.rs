//! Schema migrations, versioned in the repository (`pipeline-core/migrations/NNNN_*.sql`),
//! applied only by an explicit init; opening checks the stored version.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::shared::server_error;
use crate::pfs::error::{PfsError, Result};

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 3;

/// Every migration, in order: `(version it brings the schema to, SQL)`.
const MIGRATIONS: [(u32, &str); 3] = [
    (1, include_str!("../../../migrations/0001_initial.sql")),
    (2, include_str!("../../../migrations/0002_projects.sql")),
    (3, include_str!("../../../migrations/0003_datum_tasks.sql")),
];

/// The table holding the schema version (one row).
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
     id smallint PRIMARY KEY CHECK (id = 1), \
     version integer NOT NULL, \
     updated_at timestamptz NOT NULL DEFAULT now())";

/// The stored schema version; `None` when the database has no store schema.
async fn stored_version(client: &Client, server: &str) -> Result<Option<u32>> {
    match client
        .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
        .await
    {
        Ok(row) => Ok(row.map(|r| r.get::<_, i32>(0).max(0) as u32)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(server_error(server, "reading the schema version", e)),
    }
}

/// Checks that the database holds this build's schema version.
pub(super) async fn check(client: &Client, server: &str) -> Result<()> {
    match stored_version(client, server).await? {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(PfsError::MetaSchemaTooNew {
            server: server.to_string(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) => Err(PfsError::MetaNotInitialised {
            server: server.to_string(),
            state: format!(
                "has schema version {found}, older than version {SCHEMA_VERSION} this build needs"
            ),
        }),
        None => Err(PfsError::MetaNotInitialised {
            server: server.to_string(),
            state: "has no store schema".into(),
        }),
    }
}

/// Creates the schema (and the PostgreSQL schema `namespace`) or brings it up to
/// [`SCHEMA_VERSION`], in one transaction under the store's writer lock; returns the version
/// it found before. A newer schema is refused and left untouched.
pub(super) async fn migrate(
    client: &Client,
    server: &str,
    namespace: Option<&str>,
    writer_key: i64,
) -> Result<Option<u32>> {
    let fail = |op: &str, e: tokio_postgres::Error| server_error(server, op.to_string(), e);
    let mut begin = format!("BEGIN; SELECT pg_advisory_xact_lock({writer_key});");
    if let Some(ns) = namespace {
        begin.push_str(&format!(" CREATE SCHEMA IF NOT EXISTS {ns};"));
    }
    begin.push_str(VERSION_TABLE);
    client
        .batch_execute(&begin)
        .await
        .map_err(|e| fail("creating the schema", e))?;
    let found = match stored_version(client, server).await {
        Ok(v) => v,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    if let Some(v) = found.filter(|v| *v > SCHEMA_VERSION) {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(PfsError::MetaSchemaTooNew {
            server: server.to_string(),
            found: v,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if found.is_some_and(|f| f >= version) {
            continue;
        }
        if let Err(e) = client.batch_execute(sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(fail(&format!("applying migration {version}"), e));
        }
    }
    let version = SCHEMA_VERSION as i32;
    let recorded = client
        .execute(
            "INSERT INTO schema_version (id, version) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, updated_at = now()",
            &[&version],
        )
        .await;
    if let Err(e) = recorded {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(fail("recording the schema version", e));
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| fail("committing the schema", e))?;
    Ok(found)
}

/// Sets the stored schema version to `version`, for tests of what a newer build's database
/// does to this one.
#[cfg(feature = "testkit")]
pub(super) async fn force_version(client: &Client, server: &str, version: u32) -> Result<()> {
    let v = i32::try_from(version).unwrap_or(i32::MAX);
    client
        .execute("UPDATE schema_version SET version = $1 WHERE id = 1", &[&v])
        .await
        .map_err(|e| server_error(server, "setting the schema version", e))?;
    Ok(())
}
