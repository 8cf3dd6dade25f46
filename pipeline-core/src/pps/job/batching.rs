//! Datum batching (`transform.datum_batching`, reference §3.5): one user process per datum
//! set, asking for each datum in turn over the control pipes of
//! [`batch`](crate::executor::batch).
//!
//! Per set, on one worker: the scratch directory is emptied and the control pipes made, the
//! process started ([`Worker::run`], on a worker whose user code sees the scratch directory
//! live, [`Worker::batch_scratch`]). Each `next datum` call reports the datum in flight (its
//! `/pfs/out` is then checked and ingested exactly as a normal datum's) and gets the next one
//! materialised in place, its per-datum variables in `/pfs/.env`. After the set's last datum
//! the process is ended. A datum that fails (reported with `--error`, `datum_timeout`, the
//! process exiting before its next call, an invalid output) ends the process: `err_cmd` runs
//! for it as for a normal datum, and a new process starts for its next attempt (up to
//! `datum_tries`) or for the datums after it. Unchanged datums never get here: the planner
//! skips them before datums are handed out.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::datum::env_of;
use crate::error_chain::ErrorChain;
use crate::executor::batch::{self, BatchControl, Report};
use crate::executor::redact::Redactor;
use crate::executor::{
    CancellationToken, DatumOutcome, DatumTask, ExecutorError, LiveScratch, LogSink, LogStream,
    Program, Worker,
};

use super::super::records::{DatumAttempt, DatumFailure, DatumInfo, RunEnd};
use super::super::scratch::ScratchState;
use super::attempt::{self, AttemptResult};
use super::datum_logs::{DatumLogs, LiveGuard};
use super::datum_run::DatumCtx;
use super::lazy_inputs::LazyFeeds;
use super::messages::{Done, Todo};
use super::micros;
use super::outage::{self, Outage};
use super::restart::RunningDatum;

/// The log sink of a batching process: its lines go to the datum in flight.
struct SwitchSink {
    current: Mutex<Arc<DatumLogs>>,
    redact: Arc<Redactor>,
}

impl SwitchSink {
    fn switch(&self, logs: Arc<DatumLogs>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = logs;
    }
}

impl LogSink for SwitchSink {
    fn line(&self, stream: LogStream, line: &str) {
        let logs = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        logs.line(stream, line);
    }

    fn redactor(&self) -> Option<Redactor> {
        (!self.redact.is_empty()).then(|| Redactor::clone(&self.redact))
    }
}

/// The datum being handed out, with its attempts so far.
struct InFlight {
    t: Todo,
    info: DatumInfo,
    logs: Arc<DatumLogs>,
    _shown: LiveGuard,
    running: RunningDatum,
    result: AttemptResult,
    tries_left: u32,
    started: Instant,
    attempt_started: Instant,
    /// The current attempt's token (cancelled by `restart datum`).
    attempt: CancellationToken,
    lazy: LazyFeeds,
}

/// How one process's run ended.
enum SessionEnd {
    /// Every datum of the set was reported.
    Drained,
    /// The datum in flight failed this attempt.
    Failed(DatumFailure),
    /// The datum in flight was restarted (`restart datum`).
    Restarted,
    /// The job was stopped.
    Cancelled,
}

/// What a wait for the process's next call ended with.
enum Wake {
    Call(std::io::Result<Report>),
    Exited(Result<DatumOutcome, ExecutorError>),
    TimedOut,
    Restarted,
    Cancelled,
}

/// One datum set run by batching processes on one worker.
struct BatchRun<'a> {
    ctx: &'a DatumCtx,
    scratch: PathBuf,
    /// Where user code sees `scratch`.
    pfs: PathBuf,
    sink: Arc<SwitchSink>,
    inputs: Vec<String>,
    queue: VecDeque<Todo>,
    current: Option<InFlight>,
    dones: Vec<Done>,
    out_clean: bool,
    /// What the datum in flight met of an unreachable store (see [`super::outage`]).
    outage: Outage,
    /// The pause before the next attempt after such an outage.
    pause: Duration,
}

impl DatumCtx {
    /// Runs datum set `set` on `worker` with batching processes (see the module docs); the
    /// datums' reports, or `None` when the job was stopped meanwhile.
    pub(super) async fn run_set_batched(
        &self,
        worker: &mut dyn Worker,
        set: Vec<Todo>,
    ) -> Option<Vec<Done>> {
        let engine_scratch = self.scratch.join(format!("w{}", worker.index()));
        let Some(LiveScratch { dir: scratch, pfs }) = worker.batch_scratch(&engine_scratch) else {
            return Some(set.into_iter().map(|t| self.refused(&t)).collect());
        };
        let inputs: BTreeSet<String> = set
            .iter()
            .flat_map(|t| t.datum.inputs.iter().map(|i| i.leaf.name.clone()))
            .collect();
        let first_logs = Arc::new(DatumLogs::new(self.redact.clone(), self.echo));
        let mut run = BatchRun {
            ctx: self,
            scratch,
            pfs,
            sink: Arc::new(SwitchSink {
                current: Mutex::new(first_logs),
                redact: self.redact.clone(),
            }),
            inputs: inputs.into_iter().collect(),
            queue: set.into(),
            current: None,
            dones: Vec::new(),
            out_clean: false,
            outage: Outage::default(),
            pause: outage::FIRST_PAUSE,
        };
        loop {
            if run.current.is_none() {
                let Some(t) = run.queue.pop_front() else {
                    break;
                };
                run.begin(t);
            }
            match run.session(worker).await {
                SessionEnd::Drained => break,
                SessionEnd::Cancelled => return None,
                SessionEnd::Restarted => run.restarted(),
                SessionEnd::Failed(f) => match run.outage.take() {
                    Some(why) => {
                        if !run.wait_out_outage(&why).await {
                            return None;
                        }
                    }
                    None => run.failed(worker, f).await,
                },
            }
        }
        // Nothing of the set stays in a scratch directory the backend may own.
        let _ = super::super::scratch::reset(&run.scratch, &["out"], &[], &self.scratch);
        (!self.cancel.is_cancelled()).then_some(run.dones)
    }

    /// The report of datum `t` on a worker that cannot run batching code.
    fn refused(&self, t: &Todo) -> Done {
        let mut info = self.initial_info(t);
        info.failure = Some(DatumFailure::Executor {
            message: "transform.datum_batching: this executor's workers cannot run datum-batching \
                      user code (it must see /pfs change while it runs: the process executor, or \
                      Docker in bind data mode)"
                .into(),
        });
        Done {
            info,
            puts: Vec::new(),
            logs: Vec::new(),
            cancelled: false,
        }
    }
}

impl BatchRun<'_> {
    /// Makes `t` the datum in flight.
    fn begin(&mut self, t: Todo) {
        let ctx = self.ctx;
        let logs = Arc::new(DatumLogs::new(ctx.redact.clone(), ctx.echo));
        let shown = ctx
            .live
            .register(&ctx.pipeline, &ctx.job_id, &t.id, logs.clone());
        let paths = t.datum.inputs.iter().map(|i| i.path.clone()).collect();
        let running = ctx
            .running
            .register(&ctx.pipeline, &ctx.job_id, &t.id, paths);
        self.sink.switch(logs.clone());
        self.current = Some(InFlight {
            info: ctx.initial_info(&t),
            t,
            logs,
            _shown: shown,
            running,
            result: AttemptResult {
                success: false,
                recovered: false,
                failure: None,
                attempts: 0,
                process_us: 0,
                history: Vec::new(),
            },
            tries_left: ctx.policy.tries.max(1),
            started: Instant::now(),
            attempt_started: Instant::now(),
            attempt: CancellationToken::new(),
            lazy: LazyFeeds::default(),
        });
    }

    /// Starts a new attempt of the datum in flight.
    fn start_attempt(&mut self) {
        if let Some(cur) = self.current.as_mut() {
            cur.result.attempts += 1;
            cur.attempt = cur.running.new_attempt();
            cur.attempt_started = Instant::now();
        }
    }

    /// Runs one process until the set is drained or the datum in flight fails; the process
    /// is gone when this returns.
    async fn session(&mut self, worker: &mut dyn Worker) -> SessionEnd {
        let control_dir = self.scratch.join(batch::DIR);
        let prepared =
            super::super::scratch::reset(&self.scratch, &["out"], &[], &self.ctx.scratch)
                .and_then(|()| BatchControl::create(&control_dir));
        let mut control = match prepared {
            Ok(c) => c,
            Err(e) => {
                self.start_attempt();
                return SessionEnd::Failed(DatumFailure::Executor {
                    message: format!(
                        "making the datum-batching pipes in {}: {}",
                        control_dir.display(),
                        ErrorChain(&e)
                    ),
                });
            }
        };
        self.out_clean = true;
        let kill = CancellationToken::new();
        let task = self.process_task(kill.clone());
        let run = worker.run(task);
        tokio::pin!(run);
        let (end, exited) = self.serve(run.as_mut(), &mut control).await;
        kill.cancel();
        if !exited {
            let _ = run.await;
        }
        end
    }

    /// Serves the process's `next datum` calls; the second value says the process exited.
    async fn serve<F>(
        &mut self,
        mut run: Pin<&mut F>,
        control: &mut BatchControl,
    ) -> (SessionEnd, bool)
    where
        F: Future<Output = Result<DatumOutcome, ExecutorError>>,
    {
        let mut handed = false;
        self.start_attempt();
        loop {
            let failure = match self.wait(run.as_mut(), control).await {
                Wake::Call(Ok(report)) => {
                    if handed {
                        if let Err(f) = self.reported(report) {
                            return (SessionEnd::Failed(f), false);
                        }
                        let Some(t) = self.queue.pop_front() else {
                            return (SessionEnd::Drained, false);
                        };
                        self.begin(t);
                        self.start_attempt();
                    }
                    match self.hand(control).await {
                        Ok(()) => {
                            handed = true;
                            continue;
                        }
                        Err(f) => f,
                    }
                }
                Wake::Call(Err(e)) => DatumFailure::Batching {
                    message: format!("the next datum call was not understood: {e}"),
                },
                Wake::Exited(outcome) => return (SessionEnd::Failed(premature(outcome)), true),
                Wake::TimedOut => DatumFailure::Timeout,
                Wake::Restarted => return (SessionEnd::Restarted, false),
                Wake::Cancelled => return (SessionEnd::Cancelled, false),
            };
            return (SessionEnd::Failed(failure), false);
        }
    }

    /// Waits for the process's next call, its exit, the datum's timeout, a restart of the
    /// datum or the job's stop.
    async fn wait<F>(&self, run: Pin<&mut F>, control: &mut BatchControl) -> Wake
    where
        F: Future<Output = Result<DatumOutcome, ExecutorError>>,
    {
        let Some(cur) = self.current.as_ref() else {
            return Wake::Cancelled;
        };
        let deadline = self
            .ctx
            .policy
            .datum
            .timeout
            .map(|t| tokio::time::Instant::from_std(cur.attempt_started + t));
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = control.next_call() => Wake::Call(r),
            o = run => Wake::Exited(o),
            () = timer => Wake::TimedOut,
            () = cur.attempt.cancelled() => Wake::Restarted,
            () = self.ctx.cancel.cancelled() => Wake::Cancelled,
        }
    }

    /// What the process runs: the transform's program with the job-level variables (the
    /// per-datum ones are in `/pfs/.env`) and the control directory's.
    fn process_task(&self, kill: CancellationToken) -> DatumTask {
        let ctx = self.ctx;
        let mut env = ctx.base_env.clone();
        env.extend(
            env_of(std::iter::empty(), "", &ctx.job_env)
                .into_iter()
                .filter(|(k, _)| k != "PACH_DATUM_ID"),
        );
        env.push((batch::DIR_ENV.into(), format!("/pfs/{}", batch::DIR)));
        DatumTask {
            job_id: ctx.job_id.clone(),
            datum_id: self
                .current
                .as_ref()
                .map(|c| c.t.id.clone())
                .unwrap_or_default(),
            scratch: self.scratch.clone(),
            inputs: self.inputs.clone(),
            program: ctx.program.clone(),
            env,
            user: ctx.transform.user.clone(),
            working_dir: ctx.transform.working_dir.clone(),
            cancel: kill,
            logs: self.sink.clone(),
        }
    }

    /// Mounts the datum in flight under `/pfs` with its `/pfs/.env` and answers the call.
    async fn hand(&mut self, control: &mut BatchControl) -> Result<(), DatumFailure> {
        let ctx = self.ctx;
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let t_dl = Instant::now();
        cur.lazy.stop();
        cur.lazy = LazyFeeds::default();
        // The engine writes `/pfs/.env` beside the inputs: not what it laid out alone.
        let mut state = ScratchState {
            out_clean: std::mem::take(&mut self.out_clean),
            laid: None,
        };
        let bytes = ctx
            .materialize(
                &self.scratch,
                &cur.t.datum,
                &mut state,
                &mut cur.lazy,
                &self.outage,
            )
            .map_err(|e| DatumFailure::Executor {
                message: ctx.redact.redact_str(&e),
            })?;
        cur.info.stats.download_us = micros(t_dl);
        cur.info.stats.bytes_in = bytes;
        write_env(&self.scratch, &self.pfs, &cur.t.datum.env(&ctx.job_env)).map_err(|e| {
            DatumFailure::Executor {
                message: format!("writing /pfs/{}: {e}", batch::ENV_FILE),
            }
        })?;
        control.release().await.map_err(|e| DatumFailure::Executor {
            message: format!("answering the next datum call: {e}"),
        })
    }

    /// Records the report of the datum in flight: a success ingests its `/pfs/out` and
    /// finishes it; a failure is returned.
    fn reported(&mut self, report: Report) -> Result<(), DatumFailure> {
        if let Report::Error(m) = report {
            return Err(DatumFailure::Batching {
                message: format!("user code reported the datum failed: {m}"),
            });
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        if let Some(message) = cur.lazy.error() {
            return Err(DatumFailure::InvalidOutput { message });
        }
        let t_up = Instant::now();
        let (puts, empty) = self
            .ctx
            .ingest(&self.scratch.join("out"), &cur.t.datum, &self.outage)
            .map_err(|message| DatumFailure::InvalidOutput { message })?;
        self.out_clean = empty;
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        cur.lazy.stop();
        cur.result.success = true;
        cur.result.history.push(DatumAttempt {
            number: cur.result.attempts,
            ended: RunEnd::Success,
            process_us: micros(cur.attempt_started),
            err_cmd: None,
        });
        cur.result.process_us = micros(cur.started);
        let done = self
            .ctx
            .finish(cur.info, cur.result, (puts, micros(t_up)), cur.logs.take());
        self.dones.push(done);
        Ok(())
    }

    /// The datum in flight met an unreachable store (its process is gone): says so, waits
    /// (the pause doubles each time) and keeps it in flight for a new process, without using
    /// up a try; `false` when the job was stopped meanwhile.
    async fn wait_out_outage(&mut self, why: &str) -> bool {
        self.out_clean = false;
        let pause = self.pause;
        self.pause = outage::next_pause(pause);
        let why = self.ctx.redact.redact_str(why);
        if let Some(cur) = self.current.as_mut() {
            cur.lazy.stop();
            // The next process's attempt takes this one's number.
            cur.result.attempts = cur.result.attempts.saturating_sub(1);
            cur.logs.line(
                LogStream::Stderr,
                &format!(
                    "the store could not be reached ({why}); the datum runs again in {} s",
                    pause.as_secs()
                ),
            );
            tracing::warn!(
                pipeline = %self.ctx.pipeline,
                job = %self.ctx.job_id,
                datum = %cur.t.id,
                pause_s = pause.as_secs(),
                error = %why,
                "the store could not be reached; the datum runs again after a pause"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = self.ctx.cancel.cancelled() => false,
        }
    }

    /// Records a restarted attempt of the datum in flight (it does not use up a try).
    fn restarted(&mut self) {
        if let Some(cur) = self.current.as_mut() {
            let number = cur.result.attempts;
            cur.logs.line(
                LogStream::Stderr,
                &format!("attempt {number} restarted (restart datum); starting it again"),
            );
            cur.result.history.push(DatumAttempt {
                number,
                ended: attempt::run_end(Some(DatumFailure::Cancelled)),
                process_us: micros(cur.attempt_started),
                err_cmd: None,
            });
        }
    }

    /// Records a failed attempt of the datum in flight (the process is gone): `err_cmd`
    /// runs for it, and it is finished when no try is left.
    async fn failed(&mut self, worker: &mut dyn Worker, failure: DatumFailure) {
        self.out_clean = false;
        let Some(mut cur) = self.current.take() else {
            return;
        };
        cur.lazy.stop();
        let number = cur.result.attempts;
        let process_us = micros(cur.attempt_started);
        cur.tries_left = cur.tries_left.saturating_sub(1);
        cur.logs.line(
            LogStream::Stderr,
            &format!("errored running user code (attempt {number}): {failure}"),
        );
        let mut attempt = DatumAttempt {
            number,
            ended: attempt::run_end(Some(failure.clone())),
            process_us,
            err_cmd: None,
        };
        cur.result.failure = Some(failure);
        if let Some(err_cmd) = &self.ctx.policy.err_cmd
            && !self.ctx.cancel.is_cancelled()
        {
            let end = self.err_cmd(worker, &cur, err_cmd).await;
            cur.result.recovered |= end == RunEnd::Success;
            attempt.err_cmd = Some(end);
        }
        cur.result.history.push(attempt);
        if cur.tries_left > 0 && !self.ctx.cancel.is_cancelled() {
            self.current = Some(cur);
            return;
        }
        cur.result.process_us = micros(cur.started);
        let done = self
            .ctx
            .finish(cur.info, cur.result, (Vec::new(), 0), cur.logs.take());
        self.dones.push(done);
    }

    /// Runs `err_cmd` for the datum in flight as for a normal datum (its own process, the
    /// per-datum variables in its environment).
    async fn err_cmd(&self, worker: &mut dyn Worker, cur: &InFlight, err_cmd: &Program) -> RunEnd {
        let ctx = self.ctx;
        let mut lazy = LazyFeeds::default();
        if let Err(e) = ctx.materialize(
            &self.scratch,
            &cur.t.datum,
            &mut ScratchState::default(),
            &mut lazy,
            &Outage::default(),
        ) {
            return attempt::run_end(Some(DatumFailure::Executor { message: e }));
        }
        let mut task = ctx.task(&cur.t, self.scratch.clone(), cur.logs.clone());
        task.program = err_cmd.clone();
        let end = attempt::run_end(attempt::failure_of(
            ctx.policy.datum.run(worker, task).await,
        ));
        lazy.stop();
        end
    }
}

/// The failure of a process that ended before asking for its next datum.
fn premature(outcome: Result<DatumOutcome, ExecutorError>) -> DatumFailure {
    match outcome {
        Ok(DatumOutcome::Exited { exit_code }) => DatumFailure::Batching {
            message: format!(
                "user code exited prematurely (exit code {exit_code}) instead of asking for its \
                 next datum"
            ),
        },
        Ok(DatumOutcome::Signaled { signal }) => DatumFailure::Signal { signal },
        Ok(DatumOutcome::OutOfMemory) => DatumFailure::OutOfMemory,
        Ok(DatumOutcome::Cancelled) => DatumFailure::Cancelled,
        Err(e) => DatumFailure::Executor {
            message: ErrorChain(&e).to_string(),
        },
    }
}

/// Writes `/pfs/.env`: one `NAME='value'` line per variable (shell quoting), `/pfs` in values
/// shown as user code sees it (`pfs`). Written aside and renamed, so a reader sees a whole
/// file.
fn write_env(scratch: &Path, pfs: &Path, env: &[(String, String)]) -> std::io::Result<()> {
    let pfs = pfs.to_string_lossy();
    let mut text = String::new();
    for (k, v) in env {
        let v = match v.strip_prefix("/pfs") {
            Some(rest) if pfs != "/pfs" && (rest.is_empty() || rest.starts_with('/')) => {
                format!("{pfs}{rest}")
            }
            _ => v.clone(),
        };
        text.push_str(&format!("{k}='{}'\n", v.replace('\'', r"'\''")));
    }
    let aside = scratch.join(format!("{}.new", batch::ENV_FILE));
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, scratch.join(batch::ENV_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_quote_values_and_show_pfs_where_user_code_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("in".to_string(), "/pfs/in/it's.txt".to_string()),
            ("PACH_DATUM_ID".to_string(), "ab".to_string()),
        ];
        write_env(dir.path(), Path::new("/pfs"), &env).unwrap();
        let text = std::fs::read_to_string(dir.path().join(batch::ENV_FILE)).unwrap();
        assert_eq!(text, "in='/pfs/in/it'\\''s.txt'\nPACH_DATUM_ID='ab'\n");
        write_env(dir.path(), Path::new("/tmp/s/w0"), &env).unwrap();
        let text = std::fs::read_to_string(dir.path().join(batch::ENV_FILE)).unwrap();
        assert!(text.starts_with("in='/tmp/s/w0/in/it"), "{text}");
    }
}
