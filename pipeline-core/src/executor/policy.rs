//! The engine's policy around any [`Worker`] (tower style): the per-attempt time limit
//! (`datum_timeout`) and what counts as success (`accept_return_code`).
//!
//! A backend only runs the command and reports how it ended ([`DatumOutcome`]: exited with
//! a code, killed by a signal, or cancelled through [`DatumTask::cancel`]). [`DatumPolicy::run`]
//! arms the timeout by cancelling the attempt's own child token of the task's token (so the
//! backend's prompt-cancellation guarantee is what enforces it), and turns the outcome into a
//! [`Verdict`]. Retries (`datum_tries`) and `err_cmd` are layered on top of this by the engine.
//!
//! [`StopGuard`] wraps every worker the engine holds: after [`Worker::stop`] nothing runs on
//! it any more, and stopping twice stops once, whatever the backend.

use std::time::Duration;

use async_trait::async_trait;

use super::{CancellationToken, DatumOutcome, DatumTask, ExecutorError, Worker};

/// How one pipeline version judges an attempt: its time limit and its accepted exit codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatumPolicy {
    /// `datum_timeout`: the attempt is cancelled when it expires.
    pub timeout: Option<Duration>,
    /// `accept_return_code`: exit codes besides 0 that count as success.
    pub accept_return_code: Vec<i64>,
}

/// How an attempt ended, judged by a [`DatumPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0, or a code listed in `accept_return_code`.
    Success {
        /// The exit code.
        exit_code: i32,
    },
    /// A non-zero exit not in `accept_return_code`.
    Failed {
        /// The exit code.
        exit_code: i32,
    },
    /// Killed by a signal it did not get from the engine.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// `datum_timeout` expired; the attempt was cancelled.
    TimedOut,
    /// The task's own cancellation token fired (job stopped, killed or timed out).
    Cancelled,
    /// The memory limit was exceeded and the kernel killed the program.
    OutOfMemory,
}

impl Verdict {
    /// Whether the attempt counts as a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Success { .. })
    }
}

impl DatumPolicy {
    /// Judges an outcome: exit 0 or an accepted code is a success. A signal `n` counts as
    /// exit status `128 + n` for `accept_return_code` (the shell's convention: backends that
    /// run user code under a shell cannot tell the two apart).
    pub fn classify(&self, outcome: &DatumOutcome) -> Verdict {
        let accepted = |code: i32| code == 0 || self.accept_return_code.contains(&i64::from(code));
        match *outcome {
            DatumOutcome::Exited { exit_code } if accepted(exit_code) => {
                Verdict::Success { exit_code }
            }
            DatumOutcome::Exited { exit_code } => Verdict::Failed { exit_code },
            DatumOutcome::Signaled { signal } if accepted(128 + signal) => Verdict::Success {
                exit_code: 128 + signal,
            },
            DatumOutcome::Signaled { signal } => Verdict::Signaled { signal },
            DatumOutcome::Cancelled => Verdict::Cancelled,
            DatumOutcome::OutOfMemory => Verdict::OutOfMemory,
        }
    }

    /// Runs `task` on `worker` once under this policy. When the timeout expires the attempt
    /// is cancelled (the job's token in `task.cancel` is left alone) and, once the backend
    /// has stopped the program, reported as [`Verdict::TimedOut`]. `Err` is the backend's
    /// infrastructure error, unchanged.
    pub async fn run(
        &self,
        worker: &mut dyn Worker,
        mut task: DatumTask,
    ) -> Result<Verdict, ExecutorError> {
        let Some(limit) = self.timeout else {
            return Ok(self.classify(&worker.run(task).await?));
        };
        let job = task.cancel.clone();
        let attempt = CancellationToken::new();
        task.cancel = attempt.clone();
        let run = worker.run(task);
        tokio::pin!(run);
        let timed_out = tokio::select! {
            outcome = &mut run => return Ok(self.classify(&outcome?)),
            () = tokio::time::sleep(limit) => true,
            () = job.cancelled() => false,
        };
        attempt.cancel();
        let outcome = run.await?;
        Ok(match outcome {
            DatumOutcome::Cancelled if timed_out => Verdict::TimedOut,
            other => self.classify(&other),
        })
    }
}

/// A worker that refuses to run once stopped ([`ExecutorError::WorkerLost`], "worker was
/// stopped") and stops its backend worker at most once.
#[derive(Debug)]
pub struct StopGuard {
    pipeline: String,
    inner: Box<dyn Worker>,
    stopped: bool,
}

impl StopGuard {
    /// Guards `inner`, a worker of `pipeline`.
    pub fn new(pipeline: impl Into<String>, inner: Box<dyn Worker>) -> Self {
        StopGuard {
            pipeline: pipeline.into(),
            inner,
            stopped: false,
        }
    }
}

#[async_trait]
impl Worker for StopGuard {
    fn index(&self) -> usize {
        self.inner.index()
    }

    fn address(&self) -> std::net::IpAddr {
        self.inner.address()
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        if self.stopped {
            return Err(ExecutorError::WorkerLost {
                pipeline: self.pipeline.clone(),
                worker: self.inner.index(),
                reason: "worker was stopped".into(),
            });
        }
        self.inner.run(task).await
    }

    fn batch_scratch(&self, engine_scratch: &std::path::Path) -> Option<super::LiveScratch> {
        self.inner.batch_scratch(engine_scratch)
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        if self.stopped {
            return Ok(());
        }
        self.inner.stop().await?;
        self.stopped = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_accept_list() {
        let none = DatumPolicy::default();
        let some = DatumPolicy {
            accept_return_code: vec![2, 255],
            ..Default::default()
        };
        let exited = |exit_code| DatumOutcome::Exited { exit_code };
        assert_eq!(none.classify(&exited(0)), Verdict::Success { exit_code: 0 });
        assert_eq!(none.classify(&exited(2)), Verdict::Failed { exit_code: 2 });
        assert_eq!(some.classify(&exited(2)), Verdict::Success { exit_code: 2 });
        assert_eq!(some.classify(&exited(3)), Verdict::Failed { exit_code: 3 });
        let signaled = |signal| DatumOutcome::Signaled { signal };
        assert_eq!(none.classify(&signaled(9)), Verdict::Signaled { signal: 9 });
        assert_eq!(
            some.classify(&signaled(127)),
            Verdict::Success { exit_code: 255 }
        );
        assert_eq!(none.classify(&DatumOutcome::Cancelled), Verdict::Cancelled);
    }

    /// A worker whose program runs until cancelled, or exits with `exit` at once.
    #[derive(Debug)]
    struct Fake {
        exit: Option<i32>,
        stops: usize,
    }

    #[async_trait]
    impl Worker for Fake {
        fn index(&self) -> usize {
            0
        }

        async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
            match self.exit {
                Some(exit_code) => Ok(DatumOutcome::Exited { exit_code }),
                None => {
                    task.cancel.cancelled().await;
                    Ok(DatumOutcome::Cancelled)
                }
            }
        }

        async fn stop(&mut self) -> Result<(), ExecutorError> {
            self.stops += 1;
            Ok(())
        }
    }

    fn task() -> DatumTask {
        DatumTask {
            job_id: "j".into(),
            datum_id: "d".into(),
            scratch: std::env::temp_dir(),
            inputs: Vec::new(),
            program: super::super::Program::new(super::super::ProgramKind::Cmd, vec![], &[]),
            env: Vec::new(),
            user: None,
            working_dir: None,
            cancel: CancellationToken::new(),
            logs: std::sync::Arc::new(super::super::NullLogSink),
        }
    }

    #[tokio::test]
    async fn the_timeout_cancels_the_attempt_not_the_job() {
        let policy = DatumPolicy {
            timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        let mut w = Fake {
            exit: None,
            stops: 0,
        };
        let t = task();
        let job = t.cancel.clone();
        assert_eq!(policy.run(&mut w, t).await.unwrap(), Verdict::TimedOut);
        assert!(!job.is_cancelled());
        // A job cancelled before the limit is a cancellation, not a timeout.
        let t = task();
        t.cancel.cancel();
        assert_eq!(policy.run(&mut w, t).await.unwrap(), Verdict::Cancelled);
        // A program that ends in time is judged by its exit code.
        let mut w = Fake {
            exit: Some(3),
            stops: 0,
        };
        assert_eq!(
            policy.run(&mut w, task()).await.unwrap(),
            Verdict::Failed { exit_code: 3 }
        );
    }

    #[tokio::test]
    async fn a_stopped_worker_runs_nothing_and_stops_once() {
        let mut g = StopGuard::new(
            "p",
            Box::new(Fake {
                exit: Some(0),
                stops: 0,
            }),
        );
        assert_eq!(
            g.run(task()).await.unwrap(),
            DatumOutcome::Exited { exit_code: 0 }
        );
        g.stop().await.unwrap();
        g.stop().await.unwrap();
        assert!(matches!(
            g.run(task()).await,
            Err(ExecutorError::WorkerLost { .. })
        ));
        assert!(format!("{:?}", g.inner).contains("stops: 1"));
    }
}
