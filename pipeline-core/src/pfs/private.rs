//! Owner-only permissions of the store's directories (0700) and metadata files (0600).
//!
//! Everything is created private from the start (a directory with mode 0700, a file with
//! mode 0600, never chmod-ed afterwards from something wider), and an existing store whose
//! directories or files are wider is tightened when it is opened.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::{PfsError, Result};

/// Mode of every directory of the store.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of the store's metadata files (database, lock).
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, or tightens an existing one to
/// 0700 when group or others have any access. Returns whether it tightened something.
pub(crate) fn private_dir(dir: &Path) -> Result<bool> {
    match DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
        Ok(()) => tighten(dir, DIR_MODE),
        Err(e) => Err(PfsError::io(dir, e)),
    }
}

/// Opens (creating it with mode 0600 if absent) a metadata file for reading and writing,
/// tightening an existing one. Returns the file and whether it tightened it.
pub(crate) fn private_file(path: &Path) -> Result<(File, bool)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| PfsError::io(path, e))?;
    let tightened = tighten(path, FILE_MODE)?;
    Ok((f, tightened))
}

/// Sets `path`'s mode to `mode` when group or others have any access to it; logs a warning
/// (and leaves it) when this user may not change it.
pub(crate) fn tighten(path: &Path, mode: u32) -> Result<bool> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(PfsError::io(path, e)),
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return Ok(false);
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) => Ok(true),
        // Not ours to change (another user's store shared through its group): say so.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(path = %path.display(), error = %e,
                "cannot make this store path owner-only; others may be able to read it");
            Ok(false)
        }
        Err(e) => Err(PfsError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_and_tightens_wide() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        assert!(!private_dir(&sub).unwrap());
        for p in [d.path().join("a"), sub.clone()] {
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&sub).unwrap());
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = d.path().join("f");
        let (_, t) = private_file(&f).unwrap();
        assert!(!t);
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(private_file(&f).unwrap().1);
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
