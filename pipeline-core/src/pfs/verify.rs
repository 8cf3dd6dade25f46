//! Verified reads: every byte handed out of the store is checked against the hash and size
//! its file entry records.
//!
//! - Streams ([`Store::get_file`]) go through [`VerifyingReader`], which hashes bytes as
//!   they pass and checks size and hash at the end of the stream: a damaged object ends
//!   the stream with an error (an [`io::Error`] of kind `InvalidData` that carries a
//!   [`PfsError::ObjectCorrupt`], see [`PfsError::from_io`]) instead of a clean EOF, and it
//!   never yields more bytes than recorded.
//! - Hard links ([`Store::link_object`], [`Store::object_local_path`],
//!   [`Store::materialize`]) are only made to objects that passed
//!   [`ObjectStore::verify`](super::object::ObjectStore::verify), which the local store
//!   remembers per handle until the file changes (see [`super::object`]).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::error::{CorruptFile, ObjectProblem, PfsError, Result};
use super::model::CommitRef;
use super::object::ObjectState;
use super::store::Store;
use crate::hash::{ContentHash, FileHasher};

/// Which file a read is for (named in errors).
#[derive(Debug, Clone)]
pub(crate) struct FileCtx {
    pub(crate) repo: String,
    pub(crate) commit: String,
    pub(crate) path: String,
}

impl FileCtx {
    pub(crate) fn new(commit: &CommitRef, path: &str) -> Self {
        FileCtx {
            repo: commit.repo.to_string(),
            commit: commit.id.to_string(),
            path: path.to_string(),
        }
    }

    /// The error for `object` having `problem`.
    pub(crate) fn error(&self, object: &ContentHash, problem: ObjectProblem) -> PfsError {
        PfsError::ObjectCorrupt(Box::new(CorruptFile {
            repo: self.repo.clone(),
            commit: self.commit.clone(),
            path: self.path.clone(),
            object: object.to_hex(),
            problem,
        }))
    }
}

/// A reader that checks what passes through it against an expected size and BLAKE3 hash.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: FileHasher,
    seen: u64,
    size: u64,
    hash: ContentHash,
    ctx: FileCtx,
    failed: Option<ObjectProblem>,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, size: u64, hash: ContentHash, ctx: FileCtx) -> Self {
        VerifyingReader {
            inner,
            hasher: FileHasher::new(),
            seen: 0,
            size,
            hash,
            ctx,
            failed: None,
            done: false,
        }
    }

    fn fail(&mut self, problem: ObjectProblem) -> io::Error {
        self.failed = Some(problem);
        io::Error::new(
            io::ErrorKind::InvalidData,
            self.ctx.error(&self.hash, problem),
        )
    }

    /// Counts what is left of an over-long object (to report its size).
    fn drain(&mut self) -> u64 {
        let mut extra = 0u64;
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.inner.read(&mut buf) {
            if n == 0 {
                break;
            }
            extra += n as u64;
        }
        extra
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = self.failed {
            return Err(self.fail(p));
        }
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.seen != self.size {
                let found = self.seen;
                return Err(self.fail(ObjectProblem::Size {
                    expected: self.size,
                    found,
                }));
            }
            let found = self.hasher.finish();
            if found != self.hash {
                return Err(self.fail(ObjectProblem::Hash { found }));
            }
            self.done = true;
            return Ok(0);
        }
        if self.seen + n as u64 > self.size {
            let found = self.seen + n as u64 + self.drain();
            return Err(self.fail(ObjectProblem::Size {
                expected: self.size,
                found,
            }));
        }
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.seen += n as u64;
        Ok(n)
    }
}

impl PfsError {
    /// The store error an [`io::Error`] from a store reader carries (a verification failure
    /// of [`VerifyingReader`]), if any.
    pub fn from_io(e: &io::Error) -> Option<&PfsError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<PfsError>())
    }

    /// Turns an I/O error on `path` into a store error, unwrapping one a store reader made.
    pub(crate) fn unwrap_io(path: &Path, e: io::Error) -> PfsError {
        if PfsError::from_io(&e).is_none() {
            return PfsError::io(path, e);
        }
        match e.into_inner().map(|inner| inner.downcast::<PfsError>()) {
            Some(Ok(pfs)) => *pfs,
            _ => PfsError::Corrupt("a store read error lost its cause".into()),
        }
    }
}

impl Store {
    /// Opens an object for the file `ctx` names, verified while it streams.
    pub(crate) fn open_verified(
        &self,
        ctx: FileCtx,
        size: u64,
        hash: &ContentHash,
    ) -> Result<VerifyingReader<Box<dyn Read + Send>>> {
        let r = match self.inner.objects.open(hash) {
            Ok(r) => r,
            Err(PfsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(ctx.error(hash, ObjectProblem::Missing));
            }
            Err(e) => return Err(e),
        };
        Ok(VerifyingReader::new(r, size, *hash, ctx))
    }

    /// The local file of an object that passed verification and has `size` bytes; an error
    /// naming the file when it is missing, damaged or of another size; `None` when the
    /// object store is not local.
    pub(crate) fn verified_path(
        &self,
        ctx: &FileCtx,
        size: u64,
        hash: &ContentHash,
    ) -> Result<Option<PathBuf>> {
        let Some(path) = self.inner.objects.local_path(hash) else {
            return Ok(None);
        };
        match self.inner.objects.verify(hash)? {
            ObjectState::Intact { size: found } if found == size => Ok(Some(path)),
            ObjectState::Intact { size: found } => Err(ctx.error(
                hash,
                ObjectProblem::Size {
                    expected: size,
                    found,
                },
            )),
            ObjectState::Missing => Err(ctx.error(hash, ObjectProblem::Missing)),
            ObjectState::Corrupt { found, .. } => {
                Err(ctx.error(hash, ObjectProblem::Hash { found }))
            }
        }
    }

    /// Hard-links the object `hash` to `target` if it is stored locally, intact (verified
    /// once per store handle, see [`super::object`]) and the link can be made. `Ok(false)`
    /// when it cannot be linked (not local, another filesystem): copy it through
    /// [`Store::get_file`] or [`Store::materialize`] instead, which also report a damaged
    /// object with the file it belongs to.
    pub fn link_object(&self, hash: &ContentHash, target: &Path) -> Result<bool> {
        let Some(src) = self.object_local_path(hash) else {
            return Ok(false);
        };
        // A hard link moves no part of the verification stamp (not the `mtime`).
        Ok(std::fs::hard_link(&src, target).is_ok())
    }

    /// A local file holding an object, when the object store is on the local disk **and the
    /// object passed verification** (its content hashes to its name; checked once per store
    /// handle and again whenever the file changed). `None` for a missing or damaged object.
    /// [`Store::link_object`] finds it and hard-links it.
    pub fn object_local_path(&self, hash: &ContentHash) -> Option<PathBuf> {
        let path = self.inner.objects.local_path(hash)?;
        match self.inner.objects.verify(hash) {
            Ok(ObjectState::Intact { .. }) => Some(path),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> FileCtx {
        FileCtx {
            repo: "default/r".into(),
            commit: "c".into(),
            path: "/a".into(),
        }
    }

    fn read(data: &[u8], size: u64, hash: ContentHash) -> std::result::Result<Vec<u8>, PfsError> {
        let mut r = VerifyingReader::new(data, size, hash, ctx());
        let mut out = Vec::new();
        match r.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(e) => Err(PfsError::unwrap_io(Path::new("-"), e)),
        }
    }

    #[test]
    fn passes_intact_and_names_every_failure() {
        let h = ContentHash::of_bytes(b"hello");
        assert_eq!(read(b"hello", 5, h).unwrap(), b"hello");
        let e = read(b"hellO", 5, h).unwrap_err();
        assert!(
            matches!(&e, PfsError::ObjectCorrupt(c) if matches!(c.problem, ObjectProblem::Hash { .. }))
        );
        let msg = e.to_string();
        assert!(msg.contains("/a") && msg.contains("default/r@c") && msg.contains(&h.to_hex()));
        let problem = |e: PfsError| match e {
            PfsError::ObjectCorrupt(c) => c.problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem(read(b"hel", 5, h).unwrap_err()),
            ObjectProblem::Size {
                expected: 5,
                found: 3
            }
        );
        assert_eq!(
            problem(read(b"hello world", 5, h).unwrap_err()),
            ObjectProblem::Size {
                expected: 5,
                found: 11
            }
        );
    }
}
