//! The collector: one task per job receives the planner's and the workers' reports in one
//! ordered stream and commits them in batches (output files, datum records and log lines of
//! many datums per metadata transaction), then deletes the outputs of vanished datums.

use std::time::{Duration, Instant};

use crate::executor::CancellationToken;
use tokio::sync::mpsc;

use crate::pfs::OutputBatch;
use crate::spec::EffectiveSpec;

use super::super::datum_index::record_datum;
use super::super::error::{Result, task_failed};
use super::super::events::{DatumEvent, Event};
use super::super::inherited::RecordsView;
use super::super::keys::{DatumKey, JobKey, LogKey, RecordKey};
use super::super::records::{DatumInfo, DatumState, JobInfo, LogLine, enc};
use super::super::{Engine, now_ms};
use super::messages::{Done, Msg, Put};
use super::millis;
use super::owners::Owners;
use super::planner::processed;

/// Datums committed per metadata transaction (at most; a batch is also flushed every
/// [`FLUSH_EVERY`]).
const BATCH: usize = 512;
/// How long pending reports wait at most before they are committed.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Skipped datums' records committed per transaction at most (they carry no output files).
const SKIPPED_BATCH: usize = 16384;
/// Paths per transaction when deleting the outputs of vanished datums.
const DELETE_CHUNK: usize = 4096;

/// Reports taken from the channel at once.
const RECEIVE_MANY: usize = 64;

/// The capacity of a job's report channel.
pub(super) const REPORTS: usize = BATCH * 2;

/// What went wrong in a job's run, if anything (decides its final state).
#[derive(Default)]
pub(super) struct RunOutcome {
    /// The plan could not be walked to its end (the job fails with this reason).
    pub plan_failed: Option<String>,
    /// The first datum that failed.
    pub first_failed: Option<String>,
    /// The first output conflict between two datums.
    pub conflict: Option<String>,
    /// The job was stopped, killed or timed out, with this reason.
    pub killed: Option<String>,
    /// The job was cancelled by [`Engine::park`]: it stays RUNNING, to be resumed.
    pub parked: bool,
}

/// The deadline of the job's `job_timeout`, counted from when it first started.
pub(super) fn job_deadline(spec: &EffectiveSpec, job: &JobInfo) -> Option<tokio::time::Instant> {
    spec.job_timeout
        .as_ref()
        .and_then(|d| job.started_ms.map(|s| (s, d.as_std())))
        .map(|(started, d)| {
            let elapsed = now_ms().saturating_sub(started);
            tokio::time::Instant::now() + d.saturating_sub(Duration::from_millis(elapsed))
        })
}

/// A job's collector: what it has received and not yet committed, and what it learnt.
pub(super) struct Collector<'a> {
    engine: &'a Engine,
    job: &'a mut JobInfo,
    /// Which datum wrote each output path of this job.
    pub owners: Owners,
    /// What went wrong so far.
    pub outcome: RunOutcome,
    batch: OutputBatch,
    in_batch: usize,
    skipped_in_batch: usize,
    last_flush: Instant,
    log_seq: u64,
    planner_started: Instant,
    /// The planner walked the whole plan.
    pub plan_done: bool,
    /// The job's `job_timeout` expired (and the job was cancelled).
    pub timed_out: bool,
    /// Events of the pending batch, published once it is committed (only gathered while
    /// someone subscribes).
    events: Vec<Event>,
    /// A delta job's check of its new outputs against those it shows but did not write
    /// (see `delta`); `None` for other jobs.
    pub delta_paths: Option<DeltaPaths>,
}

/// What a delta job checks its new outputs against (see [`Collector::delta_paths`]).
pub(super) struct DeltaPaths {
    /// The base job's output commit: the outputs of the datums the job does not visit.
    pub base_output: crate::pfs::CommitRef,
    /// Paths the job deleted from it.
    pub deleted: std::collections::HashSet<String>,
    /// The first new output (path, datum) that lands on one of those outputs.
    pub clash: Option<(String, String)>,
}

impl DeltaPaths {
    /// Whether a new output at `path` lands on an output of the base that this job did not
    /// delete: a file there or at an ancestor, or files below it. A store error counts as
    /// a clash (the job fails rather than record an unchecked output).
    fn clashes(&self, store: &crate::pfs::Store, path: &str) -> bool {
        let kept_file = |p: &str| {
            !self.deleted.contains(p) && store.is_file(&self.base_output, p).unwrap_or(true)
        };
        let mut dir = path;
        if kept_file(dir) {
            return true;
        }
        while let Some(i) = dir.rfind('/').filter(|&i| i > 0) {
            dir = &dir[..i];
            if kept_file(dir) {
                return true;
            }
        }
        match store.walk_dir(&self.base_output, path) {
            Ok(files) => files.into_iter().any(|f| match f {
                Ok(f) => f.kind == crate::pfs::FileKind::File && !self.deleted.contains(&f.path),
                Err(_) => true,
            }),
            Err(_) => false,
        }
    }
}

impl<'a> Collector<'a> {
    /// A collector for `job`, with the ownership of what it already recorded.
    pub(super) fn new(
        engine: &'a Engine,
        job: &'a mut JobInfo,
        owners: Owners,
        planner_started: Instant,
    ) -> Self {
        Collector {
            engine,
            job,
            owners,
            outcome: RunOutcome::default(),
            batch: OutputBatch::default(),
            in_batch: 0,
            skipped_in_batch: 0,
            last_flush: Instant::now(),
            log_seq: 0,
            planner_started,
            plan_done: false,
            timed_out: false,
            events: Vec::new(),
            delta_paths: None,
        }
    }

    /// Receives and commits reports until every sender is gone; at `deadline` the job is
    /// cancelled (and the reports of what was running still arrive). Reports are taken as
    /// many at a time as have arrived (one wakeup for many datums).
    pub(super) async fn collect(
        &mut self,
        rx: &mut mpsc::Receiver<Msg>,
        deadline: Option<tokio::time::Instant>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let mut msgs = Vec::with_capacity(RECEIVE_MANY);
        loop {
            let received = match deadline {
                Some(dl) if !self.timed_out => tokio::select! {
                    n = rx.recv_many(&mut msgs, RECEIVE_MANY) => n,
                    _ = tokio::time::sleep_until(dl) => {
                        self.timed_out = true;
                        cancel.cancel();
                        continue;
                    }
                },
                _ => match tokio::time::timeout(FLUSH_EVERY, rx.recv_many(&mut msgs, RECEIVE_MANY))
                    .await
                {
                    Ok(n) => n,
                    Err(_) => {
                        msgs.push(Msg::Tick);
                        1
                    }
                },
            };
            if received == 0 {
                break;
            }
            for msg in msgs.drain(..) {
                self.take(msg, cancel);
                let pending = self.in_batch + self.skipped_in_batch > 0;
                if self.in_batch >= BATCH
                    || self.skipped_in_batch >= SKIPPED_BATCH
                    || (pending && self.last_flush.elapsed() >= FLUSH_EVERY)
                {
                    self.flush().await?;
                    self.in_batch = 0;
                    self.skipped_in_batch = 0;
                    self.last_flush = Instant::now();
                }
            }
        }
        Ok(())
    }

    /// Takes one report into the pending batch.
    fn take(&mut self, msg: Msg, cancel: &CancellationToken) {
        match msg {
            Msg::Tick => {}
            // The permit goes with this arm: the set is out of the backlog once absorbed.
            Msg::Set(dones, _backlog) => {
                // A set is committed whole or not at all (workers report no cut-short set).
                if !dones.is_empty() && dones.iter().all(|d| !d.cancelled) {
                    self.in_batch += dones.len();
                    self.job.stats.datum_sets += 1;
                    for done in dones {
                        self.absorb(done);
                    }
                }
            }
            Msg::Skipped { info, puts } => self.skipped(*info, puts),
            Msg::Deletes(paths) => {
                // A path this job already wrote stays (deletes come first in a batch,
                // but an earlier batch may hold the new file).
                let owners = &self.owners;
                let paths: Vec<String> = paths.into_iter().filter(|p| !owners.owns(p)).collect();
                if let Some(d) = self.delta_paths.as_mut() {
                    d.deleted.extend(paths.iter().cloned());
                }
                self.batch.deletes.extend(paths);
            }
            Msg::Planned { total, done } => {
                let job = &mut *self.job;
                // While a resumed job re-walks its plan, the count from before stays.
                job.stats.datums_total = if done {
                    total
                } else {
                    job.stats.datums_total.max(total)
                };
                if done {
                    self.plan_done = true;
                    job.planned = true;
                    job.stats.plan_ms = millis(self.planner_started);
                }
            }
            Msg::PlanFailed(reason) => {
                self.outcome.plan_failed.get_or_insert(reason);
                cancel.cancel();
            }
        }
    }

    /// Records an unchanged datum as skipped; its outputs stay this job's. `puts` are the
    /// file entries of outputs carried over from a job that is not the base (a failed-only
    /// rerun), recorded unless they conflict with another datum's.
    fn skipped(&mut self, info: DatumInfo, puts: Vec<Put>) {
        let mut conflict = None;
        for o in &info.outputs {
            if let Some(c) = self.owners.claim(o, &info.id) {
                conflict.get_or_insert(c);
            }
        }
        match conflict {
            Some(c) if !puts.is_empty() => {
                self.outcome.conflict.get_or_insert(c);
            }
            _ => self.batch.puts.extend(puts),
        }
        let job = &mut *self.job;
        job.stats.datums_skipped += 1;
        record_datum(&mut self.batch, &job.pipeline, &job.id, &info);
        if self.engine.has_subscribers() {
            self.events.push(datum_event(job, info));
        }
        self.skipped_in_batch += 1;
    }

    /// Adds a finished datum to the batch: stats, output files (unless they conflict), log
    /// lines and its record.
    fn absorb(&mut self, done: Done) {
        let publish = self.engine.has_subscribers();
        let job = &mut *self.job;
        let owners = &mut self.owners;
        let outcome = &mut self.outcome;
        let batch = &mut self.batch;
        let log_seq = &mut self.log_seq;
        let mut info = done.info;
        let stats = &mut job.stats;
        stats.bytes_in += info.stats.bytes_in;
        match info.state {
            DatumState::Success => {
                stats.datums_processed += 1;
                stats.bytes_out += info.stats.bytes_out;
                let mut conflict = None;
                for (p, _, _) in &done.puts {
                    if let Some(c) = owners.claim(p, &info.id) {
                        conflict.get_or_insert(c);
                    }
                }
                let store = self.engine.store();
                let landed = self.delta_paths.as_mut().and_then(|d| {
                    let p = done.puts.iter().find(|(p, _, _)| d.clashes(store, p))?;
                    Some(
                        d.clash
                            .get_or_insert_with(|| (p.0.clone(), info.id.clone())),
                    )
                });
                if let Some(c) = conflict {
                    outcome.conflict.get_or_insert(c);
                } else if landed.is_none() {
                    batch.puts.extend(done.puts);
                }
            }
            DatumState::Recovered => stats.datums_recovered += 1,
            DatumState::Failed => {
                stats.datums_failed += 1;
                outcome.first_failed.get_or_insert(info.id.clone());
            }
            DatumState::Skipped => stats.datums_skipped += 1,
        }
        for (ts, stream, line) in done.logs {
            *log_seq += 1;
            let l = LogLine {
                ts_ms: ts,
                pipeline: job.pipeline.clone(),
                job: job.id.clone(),
                datum: info.id.clone(),
                stream: super::datum_logs::stream_name(stream).into(),
                message: line,
            };
            // Not published: each line was published when it was produced (`LiveLogs`).
            batch.records.push((
                LogKey::new(&job.pipeline, &job.id, &info.id, *log_seq).encode(),
                Some(enc(&l)),
            ));
        }
        info.job = job.id.clone();
        record_datum(batch, &job.pipeline, &job.id, &info);
        if publish {
            self.events.push(datum_event(job, info));
        }
    }

    /// Commits what is still pending.
    pub(super) async fn flush_rest(&mut self) -> Result<()> {
        if self.in_batch > 0 || !self.batch.is_empty() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Commits the pending batch with the job's record in one transaction.
    async fn flush(&mut self) -> Result<()> {
        let job = &*self.job;
        let mut b = std::mem::take(&mut self.batch);
        b.records
            .push((JobKey::new(&job.pipeline, &job.id).encode(), Some(enc(job))));
        let s = self.engine.store().clone();
        let c = job.output_commit.clone();
        tokio::task::spawn_blocking(move || s.commit_batch(Some(&c), &b))
            .await
            .map_err(task_failed("ingest"))??;
        self.engine.publish(std::mem::take(&mut self.events));
        Ok(())
    }
}

/// The event of a datum recorded in `job`.
fn datum_event(job: &JobInfo, datum: DatumInfo) -> Event {
    Event::Datum(DatumEvent {
        pipeline: job.pipeline.clone(),
        job: job.id.clone(),
        datum,
    })
}

impl Engine {
    /// Deletes the outputs of datums the base job processed that are no longer in the plan
    /// (reference §2.13), except paths this job wrote. The base's records (as it shows them)
    /// and this job's are walked in datum ID order side by side; deletions are committed in
    /// chunks.
    pub(super) async fn delete_vanished(
        &self,
        job: &JobInfo,
        base: Option<RecordsView>,
        owners: Owners,
    ) -> Result<()> {
        let Some(base) = base else { return Ok(()) };
        let store = self.store().clone();
        let commit = job.output_commit.clone();
        let job_prefix = DatumKey::of_job(&job.pipeline, &job.id);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut current = store.engine_scan(job_prefix.as_bytes())?.peekable();
            let mut deletes = Vec::new();
            for d in base.scan(&store)? {
                let d = d?;
                let id = d.id.as_bytes();
                // Advance the current job's records to `id`.
                let mut present = false;
                while let Some(Ok((ck, _))) = current.peek() {
                    let cid = job_prefix.rest(ck).unwrap_or_default();
                    match cid.cmp(id) {
                        std::cmp::Ordering::Less => {
                            current.next();
                        }
                        std::cmp::Ordering::Equal => {
                            present = true;
                            break;
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                }
                if let Some(Err(_)) = current.peek()
                    && let Some(Err(e)) = current.next()
                {
                    return Err(e.into());
                }
                if present {
                    continue;
                }
                if processed(d.state) {
                    deletes.extend(d.outputs.into_iter().filter(|p| !owners.owns(p)));
                }
                if deletes.len() >= DELETE_CHUNK {
                    let batch = OutputBatch {
                        deletes: std::mem::take(&mut deletes),
                        ..Default::default()
                    };
                    store.commit_batch(Some(&commit), &batch)?;
                }
            }
            if !deletes.is_empty() {
                let batch = OutputBatch {
                    deletes,
                    ..Default::default()
                };
                store.commit_batch(Some(&commit), &batch)?;
            }
            Ok(())
        })
        .await
        .map_err(task_failed("delete vanished outputs"))?
    }
}
