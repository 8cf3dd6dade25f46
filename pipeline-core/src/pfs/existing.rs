//! Opening a store only if one exists: for read-only tools (previews, inspections) that must
//! not create an empty store as a side effect.

use std::path::Path;

use super::error::Result;
use super::store::Store;

/// The metadata database's file name inside a store directory (see [`Store::open`]).
pub(crate) const META_FILE: &str = "meta.redb";

impl Store {
    /// Whether `root` holds a store (its metadata database exists).
    pub fn exists(root: impl AsRef<Path>) -> bool {
        root.as_ref().join(META_FILE).exists()
    }

    /// Opens the store in `root` if there is one; `Ok(None)` (and nothing created) otherwise.
    ///
    /// ```
    /// use pipeline_core::pfs::Store;
    /// # let dir = tempfile::tempdir().unwrap();
    /// assert!(Store::open_existing(dir.path()).unwrap().is_none());
    /// Store::open(dir.path()).unwrap();
    /// assert!(Store::open_existing(dir.path()).unwrap().is_some());
    /// ```
    pub fn open_existing(root: impl AsRef<Path>) -> Result<Option<Store>> {
        if Self::exists(&root) {
            Store::open(root).map(Some)
        } else {
            Ok(None)
        }
    }
}
