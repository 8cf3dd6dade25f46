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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::{CommitId, RepoRef, Store};
    use crate::pps::keys::JobKey;
    use crate::pps::records::{DatumReason, DatumState, DatumStats, JobInfo, JobState};
    use crate::pps::{DatumQuery, MAX_DATUM_PAGE};

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("store")).expect("store");
        let engine = Engine::builder(store).build().expect("engine");
        (dir, engine)
    }

    /// A job record `p@j`, with the index marker of a job created since the index exists
    /// when `indexed`.
    fn job(engine: &Engine, indexed: bool) {
        let commit = RepoRef::new("p")
            .expect("repo")
            .commit(&CommitId::generate());
        let job = JobInfo {
            pipeline: "p".into(),
            id: "j".into(),
            version: 1,
            state: JobState::JobRunning,
            reason: String::new(),
            output_commit: commit,
            inputs: Vec::new(),
            base_job: None,
            salvage_from: None,
            datums_from: None,
            stats: Default::default(),
            planned: false,
            restarts: 0,
            created_ms: 1,
            started_ms: None,
            finished_ms: None,
            egress: None,
        };
        let mut writes = vec![(JobKey::new("p", "j").encode(), Some(enc(&job)))];
        if indexed {
            writes.push(indexed_from_start("p", "j"));
        }
        engine.store().engine_write(writes).expect("job");
    }

    fn datum(n: u64, state: DatumState, process_us: u64) -> DatumInfo {
        DatumInfo {
            id: format!("{n:064x}"),
            hash: String::new(),
            state,
            reason: DatumReason::New,
            failure: None,
            job: "j".into(),
            attempts: 1,
            attempt_history: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            stats: DatumStats {
                process_us,
                ..Default::default()
            },
            host: None,
        }
    }

    fn all_pages(engine: &Engine, limit: usize) -> Vec<DatumInfo> {
        let mut out = Vec::new();
        let mut q = DatumQuery {
            limit,
            ..Default::default()
        };
        loop {
            let page = engine.datum_page("p", "j", &q).expect("page");
            assert!(page.datums.len() <= limit);
            out.extend(page.datums);
            match page.next {
                Some(next) => q.after = Some(next),
                None => return out,
            }
        }
    }

    #[test]
    fn a_datum_recorded_again_leaves_no_stale_entry() {
        let (_dir, engine) = engine();
        job(&engine, true);
        let store = engine.store();
        // Recorded failed, then again (a resumed run) as a success: in one batch, and in a
        // later one.
        let mut batch = OutputBatch::default();
        record_datum(&mut batch, "p", "j", &datum(1, DatumState::Failed, 5));
        record_datum(&mut batch, "p", "j", &datum(1, DatumState::Recovered, 6));
        store.commit_batch(None, &batch).expect("first batch");
        let mut batch = OutputBatch::default();
        record_datum(&mut batch, "p", "j", &datum(1, DatumState::Success, 7));
        record_datum(&mut batch, "p", "j", &datum(2, DatumState::Skipped, 0));
        store.commit_batch(None, &batch).expect("second batch");

        let entries: Vec<_> = store
            .engine_scan(DatumOrderKey::of_job("p", "j").as_bytes())
            .expect("scan")
            .collect::<crate::pfs::Result<_>>()
            .expect("entries");
        assert_eq!(entries.len(), 2, "one entry per datum");
        let page = all_pages(&engine, 10);
        let states: Vec<_> = page.iter().map(|d| d.state).collect();
        assert_eq!(states, [DatumState::Success, DatumState::Skipped]);
    }

    #[test]
    fn an_old_job_gets_its_index_in_batches_on_first_use() {
        let (_dir, engine) = engine();
        job(&engine, false);
        // Records written without index entries (as before the index existed), more than
        // one backfill batch of them.
        let n = BACKFILL_BATCH as u64 * 2 + 17;
        let states = [DatumState::Skipped, DatumState::Success, DatumState::Failed];
        let writes = (0..n)
            .map(|i| {
                let d = datum(i, states[(i % 3) as usize], i % 1000);
                (DatumKey::new("p", "j", &d.id).encode(), Some(enc(&d)))
            })
            .collect();
        engine.store().engine_write(writes).expect("records");

        let q = DatumQuery {
            state: Some(DatumState::Failed),
            limit: MAX_DATUM_PAGE + 5,
            ..Default::default()
        };
        let page = engine.datum_page("p", "j", &q).expect("page");
        assert_eq!(page.datums.len(), MAX_DATUM_PAGE);
        assert!(page.datums.iter().all(|d| d.state == DatumState::Failed));
        let marker = OrderIndexedKey::new("p", "j").encode();
        assert!(engine.store().engine_get(&marker).expect("get").is_some());

        let all = all_pages(&engine, 997);
        assert_eq!(all.len() as u64, n);
        let keys: Vec<_> = all.iter().map(DatumOrderKey::position).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "reading order, no repeats"
        );
        assert_eq!(all[0].state, DatumState::Failed);
        assert_eq!(all[0].stats.process_us, 999, "slowest failed datum first");
    }
}
