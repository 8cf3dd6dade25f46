//! `resource_limits` / `resource_requests` → Docker container limits. The amounts are the
//! core's [`Resources`] (one parser and one set of bounds for every backend).
//!
//! | spec field | Docker `HostConfig` |
//! |---|---|
//! | `resource_limits.cpu` | `NanoCpus` (cpu × 10⁹) |
//! | `resource_limits.memory` | `Memory` (bytes; `MemorySwap` the same, so no swap beyond it) |
//! | `resource_limits.pids` | `PidsLimit` |
//! | `resource_requests.cpu` | `CpuShares` (cpu × 1024, relative weight) |
//! | `resource_requests.memory` | `MemoryReservation` (soft limit) |
//!
//! `gpu` and `disk` have no portable Docker equivalent: they are ignored with a warning.
//!
//! A datum the kernel kills for exceeding `Memory` is reported as
//! `DatumOutcome::OutOfMemory` (see the worker module: the cgroup's `oom_kill` counter).

use pipeline_core::executor::ExecutorError;
use pipeline_core::spec::{EffectiveSpec, Resources};

/// Container limits derived from a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `NanoCpus`.
    pub nano_cpus: Option<i64>,
    /// `Memory` in bytes.
    pub memory: Option<i64>,
    /// `CpuShares`.
    pub cpu_shares: Option<i64>,
    /// `MemoryReservation` in bytes.
    pub memory_reservation: Option<i64>,
    /// `PidsLimit`.
    pub pids: Option<i64>,
}

/// Maps the spec's resources to Docker limits; errors name the field.
pub fn limits(spec: &EffectiveSpec) -> Result<Limits, ExecutorError> {
    let r = Resources::resolve(
        spec.resource_requests.as_ref(),
        spec.resource_limits.as_ref(),
    )
    .map_err(|e| ExecutorError::InvalidTask {
        field: e.field,
        message: e.message,
    })?;
    for (side, s) in [
        ("resource_limits", &spec.resource_limits),
        ("resource_requests", &spec.resource_requests),
    ] {
        if let Some(s) = s {
            warn_ignored(s.gpu.is_some(), s.disk.is_some(), side);
        }
    }
    // Every amount is bounded by `Resources` far below `i64::MAX`.
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(Limits {
        nano_cpus: r.limits.cpu.map(|c| (c * 1e9).round() as i64),
        memory: r.limits.memory_bytes.map(int),
        cpu_shares: r.requests.cpu.map(|c| ((c * 1024.0).round() as i64).max(2)),
        memory_reservation: r.requests.memory_bytes.map(int),
        pids: r.limits.pids.map(int),
    })
}

fn warn_ignored(gpu: bool, disk: bool, field: &str) {
    if gpu {
        tracing::warn!("{field}.gpu is ignored by the docker executor");
    }
    if disk {
        tracing::warn!("{field}.disk is ignored by the docker executor");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::spec::ResourceSpec;

    #[test]
    fn spec_to_limits() {
        let spec = EffectiveSpec {
            resource_limits: Some(ResourceSpec {
                cpu: Some(0.5),
                memory: Some("64Mi".into()),
                ..Default::default()
            }),
            resource_requests: Some(ResourceSpec {
                cpu: Some(0.25),
                memory: Some("128Mi".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = limits(&spec).unwrap();
        assert_eq!(l.nano_cpus, Some(500_000_000));
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.cpu_shares, Some(256));
        assert_eq!(l.memory_reservation, Some(64 << 20), "capped at the limit");

        let bad = EffectiveSpec {
            resource_limits: Some(ResourceSpec {
                cpu: Some(-1.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = limits(&bad).unwrap_err().to_string();
        assert!(e.starts_with("resource_limits.cpu:"), "{e}");

        let pids = EffectiveSpec {
            resource_limits: Some(ResourceSpec {
                pids: Some(64),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(limits(&pids).unwrap().pids, Some(64));
    }
}
