//! Running one datum on a worker: `datum_tries` attempts, `err_cmd` after each failed one,
//! `datum_timeout` and `accept_return_code` per attempt ([`DatumPolicy`]), output checks.
//! This is the engine's wrapper around any [`Worker`] (tower style): executors only run one
//! program once and report how it ended.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error_chain::ErrorChain;
use crate::executor::policy::{DatumPolicy, Verdict};
use crate::executor::{DatumTask, LogStream, Program, ProgramKind, Worker};

use super::super::records::DatumFailure;

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
}

/// Runs `task` with the policy. `check_output` validates `scratch/out` after a successful run
/// (an invalid output counts as a failed attempt). `out` is emptied before every attempt.
pub(crate) async fn run_with_policy(
    worker: &mut dyn Worker,
    task: &DatumTask,
    policy: &AttemptPolicy,
    check_output: &(dyn Fn(&Path) -> Result<(), String> + Sync),
) -> AttemptResult {
    let started = Instant::now();
    let out = task.scratch.join("out");
    let mut recovered = false;
    let mut failure = None;
    let mut attempts = 0;
    for _ in 0..policy.tries.max(1) {
        attempts += 1;
        if attempts > 1 {
            reset_dir(&out);
        }
        let outcome = policy.datum.run(worker, task.clone()).await;
        let attempt_failure = match outcome {
            Ok(Verdict::Success { .. }) => match check_output(&out) {
                Ok(()) => {
                    return AttemptResult {
                        success: true,
                        recovered,
                        failure,
                        attempts,
                        process_us: micros(started),
                    };
                }
                Err(message) => DatumFailure::InvalidOutput { message },
            },
            Ok(Verdict::Failed { exit_code }) => DatumFailure::ExitCode { code: exit_code },
            Ok(Verdict::Signaled { signal }) => DatumFailure::Signal { signal },
            Ok(Verdict::TimedOut) => DatumFailure::Timeout,
            Ok(Verdict::OutOfMemory) => DatumFailure::OutOfMemory,
            Ok(Verdict::Cancelled) => {
                return AttemptResult {
                    success: false,
                    recovered,
                    failure: Some(DatumFailure::Cancelled),
                    attempts,
                    process_us: micros(started),
                };
            }
            Err(e) => DatumFailure::Executor {
                message: ErrorChain(&e).to_string(),
            },
        };
        task.logs.line(
            LogStream::Stderr,
            &format!("errored running user code (attempt {attempts}): {attempt_failure}"),
        );
        failure = Some(attempt_failure);
        if let Some(err_cmd) = &policy.err_cmd {
            if task.cancel.is_cancelled() {
                break;
            }
            reset_dir(&out);
            let mut t = task.clone();
            t.program = err_cmd.clone();
            if let Ok(Verdict::Success { .. }) = policy.datum.run(worker, t).await {
                recovered = true;
            }
        }
        if task.cancel.is_cancelled() {
            break;
        }
    }
    AttemptResult {
        success: false,
        recovered,
        failure,
        attempts,
        process_us: micros(started),
    }
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Empties a datum's `out` directory in place (see [`super::super::scratch::reset`]); what cannot
/// be removed goes to the job's scratch directory, two levels up.
pub(crate) fn reset_dir(out: &Path) {
    let job_scratch = out.parent().and_then(Path::parent).unwrap_or(out);
    let _ = super::super::scratch::reset(out, &[], job_scratch);
}

/// Builds the main program of a transform.
pub(crate) fn program(kind: ProgramKind, argv: &[String], stdin: &[String]) -> Program {
    Program::new(kind, argv.to_vec(), stdin)
}

/// A duration from an optional spec duration.
pub(crate) fn dur(d: Option<&crate::spec::Duration>) -> Option<Duration> {
    d.map(|d| d.as_std())
}
