//! Which executors the pipelines of a store use, read from the store without an engine, so a
//! host can connect exactly the backends it needs before building its [`super::Engine`].

use std::collections::BTreeSet;

use crate::pfs::Store;

use super::error::Result;
use super::keys::PipelineKey;
use super::records::PipelineInfo;
use super::registry::decode;

/// The names of the executors ([`crate::executor::Executor::name`]) that the pipelines
/// registered in `store` run on, sorted and without duplicates; empty without pipelines.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let store = pipeline_core::pfs::Store::open(dir.path()).unwrap();
/// assert!(pipeline_core::pps::executors_in_use(&store).unwrap().is_empty());
/// ```
pub fn executors_in_use(store: &Store) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for kv in store.engine_scan(PipelineKey::all().as_bytes())? {
        let (k, v) = kv?;
        let info: PipelineInfo = decode(&k, &v)?;
        names.insert(info.executor);
    }
    Ok(names)
}
