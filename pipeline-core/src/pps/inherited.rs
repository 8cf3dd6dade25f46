//! Jobs that show another job's datum records as their own skipped datums.
//!
//! When none of a job's input trees changed since its base job (same pipeline version, no
//! datum of the base left to re-run), every datum would be skipped: the full walk would
//! write one SKIPPED record per datum, O(datums) for a job that changes nothing. Such a job
//! records no datum of its own instead; [`JobInfo::datums_from`] names the job that holds
//! the records (the *root*: the nearest job back that walked its datums), and every reader
//! shows the root's records through [`shown_as_skipped`], exactly as the full walk would
//! have written them (`SKIPPED`, reason `unchanged` from the job that produced the outputs,
//! no attempts, no timings).
//!
//! Readers: [`Engine::inspect_datum`], [`Engine::list_datums`],
//! [`Engine::resolve_datum_id`], [`Engine::datum_page`] (through [`Engine::inherited_page`]),
//! the next job's planner and its deletion of vanished outputs (which read the base's
//! records from [`records_job`]), a failed-only rerun's salvage job, and the removal of a
//! root's commit set, which first hands its records to the jobs that show them
//! ([`hand_records_on`]).

use crate::pfs::StoreTxn;
use crate::pfs::meta::prefix_end;

use super::Engine;
use super::datum_pages::{DatumPage, DatumQuery};
use super::error::Result;
use super::keys::{DatumKey, DatumOrderKey, JobKey, OrderIndexedKey, RecordKey};
use super::records::{DatumInfo, DatumReason, DatumState, DatumStats, JobInfo, enc};
use super::registry::decode;

/// The job whose datum records `job` shows: the root it inherits them from, or itself.
pub(crate) fn records_job(job: &JobInfo) -> &str {
    job.datums_from.as_deref().unwrap_or(&job.id)
}

/// The record `from` (of the root) as the inheriting job shows it: the record the full walk
/// writes for a datum skipped because `from` holds its outputs.
pub(crate) fn shown_as_skipped(from: DatumInfo) -> DatumInfo {
    DatumInfo {
        state: DatumState::Skipped,
        reason: DatumReason::Unchanged {
            from_job: from.job.clone(),
        },
        failure: None,
        attempts: 0,
        attempt_history: Vec::new(),
        stats: DatumStats::default(),
        host: None,
        ..from
    }
}

/// The position every datum shown through inheritance has in reading order (all skipped,
/// no time), before its ID.
fn skipped_position_prefix() -> String {
    format!(
        "{}/{:020}/",
        super::datum_pages::state_rank(DatumState::Skipped),
        u64::MAX
    )
}

impl Engine {
    /// The record of datum `id` that inheriting job `job` shows (`None` when the root has none).
    ///
    /// Blocking: store reads only.
    pub(crate) fn inherited_datum(&self, job: &JobInfo, id: &str) -> Result<Option<DatumInfo>> {
        let Some(root) = &job.datums_from else {
            return Ok(None);
        };
        let key = DatumKey::new(&job.pipeline, root, id).encode();
        match self.store().engine_get(&key)? {
            Some(v) => Ok(Some(shown_as_skipped(decode(&key, &v)?))),
            None => Ok(None),
        }
    }

    /// One page of an inheriting job's datums (see [`Engine::datum_page`]): the root's
    /// records in ID order, all skipped, so the page is a range scan of the root's records
    /// from the cursor's ID, and a query for another state is empty.
    ///
    /// Blocking: store reads only.
    pub(crate) fn inherited_page(
        &self,
        job: &JobInfo,
        root: &str,
        q: &DatumQuery,
        limit: usize,
    ) -> Result<DatumPage> {
        let mut page = DatumPage {
            datums: Vec::new(),
            next: None,
        };
        if q.state.is_some_and(|s| s != DatumState::Skipped) {
            return Ok(page);
        }
        let records = DatumKey::of_job(&job.pipeline, root);
        let mut start = records.as_bytes().to_vec();
        let mut end = prefix_end(records.as_bytes());
        let pre = skipped_position_prefix();
        if let Some(after) = &q.after {
            match after.strip_prefix(&pre) {
                Some(id) => {
                    let mut at = records.as_bytes().to_vec();
                    at.extend_from_slice(id.as_bytes());
                    if q.reverse {
                        end = at;
                    } else {
                        at.push(0);
                        start = at;
                    }
                }
                // A position before every skipped one: all follow it, none precede it.
                None if after.as_str() < pre.as_str() => {
                    if q.reverse {
                        return Ok(page);
                    }
                }
                None => {
                    if !q.reverse {
                        return Ok(page);
                    }
                }
            }
        }
        if start >= end {
            return Ok(page);
        }
        let reader = self.store().engine_reader()?;
        let scan = if q.reverse {
            reader.scan_range_rev(&start, &end)?
        } else {
            reader.scan_range(&start, &end)?
        };
        let mut last = None;
        for kv in scan {
            let (k, v) = kv?;
            let info = shown_as_skipped(decode(&k, &v)?);
            if page.datums.len() == limit {
                page.next = last;
                break;
            }
            last = Some(DatumOrderKey::position(&info));
            page.datums.push(info);
        }
        Ok(page)
    }
}

/// Before the records of job `root` of `pipeline` are removed (its commit set squashed or
/// dropped): the jobs that show them get them. The first such job receives a copy of each
/// record as it shows it (with its order entries) and stops inheriting; the others inherit
/// from it instead. Costs one pass over the root's records, only when someone inherits.
pub(crate) fn hand_records_on(txn: &mut StoreTxn<'_>, pipeline: &str, root: &str) -> Result<()> {
    let jobs = JobKey::of(pipeline);
    let mut heirs: Vec<JobInfo> = Vec::new();
    let (mut start, end) = (jobs.as_bytes().to_vec(), prefix_end(jobs.as_bytes()));
    loop {
        let batch = txn.engine_scan_range(&start, &end, 1024)?;
        for (k, v) in &batch {
            let job: JobInfo = decode(k, v)?;
            if job.datums_from.as_deref() == Some(root) {
                heirs.push(job);
            }
        }
        match batch.last() {
            Some((k, _)) if batch.len() == 1024 => {
                start = k.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    let Some(first) = heirs.first().map(|j| j.id.clone()) else {
        return Ok(());
    };
    let records = DatumKey::of_job(pipeline, root);
    let (mut start, end) = (records.as_bytes().to_vec(), prefix_end(records.as_bytes()));
    loop {
        let batch = txn.engine_scan_range(&start, &end, 4096)?;
        for (k, v) in &batch {
            let info = shown_as_skipped(decode(k, v)?);
            txn.engine_put(
                &DatumKey::new(pipeline, &first, &info.id).encode(),
                &enc(&info),
            )?;
            txn.engine_put(&DatumOrderKey::new(pipeline, &first, &info).encode(), b"")?;
        }
        match batch.last() {
            Some((k, _)) if batch.len() == 4096 => {
                start = k.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    txn.engine_put(&OrderIndexedKey::new(pipeline, &first).encode(), b"1")?;
    for mut heir in heirs {
        heir.datums_from = (heir.id != first).then(|| first.clone());
        txn.engine_put(&JobKey::new(pipeline, &heir.id).encode(), &enc(&heir))?;
    }
    Ok(())
}
