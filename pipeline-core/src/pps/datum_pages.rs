//! A job's datums one page at a time, in the order people read them when something went
//! wrong: failed first, then recovered, then the ones that ran (slowest first), then the
//! skipped ones; optionally only one state. Pages are found by a cursor (the position after
//! the last datum shown), so a page never costs more than its own length.

use serde::{Deserialize, Serialize};

use super::Engine;
use super::error::Result;
use super::records::{DatumInfo, DatumState};

/// The largest page [`Engine::datum_page`] returns.
pub const MAX_DATUM_PAGE: usize = 1000;

/// Which datums [`Engine::datum_page`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumQuery {
    /// Only datums in this state.
    #[serde(default)]
    pub state: Option<DatumState>,
    /// Start after this position (a page's `next`); `None` starts at the first datum.
    #[serde(default)]
    pub after: Option<String>,
    /// Datums per page (1..=[`MAX_DATUM_PAGE`]; 0 means 100).
    #[serde(default)]
    pub limit: usize,
}

/// One page of a job's datums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumPage {
    /// The datums, in reading order (failed, recovered, success slowest first, skipped).
    pub datums: Vec<DatumInfo>,
    /// The position after the last datum, when more follow (pass it as `after`).
    pub next: Option<String>,
}

/// Where a state sorts: failed first, skipped last.
pub fn state_rank(state: DatumState) -> u8 {
    match state {
        DatumState::Failed => 0,
        DatumState::Recovered => 1,
        DatumState::Success => 2,
        DatumState::Skipped => 3,
    }
}

/// A datum's time in this job (download + process + upload), µs.
pub fn datum_time_us(d: &DatumInfo) -> u64 {
    d.stats
        .download_us
        .saturating_add(d.stats.process_us)
        .saturating_add(d.stats.upload_us)
}

/// The position of a datum in reading order, as a string that sorts the same way.
fn position(d: &DatumInfo) -> String {
    format!(
        "{}/{:020}/{}",
        state_rank(d.state),
        u64::MAX - datum_time_us(d),
        d.id
    )
}

impl Engine {
    /// One page of a job's datums in reading order (see the module docs).
    ///
    /// Blocking: store reads only.
    pub fn datum_page(&self, pipeline: &str, job: &str, q: &DatumQuery) -> Result<DatumPage> {
        // A first version that reads the whole job; an index replaces it.
        let limit = match q.limit {
            0 => 100,
            n => n.min(MAX_DATUM_PAGE),
        };
        let mut all: Vec<(String, DatumInfo)> = self
            .list_datums(pipeline, job)?
            .into_iter()
            .filter(|d| q.state.is_none_or(|s| d.state == s))
            .map(|d| (position(&d), d))
            .filter(|(p, _)| q.after.as_ref().is_none_or(|a| p > a))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let more = all.len() > limit;
        all.truncate(limit);
        let next = more.then(|| all.last().map(|(p, _)| p.clone())).flatten();
        Ok(DatumPage {
            datums: all.into_iter().map(|(_, d)| d).collect(),
            next,
        })
    }
}
