//! The O(change) route for a job none of whose inputs changed since its base job.
//!
//! The full walk ([`super::planner`]) visits every datum, looks up the base job's record of
//! it and writes a SKIPPED record per unchanged datum: O(datums) even when nothing changed.
//! Here the store says, from the layers the input commits do not share with the base job's
//! ([`crate::pfs::Store::changed_paths`], O(change)), whether any input tree differs. When
//! none does and the base has nothing left to re-run, the plan is the base's plan datum for
//! datum (same trees, same pipeline version, so the same IDs and hashes) and the full walk
//! would skip every datum, delete nothing and write no output. The job then records no
//! datum at all: it shows its root's records as skipped (see `pps/inherited.rs`), its
//! counters are the base's total, all skipped, and its output commit is finished as the
//! full walk would finish it (no change on top of the base's output, so the same tree and
//! hash).
//!
//! Taken only when it is exact; everything else walks in full: a job without a base, a
//! different pipeline version than the base's (a spec or salt change), `every_job` (and
//! `s3_out`, services), a failed-only rerun, a base whose records hold a failed or recovered
//! datum (it would run again), an input that changed (or whose change could not be read
//! within [`CANDIDATES`] paths), and a resumed job that already recorded datums of its own.

use std::time::Instant;

use crate::spec::ReprocessSpec;

use super::super::Engine;
use super::super::error::Result;
use super::super::inherited::records_job;
use super::super::keys::{DatumKey, DatumOrderKey};
use super::super::records::{DatumState, JobInfo, JobStats, PipelineInfo};
use super::collector::RunOutcome;
use super::millis;

/// Candidate paths read per input before giving up on the O(change) route (an input with a
/// change, or with puts that restored what was there, walks in full).
pub(super) const CANDIDATES: usize = 64;

/// Whether jobs of `pinfo` run every datum every time (`every_job`, `s3_out`, services).
pub(super) fn skips_nothing(pinfo: &PipelineInfo) -> bool {
    let spec = &pinfo.effective;
    spec.reprocess_spec == ReprocessSpec::EveryJob || spec.s3_out || spec.service.is_some()
}

impl Engine {
    /// The root job whose records `job` can show instead of walking its datums (see the
    /// module docs), or `None` when the job walks in full.
    ///
    /// Blocking: store reads (and, once for a root recorded before the datum order index,
    /// its index).
    pub(super) fn unchanged_since(
        &self,
        job: &JobInfo,
        pinfo: &PipelineInfo,
        base: Option<&JobInfo>,
    ) -> Result<Option<String>> {
        let Some(base) = base.filter(|_| self.inner.skip_unchanged) else {
            return Ok(None);
        };
        if job.salvage_from.is_some() || skips_nothing(pinfo) || base.version != job.version {
            return Ok(None);
        }
        if job.restarts > 0 && job.datums_from.is_none() {
            let own = DatumKey::of_job(&job.pipeline, &job.id);
            if self.store().engine_scan(own.as_bytes())?.next().is_some() {
                return Ok(None);
            }
        }
        if job.inputs.len() != base.inputs.len() {
            return Ok(None);
        }
        for new in &job.inputs {
            let Some(old) = base.inputs.iter().find(|c| c.repo == new.repo) else {
                return Ok(None);
            };
            // A base input commit that is gone (its set squashed) cannot be compared: walk.
            match self.store().changed_paths(old, new, CANDIDATES) {
                Ok(Some(changed)) if changed.is_empty() => {}
                _ => return Ok(None),
            }
        }
        let root = records_job(base);
        self.ensure_datum_order(&job.pipeline, root)?;
        for state in [DatumState::Failed, DatumState::Recovered] {
            let entries = DatumOrderKey::of_state(&job.pipeline, root, state);
            if self
                .store()
                .engine_scan(entries.as_bytes())?
                .next()
                .is_some()
            {
                return Ok(None);
            }
        }
        Ok(Some(root.to_string()))
    }

    /// Finishes `job`, whose inputs are the trees of `base`'s, without visiting a datum: it
    /// shows `root`'s records, counts them all skipped and finishes its output commit (and
    /// egress) as a job that ran no datum.
    pub(super) async fn finish_unchanged(
        &self,
        mut job: JobInfo,
        base: &JobInfo,
        root: String,
        planning: Instant,
    ) -> Result<JobInfo> {
        let total = base.stats.datums_total;
        job.datums_from = Some(root);
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
}
