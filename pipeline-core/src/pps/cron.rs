//! Cron inputs: ticks as commits of an empty file named by the tick time (RFC 3339) on the
//! cron repo's `master`, when [`Schedule`] says; `overwrite` deletes earlier ticks; `run cron`
//! ticks now. [`Engine::serve`](super::Engine::serve) ticks them as they fall due.

use crate::pfs::{FinishOptions, PfsError};

use super::Engine;
use super::error::{PpsError, Result};
use super::registry::input_branches;
use crate::schedule::Schedule;

/// Formats seconds since the epoch as RFC 3339 UTC (`2024-05-01T10:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (proleptic Gregorian), after Howard Hinnant's public-domain algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC only) into seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b.get(10) != Some(&b'T') || b.get(19) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

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
                let Some(repo) = c
                    .repo
                    .as_deref()
                    .and_then(|r| crate::pfs::RepoRef::new(r).ok())
                else {
                    continue;
                };
                let store = self.store();
                let Ok(head) = store.resolve_commit(&repo, "master") else {
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
                let b = c.repo.branch("master")?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
        for t in [0, 951_782_400, 1_714_557_600, 4_102_444_799] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(t)), Some(t));
        }
        assert_eq!(super::parse_rfc3339("2024-05-01 10:00:00"), None);
    }
}
