//! Jobs that show another job's datum records as their own skipped datums.
//!
//! When few of a job's input paths changed since its base job (same pipeline version, no
//! datum of the base left to re-run), nearly every datum would be skipped: the full walk
//! would write one SKIPPED record per datum, O(datums) for a job that changes little. Such
//! a job records only what differs instead (see `job/delta.rs`): [`JobInfo::datums_from`]
//! names the job that holds the other records (the *root*: the nearest job back that walked
//! its datums); the job's own records (the datums it ran or skipped, and those its base
//! recorded over the same root, carried on) come first, a *gone* marker ([`GoneKey`])
//! hides a root datum whose input is no longer there, and every other record of the root
//! shows through [`shown_as_skipped`], exactly as the full walk would have written it
//! (`SKIPPED`, reason `unchanged` from the job that produced the outputs, no attempts, no
//! timings). [`RecordsView`] reads a job's records that way.
//!
//! Readers: [`Engine::inspect_datum`], [`Engine::list_datums`],
//! [`Engine::resolve_datum_id`], [`Engine::datum_page`] (through [`Engine::inherited_page`]),
//! the next job's planner and its deletion of vanished outputs, a failed-only rerun's
//! salvage job, and the removal of a root's commit set, which first hands its records to the
//! jobs that show them ([`hand_records_on`]).

use std::iter::Peekable;

use crate::pfs::meta::{KvIter, prefix_end};
use crate::pfs::{Store, StoreTxn};

use super::Engine;
use super::datum_pages::{DatumPage, DatumQuery};
use super::error::Result;
use super::keys::{DatumKey, DatumOrderKey, GoneKey, JobKey, OrderIndexedKey, RecordKey};
use super::records::{DatumInfo, DatumReason, DatumState, DatumStats, JobInfo, enc};
use super::registry::decode;

/// The job whose datum records `job` shows: the root it inherits them from, or itself.
pub(crate) fn records_job(job: &JobInfo) -> &str {
    job.datums_from.as_deref().unwrap_or(&job.id)
}

/// Where a job's datum records are: its own, over its root's when it shows another job's
/// (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordsView {
    /// The pipeline.
    pub pipeline: String,
    /// The job.
    pub job: String,
    /// The root whose records show through, if any.
    pub root: Option<String>,
}

impl RecordsView {
    /// The records `job` shows.
    pub(crate) fn of(job: &JobInfo) -> RecordsView {
        RecordsView {
            pipeline: job.pipeline.clone(),
            job: job.id.clone(),
            root: job.datums_from.clone(),
        }
    }

    /// The record of datum `id` as the job shows it, read through `get` (a store, a
    /// transaction or a read snapshot).
    pub(crate) fn record(
        &self,
        get: impl Fn(&[u8]) -> crate::pfs::Result<Option<Vec<u8>>>,
        id: &str,
    ) -> Result<Option<DatumInfo>> {
        let own = DatumKey::new(&self.pipeline, &self.job, id).encode();
        if let Some(v) = get(&own)? {
            return Ok(Some(decode(&own, &v)?));
        }
        let Some(root) = &self.root else {
            return Ok(None);
        };
        if get(&GoneKey::new(&self.pipeline, &self.job, id).encode())?.is_some() {
            return Ok(None);
        }
        let key = DatumKey::new(&self.pipeline, root, id).encode();
        match get(&key)? {
            Some(v) => Ok(Some(shown_as_skipped(decode(&key, &v)?))),
            None => Ok(None),
        }
    }

    /// Whether the root's datum `id` is hidden: the job has a record of its own or a gone
    /// marker for it.
    pub(crate) fn hides(
        &self,
        get: impl Fn(&[u8]) -> crate::pfs::Result<Option<Vec<u8>>>,
        id: &str,
    ) -> Result<bool> {
        Ok(
            get(&DatumKey::new(&self.pipeline, &self.job, id).encode())?.is_some()
                || get(&GoneKey::new(&self.pipeline, &self.job, id).encode())?.is_some(),
        )
    }

    /// Every record the job shows, in datum ID order, streamed from `store`.
    pub(crate) fn scan(&self, store: &Store) -> Result<ShownRecords> {
        let own = DatumKey::of_job(&self.pipeline, &self.job);
        let (root, gone) = match &self.root {
            Some(root) => (
                Some(store.engine_scan(DatumKey::of_job(&self.pipeline, root).as_bytes())?),
                Some(store.engine_scan(GoneKey::of_job(&self.pipeline, &self.job).as_bytes())?),
            ),
            None => (None, None),
        };
        Ok(ShownRecords {
            own: store.engine_scan(own.as_bytes())?.peekable(),
            own_prefix: own.as_bytes().len(),
            root,
            root_prefix: self
                .root
                .as_ref()
                .map_or(0, |r| DatumKey::of_job(&self.pipeline, r).as_bytes().len()),
            gone: gone.map(Iterator::peekable),
            gone_prefix: GoneKey::of_job(&self.pipeline, &self.job).as_bytes().len(),
            next_root: None,
        })
    }
}

/// The records a job shows, in datum ID order: its own merged with its root's (those it
/// hides left out). See [`RecordsView::scan`].
pub(crate) struct ShownRecords {
    own: Peekable<KvIter>,
    own_prefix: usize,
    root: Option<KvIter>,
    root_prefix: usize,
    gone: Option<Peekable<KvIter>>,
    gone_prefix: usize,
    /// The root record read ahead (not yet shown).
    next_root: Option<(Vec<u8>, Vec<u8>)>,
}

impl ShownRecords {
    /// The next root record not hidden by a gone marker, read ahead into `next_root`.
    fn fill_root(&mut self) -> Result<()> {
        while self.next_root.is_none() {
            let Some(kv) = self.root.as_mut().and_then(Iterator::next) else {
                return Ok(());
            };
            let (k, v) = kv?;
            let id = k[self.root_prefix..].to_vec();
            if let Some(gone) = self.gone.as_mut() {
                while let Some(Ok((g, _))) = gone.peek() {
                    if g[self.gone_prefix..] >= id[..] {
                        break;
                    }
                    gone.next();
                }
                match gone.peek() {
                    Some(Ok((g, _))) if g[self.gone_prefix..] == id[..] => continue,
                    Some(Err(_)) => {
                        if let Some(Err(e)) = gone.next() {
                            return Err(e.into());
                        }
                    }
                    _ => {}
                }
            }
            self.next_root = Some((k, v));
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<DatumInfo>> {
        self.fill_root()?;
        let own_id = match self.own.peek() {
            Some(Ok((k, _))) => Some(k[self.own_prefix..].to_vec()),
            Some(Err(_)) => match self.own.next() {
                Some(Err(e)) => return Err(e.into()),
                _ => None,
            },
            None => None,
        };
        let root_id = self
            .next_root
            .as_ref()
            .map(|(k, _)| k[self.root_prefix..].to_vec());
        let take_own = match (&own_id, &root_id) {
            (None, None) => return Ok(None),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(o), Some(r)) => {
                if o == r {
                    // The job's own record of a root datum replaces it.
                    self.next_root = None;
                }
                o <= r
            }
        };
        if take_own {
            let Some(Ok((k, v))) = self.own.next() else {
                return Ok(None);
            };
            return Ok(Some(decode(&k, &v)?));
        }
        let Some((k, v)) = self.next_root.take() else {
            return Ok(None);
        };
        Ok(Some(shown_as_skipped(decode(&k, &v)?)))
    }
}

impl Iterator for ShownRecords {
    type Item = Result<DatumInfo>;

    fn next(&mut self) -> Option<Result<DatumInfo>> {
        self.step().transpose()
    }
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
    /// One page of an inheriting job's datums (see [`Engine::datum_page`]): its own records'
    /// page merged with the root's records it does not hide (all skipped, in ID order, so
    /// their part is a range scan of the root's records from the cursor's ID). Each part
    /// yields its whole rest or `limit` datums, so the merged page leaves no gap.
    ///
    /// Blocking: store reads only.
    pub(crate) fn inherited_page(
        &self,
        job: &JobInfo,
        root: &str,
        q: &DatumQuery,
        limit: usize,
    ) -> Result<DatumPage> {
        let own = self.own_page(&job.pipeline, &job.id, q, limit)?;
        let (shown, root_more) = self.root_part(job, root, q, limit)?;
        let mut all: Vec<(String, DatumInfo)> = own
            .datums
            .into_iter()
            .map(|d| (DatumOrderKey::position(&d), d))
            .chain(shown)
            .collect();
        all.sort_by(|a, b| match q.reverse {
            false => a.0.cmp(&b.0),
            true => b.0.cmp(&a.0),
        });
        let more = all.len() > limit || own.next.is_some() || root_more;
        all.truncate(limit);
        Ok(DatumPage {
            next: all.last().filter(|_| more).map(|(p, _)| p.clone()),
            datums: all.into_iter().map(|(_, d)| d).collect(),
        })
    }

    /// Up to `limit` of the root's records an inheriting job shows, from the cursor on, with
    /// their positions; and whether more follow.
    fn root_part(
        &self,
        job: &JobInfo,
        root: &str,
        q: &DatumQuery,
        limit: usize,
    ) -> Result<(Vec<(String, DatumInfo)>, bool)> {
        if q.state.is_some_and(|s| s != DatumState::Skipped) {
            return Ok((Vec::new(), false));
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
                        return Ok((Vec::new(), false));
                    }
                }
                None => {
                    if !q.reverse {
                        return Ok((Vec::new(), false));
                    }
                }
            }
        }
        if start >= end {
            return Ok((Vec::new(), false));
        }
        let view = RecordsView::of(job);
        let reader = self.store().engine_reader()?;
        let scan = if q.reverse {
            reader.scan_range_rev(&start, &end)?
        } else {
            reader.scan_range(&start, &end)?
        };
        let mut out = Vec::new();
        for kv in scan {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(records.rest(&k).unwrap_or_default()).into_owned();
            if view.hides(|key| reader.get(key), &id)? {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let info = shown_as_skipped(decode(&k, &v)?);
            out.push((DatumOrderKey::position(&info), info));
        }
        Ok((out, false))
    }
}

/// Before the records of job `root` of `pipeline` are removed (its commit set squashed or
/// dropped): the jobs that show them get them. The first such job (the oldest) receives a
/// copy of each record as it shows it (with its order entries; those it hides are left out,
/// and its gone markers go) and stops inheriting; the others inherit from it instead. A
/// later job's own records include every datum an earlier one's do (each carries its base's
/// on), so what they hide of the first job's records is what they hid of the root's. Costs
/// one pass over the root's records, only when someone inherits.
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
    heirs.sort_by_key(|j| j.created_ms);
    let Some(first) = heirs.first().map(RecordsView::of) else {
        return Ok(());
    };
    let records = DatumKey::of_job(pipeline, root);
    let (mut start, end) = (records.as_bytes().to_vec(), prefix_end(records.as_bytes()));
    loop {
        let batch = txn.engine_scan_range(&start, &end, 4096)?;
        for (k, v) in &batch {
            let info = shown_as_skipped(decode(k, v)?);
            if first.hides(|key| txn.engine_get(key), &info.id)? {
                continue;
            }
            txn.engine_put(
                &DatumKey::new(pipeline, &first.job, &info.id).encode(),
                &enc(&info),
            )?;
            txn.engine_put(
                &DatumOrderKey::new(pipeline, &first.job, &info).encode(),
                b"",
            )?;
        }
        match batch.last() {
            Some((k, _)) if batch.len() == 4096 => {
                start = k.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    txn.engine_delete_prefix(GoneKey::of_job(pipeline, &first.job).as_bytes())?;
    txn.engine_put(&OrderIndexedKey::new(pipeline, &first.job).encode(), b"1")?;
    for mut heir in heirs {
        heir.datums_from = (heir.id != first.job).then(|| first.job.clone());
        txn.engine_put(&JobKey::new(pipeline, &heir.id).encode(), &enc(&heir))?;
    }
    Ok(())
}
