//! Content hashes shared by storage and datum planning.
//!
//! - A **file hash** is BLAKE3-256 of the file's bytes.
//! - A **directory hash** is BLAKE3-256 over its immediate children in byte-wise name order,
//!   each contributing `name` (directories with a trailing `/`), the name's length as a
//!   big-endian u64, and the child's 32-byte hash. Unlike Pachyderm, child **names** are
//!   included, so renaming a file inside a directory datum changes the datum's hash.
//!
//! The [`ContentHash`] type is always there; computing hashes ([`ContentHash::of_bytes`],
//! [`FileHasher`], [`DirectoryHasher`]) needs the `hashing` feature (on with `engine`, the
//! default).
//!
//! ```
//! # #[cfg(feature = "hashing")] {
//! use pipeline_core::hash::{ContentHash, DirectoryHasher};
//! let a = ContentHash::of_bytes(b"hello");
//! let mut dir = DirectoryHasher::new();
//! dir.child("a.txt", &a);
//! let renamed = {
//!     let mut d = DirectoryHasher::new();
//!     d.child("b.txt", &a);
//!     d.finish()
//! };
//! assert_ne!(dir.finish(), renamed);
//! assert_eq!(a.to_hex().len(), 64);
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

/// A 32-byte content hash (file or directory).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hash of a byte slice (a whole file's content).
    #[cfg(feature = "hashing")]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Error parsing a [`ContentHash`] from hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid content hash {0:?}: expected 64 lower-case hex characters")]
pub struct ContentHashParseError(pub String);

impl FromStr for ContentHash {
    type Err = ContentHashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ContentHashParseError(s.to_string()))?;
        Ok(ContentHash(out))
    }
}

/// Streaming file hasher: feed the bytes in order, then [`FileHasher::finish`].
#[cfg(feature = "hashing")]
#[derive(Debug, Default, Clone)]
pub struct FileHasher(blake3::Hasher);

#[cfg(feature = "hashing")]
impl FileHasher {
    /// A new hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The hash of everything added.
    pub fn finish(&self) -> ContentHash {
        ContentHash(*self.0.finalize().as_bytes())
    }
}

/// Directory hasher: add the immediate children **in byte-wise name order**.
#[cfg(feature = "hashing")]
#[derive(Debug, Default, Clone)]
pub struct DirectoryHasher(blake3::Hasher);

#[cfg(feature = "hashing")]
impl DirectoryHasher {
    /// A new hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one child: its name (directories with a trailing `/`) and its hash.
    pub fn child(&mut self, name: &str, hash: &ContentHash) {
        self.0.update(name.as_bytes());
        self.0.update(&(name.len() as u64).to_be_bytes());
        self.0.update(&hash.0);
    }
    /// The directory's hash.
    pub fn finish(&self) -> ContentHash {
        ContentHash(*self.0.finalize().as_bytes())
    }
}
