//! Job IDs as users type them: the full ID, or a prefix of at least [`MIN_JOB_PREFIX`]
//! characters that names one job of the pipeline.

use super::Engine;
use super::error::{PpsError, Result};
use super::keys::{DatumKey, JobKey, RecordKey};

/// The shortest job ID prefix accepted ([`Engine::resolve_job_id`]).
pub const MIN_JOB_PREFIX: usize = 8;

/// At most this many candidates are named in an "ambiguous prefix" error.
const SHOWN_CANDIDATES: usize = 10;

impl Engine {
    /// The full ID of the job of `pipeline` that `id` names: `id` itself when that job
    /// exists, otherwise the one job whose ID starts with `id`.
    ///
    /// Errors: a prefix shorter than [`MIN_JOB_PREFIX`] or matching several jobs is
    /// [`PpsError::Usage`] (the latter listing the candidates); no match is
    /// [`PpsError::JobNotFound`]; an unknown pipeline is [`PpsError::PipelineNotFound`].
    ///
    /// Blocking: store reads only.
    pub fn resolve_job_id(&self, pipeline: &str, id: &str) -> Result<String> {
        self.inspect_pipeline(pipeline)?;
        let not_found = || PpsError::JobNotFound {
            pipeline: pipeline.to_string(),
            job: id.to_string(),
        };
        if id.is_empty() || id.contains('/') {
            return Err(not_found());
        }
        if self
            .store()
            .engine_get(&JobKey::new(pipeline, id).encode())?
            .is_some()
        {
            return Ok(id.to_string());
        }
        if id.len() < MIN_JOB_PREFIX {
            return Err(PpsError::Usage(format!(
                "job ID prefix {id:?} of pipeline {pipeline:?} is too short: give the full ID or at least {MIN_JOB_PREFIX} characters"
            )));
        }
        let prefix = JobKey::of(pipeline);
        let mut scan = prefix.as_bytes().to_vec();
        scan.extend_from_slice(id.as_bytes());
        let mut found = Vec::new();
        for kv in self.store().engine_scan(&scan)? {
            let (k, _) = kv?;
            if let Some(rest) = prefix.rest(&k) {
                found.push(String::from_utf8_lossy(rest).into_owned());
            }
        }
        match found.len() {
            0 => Err(not_found()),
            1 => Ok(found.remove(0)),
            n => {
                let shown: Vec<String> = found
                    .iter()
                    .take(SHOWN_CANDIDATES)
                    .map(|j| format!("{pipeline}@{j}"))
                    .collect();
                let more = n.saturating_sub(SHOWN_CANDIDATES);
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                Err(PpsError::Usage(format!(
                    "job ID prefix {id:?} is ambiguous: it matches {n} jobs ({}{tail}); give more characters",
                    shown.join(", ")
                )))
            }
        }
    }
}

impl Engine {
    /// The full ID of the datum of `pipeline@job` (a full job ID) that `id` names: `id`
    /// itself when that datum exists, otherwise the one datum whose ID starts with `id`.
    /// Reads at most a few keys, however many datums the job has.
    ///
    /// Errors: no match is [`PpsError::DatumNotFound`]; several are [`PpsError::Usage`].
    ///
    /// Blocking: store reads only.
    pub fn resolve_datum_id(&self, pipeline: &str, job: &str, id: &str) -> Result<String> {
        let not_found = || PpsError::DatumNotFound {
            pipeline: pipeline.to_string(),
            job: job.to_string(),
            datum: id.to_string(),
        };
        if id.is_empty() || id.contains('/') {
            return Err(not_found());
        }
        let view = match self.inspect_job(pipeline, job) {
            Ok(info) => super::inherited::RecordsView::of(&info),
            Err(_) => super::inherited::RecordsView {
                pipeline: pipeline.to_string(),
                job: job.to_string(),
                root: None,
            },
        };
        let get = |k: &[u8]| self.store().engine_get(k);
        if view.record(get, id)?.is_some() {
            return Ok(id.to_string());
        }
        // A prefix: the job's own records, then (for a job showing another job's records,
        // see `inherited`) the root's it does not hide.
        let mut found: Vec<String> = Vec::new();
        let holders = std::iter::once((view.job.as_str(), false))
            .chain(view.root.as_deref().map(|r| (r, true)));
        for (holder, inherited) in holders {
            let prefix = DatumKey::of_job(pipeline, holder);
            let start = DatumKey::new(pipeline, holder, id).encode();
            for kv in self.store().engine_scan(&start)? {
                let (k, _) = kv?;
                let Some(rest) = prefix.rest(&k) else { break };
                let rest = String::from_utf8_lossy(rest).into_owned();
                if inherited && view.hides(get, &rest)? {
                    continue;
                }
                if !found.contains(&rest) {
                    found.push(rest);
                }
                if found.len() > 1 {
                    break;
                }
            }
        }
        match found.len() {
            0 => Err(not_found()),
            1 => Ok(found.remove(0)),
            _ => Err(PpsError::Usage(format!(
                "datum ID prefix {id:?} is ambiguous: it matches several datums of {pipeline}@{job}; give more characters"
            ))),
        }
    }
}
