//! [`Store::connect`] and [`Store::init`]: a store from where its metadata and its contents
//! live. A local directory is today's embedded store ([`Store::open`]); a `postgres://` URL
//! keeps the metadata on a PostgreSQL server (feature `store-postgres`), with the contents in
//! an objects location and this host's own state (scratch space, the stat cache of directory
//! puts) in a local directory.

use std::path::{Path, PathBuf};

use super::error::{PfsError, Result};
use super::object::{LocalObjectStore, ObjectStore};
use super::store::Store;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// The metadata: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME]`, or a local
    /// store directory (the embedded store).
    pub store: String,
    /// The contents, for a server store: a local directory or `file:///DIR`. A store
    /// directory keeps its contents inside it, so this must be `None` for one.
    pub objects: Option<String>,
    /// This host's own state for a server store (scratch space of jobs, the stat cache of
    /// directory puts); created when missing. Unused by a store directory.
    pub local: PathBuf,
}

/// The store as messages name it: a server URL without its password, or the directory.
pub fn shown_location(store: &str) -> String {
    #[cfg(feature = "store-postgres")]
    if super::meta_postgres::is_postgres_url(store) {
        return super::meta_postgres::shown_url(store);
    }
    if store.contains("://") {
        return redact(store);
    }
    store.to_string()
}

/// `url` with a password between `USER:` and `@` hidden (`USER:***@`).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// What kind of metadata location `store` is.
enum MetaKind<'a> {
    /// A store directory.
    Directory(&'a Path),
    /// A PostgreSQL URL.
    #[cfg_attr(not(feature = "store-postgres"), allow(dead_code))]
    Postgres(&'a str),
}

fn meta_kind(store: &str) -> Result<MetaKind<'_>> {
    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        return Ok(MetaKind::Postgres(store));
    }
    if let Some(path) = store.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(invalid_store(store, "expected file:///ABSOLUTE/PATH"));
        }
        return Ok(MetaKind::Directory(Path::new(path)));
    }
    if let Some((scheme, _)) = store.split_once("://") {
        return Err(invalid_store(
            store,
            &format!(
                "store URL scheme {scheme} is not supported; expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DB or a local directory"
            ),
        ));
    }
    if store.is_empty() {
        return Err(invalid_store(store, "empty; expected a URL or a directory"));
    }
    Ok(MetaKind::Directory(Path::new(store)))
}

fn invalid_store(store: &str, reason: &str) -> PfsError {
    PfsError::InvalidLocation {
        field: "store",
        location: shown_location(store),
        reason: reason.to_string(),
    }
}

fn invalid_objects(objects: &str, reason: String) -> PfsError {
    PfsError::InvalidLocation {
        field: "objects",
        location: redact(objects),
        reason,
    }
}

/// Opens the object store at `objects` (creating a local directory).
fn open_objects(objects: &str) -> Result<Box<dyn ObjectStore>> {
    let path = match objects.split_once("://") {
        None if objects.is_empty() => {
            return Err(invalid_objects(
                objects,
                "empty; expected a directory or file:///DIR".into(),
            ));
        }
        None => PathBuf::from(objects),
        Some(("file", path)) if path.starts_with('/') => PathBuf::from(path),
        Some(("file", _)) => {
            return Err(invalid_objects(
                objects,
                "expected file:///ABSOLUTE/PATH".into(),
            ));
        }
        // Object-store services, through the `object_store` crate.
        #[cfg(feature = "store-object")]
        Some(("s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss", _)) => {
            return Ok(Box::new(super::RemoteObjectStore::from_url(objects)?));
        }
        Some((scheme, _)) => {
            return Err(invalid_objects(
                objects,
                format!("objects URL scheme {scheme} is not supported by this build"),
            ));
        }
    };
    super::private::private_dir(&path)?;
    Ok(Box::new(LocalObjectStore::open(&path)?))
}

impl Store {
    /// Opens the store at `location`: a store directory with [`Store::open`] (creating it),
    /// or a server store, whose schema must exist ([`Store::init`]).
    ///
    /// A server store is opened exclusively, as a store directory is: a second process gets
    /// [`PfsError::StoreInUse`] naming the holder. Open commits a dead command owned are
    /// recovered as [`Store::open`] does. Errors name the location without its password;
    /// an unreachable server is an error after the connect timeout, never a fall-back to a
    /// local store.
    pub fn connect(location: &StoreLocation) -> Result<Store> {
        match meta_kind(&location.store)? {
            MetaKind::Directory(dir) => {
                refuse_objects_for_directory(location)?;
                open_directory(dir)
            }
            MetaKind::Postgres(url) => connect_postgres(url, location),
        }
    }

    /// Opens the server store at `location` shared, for an engine host that works for the
    /// process owning it (see [`Store::work_queue`]): it reads metadata and writes contents
    /// and datum tasks, never metadata, and recovers nothing. A store directory is refused:
    /// one process owns it.
    pub fn connect_shared(location: &StoreLocation) -> Result<Store> {
        match meta_kind(&location.store)? {
            MetaKind::Directory(dir) => Err(invalid_store(
                &dir.display().to_string(),
                "a store directory belongs to one process; only a server store \
                 (postgres://...) is shared by several engine hosts",
            )),
            MetaKind::Postgres(url) => connect_postgres_shared(url, location),
        }
    }

    /// Creates the store at `location` (for a server store: its schema, or an upgrade of an
    /// older one; safe to run again) and opens it.
    pub fn init(location: &StoreLocation) -> Result<Store> {
        match meta_kind(&location.store)? {
            MetaKind::Directory(dir) => {
                refuse_objects_for_directory(location)?;
                open_directory(dir)
            }
            MetaKind::Postgres(url) => {
                init_postgres(url)?;
                connect_postgres(url, location)
            }
        }
    }
}

#[cfg(feature = "store-redb")]
fn open_directory(dir: &Path) -> Result<Store> {
    Store::open(dir)
}

#[cfg(not(feature = "store-redb"))]
fn open_directory(dir: &Path) -> Result<Store> {
    Err(invalid_store(
        &dir.display().to_string(),
        "this build has no embedded store (pipeline-core feature store-redb)",
    ))
}

fn refuse_objects_for_directory(location: &StoreLocation) -> Result<()> {
    match &location.objects {
        Some(o) => Err(invalid_objects(
            o,
            format!(
                "a store directory keeps its objects inside it ({}); an objects location \
                 goes with a server store (postgres://...)",
                Path::new(&location.store).join("objects").display()
            ),
        )),
        None => Ok(()),
    }
}

fn objects_of(location: &StoreLocation) -> Result<&str> {
    location.objects.as_deref().ok_or_else(|| {
        invalid_store(
            &location.store,
            "a server store needs an objects location too (a directory or file:///DIR)",
        )
    })
}

#[cfg(feature = "store-postgres")]
fn init_postgres(url: &str) -> Result<()> {
    super::meta_postgres::PostgresMetaStore::init(url).map(drop)
}

#[cfg(feature = "store-postgres")]
fn connect_postgres(url: &str, location: &StoreLocation) -> Result<Store> {
    use super::meta_postgres::{PostgresMetaStore, PostgresOptions};
    let objects = open_objects(objects_of(location)?)?;
    super::private::private_dir(&location.local)?;
    let meta = PostgresMetaStore::open(url, &PostgresOptions { exclusive: true })?;
    let store = Store::build_connected(location.local.clone(), Box::new(meta), objects);
    store.recover_at_open();
    Ok(store)
}

#[cfg(feature = "store-postgres")]
fn connect_postgres_shared(url: &str, location: &StoreLocation) -> Result<Store> {
    use super::meta_postgres::{PostgresMetaStore, PostgresOptions};
    let objects = open_objects(objects_of(location)?)?;
    super::private::private_dir(&location.local)?;
    let meta = PostgresMetaStore::open(url, &PostgresOptions { exclusive: false })?;
    Ok(Store::build_connected(
        location.local.clone(),
        Box::new(meta),
        objects,
    ))
}

#[cfg(not(feature = "store-postgres"))]
fn connect_postgres_shared(url: &str, location: &StoreLocation) -> Result<Store> {
    let _ = objects_of(location)?;
    Err(no_postgres(url))
}

#[cfg(not(feature = "store-postgres"))]
fn init_postgres(url: &str) -> Result<()> {
    Err(no_postgres(url))
}

#[cfg(not(feature = "store-postgres"))]
fn connect_postgres(url: &str, location: &StoreLocation) -> Result<Store> {
    let _ = (open_objects, objects_of(location)?);
    Err(no_postgres(url))
}

#[cfg(not(feature = "store-postgres"))]
fn no_postgres(url: &str) -> PfsError {
    invalid_store(
        url,
        "this build has no PostgreSQL support (pipeline-core feature store-postgres)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(store: &str, objects: Option<&str>) -> StoreLocation {
        StoreLocation {
            store: store.into(),
            objects: objects.map(Into::into),
            local: std::env::temp_dir(),
        }
    }

    fn error(location: StoreLocation) -> String {
        Store::connect(&location).expect_err("refused").to_string()
    }

    #[test]
    fn bad_locations_are_typed_errors_naming_the_field_without_password() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path().join("s").display().to_string();
        for (loc, says) in [
            (
                at("mysql://u:pw@h/db", None),
                "store URL scheme mysql is not supported",
            ),
            (at("file://relative", None), "file:///ABSOLUTE/PATH"),
            (at("", None), "empty"),
            (at(&dir, Some("/tmp/o")), "keeps its objects inside it"),
            (
                at("postgres://u:pw@127.0.0.1:1/db", None),
                "needs an objects location",
            ),
            (
                at("postgres://u:pw@127.0.0.1:1/db", Some("ftp://bucket/p")),
                "objects URL scheme ftp is not supported by this build",
            ),
            (
                at("postgres://u:pw@127.0.0.1:1/db", Some("file://x")),
                "objects \"file://x\": expected file:///ABSOLUTE/PATH",
            ),
        ] {
            let e = error(loc);
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn a_directory_location_is_the_embedded_store() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path().join("s");
        let s = Store::init(&at(&dir.display().to_string(), None)).expect("init");
        assert_eq!(s.root(), Some(dir.as_path()));
        drop(s);
        let s = Store::connect(&at(&format!("file://{}", dir.display()), None)).expect("open");
        assert!(dir.join("meta.redb").is_file());
        drop(s);
    }

    #[test]
    fn passwords_are_hidden_in_shown_locations() {
        assert_eq!(shown_location("/a/b"), "/a/b");
        assert_eq!(redact("s3://key:secret@host/b"), "s3://key:***@host/b");
        assert_eq!(
            redact("postgres://u:p@h:1/d?x=1"),
            "postgres://u:***@h:1/d?x=1"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert!(!shown_location("postgres://u:secret@h/db").contains("secret"));
    }
}
