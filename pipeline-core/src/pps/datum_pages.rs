//! A job's datums one page at a time, in the order people read them when something went
//! wrong: failed first, then recovered, then the ones that ran (slowest first), then the
//! skipped ones; optionally only one state. Pages are found by a cursor (the position after
//! the last datum shown), so a page never costs more than its own length.

use serde::{Deserialize, Serialize};

use crate::pfs::EngineReader;
use crate::pfs::meta::prefix_end;

use super::Engine;
use super::error::{PpsError, Result};
use super::keys::{DatumKey, DatumOrderKey, RecordKey};
use super::records::{DatumInfo, DatumState};
use super::registry::decode;

/// The largest page [`Engine::datum_page`] returns.
pub const MAX_DATUM_PAGE: usize = 1000;

/// Which datums [`Engine::datum_page`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumQuery {
    /// Only datums in this state.
    #[serde(default)]
    pub state: Option<DatumState>,
    /// Start after this cursor (a page's `next`, opaque); `None` starts at the first datum.
    #[serde(default)]
    pub after: Option<String>,
    /// Datums per page (1..=[`MAX_DATUM_PAGE`]; 0 means 100).
    #[serde(default)]
    pub limit: usize,
    /// The reading order backwards (skipped first, failed last); `after` then continues
    /// towards the failed ones.
    #[serde(default)]
    pub reverse: bool,
}

/// One page of a job's datums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumPage {
    /// The datums, in reading order (failed, recovered, success slowest first, skipped).
    pub datums: Vec<DatumInfo>,
    /// An opaque cursor, when more datums follow: pass it as `after` for the next page.
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

impl Engine {
    /// One page of a job's datums in reading order (see the module docs). The cursor
    /// (`after`, a page's `next`) is opaque: pass it back as it came. A page costs its own
    /// length, however many datums the job has (a range scan of the job's order index; a
    /// job recorded before that index existed gets it on its first page).
    ///
    /// Blocking: store reads (and, once for an old job, index writes).
    pub fn datum_page(&self, pipeline: &str, job: &str, q: &DatumQuery) -> Result<DatumPage> {
        let info = self.inspect_job(pipeline, job)?;
        let limit = match q.limit {
            0 => 100,
            n => n.min(MAX_DATUM_PAGE),
        };
        if let Some(after) = &q.after
            && !DatumOrderKey::is_position(after)
        {
            return Err(PpsError::Usage(format!(
                "datum page cursor {after:?} is not one this server made: pass a page's `next` as it came"
            )));
        }
        if let Some(root) = &info.datums_from {
            return self.inherited_page(&info, root, q, limit);
        }
        self.own_page(pipeline, job, q, limit)
    }

    /// One page of the datums `job` recorded itself (its order index), as [`Engine::datum_page`].
    ///
    /// Blocking: store reads (and, once for an old job, index writes).
    pub(crate) fn own_page(
        &self,
        pipeline: &str,
        job: &str,
        q: &DatumQuery,
        limit: usize,
    ) -> Result<DatumPage> {
        self.ensure_datum_order(pipeline, job)?;
        let all = DatumOrderKey::of_job(pipeline, job);
        let range = match q.state {
            Some(state) => DatumOrderKey::of_state(pipeline, job, state),
            None => all.clone(),
        };
        let mut start = range.as_bytes().to_vec();
        let mut end = prefix_end(range.as_bytes());
        if let Some(after) = &q.after {
            let mut at = all.as_bytes().to_vec();
            at.extend_from_slice(after.as_bytes());
            if q.reverse {
                end = end.min(at);
            } else {
                at.push(0);
                start = start.max(at);
            }
        }
        let mut page = DatumPage {
            datums: Vec::new(),
            next: None,
        };
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
            let (k, _) = kv?;
            let Some(position) = all.rest(&k).and_then(|p| std::str::from_utf8(p).ok()) else {
                continue;
            };
            let Some(datum) = indexed_datum(&reader, pipeline, job, position)? else {
                continue;
            };
            if page.datums.len() == limit {
                page.next = last;
                break;
            }
            last = Some(position.to_string());
            page.datums.push(datum);
        }
        Ok(page)
    }
}

/// The record an order entry at `position` points to; `None` when the entry is not the
/// record's current position (which a transaction never leaves behind, but a page skips
/// rather than show a datum twice).
fn indexed_datum(
    reader: &EngineReader,
    pipeline: &str,
    job: &str,
    position: &str,
) -> Result<Option<DatumInfo>> {
    let key = DatumKey::new(pipeline, job, DatumOrderKey::datum_of(position)).encode();
    let Some(value) = reader.get(&key)? else {
        return Ok(None);
    };
    let info: DatumInfo = decode(&key, &value)?;
    Ok((DatumOrderKey::position(&info) == position).then_some(info))
}
