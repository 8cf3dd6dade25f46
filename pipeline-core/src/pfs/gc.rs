//! Garbage collection: removing objects that no file entry refers to.
//!
//! Objects become garbage when repos or branches are deleted, when a crash interrupts a put
//! before its metadata is committed, and when datums' outputs are replaced. [`Store::gc`]
//! reads every file entry of every commit (open, finished and errored commits all count, as
//! do the layers of commits whose trees are snapshots) from one consistent view of the
//! metadata, then removes the objects outside that set.
//!
//! Objects written or reused (by a deduplicated put) within the grace period stay: a put for
//! a commit whose metadata is not committed yet, in this process or through another `Store`
//! handle of it, must not lose its object. With nothing else using the store (as with
//! `pipectl gc`, which holds the store's lock), a grace of zero is safe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::error::Result;
use super::meta::Table;
use super::store::Store;
use super::tree::Entry;

/// What a garbage collection found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcStats {
    /// Distinct objects some file entry refers to.
    pub live: u64,
    /// Objects in the object store before collecting.
    pub objects: u64,
    /// Objects removed.
    pub removed: u64,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// Unreferenced objects kept because they are younger than the grace period.
    pub kept_young: u64,
}

impl Store {
    /// Removes every object that no file entry refers to and that was last written or
    /// reused more than `grace` ago (see the module docs). Memory: one 32-byte hash per
    /// distinct live object.
    pub fn gc(&self, grace: Duration) -> Result<GcStats> {
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut stats = GcStats::default();
        let mut live: HashSet<[u8; 32]> = HashSet::new();
        {
            let read = self.inner.meta.read()?;
            for kv in read.scan(Table::Files, &[], &[0xff])? {
                let (_, v) = kv?;
                if let Entry::File { hash, .. } = Entry::decode(&v)? {
                    live.insert(hash.0);
                }
            }
        }
        stats.live = live.len() as u64;
        for obj in self.inner.objects.list() {
            let obj = obj?;
            stats.objects += 1;
            if live.contains(&obj.hash.0) {
                continue;
            }
            if obj.modified > cutoff {
                stats.kept_young += 1;
                continue;
            }
            self.inner.objects.remove(&obj.hash)?;
            stats.removed += 1;
            stats.bytes_removed += obj.size;
        }
        Ok(stats)
    }
}
