//! Streaming reads that check what they hand out against the object's name.

use std::io::{self, Read};
use std::path::PathBuf;

use bytes::Bytes;

use super::bridge::BlockingIter;
use crate::hash::{ContentHash, FileHasher};
use crate::pfs::error::PfsError;

/// How many chunks of a download are fetched ahead of the reader.
pub(super) const PREFETCH_CHUNKS: usize = 8;

/// The body of one object as the store's runtime streams it.
pub(super) type Chunks = BlockingIter<object_store::Result<Bytes>>;

/// A reader over an object's body that hashes every byte it hands out and, at the end of
/// the body, fails with `InvalidData` (carrying a [`PfsError::Corrupt`] that names the
/// object and its URL) instead of ending cleanly when the content does not hash to the
/// object's name. A failed transfer is an error too, never a short clean read.
pub(super) struct CheckedReader {
    chunks: Chunks,
    current: Bytes,
    hasher: FileHasher,
    seen: u64,
    hash: ContentHash,
    url: PathBuf,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed(ContentHash),
}

impl CheckedReader {
    /// Reads `chunks`, the body of the object named `hash` stored at `url`.
    pub(super) fn new(chunks: Chunks, hash: ContentHash, url: PathBuf) -> CheckedReader {
        CheckedReader {
            chunks,
            current: Bytes::new(),
            hasher: FileHasher::new(),
            seen: 0,
            hash,
            url,
            state: State::Reading,
        }
    }

    fn corrupt(&self, found: ContentHash) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            PfsError::Corrupt(format!(
                "object {} at {}: its {} bytes hash to {found}",
                self.hash,
                self.url.display(),
                self.seen
            )),
        )
    }

    /// The next non-empty chunk into `current`; `false` at the end of the body.
    fn refill(&mut self) -> io::Result<bool> {
        while self.current.is_empty() {
            match self.chunks.next() {
                None => return Ok(false),
                Some(Ok(Ok(chunk))) => self.current = chunk,
                Some(Ok(Err(e))) => {
                    return Err(io::Error::new(
                        super::error::kind_of(&e),
                        PfsError::Io {
                            path: self.url.clone(),
                            source: io::Error::new(super::error::kind_of(&e), e),
                        },
                    ));
                }
                Some(Err(lost)) => return Err(io::Error::other(lost)),
            }
        }
        Ok(true)
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.state {
            State::Done => return Ok(0),
            State::Failed(found) => return Err(self.corrupt(found)),
            State::Reading => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.refill()? {
            let found = self.hasher.finish();
            if found != self.hash {
                self.state = State::Failed(found);
                return Err(self.corrupt(found));
            }
            self.state = State::Done;
            return Ok(0);
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(&chunk);
        self.hasher.update(&chunk);
        self.seen += n as u64;
        Ok(n)
    }
}
