//! Where a remote store lives: the backend a URL names (configured from the environment),
//! the key prefix under it, and the key of each object.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStoreScheme;
use object_store::path::Path as Key;
use url::Url;

use super::error::RemoteStoreError;
use crate::hash::ContentHash;

/// A backend and the key prefix the store's objects live under.
#[derive(Debug)]
pub(super) struct Location {
    /// The URL as given, password redacted, without a trailing `/` (named in errors).
    pub(super) display: String,
    /// The `object_store` backend.
    pub(super) backend: Arc<dyn object_store::ObjectStore>,
    /// `PREFIX/objects`: every object's key starts with it.
    pub(super) objects: Key,
    /// `PREFIX/lost+found`: where damaged objects are moved aside.
    lost: Key,
}

impl Location {
    /// Parses `url` and builds its backend: `s3://BUCKET/PREFIX` (also `s3a://`), `gs://`,
    /// `az://` / `abfs://` (configured by `from_env` of the `object_store` builder for
    /// the scheme: `AWS_*`, `GOOGLE_*`, `AZURE_*`) or `file:///ABSOLUTE/DIR` (created if
    /// missing). `options` (`object_store` configuration keys such as `aws_endpoint` or
    /// `aws_allow_http`) apply over the environment. No request is made.
    pub(super) fn parse(
        url: &str,
        options: &[(String, String)],
    ) -> Result<Location, RemoteStoreError> {
        let (backend, prefix, display) = backend_for(url, options)?;
        Ok(Location {
            display,
            objects: prefix.clone().join("objects"),
            lost: prefix.join("lost+found"),
            backend,
        })
    }

    /// The key of an object: `PREFIX/objects/<first 2 hex>/<remaining 62 hex>` (the local
    /// store's fan-out, so a listing of one prefix is at most 1/256 of the store).
    pub(super) fn key(&self, hash: &ContentHash) -> Key {
        let hex = hash.to_hex();
        let (a, b) = hex.split_at(2);
        self.objects.clone().join(a).join(b)
    }

    /// The object a listed key names; `None` for anything else under `objects/`.
    pub(super) fn hash_of(&self, key: &Key) -> Option<ContentHash> {
        let mut rest = key.prefix_match(&self.objects)?;
        let a = rest.next()?;
        let b = rest.next()?;
        if rest.next().is_some() || a.as_ref().len() != 2 {
            return None;
        }
        format!("{}{}", a.as_ref(), b.as_ref()).parse().ok()
    }

    /// Where a damaged object is moved aside: `PREFIX/lost+found/<hex>-<unix nanos>`.
    pub(super) fn lost_key(&self, hash: &ContentHash) -> Key {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        self.lost.clone().join(format!("{}-{nanos}", hash.to_hex()))
    }

    /// The full URL of a key, for errors and reports.
    pub(super) fn url_of(&self, key: &Key) -> PathBuf {
        PathBuf::from(format!("{}/{}", self.display, self.relative(key)))
    }

    /// `key` relative to the store's prefix (`objects/ab/cd…`).
    fn relative(&self, key: &Key) -> String {
        let prefix_parts = self.objects.parts_count().saturating_sub(1);
        key.parts()
            .skip(prefix_parts)
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The backend a URL names and the key prefix under it, and the URL to show (password
/// redacted, no trailing `/`): `s3://BUCKET/PREFIX` (also `s3a://`), `gs://`, `az://` /
/// `abfs://` (configured by `from_env` of the `object_store` builder for the scheme) or
/// `file:///ABSOLUTE/DIR` (created if missing); `options` (`object_store` configuration
/// keys) apply over the environment. No request is made. Also used by pipeline egress.
pub(crate) fn backend_for(
    url: &str,
    options: &[(String, String)],
) -> Result<(Arc<dyn object_store::ObjectStore>, Key, String), RemoteStoreError> {
    // reqwest's TLS needs a process-wide crypto provider; one installed already stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parsed = Url::parse(url).map_err(|e| RemoteStoreError::InvalidUrl {
        url: redact_text(url),
        reason: format!(
            "not a URL ({e}); expected s3://BUCKET/PREFIX, gs://, az:// or file:///DIR"
        ),
    })?;
    let display = redact(&parsed);
    let invalid = |reason: String| RemoteStoreError::InvalidUrl {
        url: display.clone(),
        reason,
    };
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        // Not object_store's message: it repeats the URL with its password.
        invalid(
            "unsupported scheme or missing bucket; expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///DIR"
                .to_string(),
        )
    })?;
    let config = |source| RemoteStoreError::Config {
        url: display.clone(),
        source,
    };
    let unknown = |key: &str| {
        invalid(format!(
            "unknown option {key:?} for this kind of store (expected an object_store configuration key such as aws_endpoint)"
        ))
    };
    let (backend, prefix): (Arc<dyn object_store::ObjectStore>, Key) = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url);
            for (k, v) in options {
                let key: object_store::aws::AmazonS3ConfigKey =
                    k.parse().map_err(|_| unknown(k))?;
                b = b.with_config(key, v);
            }
            let b = b.build().map_err(config)?;
            (Arc::new(b), Key::from(path.as_ref()))
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
            for (k, v) in options {
                let key: object_store::gcp::GoogleConfigKey = k.parse().map_err(|_| unknown(k))?;
                b = b.with_config(key, v);
            }
            let b = b.build().map_err(config)?;
            (Arc::new(b), Key::from(path.as_ref()))
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
            for (k, v) in options {
                let key: object_store::azure::AzureConfigKey = k.parse().map_err(|_| unknown(k))?;
                b = b.with_config(key, v);
            }
            let b = b.build().map_err(config)?;
            (Arc::new(b), Key::from(path.as_ref()))
        }
        ObjectStoreScheme::Local => match options.first() {
            Some((k, _)) => return Err(unknown(k)),
            None => (local_backend(&parsed, &display)?, Key::ROOT),
        },
        other => {
            return Err(invalid(format!(
                "{other:?} is not supported; expected s3://, gs://, az:// or file://"
            )));
        }
    };
    let display = display.trim_end_matches('/').to_string();
    Ok((backend, prefix, display))
}

/// A local directory as a backend (`file:///DIR`, made if missing).
fn local_backend(
    url: &Url,
    display: &str,
) -> Result<Arc<dyn object_store::ObjectStore>, RemoteStoreError> {
    let dir = url
        .to_file_path()
        .map_err(|()| RemoteStoreError::InvalidUrl {
            url: display.to_string(),
            reason: "expected file:///ABSOLUTE/DIR".into(),
        })?;
    std::fs::create_dir_all(&dir).map_err(|source| RemoteStoreError::LocalDir {
        url: display.to_string(),
        path: dir.clone(),
        source,
    })?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|source| {
        RemoteStoreError::Config {
            url: display.to_string(),
            source,
        }
    })?;
    Ok(Arc::new(fs))
}

/// The URL with any password replaced by `***` and no query (which can carry SAS tokens).
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.set_query(None);
    u.to_string()
}

/// A string that did not parse as a URL, with anything between `://` and `@` hidden.
fn redact_text(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strangers_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let loc = Location::parse(&url, &[]).unwrap();
        let h = ContentHash::of_bytes(b"x");
        let key = loc.key(&h);
        assert_eq!(
            key.as_ref(),
            format!("objects/{}/{}", &h.to_hex()[..2], &h.to_hex()[2..])
        );
        assert_eq!(loc.hash_of(&key), Some(h));
        assert_eq!(loc.hash_of(&Key::from("objects/ab")), None);
        assert_eq!(loc.hash_of(&Key::from("objects/ab/cd/ef")), None);
        assert_eq!(loc.hash_of(&Key::from("other/ab/cd")), None);
        let shown = loc.url_of(&key);
        assert!(shown.to_string_lossy().ends_with(&h.to_hex()[2..]));
    }

    #[test]
    fn bad_urls_are_named_and_passwords_hidden() {
        let e = Location::parse("not a url", &[]).unwrap_err();
        assert!(e.to_string().contains("not a url"), "{e}");
        let e = Location::parse("ftp://user:secret@host/x", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ftp://user:***@host/x"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        let e = Location::parse("file://relative/dir", &[]).unwrap_err();
        assert!(matches!(e, RemoteStoreError::InvalidUrl { .. }), "{e}");
        let opts = [("no_such_key".to_string(), "1".to_string())];
        let e = Location::parse("s3://bucket/prefix", &opts).unwrap_err();
        assert!(e.to_string().contains("no_such_key"), "{e}");
        assert!(matches!(e, RemoteStoreError::InvalidUrl { .. }), "{e}");
        assert_eq!(
            redact_text("s3x//::user:pw@x"),
            "s3x//::user:pw@x",
            "nothing to hide without a scheme"
        );
        assert_eq!(redact_text("a://user:pw@host"), "a://***@host");
    }
}
