//! The reason of a job whose datums failed: how many, the first few with how each ended, and
//! the command that reads their logs (issue #18: errors that teach).

use super::super::Engine;
use super::super::datum_pages::DatumQuery;
use super::super::records::{DatumState, JobInfo};

/// Failed datums a job's reason names.
const NAMED: usize = 3;

impl Engine {
    /// `datum ID failed (exit code 3); its logs: pipectl logs ...` for one failed datum;
    /// `N datums failed, first K: ID (exit code 3), ...; their logs: ...` for several. Read
    /// from the job's datum order index (failed datums come first); `fallback` when it
    /// cannot be read.
    ///
    /// Blocking: store reads.
    pub(super) fn failed_datums_reason(&self, job: &JobInfo, fallback: &str) -> String {
        let q = DatumQuery {
            state: Some(DatumState::Failed),
            limit: NAMED,
            ..DatumQuery::default()
        };
        let Ok(page) = self.datum_page(&job.pipeline, &job.id, &q) else {
            return fallback.to_string();
        };
        let named: Vec<String> = page
            .datums
            .iter()
            .map(|d| match &d.failure {
                Some(f) => format!("{} ({f})", d.id),
                None => d.id.clone(),
            })
            .collect();
        if named.is_empty() {
            return fallback.to_string();
        }
        let logs = format!("pipectl logs -p {} --job {} --datum", job.pipeline, job.id);
        let failed = job.stats.datums_failed.max(named.len() as u64);
        if failed == 1 {
            let id = &page.datums[0].id;
            let how = page.datums[0]
                .failure
                .as_ref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            return format!("datum {id} failed{how}; its logs: `{logs} {id}`");
        }
        format!(
            "{failed} datums failed, first {}: {}; their logs: `{logs} ID`",
            named.len(),
            named.join(", ")
        )
    }
}
