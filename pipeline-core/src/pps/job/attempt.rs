//! Running one datum on a worker: `datum_tries` attempts, `err_cmd` after each failed one,
//! `datum_timeout` and `accept_return_code` per attempt ([`DatumPolicy`]), output checks.
//! This is the engine's wrapper around any [`Worker`] (tower style): executors only run one
//! program once and report how it ended.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error_chain::ErrorChain;
use crate::executor::policy::{DatumPolicy, Verdict};
use crate::executor::{DatumTask, ExecutorError, LogStream, Program, ProgramKind, Worker};

use super::super::records::{DatumAttempt, DatumFailure, RunEnd};
use super::restart::RunningDatum;

/// The retry policy of one pipeline version.
#[derive(Debug, Clone)]
pub(crate) struct AttemptPolicy {
    /// Total attempts (`datum_tries`, at least 1).
    pub tries: u32,
    /// `transform.err_cmd` + `err_stdin`, when set.
    pub err_cmd: Option<Program>,
    /// `datum_timeout` and `accept_return_code`, for every attempt and `err_cmd` run.
    pub datum: DatumPolicy,
}

/// How a datum ended after all its attempts.
#[derive(Debug)]
pub(crate) struct AttemptResult {
    /// The last attempt succeeded (outputs are in `scratch/out`).
    pub success: bool,
    /// `err_cmd` succeeded after some failed attempt.
    pub recovered: bool,
    /// The last failure, if any attempt failed.
    pub failure: Option<DatumFailure>,
    /// Attempts made.
    pub attempts: u32,
    /// Time in user code, µs.
    pub process_us: u64,
    /// Every attempt, in order.
    pub history: Vec<DatumAttempt>,
}

/// How one run of a program ended, as a failure (`None`: it succeeded).
pub(super) fn failure_of(outcome: Result<Verdict, ExecutorError>) -> Option<DatumFailure> {
    match outcome {
        Ok(Verdict::Success { .. }) => None,
        Ok(Verdict::Failed { exit_code }) => Some(DatumFailure::ExitCode { code: exit_code }),
        Ok(Verdict::Signaled { signal }) => Some(DatumFailure::Signal { signal }),
        Ok(Verdict::TimedOut) => Some(DatumFailure::Timeout),
        Ok(Verdict::OutOfMemory) => Some(DatumFailure::OutOfMemory),
        Ok(Verdict::Cancelled) => Some(DatumFailure::Cancelled),
        Err(e) => Some(DatumFailure::Executor {
            message: ErrorChain(&e).to_string(),
        }),
    }
}

/// A run's end from its failure (`None`: success).
pub(super) fn run_end(failure: Option<DatumFailure>) -> RunEnd {
    match failure {
        None => RunEnd::Success,
        Some(failure) => RunEnd::Failed { failure },
    }
}

/// Runs `task` with the policy. `check_output` validates `scratch/out` after a successful run
/// (an invalid output counts as a failed attempt). `out` is emptied before every attempt.
pub(crate) async fn run_with_policy(
    worker: &mut dyn Worker,
    task: &DatumTask,
    policy: &AttemptPolicy,
    running: &RunningDatum,
    check_output: &(dyn Fn(&Path) -> Result<(), String> + Sync),
) -> AttemptResult {
    let started = Instant::now();
    let out = task.scratch.join("out");
    let mut result = AttemptResult {
        success: false,
        recovered: false,
        failure: None,
        attempts: 0,
        process_us: 0,
        history: Vec::new(),
    };
    let mut tries_left = policy.tries.max(1);
    let mut number = 0;
    while tries_left > 0 {
        number += 1;
        result.attempts = number;
        if number > 1 {
            reset_dir(&out);
        }
        let t_attempt = Instant::now();
        let (outcome, restarted) = run_attempt(worker, task, &policy.datum, running).await;
        let process_us = micros(t_attempt);
        if restarted {
            task.logs.line(
                LogStream::Stderr,
                &format!("attempt {number} restarted (restart datum); starting it again"),
            );
            result.history.push(DatumAttempt {
                number,
                ended: run_end(Some(DatumFailure::Cancelled)),
                process_us,
                err_cmd: None,
            });
            continue;
        }
        tries_left -= 1;
        let attempt_failure = failure_of(outcome).or_else(|| {
            check_output(&out)
                .err()
                .map(|message| DatumFailure::InvalidOutput { message })
        });
        let mut attempt = DatumAttempt {
            number,
            ended: run_end(attempt_failure.clone()),
            process_us,
            err_cmd: None,
        };
        let Some(attempt_failure) = attempt_failure else {
            result.success = true;
            result.history.push(attempt);
            break;
        };
        let cancelled = attempt_failure == DatumFailure::Cancelled;
        if !cancelled {
            task.logs.line(
                LogStream::Stderr,
                &format!("errored running user code (attempt {number}): {attempt_failure}"),
            );
        }
        result.failure = Some(attempt_failure);
        if !cancelled
            && let Some(err_cmd) = &policy.err_cmd
            && !task.cancel.is_cancelled()
        {
            reset_dir(&out);
            let mut t = task.clone();
            t.program = err_cmd.clone();
            let err_failure = failure_of(policy.datum.run(worker, t).await);
            result.recovered |= err_failure.is_none();
            attempt.err_cmd = Some(run_end(err_failure));
        }
        result.history.push(attempt);
        if cancelled || task.cancel.is_cancelled() {
            break;
        }
    }
    result.process_us = micros(started);
    result
}

/// One attempt of `task` under `policy`, cancellable by the job (`task.cancel`) and by a
/// restart of the datum; the second value says the restart ended it (the job goes on).
async fn run_attempt(
    worker: &mut dyn Worker,
    task: &DatumTask,
    policy: &DatumPolicy,
    running: &RunningDatum,
) -> (Result<Verdict, ExecutorError>, bool) {
    let attempt = running.new_attempt();
    let mut t = task.clone();
    t.cancel = attempt.clone();
    let run = policy.run(worker, t);
    tokio::pin!(run);
    let outcome = tokio::select! {
        outcome = &mut run => outcome,
        () = task.cancel.cancelled() => {
            attempt.cancel();
            run.await
        }
    };
    let restarted = attempt.is_cancelled()
        && !task.cancel.is_cancelled()
        && matches!(outcome, Ok(Verdict::Cancelled));
    (outcome, restarted)
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Empties a datum's `out` directory in place (see [`super::super::scratch::reset`]); what cannot
/// be removed goes to the job's scratch directory, two levels up.
pub(crate) fn reset_dir(out: &Path) {
    let job_scratch = out.parent().and_then(Path::parent).unwrap_or(out);
    let _ = super::super::scratch::reset(out, &[], &[], job_scratch);
}

/// Builds the main program of a transform.
pub(crate) fn program(kind: ProgramKind, argv: &[String], stdin: &[String]) -> Program {
    Program::new(kind, argv.to_vec(), stdin)
}

/// A duration from an optional spec duration.
pub(crate) fn dur(d: Option<&crate::spec::Duration>) -> Option<Duration> {
    d.map(|d| d.as_std())
}
