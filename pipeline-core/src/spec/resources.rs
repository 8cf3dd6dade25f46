//! `resource_requests` / `resource_limits` resolved to numbers, each checked, so every backend
//! (cgroups for local processes, a container's host config, a pod's resources) enforces the
//! same amounts and reports a bad value the same way.
//!
//! ```
//! use pipeline_core::spec::{ResourceSpec, Resources};
//! let limits = ResourceSpec { memory: Some("100Mi".into()), pids: Some(64), ..Default::default() };
//! let r = Resources::resolve(None, Some(&limits)).unwrap();
//! assert_eq!(r.limits.memory_bytes, Some(100 << 20));
//! assert_eq!(r.limits.pids, Some(64));
//! ```

use super::types::ResourceSpec;

/// The largest CPU count accepted (a sanity bound, above any one machine).
pub const MAX_CPUS: f64 = 4096.0;
/// The largest `pids` limit accepted (the kernel's own `pid_max` ceiling, 2²²).
pub const MAX_PIDS: u64 = 1 << 22;
/// The smallest memory amount accepted: below one page nothing can run.
pub const MIN_MEMORY_BYTES: u64 = 4096;

/// A resource value that is not a usable amount; names the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ResourceError {
    /// The field, e.g. `resource_limits.memory`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// One side (`requests` or `limits`) in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceAmounts {
    /// CPUs (fractional, positive).
    pub cpu: Option<f64>,
    /// Memory in bytes.
    pub memory_bytes: Option<u64>,
    /// Most processes and threads at once (our extension; `resource_limits.pids`).
    pub pids: Option<u64>,
}

/// Requests and limits of one pipeline, resolved. A memory request above the limit is capped
/// at the limit (a request cannot exceed what is allowed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    /// `resource_requests`: what the worker should get (weights, soft limits).
    pub requests: ResourceAmounts,
    /// `resource_limits`: what the worker may never exceed.
    pub limits: ResourceAmounts,
}

impl Resources {
    /// Resolves both sides; the first bad value is the error.
    pub fn resolve(
        requests: Option<&ResourceSpec>,
        limits: Option<&ResourceSpec>,
    ) -> Result<Resources, ResourceError> {
        let mut out = Resources {
            requests: amounts(requests, "resource_requests")?,
            limits: amounts(limits, "resource_limits")?,
        };
        if let (Some(limit), Some(request)) = (out.limits.memory_bytes, out.requests.memory_bytes) {
            out.requests.memory_bytes = Some(request.min(limit));
        }
        Ok(out)
    }

    /// Every problem of both sides (for validation, which reports all at once).
    pub fn problems(
        requests: Option<&ResourceSpec>,
        limits: Option<&ResourceSpec>,
    ) -> Vec<ResourceError> {
        [(requests, "resource_requests"), (limits, "resource_limits")]
            .into_iter()
            .filter_map(|(spec, side)| spec.map(|s| (s, side)))
            .flat_map(|(spec, side)| {
                // The cpu bounds are reported by `validate::bounds` (codes `limit.*`).
                [
                    spec.memory
                        .as_deref()
                        .map(|m| parse_memory(m, &format!("{side}.memory")).err()),
                    spec.pids
                        .map(|p| check_pids(p, &format!("{side}.pids")).err()),
                ]
            })
            .flatten()
            .flatten()
            .collect()
    }
}

fn amounts(spec: Option<&ResourceSpec>, side: &str) -> Result<ResourceAmounts, ResourceError> {
    let Some(spec) = spec else {
        return Ok(ResourceAmounts::default());
    };
    Ok(ResourceAmounts {
        // 0 CPUs means no value (Kubernetes accepts it; there is nothing to enforce).
        cpu: spec
            .cpu
            .filter(|&c| c != 0.0)
            .map(|c| parse_cpu(c, &format!("{side}.cpu")))
            .transpose()?,
        memory_bytes: spec
            .memory
            .as_deref()
            .map(|m| parse_memory(m, &format!("{side}.memory")))
            .transpose()?,
        pids: spec
            .pids
            .map(|p| check_pids(p, &format!("{side}.pids")))
            .transpose()?,
    })
}

fn parse_cpu(cpu: f64, field: &str) -> Result<f64, ResourceError> {
    if cpu.is_finite() && cpu > 0.0 && cpu <= MAX_CPUS {
        Ok(cpu)
    } else {
        Err(ResourceError {
            field: field.to_string(),
            message: format!("expected a positive number of CPUs up to {MAX_CPUS}, got {cpu}"),
        })
    }
}

fn check_pids(pids: u64, field: &str) -> Result<u64, ResourceError> {
    if (1..=MAX_PIDS).contains(&pids) {
        Ok(pids)
    } else {
        Err(ResourceError {
            field: field.to_string(),
            message: format!("expected a process count from 1 to {MAX_PIDS}, got {pids}"),
        })
    }
}

/// Parses a Kubernetes memory quantity (`"512Mi"`, `"1G"`, `"1.5Gi"`, `"1000"`) to bytes.
pub fn parse_memory(text: &str, field: &str) -> Result<u64, ResourceError> {
    let bad = || ResourceError {
        field: field.to_string(),
        message: format!(
            "expected a memory quantity like \"512Mi\", \"1G\" or a byte count of at least \
             {MIN_MEMORY_BYTES}, got {text:?}"
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
    if !bytes.is_finite() || bytes < MIN_MEMORY_BYTES as f64 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    // In range by the check above.
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities() {
        let f = "resource_limits.memory";
        for (t, v) in [
            ("4096", 4096),
            ("10k", 10_000),
            ("4Ki", 4096),
            ("1.5Gi", 3 * (1 << 29)),
            ("2M", 2_000_000),
            (" 64Mi ", 64 << 20),
            ("1G", 1_000_000_000),
        ] {
            assert_eq!(parse_memory(t, f).unwrap(), v, "{t}");
        }
        for t in [
            "", "Mi", "1Xi", "-1Mi", "0", "1000", "1e3", "1..2G", "lots", "9999P",
        ] {
            let e = parse_memory(t, f).unwrap_err().to_string();
            assert!(e.starts_with(f) && e.contains("expected"), "{t}: {e}");
        }
    }

    #[test]
    fn requests_are_capped_at_limits_and_bad_values_name_their_field() {
        let req = ResourceSpec {
            cpu: Some(0.25),
            memory: Some("128Mi".into()),
            ..Default::default()
        };
        let lim = ResourceSpec {
            cpu: Some(0.5),
            memory: Some("64Mi".into()),
            pids: Some(100),
            ..Default::default()
        };
        let r = Resources::resolve(Some(&req), Some(&lim)).unwrap();
        assert_eq!(r.limits.cpu, Some(0.5));
        assert_eq!(r.requests.memory_bytes, Some(64 << 20));
        assert_eq!(r.limits.pids, Some(100));

        let bad = ResourceSpec {
            cpu: Some(f64::NAN),
            memory: Some("lots".into()),
            pids: Some(0),
            ..Default::default()
        };
        let e = Resources::resolve(None, Some(&bad)).unwrap_err();
        assert_eq!(e.field, "resource_limits.cpu");
        let all: Vec<String> = Resources::problems(Some(&bad), None)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(all, ["resource_requests.memory", "resource_requests.pids"]);
        let zero = ResourceSpec {
            cpu: Some(0.0),
            ..Default::default()
        };
        assert_eq!(
            Resources::resolve(Some(&zero), None).unwrap().requests.cpu,
            None
        );
    }
}
