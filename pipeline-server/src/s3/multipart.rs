//! Multipart uploads: each part spooled to a file in the upload's own temporary directory
//! (never held in memory); completing one streams the listed parts in order into one file of
//! one commit, aborting one removes its directory.
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use s3s::{S3Error, S3ErrorCode};

/// One part on disk.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its spool file.
    pub path: PathBuf,
    /// Its ETag (hex of its content hash).
    pub etag: String,
}

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    /// The bucket it was started in.
    pub bucket: String,
    /// The key it writes.
    pub key: String,
    /// Where its parts are spooled (removed with the upload).
    pub dir: tempfile::TempDir,
    /// Parts received so far, by number (a part sent again replaces the earlier one).
    pub parts: BTreeMap<i32, Part>,
}

/// Uploads in progress, by upload ID.
#[derive(Debug, Clone, Default)]
pub struct Uploads {
    inner: Arc<Mutex<HashMap<String, Upload>>>,
}

fn no_upload(id: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchUpload,
        format!(
            "no multipart upload {id:?} is in progress (completed, aborted, or from a server that restarted)"
        ),
    )
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Upload>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an upload of `key` in `bucket`, its parts spooled below `spool` (the system's
    /// temporary directory when `None`); returns its ID.
    pub fn create(
        &self,
        bucket: &str,
        key: &str,
        spool: Option<&std::path::Path>,
    ) -> io::Result<String> {
        let dir = match spool {
            Some(p) => {
                std::fs::create_dir_all(p)?;
                tempfile::Builder::new()
                    .prefix("s3-upload-")
                    .tempdir_in(p)?
            }
            None => tempfile::Builder::new().prefix("s3-upload-").tempdir()?,
        };
        let id = crate::auth::random_hex(16)?;
        self.lock().insert(
            id.clone(),
            Upload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                dir,
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    /// Where part `number` of upload `id` (for `bucket`/`key`) is to be spooled.
    pub fn part_path(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        number: i32,
    ) -> Result<PathBuf, S3Error> {
        let map = self.lock();
        let up = map.get(id).filter(|u| u.bucket == bucket && u.key == key);
        let up = up.ok_or_else(|| no_upload(id))?;
        if !(1..=10_000).contains(&number) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("part number {number}: expected 1 to 10000"),
            ));
        }
        Ok(up.dir.path().join(format!(
            "part-{number:05}-{}",
            crate::auth::random_hex(4).unwrap_or_default()
        )))
    }

    /// Records a spooled part (replacing an earlier one of the same number).
    pub fn add_part(&self, id: &str, number: i32, part: Part) -> Result<(), S3Error> {
        let mut map = self.lock();
        let up = map.get_mut(id).ok_or_else(|| no_upload(id))?;
        if let Some(old) = up.parts.insert(number, part) {
            let _ = std::fs::remove_file(old.path);
        }
        Ok(())
    }

    /// Takes upload `id` out of the table (complete or abort).
    pub fn take(&self, id: &str, bucket: &str, key: &str) -> Result<Upload, S3Error> {
        let mut map = self.lock();
        match map.get(id) {
            Some(u) if u.bucket == bucket && u.key == key => {}
            _ => return Err(no_upload(id)),
        }
        map.remove(id).ok_or_else(|| no_upload(id))
    }

    /// Puts an upload back (a completion that was refused before anything was written).
    pub fn restore(&self, id: String, up: Upload) {
        self.lock().insert(id, up);
    }
}

/// The parts `listed` (number, ETag) of `up`, in order, checked against what was received.
pub fn chosen_parts(up: &Upload, listed: &[(i32, Option<String>)]) -> Result<Vec<Part>, S3Error> {
    let mut out = Vec::with_capacity(listed.len());
    let mut last = 0;
    for (n, etag) in listed {
        if *n <= last {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPartOrder,
                format!(
                    "part {n} listed after part {last}: parts must be listed in ascending order"
                ),
            ));
        }
        last = *n;
        let part = up.parts.get(n).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidPart,
                format!("part {n} was not uploaded"),
            )
        })?;
        if let Some(e) = etag
            && e.trim_matches('"') != part.etag
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPart,
                format!(
                    "part {n}: ETag {e} does not match the uploaded part's \"{}\"",
                    part.etag
                ),
            ));
        }
        out.push(part.clone());
    }
    if out.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "CompleteMultipartUpload lists no parts",
        ));
    }
    Ok(out)
}

/// The parts' files one after another as one reader.
pub struct Concat {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<File>,
}

impl Concat {
    /// Reads `parts` in order.
    pub fn new(parts: &[Part]) -> Concat {
        let files: Vec<PathBuf> = parts.iter().map(|p| p.path.clone()).collect();
        Concat {
            files: files.into_iter(),
            current: None,
        }
    }
}

impl Read for Concat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            match self.files.next() {
                Some(p) => self.current = Some(File::open(p)?),
                None => return Ok(0),
            }
        }
    }
}
