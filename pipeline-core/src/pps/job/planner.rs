//! The planner: walks a job's datum plan on a blocking thread and decides, per datum,
//! against the base job's record of it (reference §2.13), whether it is skipped or runs.
//!
//! It streams: datums to run go through a bounded queue ([`QUEUE`]) the workers pull from,
//! unchanged ones go to the collector as skipped records, so a job holds a bounded number
//! of datums in memory however many it has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::executor::CancellationToken;
use tokio::sync::mpsc;

use crate::datum::{Datum, DatumPlan, Sources, TreeSource};
use crate::error_chain::ErrorChain;
use crate::pfs::{CommitRef, EngineReader, FileKind, Store};

use super::super::inherited::RecordsView;
use super::super::records::{DatumInfo, DatumInputInfo, DatumReason, DatumState, DatumStats};
use super::datum_sets::{SetCutter, SetLimits, SetRule};
use super::messages::{Msg, Put, Todo};

/// Trees of a job's input commits, by repo name.
pub(super) struct JobSources(pub HashMap<String, Arc<dyn TreeSource>>);

impl Sources for JobSources {
    fn source(&self, leaf: &crate::datum::PfsLeaf) -> Option<Arc<dyn TreeSource>> {
        self.0.get(&leaf.repo).cloned()
    }
}

/// Datums planned ahead of the workers (the queue between planner and workers).
pub(super) const QUEUE: usize = 256;

/// Datums to run handed on at once: the planner, which runs ahead of the workers, is woken
/// once per batch rather than once per datum. A partial batch goes at once whenever the
/// queue is empty, so workers never wait for a batch to fill.
pub(super) const TODO_BATCH: usize = 16;

/// Sends the `pending` datums on when there are [`TODO_BATCH`] of them, when `now`, or when
/// the queue is empty (the workers may be waiting); `false` once the queue is closed.
fn hand_on(pending: &mut Vec<Todo>, work: &mpsc::Sender<Vec<Todo>>, now: bool) -> bool {
    let due = now || pending.len() >= TODO_BATCH || work.capacity() == work.max_capacity();
    if pending.is_empty() || !due {
        return true;
    }
    work.blocking_send(std::mem::replace(pending, Vec::with_capacity(TODO_BATCH)))
        .is_ok()
}

/// Walks a job's datum plan on a blocking thread and decides, per datum, against the base
/// job's record of it (reference §2.13): skip (unchanged), or run (new, changed, failed
/// before, new salt, `every_job`) after deleting its old outputs.
pub(super) struct Planner {
    pub store: Store,
    pub pipeline: String,
    pub job_id: String,
    /// The base job's records (as it shows them), which decide what is skipped.
    pub base: Option<RecordsView>,
    pub salt: String,
    /// `reprocess_spec: every_job`: nothing is skipped.
    pub every_job: bool,
    /// The base job ran with the same salt.
    pub base_salt_same: bool,
    /// Datums this job already recorded (before its host died) are passed over.
    pub resumed: bool,
    /// When planning started.
    pub started: Instant,
    /// A failed-only rerun: the job whose successful datums are skipped rather than run.
    pub salvage: Option<Salvage>,
    /// How the datums to run are cut into datum sets.
    pub sets: SetRule,
    /// A job that records only what changed (see `delta`): the datums to visit instead of
    /// the whole plan, and what it shows of its root without visiting.
    pub delta: Option<DeltaPlan>,
}

/// What a job that records only what changed visits (see `delta`).
pub(super) struct DeltaPlan {
    /// The datums under the changed paths that are in the new trees, in plan order.
    pub datums: Vec<Datum>,
    /// The datums shown from the root and carried on, unvisited (counted as planned and skipped).
    pub inherited: u64,
    /// Outputs of the base's datums that are gone (deleted first).
    pub gone_outputs: Vec<String>,
    /// The base job's output commit, which the job's output starts from.
    pub base_output: CommitRef,
}

/// A fresh read view of the datum records.
fn reader(store: &Store) -> std::result::Result<EngineReader, String> {
    store
        .engine_reader()
        .map_err(|e| format!("reading datum records: {}", ErrorChain(&e)))
}

/// Datums planned per read view of the records (a long-lived view keeps the store from
/// reusing pages freed meanwhile).
const READER_REFRESH: u64 = 4096;

/// How often the planner reports its running count.
const PLANNED_EVERY: u64 = 1024;

impl Planner {
    /// Walks `plan` to its end (or until `cancel`), reporting a walk failure to `report`.
    pub(super) fn run(
        self,
        plan: &DatumPlan,
        work: &mpsc::Sender<Vec<Todo>>,
        report: &mpsc::Sender<Msg>,
        cancel: &CancellationToken,
    ) {
        let limits = match self.sets.count_up_to() {
            None => Ok(self.sets.limits(0)),
            Some(up_to) => self
                .count_to_run(plan, up_to, cancel)
                .map(|n| self.sets.limits(n)),
        };
        let walked = limits.and_then(|l| self.walk(plan, l, work, report, cancel));
        if let Err(reason) = walked {
            let _ = report.blocking_send(Msg::PlanFailed(reason));
        }
    }

    /// The pre-pass of a job whose set size depends on how many datums it runs
    /// (`per_worker`, see `datum_sets`): the datums of `plan` that would run, counted up to
    /// `up_to` (past it the set size no longer changes).
    fn count_to_run(
        &self,
        plan: &DatumPlan,
        up_to: u64,
        cancel: &CancellationToken,
    ) -> std::result::Result<u64, String> {
        let mut records = reader(&self.store)?;
        let (mut seen, mut to_run) = (0u64, 0u64);
        for d in self.datums(plan) {
            if cancel.is_cancelled() || to_run >= up_to {
                break;
            }
            seen += 1;
            if seen.is_multiple_of(READER_REFRESH) {
                records = reader(&self.store)?;
            }
            let d = d.map_err(|e| format!("planning datums: {}", ErrorChain(&e)))?;
            let id = d.id().to_hex();
            if self.resumed && self.record(&records, &self.own(), &id)?.is_some() {
                continue;
            }
            let hash = d.hash(&self.salt).to_hex();
            if let Planned::Run(_) = self.decide(&records, &d, &id, &hash)?.planned {
                to_run += 1;
            }
        }
        Ok(to_run)
    }

    /// `Err` is a reason for the job to fail; a closed channel (the job is ending) is `Ok`.
    fn walk(
        &self,
        plan: &DatumPlan,
        limits: SetLimits,
        work: &mpsc::Sender<Vec<Todo>>,
        report: &mpsc::Sender<Msg>,
        cancel: &CancellationToken,
    ) -> std::result::Result<(), String> {
        let mut total = self.delta.as_ref().map_or(0, |d| d.inherited);
        let mut sets = SetCutter::new(limits);
        let mut records = reader(&self.store)?;
        let mut pending = Vec::with_capacity(TODO_BATCH);
        if let Some(gone) = self.delta.as_ref().map(|d| d.gone_outputs.clone())
            && !gone.is_empty()
            && report.blocking_send(Msg::Deletes(gone)).is_err()
        {
            return Ok(());
        }
        for d in self.datums(plan) {
            if cancel.is_cancelled() || !hand_on(&mut pending, work, false) {
                return Ok(());
            }
            if total.is_multiple_of(READER_REFRESH) && total > 0 {
                records = reader(&self.store)?;
            }
            let d = d.map_err(|e| format!("planning datums: {}", ErrorChain(&e)))?;
            total += 1;
            if total.is_multiple_of(PLANNED_EVERY)
                && report
                    .blocking_send(Msg::Planned { total, done: false })
                    .is_err()
            {
                return Ok(());
            }
            let id = d.id().to_hex();
            if self.resumed && self.record(&records, &self.own(), &id)?.is_some() {
                continue;
            }
            let hash = d.hash(&self.salt).to_hex();
            let Decision { deletes, planned } = self.decide(&records, &d, &id, &hash)?;
            if !deletes.is_empty() && report.blocking_send(Msg::Deletes(deletes)).is_err() {
                return Ok(());
            }
            let sent = match planned {
                Planned::Skip { info, puts } => {
                    report.blocking_send(Msg::Skipped { info, puts }).is_ok()
                }
                Planned::Run(reason) => {
                    let set_end = sets.add(d.inputs.iter().map(|i| i.size).sum());
                    pending.push(Todo {
                        datum: d,
                        id,
                        hash,
                        reason,
                        set_end,
                    });
                    hand_on(&mut pending, work, false)
                }
            };
            if !sent {
                return Ok(());
            }
        }
        if !hand_on(&mut pending, work, true) {
            return Ok(());
        }
        let _ = report.blocking_send(Msg::Planned { total, done: true });
        Ok(())
    }

    /// Whether datum `d` (`id`, `hash`) is skipped or runs, against the base job's record of
    /// it and then the salvage job's, and which outputs of the base's version go.
    fn decide(
        &self,
        records: &EngineReader,
        d: &Datum,
        id: &str,
        hash: &str,
    ) -> std::result::Result<Decision, String> {
        let base = match &self.base {
            Some(b) => self.record(records, b, id)?,
            None => None,
        };
        let mut deletes = Vec::new();
        let mut reason = match base {
            Some(b) if !self.every_job && b.hash == hash && processed(b.state) => {
                return Ok(Decision {
                    deletes,
                    planned: Planned::Skip {
                        info: Box::new(skipped_record(b, d)),
                        puts: Vec::new(),
                    },
                });
            }
            Some(b) => {
                let reason = if self.every_job {
                    DatumReason::ReprocessEveryJob
                } else if !processed(b.state) {
                    DatumReason::PreviousFailure
                } else if !self.base_salt_same {
                    DatumReason::SaltChanged
                } else {
                    DatumReason::Changed
                };
                if processed(b.state) {
                    deletes = b.outputs;
                }
                reason
            }
            None => DatumReason::New,
        };
        if let Some(salvage) = self.salvage.as_ref().filter(|_| !self.every_job)
            && let Some(s) = self.record(records, &salvage.records, id)?
        {
            if s.hash == hash && processed(s.state) {
                if let Some(puts) = salvage.outputs_of(&self.store, &s) {
                    let info = Box::new(skipped_record(s, d));
                    let planned = Planned::Skip { info, puts };
                    return Ok(Decision { deletes, planned });
                }
            } else if reason == DatumReason::New && !processed(s.state) {
                reason = DatumReason::PreviousFailure;
            }
        }
        Ok(Decision {
            deletes,
            planned: Planned::Run(reason),
        })
    }

    /// The datums to visit: the plan's, or only those a delta job visits.
    fn datums<'a>(
        &'a self,
        plan: &'a DatumPlan,
    ) -> Box<dyn Iterator<Item = Result<Datum, crate::datum::PlanError>> + 'a> {
        match &self.delta {
            Some(d) => Box::new(d.datums.iter().cloned().map(Ok)),
            None => Box::new(plan.datums()),
        }
    }

    /// The records this job made itself.
    fn own(&self) -> RecordsView {
        RecordsView {
            pipeline: self.pipeline.clone(),
            job: self.job_id.clone(),
            root: None,
        }
    }

    /// The record of datum `id` that `view`'s job shows.
    fn record(
        &self,
        records: &EngineReader,
        view: &RecordsView,
        id: &str,
    ) -> std::result::Result<Option<DatumInfo>, String> {
        view.record(|k| records.get(k), id)
            .map_err(|e| format!("reading datum records: {}", ErrorChain(&e)))
    }
}

/// What the planner decided for one datum.
struct Decision {
    /// Outputs of the base job's version of the datum to delete first.
    deletes: Vec<String>,
    /// Skip or run.
    planned: Planned,
}

/// Skip a datum (with the file entries to carry over) or run it (and why).
enum Planned {
    /// Recorded as skipped; `puts` carries outputs from the salvage job (empty for the base).
    Skip {
        info: Box<DatumInfo>,
        puts: Vec<Put>,
    },
    /// Runs, for this reason.
    Run(DatumReason),
}

/// A failed-only rerun's source: the job whose successful datums are reused.
pub(super) struct Salvage {
    /// Its records (as it shows them).
    pub records: RecordsView,
    /// Its output commit (finished with an error when it failed), holding those datums'
    /// outputs.
    pub commit: CommitRef,
}

impl Salvage {
    /// The file entries of the outputs `record` lists, read from the salvage job's output
    /// commit; `None` when one cannot be read (the datum then runs again).
    fn outputs_of(&self, store: &Store, record: &DatumInfo) -> Option<Vec<Put>> {
        record
            .outputs
            .iter()
            .map(|p| {
                let f = store.inspect_file(&self.commit, p).ok()?;
                (f.kind == FileKind::File).then(|| (p.clone(), f.size, f.hash))
            })
            .collect()
    }
}

/// The record of datum `d` skipped because `from`, an earlier record of it with the same
/// hash, produced its outputs.
fn skipped_record(from: DatumInfo, d: &Datum) -> DatumInfo {
    DatumInfo {
        state: DatumState::Skipped,
        reason: DatumReason::Unchanged {
            from_job: from.job.clone(),
        },
        failure: None,
        attempts: 0,
        attempt_history: Vec::new(),
        inputs: d.inputs.iter().map(DatumInputInfo::of).collect(),
        stats: DatumStats::default(),
        host: None,
        ..from
    }
}

/// Whether a datum in `state` produced its outputs (they are kept, or skipped on).
pub(super) fn processed(s: DatumState) -> bool {
    matches!(s, DatumState::Success | DatumState::Skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::SyntheticTree;
    use std::time::Duration;

    /// A planner over a store in `dir` for the plan of `n` flat paths (`glob: /*`), no base job.
    fn flat_plan(dir: &std::path::Path, n: usize, sets: SetRule) -> (DatumPlan, Planner) {
        let store = Store::open(dir).expect("store");
        let spec = crate::spec::parse_str(
            r#"{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
                "input": {"pfs": {"repo": "big", "glob": "/*"}}}"#,
            "p.json",
        )
        .expect("spec")
        .remove(0)
        .spec;
        let sources: HashMap<String, Arc<dyn TreeSource>> = [(
            "big".to_string(),
            Arc::new(SyntheticTree::flat(n)) as Arc<dyn TreeSource>,
        )]
        .into();
        let plan = DatumPlan::for_spec(&spec.effective(), &sources).expect("plan");
        let planner = Planner {
            store,
            pipeline: "p".into(),
            job_id: "j".into(),
            base: None,
            salt: "salt".into(),
            every_job: false,
            base_salt_same: true,
            resumed: false,
            started: Instant::now(),
            salvage: None,
            sets,
            delta: None,
        };
        (plan, planner)
    }

    /// The planner streams: with nobody taking datums it stops about [`QUEUE`] datums ahead (in
    /// batches of at most [`TODO_BATCH`]), and a
    /// million-path input goes through it one datum at a time, the count reported at the end.
    #[test]
    fn planner_streams_a_million_paths_through_a_bounded_queue() {
        const N: usize = 1_000_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let (plan, planner) = flat_plan(dir.path(), N, SetRule::Limits(SetLimits::new(1, 0)));
        let (work_tx, mut work_rx) = mpsc::channel(QUEUE / TODO_BATCH);
        let (report_tx, mut report_rx) = mpsc::channel(4 * N / PLANNED_EVERY as usize);
        let cancel = CancellationToken::new();
        let walker = std::thread::spawn(move || planner.run(&plan, &work_tx, &report_tx, &cancel));

        let deadline = Instant::now() + Duration::from_secs(60);
        while work_rx.len() < QUEUE / TODO_BATCH {
            assert!(Instant::now() < deadline, "the queue never filled");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            work_rx.len(),
            QUEUE / TODO_BATCH,
            "the planner ran ahead of the workers"
        );
        assert!(
            report_rx.try_recv().is_err(),
            "the planner reported datums beyond the queue"
        );

        let mut taken = 0usize;
        while let Some(batch) = work_rx.blocking_recv() {
            assert!(!batch.is_empty() && batch.len() <= TODO_BATCH);
            for t in batch {
                assert_eq!(t.reason, DatumReason::New);
                taken += 1;
            }
        }
        walker.join().expect("planner thread");
        assert_eq!(taken, N);
        let mut planned = None;
        while let Ok(m) = report_rx.try_recv() {
            match m {
                Msg::Planned { total, done: true } => planned = Some(total),
                Msg::Planned { .. } => {}
                _ => panic!("only counts are reported for new datums"),
            }
        }
        assert_eq!(planned, Some(N as u64));
    }

    /// The `per_worker` pre-pass counts the datums to run only until the set size no longer
    /// changes: on a million-datum plan with the default 4 sets per worker it reads
    /// `MAX_SET_DATUMS × 4` datums, and the sets come out at the cap.
    #[test]
    fn the_per_worker_pre_pass_stops_once_the_set_size_is_settled() {
        use super::super::datum_sets::MAX_SET_DATUMS;
        let dir = tempfile::tempdir().expect("tempdir");
        let rule = SetRule::of(None, 1);
        let (plan, planner) = flat_plan(dir.path(), 1_000_000, rule);
        let up_to = rule.count_up_to().expect("per_worker needs a count");
        assert_eq!(up_to, MAX_SET_DATUMS * 4);
        let n = planner
            .count_to_run(&plan, up_to, &CancellationToken::new())
            .expect("count");
        assert_eq!(n, up_to);
        assert_eq!(rule.limits(n), SetLimits::new(MAX_SET_DATUMS, 0));
        // A small plan is counted whole: 6 datums on one worker are sets of one.
        let dir = tempfile::tempdir().expect("tempdir");
        let (plan, planner) = flat_plan(dir.path(), 6, rule);
        let n = planner
            .count_to_run(&plan, up_to, &CancellationToken::new())
            .expect("count");
        assert_eq!((n, rule.limits(n).number), (6, 1));
    }
}
