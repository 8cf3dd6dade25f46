//! The per-datum run: one datum on one worker, from materialised inputs through the attempt
//! loop to its record, output files and log lines.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::executor::CancellationToken;

use crate::datum::{DatumPlan, JobEnv};
use crate::executor::policy::DatumPolicy;
use crate::executor::{DatumTask, Executor, LogStream, Program, ProgramKind, Secrets, Worker};
use crate::pfs::{CommitRef, Store};
use crate::spec::{EffectiveSpec, Transform};

use super::super::records::{
    DatumAttempt, DatumFailure, DatumInfo, DatumInputInfo, DatumState, DatumStats, JobInfo, RunEnd,
};
use super::super::scratch::ScratchState;
use super::attempt::{self, AttemptPolicy, AttemptResult};
use super::datum_logs::{DatumLogs, LiveLogs};
use super::lazy_inputs::LazyFeeds;
use super::messages::{Done, Put, ReportBacklog, Todo};
use super::micros;
use super::outage::{self, Outage};
use super::restart::RunningDatums;
use crate::executor::redact::Redactor;

/// Everything a worker task needs to run datums of one job.
pub(super) struct DatumCtx {
    pub store: Store,
    pub job_id: String,
    pub input_commits: HashMap<String, CommitRef>,
    pub job_env: JobEnv,
    pub base_env: Vec<(String, String)>,
    pub program: Program,
    pub policy: AttemptPolicy,
    pub transform: Transform,
    /// The job's cancellation: set when it is stopped, killed or timed out.
    pub cancel: CancellationToken,
    /// Secret values, redacted from logs and failure messages.
    pub redact: Arc<Redactor>,
    pub echo: bool,
    /// The job's scratch directory (one `w<index>` directory per worker below it).
    pub scratch: PathBuf,
    /// The pipeline.
    pub pipeline: String,
    /// Where running datums show their lines so far.
    pub live: LiveLogs,
    /// Where running datums can be restarted.
    pub running: RunningDatums,
    /// How the executor's user code sees the scratch directory.
    pub access: ScratchAccess,
    /// Whether what user code leaves in `/pfs/out` is the datum's output (not with `s3_out`,
    /// whose output is written over S3).
    pub upload_out: bool,
    /// Bounds the finished sets waiting for the collector.
    pub backlog: ReportBacklog,
}

/// What [`DatumCtx::new`] needs to know about the job and the engine.
pub(super) struct DatumCtxParts<'a> {
    pub store: Store,
    pub job: &'a JobInfo,
    pub spec: &'a EffectiveSpec,
    pub plan: &'a DatumPlan,
    pub input_commits: &'a HashMap<String, CommitRef>,
    pub secrets: &'a Secrets,
    /// The job's S3 gateway variables; the secret among them is redacted like a secret.
    pub gateway_env: &'a [(String, String)],
    pub cancel: CancellationToken,
    pub echo: bool,
    pub scratch_root: &'a Path,
    pub live: LiveLogs,
    pub running: RunningDatums,
    pub access: ScratchAccess,
}

/// How an executor's user code sees a worker's scratch directory.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ScratchAccess {
    /// User code opens named pipes there on this host, so `lazy` inputs can be pipes
    /// ([`super::lazy_inputs`]; [`Executor::serves_named_pipes`]).
    pub named_pipes: bool,
    /// Nothing but the engine changes it outside `out`
    /// ([`Executor::keeps_inputs_read_only`]).
    pub inputs_read_only: bool,
}

impl ScratchAccess {
    /// The access of `executor`'s user code (none known without an executor).
    pub(super) fn of(executor: Option<&Arc<dyn Executor>>) -> ScratchAccess {
        executor.map_or_else(ScratchAccess::default, |e| ScratchAccess {
            named_pipes: e.serves_named_pipes(),
            inputs_read_only: e.keeps_inputs_read_only(),
        })
    }
}

impl DatumCtx {
    /// The context of one job's datums: the transform's programs and retry policy, the base
    /// environment (with secrets), the values to redact and the job's environment.
    pub(super) fn new(parts: DatumCtxParts<'_>) -> DatumCtx {
        let spec = parts.spec;
        let transform = spec.transform.clone();
        let policy = AttemptPolicy {
            tries: spec.datum_tries,
            err_cmd: (!transform.err_cmd.is_empty()).then(|| {
                attempt::program(
                    ProgramKind::ErrCmd,
                    &transform.err_cmd,
                    &transform.err_stdin,
                )
            }),
            datum: DatumPolicy {
                timeout: attempt::dur(spec.datum_timeout.as_ref()),
                accept_return_code: transform.accept_return_code.clone(),
            },
        };
        let program = attempt::program(ProgramKind::Cmd, &transform.cmd, &transform.stdin);
        let (base_env, redact) = secret_env(&transform, parts.secrets, parts.gateway_env);
        let mut job_env = JobEnv::new(parts.job.id.clone());
        job_env.pipeline_name = Some(parts.job.pipeline.clone());
        for leaf in parts.plan.leaves() {
            if let Some(c) = parts.input_commits.get(&leaf.repo) {
                job_env
                    .input_commits
                    .insert(leaf.name.clone(), c.id.to_string());
            }
        }
        DatumCtx {
            store: parts.store,
            job_id: parts.job.id.clone(),
            input_commits: parts.input_commits.clone(),
            job_env,
            base_env,
            program,
            policy,
            transform,
            cancel: parts.cancel,
            redact: Arc::new(redact),
            echo: parts.echo,
            scratch: parts.scratch_root.join(&parts.job.id),
            pipeline: parts.job.pipeline.clone(),
            live: parts.live,
            running: parts.running,
            access: parts.access,
            upload_out: !spec.s3_out,
            backlog: ReportBacklog::new(),
        }
    }

    /// Runs datum `t` on `worker`: materialise, attempts, ingest; the report for the collector.
    /// `scratch` says what the worker's scratch directory is known to hold (see
    /// [`ScratchState`]), and is updated for the next datum. A run that failed
    /// because the store could not be reached is not reported: the datum runs again after
    /// a pause, for as long as the job runs (see [`super::outage`]).
    pub(super) async fn run_one(
        &self,
        worker: &mut dyn Worker,
        t: Todo,
        state: &mut ScratchState,
    ) -> Done {
        let mut pause = outage::FIRST_PAUSE;
        // What the datum's log says of each wait, ahead of the last run's lines.
        let mut waits = Vec::new();
        loop {
            let outage = Outage::default();
            let mut done = self.run_once(worker, &t, state, &outage).await;
            let why = outage.take();
            let Some(why) =
                why.filter(|_| !done.cancelled && done.info.state == DatumState::Failed)
            else {
                done.logs.splice(0..0, waits);
                return done;
            };
            let why = self.redact.redact_str(&why);
            let note = format!(
                "the store could not be reached ({why}); the datum runs again in {} s",
                pause.as_secs()
            );
            waits.push((super::super::now_ms(), LogStream::Stderr, note));
            tracing::warn!(
                pipeline = %self.pipeline,
                job = %self.job_id,
                datum = %t.id,
                pause_s = pause.as_secs(),
                error = %why,
                "the store could not be reached; the datum runs again after a pause"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.cancel.cancelled() => return Done { cancelled: true, ..done },
            }
            pause = outage::next_pause(pause);
            state.out_clean = false;
        }
    }

    /// One run of datum `t` (see [`DatumCtx::run_one`]); store errors are noted in `outage`.
    async fn run_once(
        &self,
        worker: &mut dyn Worker,
        t: &Todo,
        state: &mut ScratchState,
        outage: &Outage,
    ) -> Done {
        let scratch = self.scratch.join(format!("w{}", worker.index()));
        let mut info = self.initial_info(t);
        let logs = Arc::new(DatumLogs::new(self.redact.clone(), self.echo));
        let _shown = self
            .live
            .register(&self.pipeline, &self.job_id, &t.id, logs.clone());
        let t_dl = Instant::now();
        let mut lazy = LazyFeeds::default();
        let prepared = self.materialize(&scratch, &t.datum, state, &mut lazy, outage);
        info.stats.download_us = micros(t_dl);
        match prepared {
            Ok(bytes) => info.stats.bytes_in = bytes,
            Err(e) => {
                info.failure = Some(DatumFailure::Executor {
                    message: self.redact.redact_str(&e.to_string()),
                });
                return Done {
                    info,
                    puts: Vec::new(),
                    logs: logs.take(),
                    cancelled: false,
                };
            }
        }
        let task = self.task(t, scratch, logs.clone());
        // The output check of a successful attempt also stores the files (one scan).
        let ingested: Mutex<Option<(Vec<Put>, u64, bool)>> = Mutex::new(None);
        let check = |out: &Path| {
            // A lazy input that could not be fed (a damaged object) fails the attempt.
            if let Some(e) = lazy.error() {
                return Err(e);
            }
            let t_up = Instant::now();
            let (puts, empty) = self.ingest(out, &t.datum, outage)?;
            *ingested.lock().unwrap_or_else(|e| e.into_inner()) = Some((puts, micros(t_up), empty));
            Ok(())
        };
        let inputs = t.datum.inputs.iter().map(|i| i.path.clone()).collect();
        let running = self
            .running
            .register(&self.pipeline, &self.job_id, &t.id, inputs);
        let r = attempt::run_with_policy(worker, &task, &self.policy, &running, &check).await;
        lazy.stop();
        let (puts, upload_us, empty) = ingested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        // The successful attempt's output scan found `out` empty, and nothing writes there
        // until the next datum.
        state.out_clean = r.success && empty;
        self.finish(info, r, (puts, upload_us), logs.take())
    }

    /// The record of datum `t` before it ran (failed until an attempt succeeds).
    pub(super) fn initial_info(&self, t: &Todo) -> DatumInfo {
        let inputs: Vec<DatumInputInfo> = t.datum.inputs.iter().map(DatumInputInfo::of).collect();
        DatumInfo {
            id: t.id.clone(),
            hash: t.hash.clone(),
            state: DatumState::Failed,
            reason: t.reason.clone(),
            failure: None,
            job: self.job_id.clone(),
            attempts: 0,
            attempt_history: Vec::new(),
            inputs,
            outputs: Vec::new(),
            stats: DatumStats::default(),
            host: None,
        }
    }

    /// What the worker is asked to run for datum `t` in `scratch`.
    pub(super) fn task(&self, t: &Todo, scratch: PathBuf, logs: Arc<DatumLogs>) -> DatumTask {
        let mut env = self.base_env.clone();
        env.extend(t.datum.env(&self.job_env));
        DatumTask {
            job_id: self.job_id.clone(),
            datum_id: t.id.clone(),
            scratch,
            inputs: t
                .datum
                .inputs
                .iter()
                .map(|i| i.leaf.name.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            program: self.program.clone(),
            env,
            user: self.transform.user.clone(),
            working_dir: self.transform.working_dir.clone(),
            cancel: self.cancel.clone(),
            logs,
        }
    }

    /// The datum's report from the attempts' result and what a successful attempt ingested.
    pub(super) fn finish(
        &self,
        mut info: DatumInfo,
        r: AttemptResult,
        ingested: (Vec<Put>, u64),
        logs: Vec<(u64, LogStream, String)>,
    ) -> Done {
        info.attempts = r.attempts;
        info.attempt_history = r.history.into_iter().map(|a| self.redacted(a)).collect();
        info.stats.process_us = r.process_us;
        let cancelled = matches!(r.failure, Some(DatumFailure::Cancelled)) && !r.success;
        let mut puts = Vec::new();
        if r.success {
            let (p, upload_us) = ingested;
            info.stats.upload_us = upload_us;
            info.stats.bytes_out = p.iter().map(|(_, s, _)| *s).sum();
            info.outputs = p.iter().map(|(p, _, _)| p.clone()).collect();
            puts = p;
            info.state = if r.recovered {
                // Pachyderm quirk kept: an earlier recovered attempt stays RECOVERED.
                DatumState::Recovered
            } else {
                DatumState::Success
            };
            info.failure = r.failure.clone().filter(|_| r.recovered);
            if info.state == DatumState::Recovered {
                puts.clear();
                info.outputs.clear();
            }
        } else {
            info.state = if r.recovered {
                DatumState::Recovered
            } else {
                DatumState::Failed
            };
            info.failure = r.failure.map(|f| self.redacted_failure(f));
        }
        Done {
            info,
            puts,
            logs,
            cancelled,
        }
    }
}

impl DatumCtx {
    /// A failure with secret values removed from its executor message.
    fn redacted_failure(&self, failure: DatumFailure) -> DatumFailure {
        match failure {
            DatumFailure::Executor { message } => DatumFailure::Executor {
                message: self.redact.redact_str(&message),
            },
            other => other,
        }
    }

    /// A run's end with secret values removed from its failure's message.
    fn redacted_end(&self, end: RunEnd) -> RunEnd {
        match end {
            RunEnd::Failed { failure } => RunEnd::Failed {
                failure: self.redacted_failure(failure),
            },
            RunEnd::Success => RunEnd::Success,
        }
    }

    /// An attempt with secret values removed from its failures' messages.
    fn redacted(&self, mut attempt: DatumAttempt) -> DatumAttempt {
        attempt.ended = self.redacted_end(attempt.ended);
        attempt.err_cmd = attempt.err_cmd.map(|e| self.redacted_end(e));
        attempt
    }
}

/// The transform's environment plus its secrets' `env_var`s, and every secret value the
/// job has (to redact from logs and errors).
pub(crate) fn secret_env(
    transform: &Transform,
    secrets: &Secrets,
    gateway_env: &[(String, String)],
) -> (Vec<(String, String)>, Redactor) {
    let mut base_env: Vec<(String, String)> = transform
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut redact = Vec::new();
    for (k, v) in gateway_env {
        base_env.push((k.clone(), v.clone()));
        if k == "AWS_SECRET_ACCESS_KEY" {
            redact.push(v.clone().into_bytes());
        }
    }
    for s in &transform.secrets {
        if let (Some(var), Some(key)) = (&s.env_var, &s.key)
            && let Some(v) = secrets.get(&s.name, key)
        {
            // The environment holds text: what user code sees is the lossy form.
            let v = String::from_utf8_lossy(&v.0).into_owned();
            base_env.push((var.clone(), v.clone()));
            redact.push(v.into_bytes());
        }
    }
    for keys in secrets.0.values() {
        for v in keys.values() {
            redact.push(v.0.clone());
        }
    }
    (base_env, Redactor::new(redact))
}
