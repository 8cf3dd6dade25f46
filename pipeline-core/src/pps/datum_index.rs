//! The order index of a job's datums (`O/` keys, see [`super::keys`]): written with every
//! datum record, rebuilt for jobs recorded before it existed, read by
//! [`Engine::datum_page`](super::Engine::datum_page).
//!
//! Every datum record goes through [`record_datum`], which adds the record, its order entry
//! and the removal of the entry of the record's previous value to one batch (one
//! transaction). A job created since the index exists carries the `I/` marker from its
//! creation; an older job gets its entries on first use ([`Engine::ensure_datum_order`]),
//! in bounded batches, each one transaction that reads the records and writes their entries
//! (so a collector writing records meanwhile cannot leave a stale entry).

use crate::pfs::OutputBatch;
use crate::pfs::meta::prefix_end;

use super::Engine;
use super::error::Result;
use super::keys::{DatumKey, DatumOrderKey, OrderIndexedKey, RecordKey};
use super::records::{DatumInfo, enc};
use super::registry::decode;

/// Datum records indexed per transaction when an old job's index is built.
const BACKFILL_BATCH: usize = 4096;

/// Adds datum `info`'s record in `pipeline@job` and its order entry to `batch` (replacing
/// the entry of a record written before for the same datum).
pub(crate) fn record_datum(batch: &mut OutputBatch, pipeline: &str, job: &str, info: &DatumInfo) {
    let key = DatumKey::new(pipeline, job, &info.id).encode();
    batch.reindex.push((key.clone(), order_key_of_record));
    batch.records.push((key, Some(enc(info))));
    batch.records.push((
        DatumOrderKey::new(pipeline, job, info).encode(),
        Some(Vec::new()),
    ));
}

/// The order key of a stored datum record (`None` when it cannot be read: nothing to
/// remove then).
fn order_key_of_record(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let k = DatumKey::decode(key)?;
    let info: DatumInfo = serde_json::from_slice(value).ok()?;
    Some(DatumOrderKey::new(k.pipeline, k.job, &info).encode())
}

/// The marker write that says `pipeline@job` is indexed from its start.
pub(crate) fn indexed_from_start(pipeline: &str, job: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        OrderIndexedKey::new(pipeline, job).encode(),
        Some(b"1".to_vec()),
    )
}

impl Engine {
    /// Makes sure `pipeline@job` has its order entries: a job recorded before the index
    /// existed gets them now, [`BACKFILL_BATCH`] records per transaction.
    ///
    /// Blocking: store I/O (nothing to do, or one pass over the job's records, once).
    pub(crate) fn ensure_datum_order(&self, pipeline: &str, job: &str) -> Result<()> {
        let marker = OrderIndexedKey::new(pipeline, job).encode();
        if self.store().engine_get(&marker)?.is_some() {
            return Ok(());
        }
        let records = DatumKey::of_job(pipeline, job);
        let end = prefix_end(records.as_bytes());
        let mut start = records.as_bytes().to_vec();
        loop {
            let done = self.store().transact(|txn| -> Result<Option<Vec<u8>>> {
                let batch = txn.engine_scan_range(&start, &end, BACKFILL_BATCH)?;
                for (k, v) in &batch {
                    let info: DatumInfo = decode(k, v)?;
                    txn.engine_put(&DatumOrderKey::new(pipeline, job, &info).encode(), b"")?;
                }
                if batch.len() < BACKFILL_BATCH {
                    txn.engine_put(&marker, b"1")?;
                    return Ok(None);
                }
                Ok(batch.last().map(|(k, _)| {
                    let mut next = k.clone();
                    next.push(0);
                    next
                }))
            })?;
            match done {
                Some(next) => start = next,
                None => return Ok(()),
            }
        }
    }
}
