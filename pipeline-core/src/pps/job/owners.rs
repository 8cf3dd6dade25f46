//! Output ownership: which datum of a job wrote each output path, to detect two datums
//! writing one path or a file/directory clash. What stays in memory per output file and
//! parent directory is a 16-byte path hash and a 32-byte datum ID.

use std::collections::HashMap;

/// Output ownership, to detect two datums writing one path or a file/directory clash. Keys
/// are 128-bit hashes of paths, values binary datum IDs (hex IDs are 64 characters).
#[derive(Default)]
pub(super) struct Owners {
    files: HashMap<u128, DatumId>,
    dirs: HashMap<u128, DatumId>,
}

/// A datum ID in binary (IDs are BLAKE2b-256 hex; anything else is kept by its hash).
#[derive(Clone, Copy, PartialEq, Eq)]
struct DatumId([u8; 32]);

impl DatumId {
    fn of(hex_id: &str) -> DatumId {
        let mut b = [0u8; 32];
        if hex::decode_to_slice(hex_id, &mut b).is_err() {
            b = *blake3::hash(hex_id.as_bytes()).as_bytes();
        }
        DatumId(b)
    }
}

impl std::fmt::Display for DatumId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The 128-bit key of a path in [`Owners`].
fn path_key(path: &str) -> u128 {
    let h = blake3::hash(path.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.as_bytes()[..16]);
    u128::from_le_bytes(k)
}

impl Owners {
    /// Records `path` for `datum`; returns a conflict message naming both datums.
    pub(super) fn claim(&mut self, path: &str, datum: &str) -> Option<String> {
        let me = DatumId::of(datum);
        let key = path_key(path);
        if let Some(other) = self.files.get(&key)
            && *other != me
        {
            return Some(format!(
                "duplicate path output by different datums ({path} from {other} and {path} from {datum})"
            ));
        }
        if let Some(other) = self.dirs.get(&key)
            && *other != me
        {
            return Some(format!(
                "file / directory path collision ({path}): a file from datum {datum}, a directory from datum {other}"
            ));
        }
        let mut dir = path;
        while let Some(i) = dir.rfind('/') {
            dir = &dir[..i];
            if dir.is_empty() {
                break;
            }
            let dkey = path_key(dir);
            if let Some(other) = self.files.get(&dkey)
                && *other != me
            {
                return Some(format!(
                    "file / directory path collision ({dir}): a file from datum {other}, a directory from datum {datum}"
                ));
            }
            self.dirs.entry(dkey).or_insert(me);
        }
        self.files.insert(key, me);
        None
    }

    /// Whether some datum of this job wrote `path`.
    pub(super) fn owns(&self, path: &str) -> bool {
        self.files.contains_key(&path_key(path))
    }
}
