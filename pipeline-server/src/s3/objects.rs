//! Object reads and writes: GetObject (with Range), PutObject and multipart uploads, all
//! streamed through the store's streaming get and put.
use std::io::{Read, Write};

use pipeline_core::hash::FileHasher;
use s3s::dto::{self, ETag};
use s3s::{S3Error, S3ErrorCode, S3Result};
use tokio::sync::oneshot;

use super::body;
use super::errors::{from_pfs, internal};
use super::gateway::{Gateway, etag_of, key_path, modified};
use super::multipart::{Concat, Part, chosen_parts};

/// What a GetObject learnt before its body streams.
struct Opened {
    size: u64,
    start: u64,
    len: u64,
    etag: String,
    at: dto::Timestamp,
}

/// GetObject: the whole object, or the `Range` asked for (the store streams from the start,
/// so a range costs reading up to its end).
pub async fn get(g: &Gateway, i: dto::GetObjectInput) -> S3Result<dto::GetObjectOutput> {
    let (first_tx, first_rx) = oneshot::channel::<S3Result<Opened>>();
    let (tx, blob) = body::channel();
    let ctx = g.ctx();
    let (bucket, key, range) = (i.bucket, i.key, i.range);
    tokio::task::spawn_blocking(move || {
        let store = ctx.store();
        let opened = (|| {
            let (c, f) = ctx.stat(&bucket, &key)?;
            let r = match &range {
                Some(r) => r.check(f.size).map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRange,
                        format!(
                            "{}: not within the object's {} bytes",
                            r.to_header_string(),
                            f.size
                        ),
                    )
                })?,
                None => 0..f.size,
            };
            let (_, mut reader) = store
                .get_file(&c, &f.path)
                .map_err(|e| from_pfs(&e, &bucket))?;
            body::skip(&mut reader, r.start).map_err(|e| internal("reading the object", e))?;
            let opened = Opened {
                size: f.size,
                start: r.start,
                len: r.end - r.start,
                etag: etag_of(&f),
                at: modified(store, &c),
            };
            Ok((opened, reader))
        })();
        match opened {
            Ok((o, mut reader)) => {
                let len = o.len;
                if first_tx.send(Ok(o)).is_ok() {
                    body::pump(&mut reader, len, &tx);
                }
            }
            Err(e) => {
                let _ = first_tx.send(Err(e));
            }
        }
    });
    let o = first_rx
        .await
        .map_err(|e| internal("the download task ended early", e))??;
    let content_range = range_header(&o, i.range.is_some());
    Ok(dto::GetObjectOutput {
        body: Some(blob),
        content_length: Some(i64::try_from(o.len).unwrap_or(i64::MAX)),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(ETag::Strong(o.etag)),
        last_modified: Some(o.at),
        content_type: Some("application/octet-stream".into()),
        ..Default::default()
    })
}

fn range_header(o: &Opened, ranged: bool) -> Option<String> {
    ranged.then(|| {
        let last = (o.start + o.len).saturating_sub(1);
        format!("bytes {}-{last}/{}", o.start, o.size)
    })
}

/// PutObject: one file, streamed into the branch with the auto-commit rule.
pub async fn put(g: &Gateway, i: dto::PutObjectInput) -> S3Result<dto::PutObjectOutput> {
    let mut reader = body::reader(i.body);
    let (bucket, key) = (i.bucket, i.key);
    let f = g
        .run(move |e| {
            let path = key_path(&key)?;
            let b = e.writable(&bucket)?;
            e.write(&b, &bucket, |c| e.store().put_file(c, &path, &mut reader))
        })
        .await?;
    Ok(dto::PutObjectOutput {
        e_tag: Some(ETag::Strong(etag_of(&f))),
        size: Some(i64::try_from(f.size).unwrap_or(i64::MAX)),
        ..Default::default()
    })
}

/// CreateMultipartUpload: checks the bucket takes writes and opens a spool directory.
pub async fn create_upload(
    g: &Gateway,
    i: dto::CreateMultipartUploadInput,
) -> S3Result<dto::CreateMultipartUploadOutput> {
    let (bucket, key) = (i.bucket, i.key);
    let (b2, k2) = (bucket.clone(), key.clone());
    g.run(move |e| {
        key_path(&k2)?;
        e.writable(&b2).map(|_| ())
    })
    .await?;
    let uploads = g.uploads.clone();
    let spool = g.spool.clone();
    let (b3, k3) = (bucket.clone(), key.clone());
    let id = tokio::task::spawn_blocking(move || uploads.create(&b3, &k3, spool.as_deref()))
        .await
        .map_err(|e| internal("the upload task ended", e))?
        .map_err(|e| internal("creating the upload's spool directory", e))?;
    Ok(dto::CreateMultipartUploadOutput {
        bucket: Some(bucket),
        key: Some(key),
        upload_id: Some(id),
        ..Default::default()
    })
}

/// UploadPart: the part's body streamed to its spool file, hashed on the way.
pub async fn upload_part(g: &Gateway, i: dto::UploadPartInput) -> S3Result<dto::UploadPartOutput> {
    let path = g
        .uploads
        .part_path(&i.upload_id, &i.bucket, &i.key, i.part_number)?;
    let mut reader = body::reader(i.body);
    let p2 = path.clone();
    let etag = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&p2)?);
        let mut h = FileHasher::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        out.flush()?;
        Ok(h.finish().to_hex()[..32].to_string())
    })
    .await
    .map_err(|e| internal("the upload task ended", e))?
    .map_err(|e| {
        let _ = std::fs::remove_file(&path);
        internal("spooling the part", e)
    })?;
    let part = Part {
        path,
        etag: etag.clone(),
    };
    g.uploads.add_part(&i.upload_id, i.part_number, part)?;
    Ok(dto::UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    })
}

/// CompleteMultipartUpload: the listed parts, in order, as one file in one commit.
pub async fn complete_upload(
    g: &Gateway,
    i: dto::CompleteMultipartUploadInput,
) -> S3Result<dto::CompleteMultipartUploadOutput> {
    let listed: Vec<(i32, Option<String>)> = i
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p.part_number.unwrap_or(0),
                p.e_tag.map(|e| e.value().to_string()),
            )
        })
        .collect();
    let up = g.uploads.take(&i.upload_id, &i.bucket, &i.key)?;
    let parts = match chosen_parts(&up, &listed) {
        Ok(p) => p,
        Err(e) => {
            g.uploads.restore(i.upload_id, up);
            return Err(e);
        }
    };
    let (bucket, key) = (i.bucket.clone(), i.key.clone());
    let f = g
        .run(move |e| {
            let path = key_path(&key)?;
            let b = e.writable(&bucket)?;
            let mut reader = Concat::new(&parts);
            let f = e.write(&b, &bucket, |c| e.store().put_file(c, &path, &mut reader));
            drop(up);
            f
        })
        .await?;
    Ok(dto::CompleteMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        e_tag: Some(ETag::Strong(format!("{}-{}", etag_of(&f), listed.len()))),
        ..Default::default()
    })
}

/// DeleteObjects: every listed key removed in one commit; absent keys count as deleted (as
/// S3's deletes are idempotent), keys that are no file path are reported one by one.
pub async fn delete_many(
    g: &Gateway,
    i: dto::DeleteObjectsInput,
) -> S3Result<dto::DeleteObjectsOutput> {
    let bucket = i.bucket;
    let quiet = i.delete.quiet.unwrap_or(false);
    let keys: Vec<String> = i.delete.objects.into_iter().map(|o| o.key).collect();
    let (deleted, errors) = g
        .run(move |e| {
            let b = e.writable(&bucket)?;
            let (mut deleted, mut errors) = (Vec::new(), Vec::new());
            e.write(&b, &bucket, |c| {
                for key in keys {
                    let Ok(path) = key_path(&key) else {
                        errors.push(dto::Error {
                            code: Some("InvalidArgument".into()),
                            message: Some(format!("object key {key:?}: expected a file path")),
                            key: Some(key),
                            ..Default::default()
                        });
                        continue;
                    };
                    match e.store().delete_file(c, &path) {
                        Ok(_) | Err(pipeline_core::pfs::PfsError::FileNotFound { .. }) => {}
                        Err(err) => return Err(err),
                    }
                    deleted.push(dto::DeletedObject {
                        key: Some(key),
                        ..Default::default()
                    });
                }
                Ok(())
            })?;
            Ok((deleted, errors))
        })
        .await?;
    Ok(dto::DeleteObjectsOutput {
        deleted: (!quiet).then_some(deleted),
        errors: Some(errors),
        ..Default::default()
    })
}
