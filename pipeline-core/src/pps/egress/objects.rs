//! Egress to an object store (`s3://BUCKET/PREFIX`, `gs://`, `az://`) through the
//! `object_store` crate (feature `store-object`): every output file at `PREFIX/<path>`,
//! streamed from the store. A file under [`MULTIPART_AT`] goes up in one `PUT`; a larger one
//! as a multipart upload of [`PART`]-sized parts (at most two in flight), so memory stays
//! bounded whatever the file's size. A failed multipart upload is aborted.

use std::io::Read;
use std::sync::Arc;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{EgressError, Source};
use crate::pfs::object_remote::backend_for;

/// Files of this size and more are uploaded in parts.
const MULTIPART_AT: usize = 8 << 20;
/// The size of one part.
const PART: usize = 8 << 20;

/// Uploads every file of the output commit under `url`; returns how many.
pub(super) fn push(
    url: &str,
    options: &[(String, String)],
    src: &Source<'_>,
) -> Result<u64, EgressError> {
    let (backend, prefix, display) =
        backend_for(url, options).map_err(|e| EgressError::Remote {
            url: super::target::hide_password(url),
            message: crate::error_chain::ErrorChain(&e).to_string(),
        })?;
    let rt = super::runtime(&display)?;
    let mut written = 0;
    for path in src.files()? {
        let path = path?;
        src.check_cancel()?;
        let mut key = prefix.clone();
        for part in path.trim_start_matches('/').split('/') {
            key = key.join(part);
        }
        let object_url = format!("{display}/{}", path.trim_start_matches('/'));
        let reader = src.open(&path)?;
        rt.block_on(upload(backend.clone(), key, reader, &path, &object_url))?;
        written += 1;
    }
    Ok(written)
}

/// Uploads one file: a single `PUT` when it is small, else a multipart upload.
async fn upload(
    backend: Arc<dyn ObjectStore>,
    key: Key,
    mut reader: Box<dyn Read + Send>,
    path: &str,
    url: &str,
) -> Result<(), EgressError> {
    let remote = |e: object_store::Error| EgressError::Remote {
        url: url.to_string(),
        message: crate::error_chain::ErrorChain(&e).to_string(),
    };
    let mut first = Vec::with_capacity(64 << 10);
    let n = fill(&mut reader, &mut first, MULTIPART_AT, path, url)?;
    if n < MULTIPART_AT {
        backend
            .put(&key, PutPayload::from(first))
            .await
            .map_err(remote)?;
        return Ok(());
    }
    let upload = backend.put_multipart(&key).await.map_err(remote)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    writer.write(&first);
    drop(first);
    let result = async {
        let mut buf = Vec::with_capacity(1 << 20);
        loop {
            buf.clear();
            if fill(&mut reader, &mut buf, 1 << 20, path, url)? == 0 {
                return Ok(());
            }
            writer.wait_for_capacity(2).await.map_err(remote)?;
            writer.write(&buf);
        }
    }
    .await;
    match result {
        Ok(()) => writer.finish().await.map(|_| ()).map_err(remote),
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Reads up to `max` bytes into `buf`; returns how many (fewer only at the end).
fn fill(
    reader: &mut Box<dyn Read + Send>,
    buf: &mut Vec<u8>,
    max: usize,
    path: &str,
    url: &str,
) -> Result<usize, EgressError> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    reader
        .by_ref()
        .take(limit)
        .read_to_end(buf)
        .map_err(|e| super::files::read_or_write(path, std::path::Path::new(url), e))
}
