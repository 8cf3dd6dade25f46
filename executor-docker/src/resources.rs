//! `resource_limits` / `resource_requests` → Docker container limits.
//!
//! | spec field | Docker `HostConfig` |
//! |---|---|
//! | `resource_limits.cpu` | `NanoCpus` (cpu × 10⁹) |
//! | `resource_limits.memory` | `Memory` (bytes) |
//! | `resource_requests.cpu` | `CpuShares` (cpu × 1024, relative weight) |
//! | `resource_requests.memory` | `MemoryReservation` (soft limit) |
//!
//! `gpu` and `disk` have no portable Docker equivalent: they are ignored with a warning.

use pipeline_core::executor::ExecutorError;
use pipeline_core::spec::EffectiveSpec;

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
}

/// Maps the spec's resources to Docker limits; errors name the field.
pub fn limits(spec: &EffectiveSpec) -> Result<Limits, ExecutorError> {
    let mut out = Limits::default();
    if let Some(l) = &spec.resource_limits {
        if let Some(cpu) = l.cpu {
            out.nano_cpus = Some(cpu_to(cpu, 1e9, "resource_limits.cpu")?);
        }
        if let Some(m) = &l.memory {
            out.memory = Some(parse_memory(m, "resource_limits.memory")?);
        }
        warn_ignored(l.gpu.is_some(), l.disk.is_some(), "resource_limits");
    }
    if let Some(r) = &spec.resource_requests {
        if let Some(cpu) = r.cpu {
            out.cpu_shares = Some(cpu_to(cpu, 1024.0, "resource_requests.cpu")?.max(2));
        }
        if let Some(m) = &r.memory {
            out.memory_reservation = Some(parse_memory(m, "resource_requests.memory")?);
        }
        warn_ignored(r.gpu.is_some(), r.disk.is_some(), "resource_requests");
    }
    if let (Some(limit), Some(res)) = (out.memory, out.memory_reservation)
        && res > limit
    {
        // Docker refuses a reservation above the limit; a request cannot exceed the limit.
        out.memory_reservation = Some(limit);
    }
    Ok(out)
}

fn warn_ignored(gpu: bool, disk: bool, field: &str) {
    if gpu {
        tracing::warn!("{field}.gpu is ignored by the docker executor");
    }
    if disk {
        tracing::warn!("{field}.disk is ignored by the docker executor");
    }
}

fn cpu_to(cpu: f64, scale: f64, field: &str) -> Result<i64, ExecutorError> {
    if !cpu.is_finite() || cpu <= 0.0 || cpu > 1e6 {
        return Err(ExecutorError::InvalidTask {
            field: field.to_string(),
            message: format!("expected a positive number of CPUs, got {cpu}"),
        });
    }
    // In range by the check above; the float-to-int cast saturates anyway.
    Ok((cpu * scale).round() as i64)
}

/// Parses a Kubernetes-style memory quantity (`"512Mi"`, `"1G"`, `"1.5Gi"`, `"1000"`) to bytes.
pub fn parse_memory(text: &str, field: &str) -> Result<i64, ExecutorError> {
    let bad = || ExecutorError::InvalidTask {
        field: field.to_string(),
        message: format!(
            "expected a memory quantity like \"512Mi\", \"1G\" or a byte count, got {text:?}"
        ),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = (value * mult).round();
    if !bytes.is_finite() || bytes < 1.0 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::spec::ResourceSpec;

    #[test]
    fn memory_quantities() {
        let f = "resource_limits.memory";
        for (t, v) in [
            ("1000", 1000),
            ("1k", 1000),
            ("1Ki", 1024),
            ("1.5Gi", 3 * (1 << 29)),
            ("2M", 2_000_000),
            (" 64Mi ", 64 << 20),
            ("1G", 1_000_000_000),
        ] {
            assert_eq!(parse_memory(t, f).unwrap(), v, "{t}");
        }
        for t in ["", "Mi", "1Xi", "-1Mi", "0", "1e3", "1..2G", "lots"] {
            let e = parse_memory(t, f).unwrap_err().to_string();
            assert!(e.contains(f) && e.contains("expected"), "{t}: {e}");
        }
    }

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
    }
}
