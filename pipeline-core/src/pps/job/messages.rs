//! What flows inside a job: datums to run (planner → workers) and reports (planner and
//! workers → collector), in one ordered stream per job.

use crate::datum::Datum;
use crate::executor::LogStream;
use crate::hash::ContentHash;

use super::super::records::{DatumInfo, DatumReason};

/// An output file to record: path, size, content hash.
pub(super) type Put = (String, u64, ContentHash);

/// A datum to run.
pub(super) struct Todo {
    /// The datum, with its inputs.
    pub datum: Datum,
    /// Its ID (hex).
    pub id: String,
    /// Its hash with the pipeline's salt (hex).
    pub hash: String,
    /// Why it runs.
    pub reason: DatumReason,
    /// It is the last datum of its datum set (the channel closing also ends a set).
    pub set_end: bool,
}

/// What a worker reports for one datum.
pub(super) struct Done {
    /// The datum's record.
    pub info: DatumInfo,
    /// The files it wrote (empty unless it succeeded).
    pub puts: Vec<Put>,
    /// Its log lines: timestamp (ms), stream, text.
    pub logs: Vec<(u64, LogStream, String)>,
    /// The job was stopped while the datum ran: nothing is recorded for it.
    pub cancelled: bool,
}

/// How many datums' reports may wait for the collector at once: a worker takes a permit per
/// datum of a finished set before sending it, and the collector releases them once it took
/// the set in. The report channel counts messages, and a set is one message of up to
/// `MAX_SET_DATUMS` datums, so without this bound a collector slower than its workers let
/// every finished set of the job wait in memory (a 1,000,000-datum null job peaked at
/// 270 MiB; 122-124 MiB with it, `benches/README.md`).
pub(super) struct ReportBacklog(std::sync::Arc<tokio::sync::Semaphore>);

impl ReportBacklog {
    /// Datums whose reports may wait at once: one largest set.
    const DATUMS: usize = super::datum_sets::MAX_SET_DATUMS as usize;

    pub(super) fn new() -> Self {
        ReportBacklog(std::sync::Arc::new(tokio::sync::Semaphore::new(
            Self::DATUMS,
        )))
    }

    /// Waits until `datums` more reports may wait (a set larger than the bound waits for
    /// the whole backlog to drain); `None` when the backlog is closed.
    pub(super) async fn admit(&self, datums: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = u32::try_from(datums.clamp(1, Self::DATUMS)).unwrap_or(1);
        self.0.clone().acquire_many_owned(n).await.ok()
    }
}

/// What the planner and the workers report to a job's collector, in one ordered stream.
pub(super) enum Msg {
    /// Nothing arrived for [`super::collector::FLUSH_EVERY`]: time to flush what is pending.
    Tick,
    /// A worker finished a datum set: its datums' reports, committed together (none of
    /// them when one was cancelled), with the share of the job's report backlog they hold
    /// (see [`ReportBacklog`]; released once the collector took them in).
    Set(Vec<Done>, Option<tokio::sync::OwnedSemaphorePermit>),
    /// An unchanged datum: recorded as skipped, its outputs kept (and claimed).
    Skipped {
        /// Its record.
        info: Box<DatumInfo>,
        /// Its outputs' file entries when they come from a job whose tree this job does not
        /// start from (a failed-only rerun's salvage job); empty otherwise.
        puts: Vec<Put>,
    },
    /// Outputs of the base job's version of a datum that runs again: deleted unless this job
    /// already wrote the path.
    Deletes(Vec<String>),
    /// Datums planned so far; `done` once the plan was walked to its end.
    Planned {
        /// Datums planned so far.
        total: u64,
        /// The plan was walked to its end.
        done: bool,
    },
    /// The plan could not be walked (the job fails).
    PlanFailed(String),
}

#[cfg(test)]
mod tests {
    use super::ReportBacklog;

    /// A worker with a finished set waits while one largest set's worth of reports waits for
    /// the collector, and goes on once the collector took it in.
    #[tokio::test]
    async fn a_full_backlog_holds_the_next_set_until_one_is_taken_in() {
        let backlog = ReportBacklog::new();
        let first = backlog.admit(ReportBacklog::DATUMS - 10).await.unwrap();
        let small = backlog.admit(10).await.unwrap();
        let waiting = backlog.admit(5);
        tokio::pin!(waiting);
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting).await;
        assert!(blocked.is_err(), "admitted past the bound");
        drop(small);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), &mut waiting)
            .await
            .expect("admitted once reports were taken in");
        assert!(third.is_some());
        drop(first);
        // A set larger than the bound waits for the whole backlog, then goes.
        let huge = backlog.admit(10 * ReportBacklog::DATUMS);
        tokio::pin!(huge);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut huge)
                .await
                .is_err()
        );
        drop(third);
        assert!(huge.await.is_some());
    }
}
