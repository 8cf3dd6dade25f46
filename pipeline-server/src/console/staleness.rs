//! Why a pipeline would run again: the reasons the overview and the pipeline page show as
//! badges. A pure function of the pipeline, its last jobs and the heads of its input branches.
//!
//! The reasons compare the pipeline with its newest **finished** job, the one its output came
//! from: while a new job is queued or running, they say why that job was made (and a failure
//! stays shown until a job succeeds).

use pipeline_core::pfs::{BranchRef, CommitId};
use pipeline_core::pps::{JobState, LastJobs, PipelineInfo};

use super::pipeline_status::repo_name;

/// One reason a pipeline's output is not the result of its current spec over its current
/// inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The pipeline is stopped: it makes no new job until started.
    Stopped,
    /// No job has been recorded yet.
    NeverRan,
    /// The spec was updated after the last job started (`pipeline` > `job` version).
    SpecChanged {
        /// The pipeline's current version.
        pipeline: u64,
        /// The version the last job ran.
        job: u64,
    },
    /// An input branch moved past the commit the last job read.
    InputChanged {
        /// The input branch, as `repo@branch`.
        input: String,
    },
    /// The last finished job did not succeed (failed, killed or unrunnable).
    LastJobFailed(JobState),
}

impl Stale {
    /// A short label (for the picture's nodes).
    pub fn label(&self) -> &'static str {
        match self {
            Stale::Stopped => "stopped",
            Stale::NeverRan => "never ran",
            Stale::SpecChanged { .. } => "spec changed",
            Stale::InputChanged { .. } => "input changed",
            Stale::LastJobFailed(JobState::JobKilled) => "killed last time",
            Stale::LastJobFailed(JobState::JobUnrunnable) => "unrunnable last time",
            Stale::LastJobFailed(_) => "failed last time",
        }
    }

    /// The label with what it is about (for badges in tables): which input changed.
    pub fn detail(&self) -> String {
        match self {
            Stale::InputChanged { input } => format!("input changed: {input}"),
            other => other.label().into(),
        }
    }

    /// A sentence saying what happened and what makes the pipeline run again.
    pub fn explanation(&self) -> String {
        match self {
            Stale::Stopped => {
                "The pipeline is stopped: it makes no job until it is started.".into()
            }
            Stale::NeverRan => "No job has run yet.".into(),
            Stale::SpecChanged { pipeline, job } => {
                format!(
                    "The spec is at version {pipeline}; the last finished job ran version {job}."
                )
            }
            Stale::InputChanged { input } => {
                format!("Input {input} has a commit the last finished job did not read.")
            }
            Stale::LastJobFailed(state) => format!(
                "The last finished job ended {}: rerun it, or fix the input or the code.",
                state.as_str()
            ),
        }
    }
}

/// The reasons `pipeline` would run again, given its last jobs and the head commit of each of
/// its input branches (`None` for a branch that could not be read, which is not counted as
/// a change). Compared with the newest finished job, or with the newest job when none of the
/// recent ones finished. Empty when its output is up to date.
pub fn staleness(
    pipeline: &PipelineInfo,
    last: &LastJobs,
    input_heads: &[(BranchRef, Option<CommitId>)],
) -> Vec<Stale> {
    let mut reasons = Vec::new();
    if pipeline.stopped {
        reasons.push(Stale::Stopped);
    }
    let Some(job) = last.finished.as_ref().or(last.newest.as_ref()) else {
        reasons.push(Stale::NeverRan);
        return reasons;
    };
    if pipeline.version > job.version {
        reasons.push(Stale::SpecChanged {
            pipeline: pipeline.version,
            job: job.version,
        });
    }
    for (branch, head) in input_heads {
        let Some(head) = head else { continue };
        let read = job
            .inputs
            .iter()
            .any(|c| c.repo == branch.repo && c.id == *head);
        if !read {
            reasons.push(Stale::InputChanged {
                input: format!("{}@{}", repo_name(&branch.repo), branch.name),
            });
        }
    }
    if matches!(
        job.state,
        JobState::JobFailure | JobState::JobKilled | JobState::JobUnrunnable
    ) {
        reasons.push(Stale::LastJobFailed(job.state));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::pfs::RepoRef;
    use pipeline_core::pps::JobInfo;

    fn id(s: &str) -> CommitId {
        CommitId::parse(&format!("{s:0>32}")).expect("a valid commit ID")
    }

    fn pipeline(version: u64, stopped: bool) -> PipelineInfo {
        let spec = pipeline_core::spec::parse_str(
            "pipeline: {name: p}\ntransform: {cmd: [\"true\"]}\ninput: {pfs: {repo: raw, glob: /*}}\n",
            "t.yaml",
        )
        .expect("a valid spec")
        .remove(0)
        .spec;
        let out = RepoRef::new("p")
            .expect("repo")
            .branch("master")
            .expect("branch");
        PipelineInfo {
            name: "p".into(),
            project: "default".into(),
            version,
            user_spec_json: None,
            effective: PipelineInfo::effective_of(&spec, "salt"),
            spec,
            salt: "salt".into(),
            executor: "process".into(),
            stopped,
            output_branch: out,
            inputs: vec![raw_master()],
            created_ms: 0,
            updated_ms: 0,
            image: None,
            spout_status: None,
        }
    }

    fn raw_master() -> BranchRef {
        RepoRef::new("raw")
            .expect("repo")
            .branch("master")
            .expect("branch")
    }

    /// The last jobs when the newest is `job` (finished or not).
    fn last(job: JobInfo) -> LastJobs {
        LastJobs {
            finished: job.state.is_terminal().then(|| job.clone()),
            newest: Some(job),
        }
    }

    fn job(version: u64, state: JobState, input: &str) -> JobInfo {
        let raw = RepoRef::new("raw").expect("repo");
        JobInfo {
            pipeline: "p".into(),
            id: "j".into(),
            version,
            state,
            reason: String::new(),
            output_commit: RepoRef::new("p").expect("repo").commit(&id("f")),
            inputs: vec![raw.commit(&id(input))],
            base_job: None,
            salvage_from: None,
            datums_from: None,
            stats: Default::default(),
            planned: true,
            restarts: 0,
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            egress: None,
        }
    }

    #[test]
    fn up_to_date_is_not_stale() {
        let heads = [(raw_master(), Some(id("a")))];
        let j = job(1, JobState::JobSuccess, "a");
        assert_eq!(staleness(&pipeline(1, false), &last(j), &heads), vec![]);
    }

    #[test]
    fn each_reason_is_found() {
        let heads = [(raw_master(), Some(id("b")))];
        let j = job(1, JobState::JobFailure, "a");
        let reasons = staleness(&pipeline(2, true), &last(j), &heads);
        assert_eq!(
            reasons,
            vec![
                Stale::Stopped,
                Stale::SpecChanged {
                    pipeline: 2,
                    job: 1
                },
                Stale::InputChanged {
                    input: "raw@master".into()
                },
                Stale::LastJobFailed(JobState::JobFailure),
            ]
        );
        assert_eq!(reasons[2].detail(), "input changed: raw@master");
        assert_eq!(reasons[2].label(), "input changed");
    }

    #[test]
    fn no_job_and_unreadable_heads() {
        assert_eq!(
            staleness(&pipeline(1, false), &LastJobs::default(), &[]),
            vec![Stale::NeverRan]
        );
        let heads = [(raw_master(), None)];
        let j = job(1, JobState::JobKilled, "a");
        let reasons = staleness(&pipeline(1, false), &last(j), &heads);
        assert_eq!(reasons, vec![Stale::LastJobFailed(JobState::JobKilled)]);
        assert_eq!(reasons[0].label(), "killed last time");
    }

    #[test]
    fn a_queued_job_is_compared_through_the_finished_one() {
        // A rerun after a failure: the new job is queued; the failure and the change of
        // input that made the job still show until it finishes.
        let heads = [(raw_master(), Some(id("b")))];
        let jobs = LastJobs {
            newest: Some(job(2, JobState::JobCreated, "b")),
            finished: Some(job(1, JobState::JobFailure, "a")),
        };
        let reasons = staleness(&pipeline(2, false), &jobs, &heads);
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(
            reasons[0],
            Stale::SpecChanged {
                pipeline: 2,
                job: 1
            }
        );
    }

    #[test]
    fn a_running_job_is_not_a_failure() {
        let heads = [(raw_master(), Some(id("a")))];
        let j = job(1, JobState::JobRunning, "a");
        assert!(staleness(&pipeline(1, false), &last(j), &heads).is_empty());
    }
}
