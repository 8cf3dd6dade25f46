//! Egress to PostgreSQL (feature `store-postgres`), Pachyderm's `copyToSQLDB`:
//!
//! - Each file's table is its first path component: `/TABLE/…` or `/SCHEMA.TABLE/…` (no
//!   schema: `public`); names match case-insensitively, as Pachyderm's information-schema
//!   lookup does. A file directly under `/` has no table and fails the attempt.
//! - Everything goes through **one transaction**: the first time a table is met it is emptied
//!   (`DELETE FROM`), then every file of it is loaded; the commit makes the whole output
//!   visible at once, so readers never see a half-written table, and a failed attempt
//!   leaves the tables as they were.
//! - Rows (see `rows`) stream into `COPY … FROM STDIN (FORMAT csv)` per file.
//!
//! The password is the secret's value; the URL is `postgres://USER@HOST:PORT/DB?…` (a
//! password in the URL is overridden by the secret's). TLS as for the store's own
//! PostgreSQL backend: libpq's `sslmode` and `sslrootcert` in the URL (plain without them).

use std::collections::HashMap;
use std::io::BufReader;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::Transaction;

use crate::pfs::meta_postgres::tls;

use super::rows::{
    CsvRows, Row, encode_copy_line, header_columns, json_row, json_values, table_column,
};
use super::target::{SqlFormat, SqlTarget, hide_password};
use super::{EgressError, Source};

/// How long connecting may take before the attempt fails (and is retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows are sent to `COPY` in chunks of about this size.
const CHUNK: usize = 256 << 10;

/// A table: schema, name and columns in table order, as the database spells them.
struct Table {
    schema: String,
    name: String,
    columns: Vec<String>,
}

impl Table {
    fn quoted(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

/// A double-quoted SQL identifier.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Loads every file of the output commit into its table in one transaction; returns the
/// rows written.
pub(super) fn push(
    target: &SqlTarget,
    password: &str,
    src: &Source<'_>,
) -> Result<u64, EgressError> {
    let url = hide_password(&target.url);
    let db = |message: String| EgressError::Database {
        url: url.clone(),
        message,
    };
    let (driver_url, tls) = tls::take_params(&target.url).map_err(db)?;
    let mut config = tokio_postgres::Config::from_str(&driver_url)
        .map_err(|e| db(format!("not a PostgreSQL URL: {e}")))?;
    config.password(password);
    config.connect_timeout(CONNECT_TIMEOUT);
    config.ssl_mode(tls.mode);
    let connector = tls::connector(&tls).map_err(db)?;
    let rt = super::runtime(&url)?;
    rt.block_on(async {
        let (mut client, connection) = config.connect(connector).await.map_err(|e| {
            db(format!(
                "connecting: {}",
                crate::error_chain::ErrorChain(&e)
            ))
        })?;
        let driver = tokio::spawn(connection);
        let result = async {
            let tx = client.transaction().await.map_err(|e| db(sql_error(&e)))?;
            let rows = load_all(&tx, target, src, &url).await?;
            tx.commit().await.map_err(|e| db(sql_error(&e)))?;
            Ok(rows)
        }
        .await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// The server's message of a driver error (its `Display` alone says only "db error").
fn sql_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => crate::error_chain::ErrorChain(e).to_string(),
    }
}

/// Empties each table on first sight and loads every file into it.
async fn load_all(
    tx: &Transaction<'_>,
    target: &SqlTarget,
    src: &Source<'_>,
    url: &str,
) -> Result<u64, EgressError> {
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut rows = 0;
    for path in src.files()? {
        let path = path?;
        src.check_cancel()?;
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let first = parts.next().unwrap_or_default();
        if parts.next().is_none() {
            return Err(EgressError::Rows {
                path,
                message: "a file directly under / names no table; SQL egress reads /TABLE/*.csv (or .json) files".into(),
            });
        }
        if !tables.contains_key(first) {
            let table = table_info(tx, first, url).await?;
            tx.execute(&format!("DELETE FROM {}", table.quoted()), &[])
                .await
                .map_err(|e| EgressError::Database {
                    url: url.to_string(),
                    message: format!("emptying {}: {}", table.quoted(), sql_error(&e)),
                })?;
            tables.insert(first.to_string(), table);
        }
        let table = &tables[first];
        rows += load_file(tx, table, target, &path, src, url).await?;
    }
    Ok(rows)
}

/// The table `path_name` (`TABLE` or `SCHEMA.TABLE`) as the database spells it.
async fn table_info(
    tx: &Transaction<'_>,
    path_name: &str,
    url: &str,
) -> Result<Table, EgressError> {
    let (schema, name) = path_name.split_once('.').unwrap_or(("public", path_name));
    let rows = tx
        .query(
            "SELECT table_schema::text, table_name::text, column_name::text
               FROM information_schema.columns
              WHERE lower(table_schema) = lower($1) AND lower(table_name) = lower($2)
              ORDER BY table_schema, table_name, ordinal_position",
            &[&schema, &name],
        )
        .await
        .map_err(|e| EgressError::Database {
            url: url.to_string(),
            message: format!("reading the columns of {path_name}: {}", sql_error(&e)),
        })?;
    let Some(first) = rows.first() else {
        return Err(EgressError::Database {
            url: url.to_string(),
            message: format!(
                "table {schema}.{name} not found (it is named by the output directory /{path_name}/)"
            ),
        });
    };
    let (s, n): (String, String) = (first.get(0), first.get(1));
    let columns = rows
        .iter()
        .filter(|r| r.get::<_, String>(0) == s && r.get::<_, String>(1) == n)
        .map(|r| r.get(2))
        .collect();
    Ok(Table {
        schema: s,
        name: n,
        columns,
    })
}

/// Streams one file's rows into its table with `COPY`; returns how many.
async fn load_file(
    tx: &Transaction<'_>,
    table: &Table,
    target: &SqlTarget,
    path: &str,
    src: &Source<'_>,
    url: &str,
) -> Result<u64, EgressError> {
    let bad = |message: String| EgressError::Rows {
        path: path.to_string(),
        message,
    };
    let reader = src.open(path)?;
    let mut rows: Box<dyn Iterator<Item = Result<Row, String>> + Send> = match target.format {
        SqlFormat::Csv => Box::new(csv_rows(reader)),
        SqlFormat::Json => {
            let columns = if target.columns.is_empty() {
                table.columns.clone()
            } else {
                target.columns.clone()
            };
            Box::new(json_values(reader).map(move |v| v.and_then(|v| json_row(&v, &columns))))
        }
    };
    // The columns the rows fill, in their order.
    let columns: Vec<String> = match (target.format, target.columns.is_empty()) {
        (SqlFormat::Csv, true) => table.columns.clone(),
        (SqlFormat::Csv, false) => match rows.next() {
            None => return Ok(0),
            Some(header) => header_columns(&header.map_err(bad)?, &target.columns, &table.columns)
                .map_err(bad)?,
        },
        (SqlFormat::Json, true) => table.columns.clone(),
        (SqlFormat::Json, false) => target
            .columns
            .iter()
            .map(|c| table_column(c, &table.columns))
            .collect::<Result<_, _>>()
            .map_err(bad)?,
    };
    let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN WITH (FORMAT csv)",
        table.quoted(),
        list.join(", ")
    );
    let db = |what: &str, e: tokio_postgres::Error| EgressError::Database {
        url: url.to_string(),
        message: format!("{what} {} from {path}: {}", table.quoted(), sql_error(&e)),
    };
    let sink = tx
        .copy_in::<_, Bytes>(&statement)
        .await
        .map_err(|e| db("copying into", e))?;
    futures::pin_mut!(sink);
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    let mut n: u64 = 0;
    for row in rows {
        n += 1;
        let row = row.map_err(|e| bad(format!("row {n}: {e}")))?;
        if row.len() != columns.len() {
            return Err(bad(format!(
                "row {n} has {} fields; expected {} ({})",
                row.len(),
                columns.len(),
                columns.join(", ")
            )));
        }
        encode_copy_line(&row, &mut buf);
        if buf.len() >= CHUNK {
            let chunk = Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(CHUNK + 4096),
            ));
            sink.send(chunk).await.map_err(|e| db("copying into", e))?;
            src.check_cancel()?;
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf))
            .await
            .map_err(|e| db("copying into", e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| db("copying into", e))
}

/// The CSV records of one file.
fn csv_rows(
    reader: Box<dyn std::io::Read + Send>,
) -> impl Iterator<Item = Result<Row, String>> + Send {
    let mut csv = CsvRows::new(BufReader::with_capacity(1 << 16, reader));
    std::iter::from_fn(move || csv.next_record())
}
