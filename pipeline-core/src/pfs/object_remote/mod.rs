//! File contents in a cloud object store (S3, GCS, Azure) or any directory, through the
//! `object_store` crate (feature `store-object`).
//!
//! # Why `object_store`
//!
//! It is the Rust ecosystem's one maintained abstraction over S3, GCS and Azure Blob (the
//! Apache Arrow project's), with the conditional writes a content-addressed store needs
//! (`PutMode::Create` is S3's `If-None-Match: *`), multipart uploads, paginated listings as
//! streams, retries with backoff, and configuration from each cloud's standard environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...). The
//! AWS SDK would cover S3 only, at several times the build cost. TLS and request signing
//! use `ring`, the crypto provider the rest of the workspace already builds.
//!
//! # Layout and guarantees
//!
//! `PREFIX/objects/<first 2 hex>/<remaining 62 hex>` of the BLAKE3 hash, like the local
//! store: ordinary objects, readable by any S3 client. See the `upload` module for how a
//! put streams (memory stays flat: at most 8 MiB for content under it,
//! two parts of at least 8 MiB above it, spooled through a local
//! temp file while the hash is computed).
//!
//! - **Written once.** Content under 8 MiB goes up with `PutMode::Create`: the server
//!   refuses a second write of the key, which the store reports as a deduplicated put
//!   (`new: false`). Multipart uploads cannot be conditional in `object_store`, so larger
//!   content is first looked up (`HEAD`) and only uploaded when absent.
//! - **Concurrent identical puts.** Small ones: exactly one write wins, the others are
//!   deduplicated. Large ones may both upload; S3 completes each upload atomically and
//!   both carry the same bytes, so readers see one whole copy or the other, never a mix,
//!   and both report `new: true`.
//! - **Durability.** A put that returned is durable on the server: [`Durability`] makes
//!   no difference and [`ObjectStore::barrier`] does nothing.
//! - **Verified reads.** [`ObjectStore::open`] hashes the body as it streams and fails
//!   the read at its end (`InvalidData`, carrying [`PfsError::Corrupt`] naming the object
//!   and its URL) instead of ending cleanly when the bytes do not hash to the name;
//!   [`ObjectStore::verify`] streams and compares. A deduplicated put checks the stored
//!   object's size only (a full check would download it): an object of the right size but
//!   damaged content is found by `verify` (`pipectl fsck`) and moved aside into
//!   `PREFIX/lost+found/` by [`ObjectStore::quarantine`].
//! - **Garbage collection.** [`ObjectStore::list`] streams the listing page by page. A
//!   deduplicated put rewrites an object last written more than an hour ago (the same
//!   bytes), so a collection with a grace period of an hour or more never removes an
//!   object a put is about to record.
//! - **No local files.** [`ObjectStore::local_path`] is `None`: the engine copies inputs
//!   out of the store (verified while they stream) instead of hard-linking them.
//!
//! The trait is synchronous and may be called from inside a tokio task: requests run on
//! a small runtime the store owns (`bridge`), never on the caller's.

mod bridge;
mod error;
mod location;
mod reader;
mod upload;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;

pub use error::RemoteStoreError;
pub(crate) use error::is_transport_failure;
pub(crate) use location::backend_for;

use self::bridge::Bridge;
use self::error::{request_failed, task_lost};
use self::location::Location;
use self::reader::{CheckedReader, Chunks, PREFETCH_CHUNKS};
use super::error::{PfsError, Result};
use super::object::{Durability, ListedObject, ObjectState, ObjectStore, StoredObject};
use crate::hash::{ContentHash, FileHasher};

/// How long [`RemoteObjectStore::from_url`] waits for the first listing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// How many listed objects are fetched ahead of the consumer (a page is 1,000).
const LIST_AHEAD: usize = 1024;

/// A content-addressed, write-once object store on S3, GCS, Azure or a local directory
/// (see the module docs).
#[derive(Debug)]
pub struct RemoteObjectStore {
    loc: Location,
    bridge: Bridge,
    spool_dir: PathBuf,
}

impl RemoteObjectStore {
    /// Opens the store at `url`: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
    /// `az://CONTAINER/PREFIX` or `file:///DIR`, configured from the environment of each
    /// cloud (`AWS_*`, `GOOGLE_*`, `AZURE_*`; for a local S3 server `AWS_ENDPOINT_URL`
    /// and `AWS_ALLOW_HTTP=true`). Lists the prefix once, so a wrong endpoint, a missing
    /// bucket or bad credentials are an error here, naming the URL. Large puts spool
    /// through the system's temp directory ([`RemoteObjectStore::with_spool_dir`]).
    pub fn from_url(url: &str) -> std::result::Result<RemoteObjectStore, RemoteStoreError> {
        Self::from_url_with(url, &[])
    }

    /// [`RemoteObjectStore::from_url`] with `object_store` configuration keys applied over
    /// the environment (`("aws_endpoint", "http://127.0.0.1:9000")`,
    /// `("aws_allow_http", "true")`, `("aws_access_key_id", ...)`; the keys of
    /// `AmazonS3ConfigKey`, `GoogleConfigKey` and `AzureConfigKey`). An unknown key is an
    /// error naming it.
    pub fn from_url_with(
        url: &str,
        options: &[(String, String)],
    ) -> std::result::Result<RemoteObjectStore, RemoteStoreError> {
        let loc = Location::parse(url, options)?;
        let bridge = Bridge::new().map_err(|source| RemoteStoreError::Runtime {
            url: loc.display.clone(),
            source,
        })?;
        let store = RemoteObjectStore {
            loc,
            bridge,
            spool_dir: std::env::temp_dir(),
        };
        store.probe()?;
        Ok(store)
    }

    /// Spools large puts through `dir` instead of the system's temp directory (the files
    /// are unnamed: nothing is left behind by a crash).
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> RemoteObjectStore {
        self.spool_dir = dir.into();
        self
    }

    /// The store's URL (any password replaced by `***`).
    pub fn url(&self) -> &str {
        &self.loc.display
    }

    /// The full URL of an object's key (for errors, reports and tests).
    pub fn object_url(&self, hash: &ContentHash) -> PathBuf {
        self.loc.url_of(&self.loc.key(hash))
    }

    fn probe(&self) -> std::result::Result<(), RemoteStoreError> {
        let backend = self.loc.backend.clone();
        let prefix = self.loc.objects.clone();
        let listing = self.bridge.run(async move {
            tokio::time::timeout(PROBE_TIMEOUT, backend.list_with_delimiter(Some(&prefix))).await
        });
        let url = self.loc.display.clone();
        match listing {
            Err(lost) => Err(RemoteStoreError::Runtime {
                url,
                source: std::io::Error::other(lost),
            }),
            Ok(Err(_elapsed)) => Err(RemoteStoreError::Timeout {
                url,
                secs: PROBE_TIMEOUT.as_secs(),
            }),
            Ok(Ok(Err(source))) => Err(RemoteStoreError::Unreachable { url, source }),
            Ok(Ok(Ok(_))) => Ok(()),
        }
    }

    /// Runs one request on `key` on the store's runtime: `f` gets the backend and the key
    /// and returns the request's future. The outer error is the runtime losing it.
    fn call<T, F, Fut>(&self, key: &Key, f: F) -> Result<object_store::Result<T>>
    where
        F: FnOnce(Arc<dyn object_store::ObjectStore>, Key) -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.loc.backend.clone(), key.clone());
        self.bridge
            .run(fut)
            .map_err(|e| task_lost(self.loc.url_of(key), e))
    }

    /// The body of the object at `key`, streamed; `NotFound` when there is none.
    fn body(&self, key: &Key) -> Result<Chunks> {
        let got = self.call(key, |b, k| async move {
            b.get(&k).await.map(|r| r.into_stream())
        })?;
        let stream = got.map_err(|e| request_failed(self.loc.url_of(key), e))?;
        Ok(self.bridge.iter(stream, PREFETCH_CHUNKS))
    }

    /// The listing under `PREFIX/objects/`, streamed page by page.
    fn listing(&self) -> Result<impl Iterator<Item = Result<ListedObject>> + '_> {
        let backend = self.loc.backend.clone();
        let prefix = self.loc.objects.clone();
        // Built on the runtime: some backends start work when the stream is made.
        let stream = self
            .bridge
            .run(async move { backend.list(Some(&prefix)) })
            .map_err(|e| task_lost(self.loc.url_of(&self.loc.objects), e))?;
        let items = self.bridge.iter(stream.boxed(), LIST_AHEAD);
        Ok(items.filter_map(move |item| match item {
            Err(lost) => Some(Err(task_lost(self.loc.url_of(&self.loc.objects), lost))),
            Ok(Err(e)) => Some(Err(request_failed(self.loc.url_of(&self.loc.objects), e))),
            Ok(Ok(meta)) => self.loc.hash_of(&meta.location).map(|hash| {
                Ok(ListedObject {
                    hash,
                    size: meta.size,
                    modified: SystemTime::from(meta.last_modified),
                })
            }),
        }))
    }
}

impl ObjectStore for RemoteObjectStore {
    fn put(&self, reader: &mut dyn Read, _durability: Durability) -> Result<StoredObject> {
        self.put_stream(reader)
    }

    fn barrier(&self) -> Result<()> {
        Ok(())
    }

    fn open(&self, hash: &ContentHash) -> Result<Box<dyn Read + Send>> {
        let key = self.loc.key(hash);
        let chunks = self.body(&key)?;
        Ok(Box::new(CheckedReader::new(
            chunks,
            *hash,
            self.loc.url_of(&key),
        )))
    }

    fn contains(&self, hash: &ContentHash) -> Result<bool> {
        let key = self.loc.key(hash);
        match self.call(&key, |b, k| async move { b.head(&k).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(request_failed(self.loc.url_of(&key), e)),
        }
    }

    fn local_path(&self, _hash: &ContentHash) -> Option<PathBuf> {
        None
    }

    fn list(&self) -> Box<dyn Iterator<Item = Result<ListedObject>> + '_> {
        match self.listing() {
            Ok(items) => Box::new(items),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn remove(&self, hash: &ContentHash) -> Result<()> {
        let key = self.loc.key(hash);
        match self.call(&key, |b, k| async move { b.delete(&k).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(request_failed(self.loc.url_of(&key), e)),
        }
    }

    fn verify(&self, hash: &ContentHash) -> Result<ObjectState> {
        let key = self.loc.key(hash);
        let chunks = match self.body(&key) {
            Ok(c) => c,
            Err(PfsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ObjectState::Missing);
            }
            Err(e) => return Err(e),
        };
        let mut hasher = FileHasher::new();
        let mut size = 0u64;
        for chunk in chunks {
            let chunk = chunk
                .map_err(|e| task_lost(self.loc.url_of(&key), e))?
                .map_err(|e| request_failed(self.loc.url_of(&key), e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        let found = hasher.finish();
        Ok(if found == *hash {
            ObjectState::Intact { size }
        } else {
            ObjectState::Corrupt { size, found }
        })
    }

    fn quarantine(&self, hash: &ContentHash) -> Result<Option<PathBuf>> {
        let key = self.loc.key(hash);
        let lost = self.loc.lost_key(hash);
        let to = lost.clone();
        self.call(&key, |b, k| async move { b.copy(&k, &to).await })?
            .map_err(|e| request_failed(self.loc.url_of(&key), e))?;
        self.remove(hash)?;
        Ok(Some(self.loc.url_of(&lost)))
    }
}
