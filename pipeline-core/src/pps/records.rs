//! What the engine stores: pipelines, jobs, datums and log lines (their keys in the store's
//! engine table are in [`super::keys`]). Every record is JSON (readable with `-o json` as is).

use serde::{Deserialize, Serialize};

use crate::executor::PinnedImage;
use crate::pfs::{BranchRef, CommitRef};
use crate::spec::{EffectiveSpec, PipelineSpec};

/// A pipeline as registered in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(from = "StoredPipelineInfo")]
pub struct PipelineInfo {
    /// Pipeline name (also the output repo's name).
    pub name: String,
    /// Project.
    pub project: String,
    /// 1 on create, +1 per update.
    pub version: u64,
    /// The spec of the current version, as given (shown to users).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: PipelineSpec,
    /// The spec of the current version as JSON exactly as given, explicit `null`s included
    /// (they remove defaults): what a change of defaults merges again
    /// ([`Engine::set_defaults`](super::Engine::set_defaults) with `regenerate`). Absent for
    /// records written before defaults existed (then [`PipelineInfo::spec`] stands for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub user_spec_json: Option<serde_json::Value>,
    /// The effective spec of the current version (cluster and project defaults merged under
    /// the spec, then the built-in defaults, once, at registration, with this version's
    /// `salt`): what the engine plans and runs.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub effective: EffectiveSpec,
    /// The salt mixed into every datum hash (kept across updates unless `--reprocess`).
    pub salt: String,
    /// Name of the executor running this pipeline's user code (`process`, `docker`, ...).
    pub executor: String,
    /// Stopped pipelines get no new jobs.
    pub stopped: bool,
    /// The output branch (`<name>@<output_branch>`).
    pub output_branch: BranchRef,
    /// The branches the pipeline reads (direct provenance of the output branch).
    pub inputs: Vec<BranchRef>,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
    /// Last update time, ms since the epoch.
    pub updated_ms: u64,
    /// The image this version runs, resolved to its digest at create/update (absent for
    /// executors without images, and for pipelines created through the blocking API without
    /// [`Engine::pin_images`](super::Engine::pin_images)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<PinnedImage>,
    /// How the spout runs now, for a spout run by the engine answering
    /// ([`Engine::with_spout_status`](super::Engine::with_spout_status)); never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spout_status: Option<super::SpoutStatus>,
}

impl PipelineInfo {
    /// The pipeline's ID: its name in the default project, `project/name` in any other
    /// (see [`pipeline_id`](super::pipeline_id)).
    pub fn id(&self) -> String {
        super::pipeline_id(&self.project, &self.name)
    }

    /// The effective spec of a spec as written without defaults, with the pipeline's `salt`:
    /// how a record stored without an effective spec gets it.
    pub fn effective_of(spec: &PipelineSpec, salt: &str) -> EffectiveSpec {
        let mut effective = spec.effective();
        effective.salt = Some(salt.to_string());
        effective
    }
}

/// A pipeline record as read: records written before the effective spec was stored lack it.
#[derive(Deserialize)]
struct StoredPipelineInfo {
    name: String,
    project: String,
    version: u64,
    spec: PipelineSpec,
    #[serde(default)]
    user_spec_json: Option<serde_json::Value>,
    #[serde(default)]
    effective: Option<EffectiveSpec>,
    salt: String,
    executor: String,
    stopped: bool,
    output_branch: BranchRef,
    inputs: Vec<BranchRef>,
    created_ms: u64,
    updated_ms: u64,
    #[serde(default)]
    image: Option<PinnedImage>,
    #[serde(default)]
    spout_status: Option<super::SpoutStatus>,
}

impl From<StoredPipelineInfo> for PipelineInfo {
    /// The one place an older record's effective spec is computed (on read).
    fn from(s: StoredPipelineInfo) -> Self {
        let effective = s
            .effective
            .unwrap_or_else(|| PipelineInfo::effective_of(&s.spec, &s.salt));
        PipelineInfo {
            name: s.name,
            project: s.project,
            version: s.version,
            spec: s.spec,
            user_spec_json: s.user_spec_json,
            effective,
            salt: s.salt,
            executor: s.executor,
            stopped: s.stopped,
            output_branch: s.output_branch,
            inputs: s.inputs,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            image: s.image,
            spout_status: s.spout_status,
        }
    }
}

/// Job states (reference §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Created with its output commit.
    JobCreated,
    /// Waiting for its input commits to finish.
    JobStarting,
    /// Datums are being processed.
    JobRunning,
    /// Every datum succeeded and the output commit holds the whole output; it is being
    /// pushed to the pipeline's `egress` target (retried with backoff until it succeeds, see
    /// [`JobInfo::egress`]). The output commit stays open meanwhile.
    JobEgressing,
    /// Outputs are being validated and the output commit finished.
    JobFinishing,
    /// Finished without error.
    JobSuccess,
    /// A datum failed or the output was invalid.
    JobFailure,
    /// Stopped, timed out, or its pipeline was updated/stopped/deleted.
    JobKilled,
    /// An input commit finished with an error.
    JobUnrunnable,
}

impl JobState {
    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::JobSuccess
                | JobState::JobFailure
                | JobState::JobKilled
                | JobState::JobUnrunnable
        )
    }

    /// Pachyderm's name, e.g. `JOB_SUCCESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::JobCreated => "JOB_CREATED",
            JobState::JobStarting => "JOB_STARTING",
            JobState::JobRunning => "JOB_RUNNING",
            JobState::JobEgressing => "JOB_EGRESSING",
            JobState::JobFinishing => "JOB_FINISHING",
            JobState::JobSuccess => "JOB_SUCCESS",
            JobState::JobFailure => "JOB_FAILURE",
            JobState::JobKilled => "JOB_KILLED",
            JobState::JobUnrunnable => "JOB_UNRUNNABLE",
        }
    }
}

/// Counters and timings of a job (reference §2.13 point 7, plus bytes and phases).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStats {
    /// Datums in the job (while the job runs: the datums planned so far; planning streams
    /// alongside the workers).
    pub datums_total: u64,
    /// Datums run successfully by this job.
    pub datums_processed: u64,
    /// Datums skipped (unchanged since the base job).
    pub datums_skipped: u64,
    /// Datums that failed.
    pub datums_failed: u64,
    /// Datums recovered by `err_cmd`.
    pub datums_recovered: u64,
    /// Datum sets whose results this job committed (reference §1.4; a set is the unit a
    /// worker claims and commits).
    #[serde(default)]
    pub datum_sets: u64,
    /// Bytes of input materialised for user code.
    pub bytes_in: u64,
    /// Bytes of output ingested.
    pub bytes_out: u64,
    /// From the job's start until its plan was walked to the end (listing inputs, computing
    /// datums, deciding skips), ms. Overlaps `process_ms`: datums run while planning goes on,
    /// and the planner waits for the workers when it is a queue's length ahead.
    pub plan_ms: u64,
    /// Time spent running datums (and, overlapping, planning), ms.
    pub process_ms: u64,
    /// Time spent validating and finishing the output, ms.
    pub finish_ms: u64,
}

/// A job: one run of a pipeline version over one commit set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInfo {
    /// Pipeline ID: its name in the default project, `project/name` in any other.
    pub pipeline: String,
    /// Job ID = commit-set ID.
    pub id: String,
    /// Pipeline version the job runs.
    pub version: u64,
    /// State.
    pub state: JobState,
    /// Why it ended the way it did (failures, kills), empty otherwise.
    pub reason: String,
    /// The output commit.
    pub output_commit: CommitRef,
    /// The input commits (direct provenance of the output commit).
    pub inputs: Vec<CommitRef>,
    /// The job whose output this one started from (last successful job), if any.
    pub base_job: Option<String>,
    /// Set on the job a [`RerunMode::FailedOnly`](super::RerunMode::FailedOnly) rerun made:
    /// the pipeline's last job before the rerun (even a failed or killed one), whose
    /// successful datums this job skips, carrying their outputs over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvage_from: Option<String>,
    /// Set on a job that visited only the datums under its changed input paths (or none,
    /// when no input changed since its base job): the job whose datum records it shows as
    /// SKIPPED for every datum it holds no record of its own for (see `pps/inherited.rs`).
    /// Absent on every job that walked its datums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datums_from: Option<String>,
    /// Counters and timings.
    pub stats: JobStats,
    /// Set once deletions and skipped-datum records are written (resume does not redo them).
    pub planned: bool,
    /// How often the job was resumed after the host died.
    pub restarts: u32,
    /// Creation, start and finish times, ms since the epoch.
    pub created_ms: u64,
    /// When it went RUNNING.
    pub started_ms: Option<u64>,
    /// When it reached a terminal state.
    pub finished_ms: Option<u64>,
    /// How pushing the output to the pipeline's `egress` target goes (absent for pipelines
    /// without egress, and until the job reaches EGRESSING). Boxed: most jobs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Box<EgressStatus>>,
}

/// The egress of one job: attempts so far, the last error and when the next try is due
/// (Pachyderm retries forever and shows nothing; this is what `inspect job` shows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EgressStatus {
    /// Where the output goes (the URL, password hidden).
    pub target: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt's error; `None` once an attempt succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last attempt ended, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_try_ms: Option<u64>,
    /// When the next attempt is due, ms since the epoch (`None`: now, or done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try_ms: Option<u64>,
    /// What the successful attempt wrote: files (object storage) or rows (SQL).
    #[serde(default)]
    pub written: u64,
}

/// Datum states as listed (reference §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DatumState {
    /// Processed by this job.
    Success,
    /// Unchanged since an earlier successful job; its output was kept.
    Skipped,
    /// Failed after all tries.
    Failed,
    /// Failed, but `err_cmd` succeeded.
    Recovered,
}

impl DatumState {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatumState::Success => "SUCCESS",
            DatumState::Skipped => "SKIPPED",
            DatumState::Failed => "FAILED",
            DatumState::Recovered => "RECOVERED",
        }
    }
}

/// Why a datum ran, was skipped or failed (machine-readable; beyond Pachyderm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatumReason {
    /// Not in the base job (or there is no base job).
    New,
    /// In the base job with different input content.
    Changed,
    /// The salt changed (`update --reprocess`).
    SaltChanged,
    /// The base job did not process it successfully (it failed or was recovered).
    PreviousFailure,
    /// `reprocess_spec: every_job`.
    ReprocessEveryJob,
    /// Same ID and hash as in the base job, processed there: skipped.
    Unchanged {
        /// The job whose output is kept.
        from_job: String,
    },
}

/// How the last attempt of a failed (or recovered) datum ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatumFailure {
    /// Non-zero exit code.
    ExitCode {
        /// The code.
        code: i32,
    },
    /// Killed by a signal.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// `datum_timeout` expired.
    Timeout,
    /// The memory limit (`resource_limits.memory`) was exceeded; the kernel killed the
    /// program. Stored as kind `oom`.
    #[serde(rename = "oom")]
    OutOfMemory,
    /// The job was stopped or timed out.
    Cancelled,
    /// The output was invalid (bad name, symlink leaving `/pfs/out`, ...).
    InvalidOutput {
        /// What was wrong.
        message: String,
    },
    /// Datum batching (reference §3.5): the user code reported the datum failed
    /// (`next datum --error`), or exited before asking for its next datum.
    Batching {
        /// What happened.
        message: String,
    },
    /// The executor failed (worker lost, image missing, ...).
    Executor {
        /// The error.
        message: String,
    },
}

impl std::fmt::Display for DatumFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatumFailure::ExitCode { code } => write!(f, "exit code {code}"),
            DatumFailure::Signal { signal } => write!(f, "killed by signal {signal}"),
            DatumFailure::Timeout => f.write_str("datum_timeout expired"),
            DatumFailure::OutOfMemory => {
                f.write_str("out of memory: resource_limits.memory exceeded")
            }
            DatumFailure::Cancelled => f.write_str("cancelled"),
            DatumFailure::InvalidOutput { message } => write!(f, "invalid output: {message}"),
            DatumFailure::Batching { message } => f.write_str(message),
            DatumFailure::Executor { message } => write!(f, "executor error: {message}"),
        }
    }
}

/// How one run of a program ended: an attempt of the user code, or the `err_cmd` after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEnd {
    /// It succeeded (for an attempt: its output was valid too).
    Success,
    /// It failed.
    Failed {
        /// How.
        failure: DatumFailure,
    },
}

/// One attempt at a datum, in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumAttempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// How the user code ended.
    pub ended: RunEnd,
    /// Time in user code during this attempt (and its output check), µs.
    pub process_us: u64,
    /// How `err_cmd` ended, when it ran after this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err_cmd: Option<RunEnd>,
}

/// One input file or directory of a datum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumInputInfo {
    /// Input name.
    pub name: String,
    /// Repo.
    pub repo: String,
    /// Path in the repo (directories end in `/`).
    pub path: String,
    /// The input branch (empty in records written before it was kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    /// Content hash of the matched path, hex (empty in older records).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// Bytes of the matched path (a directory: everything below it).
    #[serde(default)]
    pub size: u64,
    /// The `join_on` key, when the input has `join_on`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub join_key: String,
    /// The `group_by` key, when the input has `group_by`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_key: String,
}

impl DatumInputInfo {
    /// The record of one input of a planned datum.
    pub(crate) fn of(input: &crate::datum::DatumInput) -> Self {
        DatumInputInfo {
            name: input.leaf.name.clone(),
            repo: input.leaf.repo.clone(),
            path: input.path.clone(),
            branch: input.leaf.branch.clone(),
            hash: input.hash.to_hex(),
            size: input.size,
            join_key: input.join_key.clone(),
            group_key: input.group_key.clone(),
        }
    }
}

/// Per-datum timings and sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumStats {
    /// Bytes materialised.
    pub bytes_in: u64,
    /// Bytes of output.
    pub bytes_out: u64,
    /// Materialisation time, µs.
    pub download_us: u64,
    /// User-code time over all attempts, µs.
    pub process_us: u64,
    /// Output scan and store time, µs.
    pub upload_us: u64,
}

/// The record of one datum in one job (skipped datums included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumInfo {
    /// Datum ID (64 hex).
    pub id: String,
    /// Datum hash (64 hex): ID + input contents + salt.
    pub hash: String,
    /// State in this job.
    pub state: DatumState,
    /// Why it ran or was skipped.
    pub reason: DatumReason,
    /// Why it failed or needed recovery (`None` on success/skip).
    pub failure: Option<DatumFailure>,
    /// The job whose run produced the outputs listed here.
    pub job: String,
    /// Attempts made by this job.
    pub attempts: u32,
    /// Every attempt this job made, in order (empty for skipped datums and in records
    /// written before attempts were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_history: Vec<DatumAttempt>,
    /// The inputs.
    pub inputs: Vec<DatumInputInfo>,
    /// Output file paths this datum wrote (committed ones, or, for a failed job's
    /// successful datums, the ones in its errored output commit).
    pub outputs: Vec<String>,
    /// Sizes and timings.
    pub stats: DatumStats,
    /// The engine host that ran it, when several hosts share the store (`None` for a
    /// skipped datum and for a store one process owns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// One line of user-code output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    /// Time, ms since the epoch.
    pub ts_ms: u64,
    /// Pipeline.
    pub pipeline: String,
    /// Job.
    pub job: String,
    /// Datum.
    pub datum: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line (secret values replaced by `<redacted>`).
    pub message: String,
}

pub(crate) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::RepoRef;

    #[test]
    fn out_of_memory_is_stored_as_kind_oom() {
        let json = serde_json::to_string(&DatumFailure::OutOfMemory).unwrap();
        assert_eq!(json, r#"{"kind":"oom"}"#);
        let back: DatumFailure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, DatumFailure::OutOfMemory);
    }

    fn info() -> PipelineInfo {
        let spec: PipelineSpec = serde_json::from_str(
            r#"{"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"]},
                "input": {"cross": [{"pfs": {"name": "b", "repo": "x", "glob": "/*"}},
                                    {"pfs": {"repo": "c", "glob": "/*"}}]}}"#,
        )
        .unwrap();
        let effective = PipelineInfo::effective_of(&spec, "salt");
        PipelineInfo {
            name: "p".into(),
            project: "default".into(),
            version: 1,
            spec,
            user_spec_json: None,
            effective,
            salt: "salt".into(),
            executor: "process".into(),
            stopped: false,
            output_branch: RepoRef::new("p").unwrap().branch("master").unwrap(),
            inputs: Vec::new(),
            created_ms: 1,
            updated_ms: 1,
            image: None,
            spout_status: None,
        }
    }

    #[test]
    fn stored_effective_spec_is_read_back_without_reapplying_defaults() {
        let info = info();
        let read: PipelineInfo = serde_json::from_str(&enc_str(&info)).unwrap();
        assert_eq!(read, info);
        let cross = read.effective.input.unwrap().cross.unwrap();
        let names: Vec<_> = cross
            .iter()
            .map(|i| i.pfs.as_ref().unwrap().name.clone().unwrap())
            .collect();
        // Applied once: the unnamed input sorts first, and stays first.
        assert_eq!(names, ["c", "b"]);
    }

    #[test]
    fn records_without_an_effective_spec_get_it_on_read() {
        let info = info();
        let mut old = serde_json::to_value(&info).unwrap();
        old.as_object_mut().unwrap().remove("effective");
        let read: PipelineInfo = serde_json::from_value(old).unwrap();
        assert_eq!(read.effective, info.effective);
        assert_eq!(read.effective.salt.as_deref(), Some("salt"));
    }

    fn enc_str(info: &PipelineInfo) -> String {
        serde_json::to_string(info).unwrap()
    }
}
