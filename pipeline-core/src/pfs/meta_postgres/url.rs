//! Metadata server URLs: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?PARAMS]`, parsed into a
//! driver configuration and shown without the password.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

use super::tls::TlsSettings;
use crate::pfs::error::{PfsError, Result};

/// How long connecting may take unless the URL says (`connect_timeout=SECONDS`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalive probes, so a dead server or a dropped route is noticed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// How long sent data may stay unacknowledged before the connection counts as dead.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections in the pool unless the URL says (`pool_size=N`).
pub(super) const DEFAULT_POOL_SIZE: usize = 32;

/// Whether `s` is a PostgreSQL URL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A parsed metadata server URL.
#[derive(Debug, Clone)]
pub(super) struct ServerUrl {
    /// The driver's configuration (with our timeouts and the schema's search path).
    pub(super) config: tokio_postgres::Config,
    /// `postgres://USER@HOST:PORT/DB[?schema=S]`: the server as errors and logs name it.
    pub(super) shown: String,
    /// The PostgreSQL schema the store's tables live in (`?schema=NAME`), if not the
    /// role's default.
    pub(super) schema: Option<String>,
    /// Connections in the pool.
    pub(super) pool_size: usize,
    /// TLS to the server (`sslmode`, `sslrootcert`; see [`super::tls`]).
    pub(super) tls: TlsSettings,
}

impl ServerUrl {
    /// The driver's TLS connector for this URL's `sslmode`/`sslrootcert`.
    pub(super) fn tls_connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        super::tls::connector(&self.tls).map_err(|reason| PfsError::InvalidLocation {
            field: "store",
            location: self.shown.clone(),
            reason,
        })
    }
}

/// Parses `url`. Our own parameters (`schema`, `pool_size`, and libpq's `sslmode` and
/// `sslrootcert`, which the driver does not know in full) are taken out; every other one is
/// the driver's (`connect_timeout`, `application_name`, `options`, ...).
pub(super) fn parse(url: &str) -> Result<ServerUrl> {
    let invalid = |reason: String| PfsError::InvalidLocation {
        field: "store",
        location: crate::pfs::connect::redact(url),
        reason,
    };
    if !is_postgres_url(url) {
        return Err(invalid(
            "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB".into(),
        ));
    }
    let (url_rest, tls) = super::tls::take_params(url).map_err(invalid)?;
    let (base, query) = url_rest.split_once('?').unwrap_or((&url_rest, ""));
    let mut schema = None;
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("schema", name)) => schema = Some(valid_schema(name).map_err(invalid)?),
            Some(("pool_size", n)) => {
                pool_size = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| invalid(format!("pool_size {n:?}: expected 1 to 1000")))?;
            }
            _ => kept.push(param),
        }
    }
    let driver_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&driver_url)
        .map_err(|e| invalid(format!("not a valid PostgreSQL URL ({e})")))?;
    if config.get_user().is_none_or(str::is_empty) {
        return Err(invalid(
            "no user: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB".into(),
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(invalid(
            "no host: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB".into(),
        ));
    }
    apply_defaults(&mut config, schema.as_deref());
    config.ssl_mode(tls.mode);
    let shown = shown(&config, schema.as_deref());
    Ok(ServerUrl {
        config,
        shown,
        schema,
        pool_size,
        tls,
    })
}

/// Our timeouts where the URL sets none, and the schema as the search path.
fn apply_defaults(config: &mut tokio_postgres::Config, schema: Option<&str>) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true);
    config.keepalives_idle(KEEPALIVE_IDLE);
    config.tcp_user_timeout(TCP_USER_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("pipeline-core");
    }
    if let Some(schema) = schema {
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c search_path={schema}"),
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
    }
}

/// A schema name we accept: lower-case letters, digits and `_`, not starting with a digit,
/// at most 63 bytes (PostgreSQL's identifier limit), so it never needs quoting.
fn valid_schema(name: &str) -> std::result::Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "schema {name:?}: expected lower-case letters, digits and _, not starting with a digit, at most 63 characters"
        ))
    }
}

/// The server as we show it: user, hosts, ports, database and schema; never the password.
fn shown(config: &tokio_postgres::Config, schema: Option<&str>) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let mut out = format!("postgres://{user}@{}/{db}", hosts.join(","));
    if let Some(s) = schema {
        out.push_str("?schema=");
        out.push_str(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let u = parse("postgres://alice:s3cret@db.example:6543/meta?schema=run_1&pool_size=4")
            .expect("parses");
        assert_eq!(
            u.shown,
            "postgres://alice@db.example:6543/meta?schema=run_1"
        );
        assert_eq!(u.schema.as_deref(), Some("run_1"));
        assert_eq!(u.pool_size, 4);
        let u = parse("postgresql://bob@localhost/x").expect("parses");
        assert_eq!(u.shown, "postgres://bob@localhost:5432/x");
        assert_eq!(u.pool_size, DEFAULT_POOL_SIZE);
    }

    #[test]
    fn bad_urls_are_typed_errors_that_hide_the_password() {
        for (url, says) in [
            ("mysql://a@b/c", "expected postgres://"),
            ("postgres://a:pw@b/c?schema=Bad-Name", "schema \"Bad-Name\""),
            ("postgres://a:pw@b/c?pool_size=0", "pool_size"),
            ("postgres://a:pw@b:notaport/c", "not a valid PostgreSQL URL"),
            ("postgres://b/c", "no user"),
        ] {
            let e = parse(url).expect_err(url).to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("pw"), "{url}: {e}");
        }
    }
}
