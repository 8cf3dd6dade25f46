//! Branch triggers (reference §4.2): deferred processing without a person or a separate
//! process moving branches.
//!
//! A trigger branch watches another branch of its repo. After each commit on the watched
//! branch that finishes without error, every trigger watching it compares its own head with
//! the watched branch's new head ([`BranchTrigger`]'s conditions); when it fires, its head
//! moves to the watched head and everything downstream gets a new commit set, so the
//! pipelines reading the trigger branch run once per batch. Triggers may chain (a trigger
//! branch watching a trigger branch); loops are refused.

use super::error::{PfsError, Result};
use super::model::now_ms;
use super::model::{BranchInfo, BranchRef, BranchTrigger, CommitId, CommitInfo, RepoRef};
use super::records::{BranchRecord, get_commit, put_branch};
use super::store::{Store, all_branches, propagate};
use super::txn::StoreTxn;
use crate::error_chain::ErrorChain;
use crate::schedule::Schedule;

impl Store {
    /// Makes `branch` a trigger branch watching `trigger.branch` of the same repo. A new
    /// branch starts at the watched branch's head; an existing one keeps its head. Refused
    /// for a branch with provenance, a watched branch that does not exist, a bad
    /// `rate_limit_spec`, and triggers that would form a loop.
    pub fn set_branch_trigger(
        &self,
        branch: &BranchRef,
        trigger: BranchTrigger,
    ) -> Result<BranchInfo> {
        self.transact(|t| t.set_branch_trigger(branch, trigger))
    }

    /// Fires the triggers watching `watched` (and, in turn, those watching a branch that
    /// moved), in one transaction with the new downstream commit set.
    pub(crate) fn fire_triggers(&self, repo: &RepoRef, watched: &str) -> Result<()> {
        {
            let r = self.inner.meta.read()?;
            let any = all_branches(&*r)?
                .iter()
                .any(|(b, rec)| b.repo == *repo && rec.trigger.is_some());
            if !any {
                return Ok(());
            }
        }
        // The write transaction serialises this with every other metadata change.
        let mut w = self.write_txn()?;
        let mut all = all_branches(&*w)?;
        let mut moved: Vec<BranchRef> = Vec::new();
        let mut queue = vec![watched.to_string()];
        while let Some(name) = queue.pop() {
            let wb = repo.branch(&name)?;
            let Some(new_head) = all.get(&wb).map(|r| r.head.clone()) else {
                continue;
            };
            let new = get_commit(&*w, repo, &new_head)?.info;
            if !new.is_finished() || new.error.is_some() {
                continue;
            }
            let watchers: Vec<(BranchRef, BranchRecord)> = all
                .iter()
                .filter(|(b, r)| {
                    b.repo == *repo
                        && r.head != new_head
                        && r.trigger
                            .as_ref()
                            .is_some_and(|t| t.branch == name && t.cron_spec.is_none())
                })
                .map(|(b, r)| (b.clone(), r.clone()))
                .collect();
            for (tb, mut rec) in watchers {
                let Some(trigger) = &rec.trigger else {
                    continue;
                };
                let old = get_commit(&*w, repo, &rec.head)?.info;
                if !fires(trigger, &old, &new, |limit| {
                    commits_between(&*w, repo, &new, &rec.head, limit)
                })? {
                    continue;
                }
                rec.head.clone_from(&new_head);
                put_branch(&mut *w, &tb, &rec)?;
                all.insert(tb.clone(), rec);
                queue.push(tb.name.clone());
                moved.push(tb);
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        propagate(&mut *w, &mut all, &moved, &CommitId::generate(), false)?;
        w.commit()
    }
}

impl Store {
    /// Fires every trigger with a `cron_spec` whose schedule ticked by `now_s` (seconds since
    /// the epoch): its head moves to the watched branch's head (when that is finished without
    /// error and differs), with a new downstream commit set. Returns how many branches moved.
    pub fn tick_trigger_crons(&self, now_s: u64) -> Result<usize> {
        let due = |t: &BranchTrigger| {
            let (Some(spec), Some(last)) = (&t.cron_spec, t.last_tick_s) else {
                return None;
            };
            Schedule::parse(spec)
                .ok()?
                .next_after(last)
                .filter(|next| *next <= now_s)
        };
        {
            let r = self.inner.meta.read()?;
            if !all_branches(&*r)?
                .values()
                .any(|rec| rec.trigger.as_ref().and_then(due).is_some())
            {
                return Ok(0);
            }
        }
        let mut w = self.write_txn()?;
        let mut all = all_branches(&*w)?;
        let mut moved = Vec::new();
        let candidates: Vec<(BranchRef, BranchRecord)> = all
            .iter()
            .filter(|(_, r)| r.trigger.as_ref().and_then(due).is_some())
            .map(|(b, r)| (b.clone(), r.clone()))
            .collect();
        for (tb, mut rec) in candidates {
            let Some(trigger) = rec.trigger.as_mut() else {
                continue;
            };
            trigger.last_tick_s = Some(now_s);
            let watched = tb.repo.branch(&trigger.branch)?;
            if let Some(head) = all.get(&watched).map(|r| r.head.clone())
                && head != rec.head
            {
                let c = get_commit(&*w, &tb.repo, &head)?.info;
                if c.is_finished() && c.error.is_none() {
                    rec.head = head;
                    moved.push(tb.clone());
                }
            }
            put_branch(&mut *w, &tb, &rec)?;
            all.insert(tb, rec);
        }
        if !moved.is_empty() {
            propagate(&mut *w, &mut all, &moved, &CommitId::generate(), false)?;
        }
        w.commit()?;
        Ok(moved.len())
    }

    /// When the next cron-scheduled trigger is due (seconds since the epoch), if any.
    pub fn next_trigger_cron(&self) -> Result<Option<u64>> {
        let r = self.inner.meta.read()?;
        Ok(all_branches(&*r)?
            .values()
            .filter_map(|rec| {
                let t = rec.trigger.as_ref()?;
                Schedule::parse(t.cron_spec.as_deref()?)
                    .ok()?
                    .next_after(t.last_tick_s?)
            })
            .min())
    }
}

/// Triggers inside a [`StoreTxn`].
impl StoreTxn<'_> {
    /// Makes `branch` a trigger branch. See [`Store::set_branch_trigger`].
    pub fn set_branch_trigger(
        &mut self,
        branch: &BranchRef,
        trigger: BranchTrigger,
    ) -> Result<BranchInfo> {
        let bad = |m: String| PfsError::Provenance(m);
        if trigger.branch == branch.name {
            return Err(bad(format!("branch {branch} cannot trigger on itself")));
        }
        let mut trigger = trigger;
        if let Some(spec) = &trigger.rate_limit_spec {
            Schedule::parse(spec).map_err(|e| {
                bad(format!(
                    "invalid trigger rate limit spec {spec:?}: {}",
                    ErrorChain(&e)
                ))
            })?;
        }
        if let Some(spec) = &trigger.cron_spec {
            Schedule::parse(spec).map_err(|e| {
                bad(format!(
                    "invalid trigger cron spec {spec:?}: {}",
                    ErrorChain(&e)
                ))
            })?;
            trigger.last_tick_s.get_or_insert_with(|| now_ms() / 1000);
        }
        let watched = branch.repo.branch(&trigger.branch)?;
        let w = &mut *self.w;
        let all = all_branches(w)?;
        let Some(watched_rec) = all.get(&watched) else {
            return Err(PfsError::BranchNotFound {
                repo: watched.repo.to_string(),
                branch: watched.name.clone(),
            });
        };
        // Follow what the watched branch itself watches: reaching `branch` is a loop.
        let mut next = watched_rec.trigger.as_ref().map(|t| t.branch.clone());
        let mut hops = 0;
        while let Some(name) = next {
            if name == branch.name || hops > all.len() {
                return Err(bad(format!(
                    "triggers cannot form a loop ({branch} through {watched})"
                )));
            }
            hops += 1;
            next = all
                .get(&branch.repo.branch(&name)?)
                .and_then(|r| r.trigger.as_ref())
                .map(|t| t.branch.clone());
        }
        if let Some(old) = all.get(branch).and_then(|r| r.trigger.as_ref())
            && old.cron_spec == trigger.cron_spec
            && old.last_tick_s.is_some()
        {
            trigger.last_tick_s = old.last_tick_s;
        }
        let head = match all.get(branch) {
            Some(rec) if !rec.direct_provenance.is_empty() => {
                return Err(bad(format!(
                    "branch {branch} has provenance: a branch cannot have both provenance and a trigger"
                )));
            }
            Some(rec) => rec.head.clone(),
            None => watched_rec.head.clone(),
        };
        put_branch(
            w,
            branch,
            &BranchRecord {
                head,
                direct_provenance: Vec::new(),
                trigger: Some(trigger),
            },
        )?;
        self.inspect_branch(branch)
    }
}

/// Whether `trigger` fires for a move from `old` to `new` (conditions combined as `all`
/// says; `count(limit)` counts commits from the old head to the new one, up to `limit`).
fn fires(
    trigger: &BranchTrigger,
    old: &CommitInfo,
    new: &CommitInfo,
    count: impl Fn(u64) -> Result<u64>,
) -> Result<bool> {
    let mut conditions = Vec::new();
    if let Some(size) = trigger.size_bytes {
        let grown = new
            .size_bytes
            .unwrap_or(0)
            .saturating_sub(old.size_bytes.unwrap_or(0));
        conditions.push(grown >= size);
    }
    if let Some(n) = trigger.commits {
        conditions.push(count(n)? >= n);
    }
    if let Some(spec) = &trigger.rate_limit_spec {
        let ticked = Schedule::parse(spec).ok().and_then(|s| {
            let since = old.finished_ms.unwrap_or(old.started_ms) / 1000;
            s.next_after(since)
        });
        let now = new.finished_ms.unwrap_or(new.started_ms) / 1000;
        conditions.push(ticked.is_some_and(|t| t <= now));
    }
    Ok(if trigger.all {
        conditions.iter().all(|c| *c)
    } else {
        conditions.iter().any(|c| *c)
    })
}

/// Commits from `old_head` (excluded) to `new` (included) along parents, counting at most
/// `limit`.
fn commits_between<G: super::records::Getter + ?Sized>(
    g: &G,
    repo: &RepoRef,
    new: &CommitInfo,
    old_head: &str,
    limit: u64,
) -> Result<u64> {
    let mut n = 0;
    let mut cur = Some(new.commit.id.clone());
    while let Some(id) = cur {
        if id.as_str() == old_head || n >= limit {
            break;
        }
        n += 1;
        cur = get_commit(g, repo, id.as_str())?.info.parent;
    }
    Ok(n)
}
