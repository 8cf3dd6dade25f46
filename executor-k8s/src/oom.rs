//! Telling a datum killed for exceeding `resource_limits.memory` from any other failure.
//!
//! A datum runs as an exec'd process inside the worker container, so when the kernel's OOM
//! killer ends it, Kubernetes reports nothing: the pod's `OOMKilled` reason is set only when
//! the container's **main** process (the idle loop) dies, and that case is already a lost
//! worker. What the kernel does keep is the container memory cgroup's `oom_kill` counter, which
//! grows by one for every process it kills there.
//!
//! When the pipeline sets `resource_limits.memory`, the executor reads that counter through its
//! own exec session ([`OOM_KILLS`]) right before the datum's program starts and again after a
//! run that failed. A failed run (any exit status but 0, or a signal) during which the counter
//! grew is reported as [`DatumOutcome::OutOfMemory`], which the engine records as failure kind
//! `oom`. The counter is read from
//!
//! - cgroup v2: `<cgroup>/memory.events`, line `oom_kill N`;
//! - cgroup v1: `<cgroup>/memory/memory.oom_control`, line `oom_kill N` (kernel 4.13+);
//!
//! where `<cgroup>` is [`WorkerPaths::cgroup`](crate::WorkerPaths::cgroup) (`/sys/fs/cgroup`).
//! When neither can be read (a v2 node whose containers see the host's cgroup root, an old
//! kernel), the counter is *unknown*: the executor warns once per worker pool and a datum the
//! OOM killer ended is reported as what its exit status says, usually
//! [`DatumOutcome::Signaled`] with signal 9.
//!
//! **Trust.** The counter is read by the executor's own session, not by the wrapper that runs
//! user code, and nothing the program prints or exits with is parsed for it. User code can
//! only make the counter grow by really getting one of its processes OOM-killed; in a
//! privileged container it could also mount over `/sys/fs/cgroup` and fake the numbers. Either
//! way it can only change *how its own failed datum is classified* (`oom` instead of a signal
//! or exit code, or the reverse): the counter is consulted only after a run that already
//! failed, so it can never turn a failure into a success, nor a success into a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pipeline_core::executor::DatumOutcome;

/// Prints `oom_kill N` (the container memory cgroup's OOM kill counter under `$1`, cgroup v2
/// first, then v1) or `unknown`. Only shell builtins, so any image with `/bin/sh` can run it.
pub const OOM_KILLS: &str = r#"cg=$1
for f in "$cg/memory.events" "$cg/memory/memory.oom_control"; do
  if [ -r "$f" ]; then
    while read -r k v; do
      if [ "$k" = oom_kill ]; then echo "oom_kill $v"; exit 0; fi
    done < "$f"
  fi
done
echo unknown
exit 0
"#;

/// Parses the output of [`OOM_KILLS`]: `Some(n)` for `oom_kill n`, `None` for anything else.
pub fn parse_oom_kills(output: &str) -> Option<u64> {
    let mut words = output.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("oom_kill"), Some(n), None) => n.parse().ok(),
        _ => None,
    }
}

/// The OOM check of one worker pool (present only when the pipeline has a memory limit).
#[derive(Debug, Clone)]
pub struct OomWatch {
    /// In-pod cgroup root (`/sys/fs/cgroup`).
    pub cgroup: String,
    /// Set once the "counter unreadable" warning was logged for this pool.
    warned: Arc<AtomicBool>,
}

impl OomWatch {
    /// A watch reading the counters under `cgroup`.
    pub fn new(cgroup: impl Into<String>) -> Self {
        OomWatch {
            cgroup: cgroup.into(),
            warned: Arc::default(),
        }
    }

    /// Logs, once per pool, that OOM kills cannot be told apart on pod `pod`.
    pub fn warn_unknown(&self, pod: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                pod = %pod,
                cgroup = %self.cgroup,
                "resource_limits.memory is set but the worker container's OOM kill counter \
                 (memory.events or memory/memory.oom_control) is not readable: a datum killed \
                 for exceeding its memory limit is reported as killed by signal 9, not as oom"
            );
        }
    }
}

/// The outcome of a run, given the counter before and after it: a failed run during which
/// the counter grew is [`DatumOutcome::OutOfMemory`]; everything else is left as it is.
pub fn classify(outcome: DatumOutcome, before: Option<u64>, after: Option<u64>) -> DatumOutcome {
    let failed = matches!(
        outcome,
        DatumOutcome::Signaled { .. } | DatumOutcome::Exited { .. }
    ) && !outcome.is_success();
    match (before, after) {
        (Some(b), Some(a)) if failed && a > b => DatumOutcome::OutOfMemory,
        _ => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_exact_line() {
        assert_eq!(parse_oom_kills("oom_kill 3\n"), Some(3));
        assert_eq!(parse_oom_kills("unknown\n"), None);
        assert_eq!(parse_oom_kills(""), None);
        assert_eq!(parse_oom_kills("oom_kill\n"), None);
        assert_eq!(parse_oom_kills("oom_kill -1\n"), None);
        assert_eq!(parse_oom_kills("oom_kill 1 2\n"), None);
    }

    #[test]
    fn only_a_failed_run_with_growth_is_oom() {
        let sig9 = DatumOutcome::Signaled { signal: 9 };
        let ok = DatumOutcome::Exited { exit_code: 0 };
        let one = DatumOutcome::Exited { exit_code: 1 };
        assert_eq!(classify(sig9, Some(0), Some(1)), DatumOutcome::OutOfMemory);
        assert_eq!(classify(one, Some(2), Some(5)), DatumOutcome::OutOfMemory);
        assert_eq!(classify(sig9, Some(1), Some(1)), sig9);
        assert_eq!(classify(sig9, None, Some(1)), sig9);
        assert_eq!(classify(sig9, Some(1), None), sig9);
        // A counter that went backwards is not growth.
        assert_eq!(classify(sig9, Some(4), Some(1)), sig9);
        assert_eq!(classify(ok, Some(0), Some(1)), ok);
        assert_eq!(
            classify(DatumOutcome::Cancelled, Some(0), Some(1)),
            DatumOutcome::Cancelled
        );
    }
}
