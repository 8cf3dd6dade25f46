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
        let key = DatumKey::new(pipeline, job, id).encode();
        if self.store().engine_get(&key)?.is_some() {
            return Ok(id.to_string());
        }
        // A job showing another job's records (see `inherited`) is resolved in those.
        let holder = match self.inspect_job(pipeline, job) {
            Ok(info) => super::inherited::records_job(&info).to_string(),
            Err(_) => job.to_string(),
        };
        let key = DatumKey::new(pipeline, &holder, id).encode();
        if self.store().engine_get(&key)?.is_some() {
            return Ok(id.to_string());
        }
        let prefix = DatumKey::of_job(pipeline, &holder);
        let mut found = Vec::new();
        for kv in self.store().engine_scan(&key)?.take(2) {
            let (k, _) = kv?;
            if let Some(rest) = prefix.rest(&k) {
                found.push(String::from_utf8_lossy(rest).into_owned());
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
