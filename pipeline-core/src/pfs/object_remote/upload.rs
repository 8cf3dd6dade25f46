//! Puts: the content's hash is its key, known only after the whole stream was read.
//!
//! Content that ends within the 1 MiB streaming buffer is hashed in memory; anything longer
//! is spooled to an unnamed temp file while it is hashed (the buffer is all the memory that
//! takes). Content under [`WHOLE_MAX`] is then sent in one request with `PutMode::Create`
//! (the server refuses it if the key exists: that is a deduplicated put). Larger content,
//! unless an object of that size is already there, is uploaded in parts of at least 8 MiB, [`PARTS_IN_FLIGHT`] at a time, read back
//! from the spool: memory stays flat whatever the size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutMode, PutPayload};

use super::RemoteObjectStore;
use super::bridge::Pending;
use super::error::request_failed;
use crate::hash::{ContentHash, FileHasher};
use crate::pfs::error::{PfsError, Result};
use crate::pfs::object::{StoredObject, with_buffer};

/// Content up to this size goes up in one request from memory.
pub(super) const WHOLE_MAX: usize = 8 << 20;

/// The smallest part of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_MIN: u64 = 8 << 20;

/// At most this many parts per upload (S3 allows 10,000; the rest is headroom).
const MAX_PARTS: u64 = 9_000;

/// Parts of one upload sent at the same time (each is held in memory while it is sent).
pub(super) const PARTS_IN_FLIGHT: usize = 2;

/// A deduplicated put rewrites an object last written longer ago than this, so that its
/// modification time (which garbage collection's grace period is measured against) is
/// recent while the put's commit is not recorded yet.
pub(super) const REFRESH_AFTER: Duration = Duration::from_secs(3600);

/// How a put's content can be written (again).
enum Content<'a> {
    /// Held in memory.
    Whole(Bytes),
    /// In the spool file.
    Spooled(&'a mut File),
}

impl RemoteObjectStore {
    /// Stores everything `reader` yields under its hash (see the module docs).
    pub(super) fn put_stream(&self, reader: &mut dyn Read) -> Result<StoredObject> {
        with_buffer(|buf| {
            let n = fill(reader, buf)?;
            let head = buf.get(..n).unwrap_or_default();
            if n < buf.len() {
                return self.put_whole(Bytes::copy_from_slice(head));
            }
            let mut spool = self.spool_file()?;
            let mut hasher = FileHasher::new();
            hasher.update(head);
            spool
                .write_all(head)
                .map_err(|e| PfsError::io(&self.spool_dir, e))?;
            let rest = spool_into(reader, &mut spool, &self.spool_dir, buf, &mut hasher)?;
            let size = n as u64 + rest;
            let hash = hasher.finish();
            if size < WHOLE_MAX as u64 {
                // Medium content still goes up in one request.
                let mut data = Vec::with_capacity(n + rest as usize);
                spool
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| spool.read_to_end(&mut data))
                    .map_err(|e| PfsError::io(&self.spool_dir, e))?;
                return self.put_whole(Bytes::from(data));
            }
            self.put_spooled(&mut spool, size, hash)
        })
    }

    fn spool_file(&self) -> Result<File> {
        tempfile::tempfile_in(&self.spool_dir).map_err(|e| PfsError::io(&self.spool_dir, e))
    }

    /// One request with `PutMode::Create`; an existing object makes it a dedup.
    fn put_whole(&self, data: Bytes) -> Result<StoredObject> {
        let hash = ContentHash::of_bytes(&data);
        let size = data.len() as u64;
        let key = self.loc.key(&hash);
        let payload = PutPayload::from(data.clone());
        let put = self.call(&key, |b, k| async move {
            b.put_opts(&k, payload, PutMode::Create.into()).await
        })?;
        match put {
            Ok(_) => Ok(StoredObject {
                hash,
                size,
                new: true,
            }),
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.reuse_or_replace(&key, hash, size, Content::Whole(data))
            }
            // A server may refuse the conditional write as soon as it reads the headers and
            // close the connection while the body is still going out (s3s-fs does): the
            // client then sees a broken pipe, not the refusal. An object now under the key
            // means it was that refusal.
            Err(e) if self.exists(&key)? => {
                tracing::debug!(url = %self.loc.url_of(&key).display(), error = %e,
                    "conditional put failed but the object is stored: a deduplicated put");
                self.reuse_or_replace(&key, hash, size, Content::Whole(data))
            }
            Err(e) => Err(request_failed(self.loc.url_of(&key), e)),
        }
    }

    /// Whether an object is stored under `key` (`false` when the lookup itself fails).
    fn exists(&self, key: &Key) -> Result<bool> {
        let head = self.call(key, |b, k| async move { b.head(&k).await })?;
        Ok(head.is_ok())
    }

    /// A spooled object: reused when one of its size is stored, else uploaded in parts.
    fn put_spooled(&self, spool: &mut File, size: u64, hash: ContentHash) -> Result<StoredObject> {
        let key = self.loc.key(&hash);
        let head = self.call(&key, |b, k| async move { b.head(&k).await })?;
        match head {
            Ok(_) => self.reuse_or_replace(&key, hash, size, Content::Spooled(spool)),
            Err(object_store::Error::NotFound { .. }) => {
                self.upload_parts(&key, spool, size)?;
                Ok(StoredObject {
                    hash,
                    size,
                    new: true,
                })
            }
            Err(e) => Err(request_failed(self.loc.url_of(&key), e)),
        }
    }

    /// An object is stored under `key` already: reused when its size is right (rewritten
    /// first when it is older than [`REFRESH_AFTER`]), replaced by `content` when its size
    /// is wrong (damaged) or it vanished meanwhile.
    fn reuse_or_replace(
        &self,
        key: &Key,
        hash: ContentHash,
        size: u64,
        content: Content<'_>,
    ) -> Result<StoredObject> {
        let head = self.call(key, |b, k| async move { b.head(&k).await })?;
        let (new, rewrite) = match head {
            Ok(meta) if meta.size == size => {
                let written = SystemTime::from(meta.last_modified);
                let age = SystemTime::now()
                    .duration_since(written)
                    .unwrap_or_default();
                (false, age > REFRESH_AFTER)
            }
            Ok(meta) => {
                tracing::warn!(object = %hash, url = %self.loc.url_of(key).display(),
                    expected_size = size, found_size = meta.size,
                    "stored object has the wrong size; replacing it with the content being put");
                (true, true)
            }
            Err(object_store::Error::NotFound { .. }) => (true, true),
            Err(e) => return Err(request_failed(self.loc.url_of(key), e)),
        };
        if rewrite {
            match content {
                Content::Whole(data) => self.overwrite(key, data)?,
                Content::Spooled(spool) => self.upload_parts(key, spool, size)?,
            }
        }
        Ok(StoredObject { hash, size, new })
    }

    /// Writes `data` under `key` whether or not something is there.
    fn overwrite(&self, key: &Key, data: Bytes) -> Result<()> {
        let payload = PutPayload::from(data);
        self.call(key, |b, k| async move {
            b.put_opts(&k, payload, PutMode::Overwrite.into()).await
        })?
        .map(drop)
        .map_err(|e| request_failed(self.loc.url_of(key), e))
    }

    /// Uploads the spool in parts to `key`; aborts the upload when a part fails.
    fn upload_parts(&self, key: &Key, spool: &mut File, size: u64) -> Result<()> {
        spool
            .seek(SeekFrom::Start(0))
            .map_err(|e| PfsError::io(&self.spool_dir, e))?;
        let started = self.call(key, |b, k| async move { b.put_multipart(&k).await })?;
        let mut upload = started.map_err(|e| request_failed(self.loc.url_of(key), e))?;
        let sent = self.send_parts(key, &mut *upload, spool, part_size(size));
        match sent {
            Ok(()) => self
                .bridge
                .run(async move {
                    let done = upload.complete().await;
                    if done.is_err() {
                        let _ = upload.abort().await;
                    }
                    done
                })
                .map_err(|e| super::error::task_lost(self.loc.url_of(key), e))?
                .map(drop)
                .map_err(|e| request_failed(self.loc.url_of(key), e)),
            Err(e) => {
                let _ = self.bridge.run(async move { upload.abort().await });
                Err(e)
            }
        }
    }

    /// Reads the spool part by part and sends each, at most [`PARTS_IN_FLIGHT`] at a time
    /// (a part is read only when a slot is free, so memory is bounded by the slots).
    fn send_parts(
        &self,
        key: &Key,
        upload: &mut dyn object_store::MultipartUpload,
        spool: &mut File,
        part: usize,
    ) -> Result<()> {
        let mut in_flight: VecDeque<Pending<object_store::Result<()>>> = VecDeque::new();
        let wait = |p: Pending<object_store::Result<()>>| -> Result<()> {
            p.wait()
                .map_err(|e| super::error::task_lost(self.loc.url_of(key), e))?
                .map_err(|e| request_failed(self.loc.url_of(key), e))
        };
        loop {
            while in_flight.len() >= PARTS_IN_FLIGHT {
                if let Some(p) = in_flight.pop_front() {
                    wait(p)?;
                }
            }
            let mut buf = vec![0u8; part];
            let n = fill(spool, &mut buf)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            in_flight.push_back(self.bridge.spawn(upload.put_part(PutPayload::from(buf))));
            if n < part {
                break;
            }
        }
        in_flight.into_iter().try_for_each(wait)
    }
}

/// The part size for an object of `size` bytes: at least [`PART_MIN`], large enough for
/// [`MAX_PARTS`] parts, a whole number of MiB.
fn part_size(size: u64) -> usize {
    let needed = size.div_ceil(MAX_PARTS).max(PART_MIN);
    let mib = 1u64 << 20;
    usize::try_from(needed.div_ceil(mib) * mib).unwrap_or(usize::MAX)
}

/// Reads into `buf` until it is full or the reader ends; returns how much it read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PfsError::io("<input stream>", e)),
        }
    }
    Ok(n)
}

/// Streams all of `reader` into `spool` through `buf` while hashing it; returns the size.
fn spool_into(
    reader: &mut dyn Read,
    spool: &mut File,
    dir: &std::path::Path,
    buf: &mut [u8],
    hasher: &mut FileHasher,
) -> Result<u64> {
    let mut size = 0u64;
    loop {
        let n = fill(reader, buf)?;
        if n == 0 {
            return Ok(size);
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        spool.write_all(chunk).map_err(|e| PfsError::io(dir, e))?;
        size += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_large_enough_and_few_enough() {
        assert_eq!(part_size(1), PART_MIN as usize);
        assert_eq!(part_size(64 << 20), PART_MIN as usize);
        let huge = 5u64 << 40; // 5 TiB, S3's largest object
        let p = part_size(huge) as u64;
        assert!(huge.div_ceil(p) <= MAX_PARTS, "{p}");
        assert_eq!(p % (1 << 20), 0);
    }
}
