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

/// What the planner and the workers report to a job's collector, in one ordered stream.
pub(super) enum Msg {
    /// Nothing arrived for [`super::collector::FLUSH_EVERY`]: time to flush what is pending.
    Tick,
    /// A worker finished a datum set: its datums' reports, committed together (none of
    /// them when one was cancelled).
    Set(Vec<Done>),
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
