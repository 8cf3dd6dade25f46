//! Datum sets (reference §1.4): the unit of work one worker claims and whose results are
//! committed together. The datums a job runs (skipped ones are in no set) are cut into sets
//! in plan order as they stream from the planner:
//!
//! - `datum_set_spec.number` > 0 and/or `size_bytes` > 0: a set closes once it holds
//!   `number` datums or once the running total of its datums' input bytes reached
//!   `size_bytes` (whichever comes first), as Pachyderm's `CreateSets`.
//! - Otherwise (no `datum_set_spec`, or both 0): datums per set =
//!   `to_run / (workers × per_worker)`, at least 1, with `per_worker` 4 when
//!   `datum_set_spec` is absent. `to_run` (Pachyderm's `data_total − data_skipped`) is counted
//!   by a pre-pass of the planner over the plan before the first datum is handed on; the
//!   pre-pass stops as soon as the count is large enough to give [`MAX_SET_DATUMS`] per set,
//!   so it reads at most `MAX_SET_DATUMS × workers × per_worker` datums to run.
//! - An explicit all-zero `datum_set_spec` (which makes Pachyderm divide by zero) is refused
//!   by validation (`datum_set_spec.zero`); a stored spec that has it anyway runs with one
//!   datum per set, never dividing by zero.
//!
//! Engine limit (a deviation): a set holds at most [`MAX_SET_DATUMS`] datums whatever the
//! spec says, since a set's datums and their results stay in memory until it is committed.
//! A job resumed after its host died sizes its sets from the datums it still has to run.

use crate::spec::DatumSetSpec;

/// Most datums in one set (see the module docs).
pub(super) const MAX_SET_DATUMS: u64 = 10_000;

/// Sets per worker when the pipeline has no `datum_set_spec` (Pachyderm's
/// `defaultDatumSetsPerWorker`).
pub(super) const DEFAULT_PER_WORKER: u64 = 4;

/// How a job's datums to run are cut into sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetRule {
    /// Fixed limits, known before planning.
    Limits(SetLimits),
    /// `to_run / (workers × per_worker)` datums per set, at least 1: needs the count of
    /// datums to run.
    PerWorker {
        /// The pipeline's workers.
        workers: u64,
        /// Sets per worker (0 only from an all-zero spec: one datum per set).
        per_worker: u64,
    },
}

/// When a set closes: at `number` datums, or once its input bytes reach `size_bytes` (0:
/// no byte limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SetLimits {
    /// Datums per set, 1 ..= [`MAX_SET_DATUMS`].
    pub number: u64,
    /// Input bytes per set (0: unused).
    pub size_bytes: u64,
}

impl SetLimits {
    /// `number` (0: none, i.e. [`MAX_SET_DATUMS`]) and `size_bytes` (0: none).
    pub(super) fn new(number: u64, size_bytes: u64) -> Self {
        let number = if number == 0 {
            MAX_SET_DATUMS
        } else {
            number.min(MAX_SET_DATUMS)
        };
        SetLimits { number, size_bytes }
    }
}

impl SetRule {
    /// The rule of a pipeline with `spec` (its `datum_set_spec`) and `workers` workers.
    pub(super) fn of(spec: Option<&DatumSetSpec>, workers: u64) -> Self {
        let v = |x: Option<i64>| u64::try_from(x.unwrap_or(0)).unwrap_or(0);
        let workers = workers.max(1);
        match spec {
            None => SetRule::PerWorker {
                workers,
                per_worker: DEFAULT_PER_WORKER,
            },
            Some(s) if v(s.number) > 0 || v(s.size_bytes) > 0 => {
                SetRule::Limits(SetLimits::new(v(s.number), v(s.size_bytes)))
            }
            Some(s) => SetRule::PerWorker {
                workers,
                per_worker: v(s.per_worker),
            },
        }
    }

    /// How many datums to run the planner must count before it can size sets: `None` when
    /// the limits are fixed, else the count past which the answer no longer changes.
    pub(super) fn count_up_to(&self) -> Option<u64> {
        match *self {
            SetRule::Limits(_) => None,
            SetRule::PerWorker { per_worker: 0, .. } => None,
            SetRule::PerWorker {
                workers,
                per_worker,
            } => Some(
                MAX_SET_DATUMS
                    .saturating_mul(workers)
                    .saturating_mul(per_worker),
            ),
        }
    }

    /// The limits for a job with `to_run` datums to run (counted up to
    /// [`SetRule::count_up_to`]; ignored for fixed limits).
    pub(super) fn limits(&self, to_run: u64) -> SetLimits {
        match *self {
            SetRule::Limits(l) => l,
            SetRule::PerWorker { per_worker: 0, .. } => SetLimits::new(1, 0),
            SetRule::PerWorker {
                workers,
                per_worker,
            } => SetLimits::new((to_run / workers.saturating_mul(per_worker)).max(1), 0),
        }
    }
}

/// Cuts the stream of datums to run into sets, one datum at a time.
#[derive(Debug)]
pub(super) struct SetCutter {
    limits: SetLimits,
    in_set: u64,
    bytes: u64,
}

impl SetCutter {
    /// A cutter with `limits`, at the start of a set.
    pub(super) fn new(limits: SetLimits) -> Self {
        SetCutter {
            limits,
            in_set: 0,
            bytes: 0,
        }
    }

    /// Adds a datum with `size` input bytes to the current set; `true` when it is the set's
    /// last (the next datum starts a new set).
    pub(super) fn add(&mut self, size: u64) -> bool {
        self.in_set += 1;
        self.bytes = self.bytes.saturating_add(size);
        let full = self.in_set >= self.limits.number
            || (self.limits.size_bytes > 0 && self.bytes >= self.limits.size_bytes);
        if full {
            self.in_set = 0;
            self.bytes = 0;
        }
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(number: i64, size_bytes: i64, per_worker: i64) -> DatumSetSpec {
        DatumSetSpec {
            number: Some(number),
            size_bytes: Some(size_bytes),
            per_worker: Some(per_worker),
        }
    }

    /// The set boundaries `sizes` are cut at (each set's datum count).
    fn cut(limits: SetLimits, sizes: &[u64]) -> Vec<usize> {
        let mut c = SetCutter::new(limits);
        let mut sets = vec![0];
        for s in sizes {
            *sets.last_mut().unwrap() += 1;
            if c.add(*s) {
                sets.push(0);
            }
        }
        sets.retain(|n| *n > 0);
        sets
    }

    #[test]
    fn number_and_size_bytes_close_sets_whichever_comes_first() {
        let r = SetRule::of(Some(&spec(2, 0, 0)), 3);
        assert_eq!(r.count_up_to(), None);
        assert_eq!(cut(r.limits(0), &[1; 5]), [2, 2, 1]);
        let r = SetRule::of(Some(&spec(0, 10, 0)), 1);
        assert_eq!(cut(r.limits(0), &[5, 30, 5, 5, 5]), [2, 2, 1]);
        let r = SetRule::of(Some(&spec(3, 10, 0)), 1);
        assert_eq!(cut(r.limits(0), &[1, 1, 1, 20, 1]), [3, 1, 1]);
    }

    #[test]
    fn per_worker_divides_the_datums_to_run() {
        let default = SetRule::of(None, 2);
        assert_eq!(default.limits(16).number, 2);
        assert_eq!(default.limits(3).number, 1, "at least one datum per set");
        assert_eq!(SetRule::of(None, 1).limits(16).number, 4);
        let explicit = SetRule::of(Some(&spec(0, 0, 1)), 2);
        assert_eq!(explicit.limits(16).number, 8);
        assert_eq!(
            default.limits(u64::MAX).number,
            MAX_SET_DATUMS,
            "capped in memory"
        );
        assert_eq!(default.count_up_to(), Some(MAX_SET_DATUMS * 8));
    }

    #[test]
    fn all_zero_spec_runs_one_datum_per_set_and_never_divides_by_zero() {
        let r = SetRule::of(Some(&spec(0, 0, 0)), 0);
        assert_eq!(r.count_up_to(), None);
        assert_eq!(cut(r.limits(0), &[1; 3]), [1, 1, 1]);
        let negative = SetRule::of(Some(&spec(-1, -5, -3)), 2);
        assert_eq!(negative.limits(100), SetLimits::new(1, 0));
    }
}
