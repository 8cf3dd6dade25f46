//! Cron inputs: ticks as commits of an empty file named by the tick time (RFC 3339) on the
//! cron repo's `master`, when [`Schedule`] says; `overwrite` deletes earlier ticks; `run cron`
//! ticks now. [`Engine::serve`](super::Engine::serve) ticks them as they fall due.

use crate::pfs::{FinishOptions, PfsError};

use super::Engine;
use super::error::{PpsError, Result};
use super::registry::input_branches;
use crate::civil_time::{parse_rfc3339, rfc3339};
use crate::schedule::Schedule;
use crate::spec::effective::DEFAULT_BRANCH;

/// Most overdue ticks committed for one input in one catch-up.
const MAX_CATCH_UP: usize = 1000;

/// A cron input of a running pipeline, with its schedule and its last tick.
struct DueCron {
    repo: crate::pfs::RepoRef,
    schedule: Schedule,
    overwrite: bool,
    /// Seconds since the epoch of the newest tick (or `start`, or the pipeline's creation).
    latest: u64,
}

impl Engine {
    /// Every cron input of every running pipeline whose schedule can fire.
    fn due_crons(&self) -> Result<Vec<DueCron>> {
        let mut out = Vec::new();
        for p in self.list_pipelines()? {
            if p.stopped {
                continue;
            }
            let spec = &p.effective;
            let Some(input) = &spec.input else { continue };
            let mut crons = Vec::new();
            collect_cron_specs(input, &mut crons);
            for c in crons {
                let Some(schedule) = c.spec.as_deref().and_then(|s| Schedule::parse(s).ok()) else {
                    continue;
                };
                let project = c.project.as_deref().unwrap_or(&p.project);
                let Some(repo) = c
                    .repo
                    .as_deref()
                    .and_then(|r| crate::pfs::RepoRef::in_project(project, r).ok())
                else {
                    continue;
                };
                let store = self.store();
                let Ok(head) = store.resolve_commit(&repo, DEFAULT_BRANCH) else {
                    continue;
                };
                let floor = c
                    .start
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .unwrap_or(p.created_ms / 1000);
                let latest = floor.max(self.newest_tick(&repo, &head)?);
                out.push(DueCron {
                    repo,
                    schedule,
                    overwrite: c.overwrite,
                    latest,
                });
            }
        }
        Ok(out)
    }

    /// The newest tick file's time in `head` of a cron repo (0 when none), cached by head.
    fn newest_tick(&self, repo: &crate::pfs::RepoRef, head: &crate::pfs::CommitRef) -> Result<u64> {
        let key = repo.key();
        let id = head.id.to_string();
        let cache = &self.inner.cron_latest;
        if let Some((seen, t)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && *seen == id
        {
            return Ok(*t);
        }
        let mut newest = 0;
        for f in self.store().list_file(head, "/")? {
            if let Some(t) = parse_rfc3339(f?.path.trim_start_matches('/')) {
                newest = newest.max(t);
            }
        }
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (id, newest));
        Ok(newest)
    }

    /// Commits every overdue tick of every cron input (any schedule [`Schedule`] reads: the
    /// next tick is the schedule's first time after the newest tick file, or after `start`,
    /// or after the pipeline's creation when there is neither). Overdue ticks are committed
    /// one commit each, in a row (reference §2.8), at most 1,000 per input at a time. Returns
    /// the number of ticks committed.
    ///
    /// Blocking: store I/O only (commits the ticks); runs no user code.
    pub fn tick_crons(&self) -> Result<usize> {
        let now = super::now_ms() / 1000;
        let mut n = 0;
        for c in self.due_crons()? {
            let store = self.store();
            let mut next = c.schedule.next_after(c.latest);
            let mut made = 0;
            while let Some(t) = next.filter(|t| *t <= now && made < MAX_CATCH_UP) {
                let b = c.repo.branch(DEFAULT_BRANCH)?;
                let commit = store.start_commit(&b, "cron tick")?.commit;
                if c.overwrite {
                    match store.delete_file(&commit, "/") {
                        Ok(_) | Err(PfsError::FileNotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                store.put_file_bytes(&commit, &format!("/{}", rfc3339(t)), b"")?;
                store.finish_commit(&commit, FinishOptions::default())?;
                self.inner
                    .cron_latest
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(c.repo.key(), (commit.id.to_string(), t));
                next = c.schedule.next_after(t);
                made += 1;
            }
            n += made;
        }
        Ok(n)
    }

    /// When the next cron tick of any running pipeline, or of a cron-scheduled branch
    /// trigger, is due (seconds since the epoch), if any schedule can fire.
    ///
    /// Blocking: store reads only.
    pub fn next_cron_due(&self) -> Result<Option<u64>> {
        let inputs = self
            .due_crons()?
            .iter()
            .filter_map(|c| c.schedule.next_after(c.latest))
            .min();
        let triggers = self.store().next_trigger_cron()?;
        Ok(inputs.into_iter().chain(triggers).min())
    }

    /// Commits one tick (the current time) to every cron input of a pipeline, as
    /// `pachctl run cron` does. Returns the commit-set IDs made.
    ///
    /// Blocking: store I/O only; the jobs it starts run on the next [`Engine::run_pending`].
    pub fn run_cron(&self, pipeline: &str) -> Result<Vec<String>> {
        let info = self.inspect_pipeline(pipeline)?;
        let spec = &info.effective;
        let mut crons = Vec::new();
        if let Some(input) = &spec.input {
            collect_crons(input, &mut crons);
        }
        if crons.is_empty() {
            return Err(PpsError::Usage(format!(
                "pipeline {pipeline:?} has no cron input"
            )));
        }
        let mut branches = Vec::new();
        if let Some(input) = &spec.input {
            input_branches(input, &mut branches);
        }
        let now = super::now_ms() / 1000;
        let mut ids = Vec::new();
        for (b, (_, overwrite)) in branches.iter().filter(|b| b.cron).zip(crons) {
            let store = self.store();
            let c = store.start_commit(&b.branch, "cron tick")?.commit;
            if overwrite {
                match store.delete_file(&c, "/") {
                    Ok(_) | Err(PfsError::FileNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            store.put_file_bytes(&c, &format!("/{}", rfc3339(now)), b"")?;
            store.finish_commit(&c, FinishOptions::default())?;
            ids.push(c.id.to_string());
        }
        Ok(ids)
    }
}

fn collect_crons(input: &crate::spec::Input, out: &mut Vec<(String, bool)>) {
    input.for_each(&mut |at| {
        if let Some(c) = &at.input.cron {
            out.push((c.name.clone().unwrap_or_default(), c.overwrite));
        }
    });
}

fn collect_cron_specs(input: &crate::spec::Input, out: &mut Vec<crate::spec::CronInput>) {
    input.for_each(&mut |at| out.extend(at.input.cron.clone()));
}
