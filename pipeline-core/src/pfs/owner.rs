//! The owner label of the executor resources (containers, pods) that work for one store.

use std::path::Path;

use super::store::Store;
use crate::hash::ContentHash;

/// This machine's host name: `/etc/hostname`, else `HOSTNAME`, else `unknown-host` (how a
/// store's owner and an engine host name themselves to others).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

impl Store {
    /// `<prefix>-<16 hex digits>`: one label per store directory and host, for the `owner`
    /// of an executor's workers (e.g. `executor_docker::DockerConfig::owner`), so that
    /// cleaning up "leftovers of a crashed run" on connect only ever touches this store's
    /// workers. A store is locked to one process, so any worker carrying this owner when a
    /// process connects was left by an earlier one. Depends on `root` (canonicalised when it
    /// exists) and the `HOSTNAME` environment variable.
    ///
    /// ```
    /// use pipeline_core::pfs::Store;
    /// let label = Store::owner_label("pipectl", std::path::Path::new("/srv/store"));
    /// assert!(label.starts_with("pipectl-") && label.len() == "pipectl-".len() + 16);
    /// assert_eq!(label, Store::owner_label("pipectl", std::path::Path::new("/srv/store")));
    /// ```
    pub fn owner_label(prefix: &str, root: &Path) -> String {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let key = format!("{host}\0{}", root.display());
        let hash = ContentHash::of_bytes(key.as_bytes()).to_hex();
        format!("{prefix}-{}", &hash[..16])
    }
}
