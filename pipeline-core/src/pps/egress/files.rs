//! Egress to a local directory (`file:///DIR`): every file of the output at `DIR/<path>`,
//! streamed into a temp file beside it, synced, then renamed over it, so a reader of `DIR`
//! sees each file whole or not at all. Files already in `DIR` that the output lacks are left
//! alone (as object-storage egress leaves other keys).

use std::io::Write;
use std::path::Path;

use super::{EgressError, Source};
use crate::pfs::PfsError;

/// Writes every file of the output commit under `dir`; returns how many.
pub(super) fn push(dir: &Path, src: &Source<'_>) -> Result<u64, EgressError> {
    let mut written = 0;
    for path in src.files()? {
        let path = path?;
        src.check_cancel()?;
        let rel = path.trim_start_matches('/');
        let dest = dir.join(rel);
        write_one(src, &path, &dest)?;
        written += 1;
    }
    Ok(written)
}

/// Streams one output file to `dest` through a temp file and a rename.
fn write_one(src: &Source<'_>, path: &str, dest: &Path) -> Result<(), EgressError> {
    let failed = |source| EgressError::Write {
        dest: dest.display().to_string(),
        source,
    };
    let parent = dest.parent().unwrap_or(dest);
    std::fs::create_dir_all(parent).map_err(failed)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.egress-{}", std::process::id()));
    let result = (|| {
        let mut reader = src.open(path)?;
        let mut out = std::fs::File::create(&tmp).map_err(failed)?;
        std::io::copy(&mut reader, &mut out).map_err(|e| read_or_write(path, dest, e))?;
        out.flush().map_err(failed)?;
        out.sync_all().map_err(failed)?;
        std::fs::rename(&tmp, dest).map_err(failed)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A failed copy: the store's read error when the stream carried one (a damaged object),
/// else the write's.
pub(super) fn read_or_write(path: &str, dest: &Path, e: std::io::Error) -> EgressError {
    if PfsError::from_io(&e).is_some() {
        return EgressError::Read {
            path: path.to_string(),
            source: PfsError::unwrap_io(Path::new(path), e),
        };
    }
    EgressError::Write {
        dest: dest.display().to_string(),
        source: e,
    }
}
