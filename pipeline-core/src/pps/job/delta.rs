//! The O(change) route: a job whose inputs changed at a few paths since its base job.
//!
//! The full walk ([`super::planner`]) visits every datum, looks up the base job's record of
//! it and writes a SKIPPED record per unchanged datum: O(datums) even when one file
//! changed. Here the store says which input paths differ from the base job's inputs
//! ([`crate::pfs::Store::changed_paths`], O(change)), and the plan finds the datums that
//! hold them by point lookups ([`crate::datum::DatumPlan::changed_datums`]: for a cross,
//! the changed input's datums there crossed with every datum of the others); no other
//! datum can differ. The
//! job visits only those (each is skipped or runs against the base's record, as in the full
//! walk), and shows every other datum through its root's records (see `pps/inherited.rs`):
//! it writes its own records, the records its base made over the same root (carried on, as
//! skipped), and a gone marker per datum whose input is no longer there (whose outputs it
//! deletes). Its counters count the datums it shows but did not visit as skipped, and its
//! output commit starts from the base's output as every job's does. A new output that lands
//! on a path an unvisited datum wrote is found by lookups in the base's output as the datum
//! is recorded (`collector::DeltaPaths`), and named as the full walk names it
//! ([`Engine::conflict_message`]).
//!
//! A job none of whose inputs changed is the same with nothing to visit: it finishes at once.
//!
//! Taken only when it is exact; everything else walks in full: a job without a base, a
//! different pipeline version than the base's (a spec or salt change), `every_job` (and
//! `s3_out`, services), a failed-only rerun, a base that shows a failed or recovered datum
//! (it would run again), a changed input whose datums cannot be found from paths (join,
//! group, a `/` glob, cron, inputs nested in a cross; a union of inputs that can is found
//! through each of them, see [`crate::datum::PointPlan`]), a change crossed with more than
//! [`crate::datum::MAX_PRODUCT`] datums, more than [`CANDIDATES`] changed paths, more than
//! [`MAX_CARRIED`] records to carry on, and a resumed job that already recorded datums.

use std::collections::HashSet;
use std::time::Instant;

use crate::datum::{Datum, DatumPlan};
use crate::pfs::OutputBatch;
use crate::spec::ReprocessSpec;

use super::super::Engine;
use super::super::datum_index::record_datum;
use super::super::error::Result;
use super::super::inherited::{RecordsView, records_job, shown_as_skipped};
use super::super::keys::{DatumKey, DatumOrderKey, GoneKey, JobKey, RecordKey};
use super::super::records::{DatumInfo, DatumState, JobInfo, JobStats, PipelineInfo, enc};
use super::super::registry::decode;
use super::collector::RunOutcome;
use super::millis;
use super::owners::Owners;
use super::planner::{DeltaPlan, processed};

/// Changed paths read per input before giving up on the O(change) route (the job walks).
pub(super) const CANDIDATES: usize = 1024;

/// Records and gone markers a job carries on from its base at most; past that the job
/// walks in full and becomes a root itself (so the carried part stays small).
pub(super) const MAX_CARRIED: usize = 65_536;

/// Whether jobs of `pinfo` run every datum every time (`every_job`, `s3_out`, services).
pub(super) fn skips_nothing(pinfo: &PipelineInfo) -> bool {
    let spec = &pinfo.effective;
    spec.reprocess_spec == ReprocessSpec::EveryJob || spec.s3_out || spec.service.is_some()
}

/// An input repo's name and its paths that changed since the base job.
type ChangedInput = (String, Vec<String>);

/// What a job that records only what changed visits, found before it runs.
pub(super) struct Delta {
    /// The job whose records show through.
    root: String,
    /// The datums that hold a changed path and are in the new trees, in plan order.
    datums: Vec<Datum>,
    /// The base's records of datums whose input is gone.
    gone: Vec<DatumInfo>,
}

impl Delta {
    /// Whether the job visits no datum and deletes nothing (none of its inputs changed).
    pub(super) fn visits_nothing(&self) -> bool {
        self.datums.is_empty() && self.gone.is_empty()
    }
}

impl Engine {
    /// What `job` visits when it can record only what changed since `base` (see the module
    /// docs), or `None` when it walks in full.
    ///
    /// Blocking: store reads (and, once for a root recorded before the datum order index,
    /// its index).
    pub(super) fn delta_since(
        &self,
        job: &JobInfo,
        pinfo: &PipelineInfo,
        base: Option<&JobInfo>,
        plan: &DatumPlan,
    ) -> Result<Option<Delta>> {
        let Some(base) = base.filter(|_| self.inner.skip_unchanged) else {
            return Ok(None);
        };
        if job.salvage_from.is_some() || skips_nothing(pinfo) || base.version != job.version {
            return Ok(None);
        }
        let own = DatumKey::of_job(&job.pipeline, &job.id);
        if job.restarts > 0 && self.store().engine_scan(own.as_bytes())?.next().is_some() {
            return Ok(None);
        }
        let Some(changed) = self.changed_inputs(job, base)? else {
            return Ok(None);
        };
        let root = records_job(base).to_string();
        if self.shows_unfinished_datums(base, &root)? || self.carried_count(base)? > MAX_CARRIED {
            return Ok(None);
        }
        let view = RecordsView::of(base);
        let mut delta = Delta {
            root,
            datums: Vec::new(),
            gone: Vec::new(),
        };
        if changed.is_empty() {
            return Ok(Some(delta));
        }
        if !self.find_changed(plan, &changed, &view, &mut delta)? {
            return Ok(None);
        }
        Ok(Some(delta))
    }

    /// Puts in `delta` the datums of `plan` that hold a `changed` path, in plan order, and
    /// the base's records (through `view`) of the datums there that are gone; `false` when
    /// they cannot be found from paths (the job walks).
    ///
    /// Blocking: store reads.
    fn find_changed(
        &self,
        plan: &DatumPlan,
        changed: &[ChangedInput],
        view: &RecordsView,
        delta: &mut Delta,
    ) -> Result<bool> {
        let Some(found) = plan.changed_datums(changed) else {
            return Ok(false);
        };
        let get = |k: &[u8]| self.store().engine_get(k);
        for id in found.maybe_gone {
            delta.gone.extend(view.record(get, &id.to_hex())?);
        }
        delta.datums = found.datums;
        Ok(true)
    }

    /// Per input repo, the paths that differ between `job`'s input commits and `base`'s
    /// (only the repos with a change); `None` when they cannot be compared within
    /// [`CANDIDATES`] paths.
    fn changed_inputs(&self, job: &JobInfo, base: &JobInfo) -> Result<Option<Vec<ChangedInput>>> {
        if job.inputs.len() != base.inputs.len() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for new in &job.inputs {
            let Some(old) = base.inputs.iter().find(|c| c.repo == new.repo) else {
                return Ok(None);
            };
            // A base input commit that is gone (its set squashed) cannot be compared: walk.
            match self.store().changed_paths(old, new, CANDIDATES) {
                Ok(Some(changed)) if changed.is_empty() => {}
                Ok(Some(changed)) => out.push((new.repo.name.clone(), changed)),
                _ => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Whether `base` shows a failed or recovered datum (its own or its root's): such a
    /// datum runs again, which only the full walk finds.
    fn shows_unfinished_datums(&self, base: &JobInfo, root: &str) -> Result<bool> {
        self.ensure_datum_order(&base.pipeline, root)?;
        for job in [root, base.id.as_str()] {
            for state in [DatumState::Failed, DatumState::Recovered] {
                let entries = DatumOrderKey::of_state(&base.pipeline, job, state);
                if self
                    .store()
                    .engine_scan(entries.as_bytes())?
                    .next()
                    .is_some()
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// How many records and gone markers `base` holds over its root (0 for a root),
    /// counted up to just past [`MAX_CARRIED`].
    fn carried_count(&self, base: &JobInfo) -> Result<usize> {
        if base.datums_from.is_none() {
            return Ok(0);
        }
        let mut n = 0;
        for prefix in [
            DatumKey::of_job(&base.pipeline, &base.id),
            GoneKey::of_job(&base.pipeline, &base.id),
        ] {
            n += self
                .store()
                .engine_scan(prefix.as_bytes())?
                .take(MAX_CARRIED + 1)
                .count();
        }
        Ok(n)
    }

    /// Starts `job` as one that records only what changed since `base`: in one
    /// transaction, its record (showing `delta`'s root, counting the datums it does not
    /// visit as skipped), the records and gone markers it carries on from `base` (those of
    /// datums it does not visit) and the gone markers of `delta`'s gone datums. Returns what
    /// its planner visits.
    ///
    /// Blocking: store reads and one write.
    pub(super) fn start_delta(
        &self,
        job: &mut JobInfo,
        base: &JobInfo,
        delta: Delta,
    ) -> Result<DeltaPlan> {
        let store = self.store();
        let pipeline = job.pipeline.clone();
        let base_view = RecordsView::of(base);
        let get = |k: &[u8]| store.engine_get(k);
        let visited: HashSet<String> = delta.datums.iter().map(|d| d.id().to_hex()).collect();
        let mut shown_visited = 0u64;
        for id in &visited {
            if base_view.record(get, id)?.is_some() {
                shown_visited += 1;
            }
        }
        let gone: HashSet<&str> = delta.gone.iter().map(|d| d.id.as_str()).collect();
        let mut batch = OutputBatch::default();
        if base.datums_from.is_some() {
            let prefix = DatumKey::of_job(&pipeline, &base.id);
            for kv in store.engine_scan(prefix.as_bytes())? {
                let (k, v) = kv?;
                let info: DatumInfo = decode(&k, &v)?;
                if !visited.contains(&info.id) && !gone.contains(info.id.as_str()) {
                    record_datum(&mut batch, &pipeline, &job.id, &shown_as_skipped(info));
                }
            }
            let prefix = GoneKey::of_job(&pipeline, &base.id);
            for kv in store.engine_scan(prefix.as_bytes())? {
                let (k, _) = kv?;
                let id = String::from_utf8_lossy(prefix.rest(&k).unwrap_or_default()).into_owned();
                if !visited.contains(&id) {
                    batch.records.push((
                        GoneKey::new(&pipeline, &job.id, &id).encode(),
                        Some(Vec::new()),
                    ));
                }
            }
        }
        for d in &delta.gone {
            let key = GoneKey::new(&pipeline, &job.id, &d.id).encode();
            batch.records.push((key, Some(Vec::new())));
        }
        let inherited = base
            .stats
            .datums_total
            .saturating_sub(shown_visited + delta.gone.len() as u64);
        job.datums_from = Some(delta.root);
        job.stats = JobStats {
            datums_skipped: inherited,
            ..Default::default()
        };
        batch
            .records
            .push((JobKey::new(&pipeline, &job.id).encode(), Some(enc(&*job))));
        store.commit_batch(None, &batch)?;
        Ok(DeltaPlan {
            datums: delta.datums,
            inherited,
            gone_outputs: delta
                .gone
                .into_iter()
                .filter(|d| processed(d.state))
                .flat_map(|d| d.outputs)
                .collect(),
            base_output: base.output_commit.clone(),
        })
    }

    /// Finishes `job`, which visits no datum (its inputs are `base`'s trees): it shows its
    /// root's records and those carried on, counts them all skipped and finishes its output
    /// commit (and egress) as a job that ran no datum.
    pub(super) async fn finish_unvisited(
        &self,
        mut job: JobInfo,
        base: &JobInfo,
        delta: Delta,
        planning: Instant,
    ) -> Result<JobInfo> {
        self.start_delta(&mut job, base, delta)?;
        let total = base.stats.datums_total;
        job.stats = JobStats {
            datums_total: total,
            datums_skipped: total,
            plan_ms: millis(planning),
            ..Default::default()
        };
        job.planned = true;
        self.put_job(&job)?;
        self.finish_run(job, RunOutcome::default()).await
    }

    /// The full walk's message for `datum`'s output `path` clashing with an output of a
    /// datum `job` shows: that datum claims its outputs first (it is skipped, so reported
    /// before any datum that runs), then `datum` claims `path`.
    ///
    /// Blocking: a scan of the records the job shows (only when a job has such a conflict).
    pub(super) fn conflict_message(
        &self,
        job: &JobInfo,
        path: &str,
        datum: &str,
    ) -> Result<String> {
        let related = |o: &str| {
            o == path || path.starts_with(&format!("{o}/")) || o.starts_with(&format!("{path}/"))
        };
        for d in RecordsView::of(job).scan(self.store())? {
            let d = d?;
            if d.id == datum || !processed(d.state) || !d.outputs.iter().any(|o| related(o)) {
                continue;
            }
            let mut owners = Owners::default();
            for o in &d.outputs {
                owners.claim(o, &d.id);
            }
            if let Some(c) = owners.claim(path, datum) {
                return Ok(c);
            }
        }
        Ok(format!(
            "duplicate path output by different datums ({path} from an earlier datum and {path} from {datum})"
        ))
    }
}
