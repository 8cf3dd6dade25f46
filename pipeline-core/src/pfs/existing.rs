//! Whether a directory holds a store, and refusing to open one that is not what it seems:
//! stored objects without their metadata database are not a new store.

use std::fs;
use std::io;
use std::path::Path;

use super::error::{PfsError, Result};
use super::private::{DIR_MODE, tighten};
use super::store::Store;

/// The metadata database's file name inside a store directory (see [`Store::open`]).
pub(crate) const META_FILE: &str = "meta.redb";

impl Store {
    /// Whether `root` holds a store: its metadata database exists, or objects are stored in
    /// it (then [`Store::open`] explains why it cannot be opened).
    pub fn exists(root: impl AsRef<Path>) -> bool {
        let root = root.as_ref();
        root.join(META_FILE).exists() || first_object(root).is_some()
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

/// The path of some stored object under `root/objects`, if there is any.
fn first_object(root: &Path) -> Option<std::path::PathBuf> {
    let objects = root.join("objects");
    for i in 0..=255u8 {
        let Ok(rd) = fs::read_dir(objects.join(hex::encode([i]))) else {
            continue;
        };
        if let Some(Ok(e)) = rd.into_iter().next() {
            return Some(e.path());
        }
    }
    None
}

/// Refuses a store whose metadata database is missing or empty while objects are stored:
/// opening it would create an empty database and orphan every object silently.
pub(crate) fn refuse_orphaned_objects(root: &Path) -> Result<()> {
    let meta = root.join(META_FILE);
    let state = match fs::metadata(&meta) {
        Ok(m) if m.len() > 0 => return Ok(()),
        Ok(_) => "is empty",
        Err(e) if e.kind() == io::ErrorKind::NotFound => "is missing",
        Err(e) => return Err(PfsError::io(&meta, e)),
    };
    let Some(object) = first_object(root) else {
        return Ok(());
    };
    Err(PfsError::MetaCorrupt {
        root: root.to_path_buf(),
        reason: format!(
            "the metadata database {} {state}, but objects are stored in {} (e.g. {}): this \
             is not a new store, and opening it would orphan every stored file. Restore \
             {META_FILE} from a backup, or move {} aside to start a new, empty store here",
            meta.display(),
            root.join("objects").display(),
            object.display(),
            root.join("objects").display(),
        ),
    })
}

/// The directories the store and the engine keep directly in the store directory.
const KNOWN_DIRS: [&str; 3] = ["objects", "scratch", "lost+found"];

/// Tightens the store's own top-level directories (`objects/`, `scratch/`, `lost+found/`)
/// to 0700; returns how many it changed. Other entries are not the store's to change.
pub(crate) fn tighten_top_level(root: &Path) -> Result<usize> {
    let mut n = 0;
    for d in KNOWN_DIRS {
        n += usize::from(tighten(&root.join(d), DIR_MODE)?);
    }
    Ok(n)
}
