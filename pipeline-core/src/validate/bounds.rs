//! Upper bounds on every numeric field that sizes something (workers, attempts, sets,
//! CPUs, GPUs, trigger counts, ports): a value over its bound is refused at create time with
//! a finding naming the field and the limit (code `limit.exceeded`, or `limit.negative` /
//! `limit.not_finite`), so no spec reaches the engine with a number it would have to
//! allocate or loop for. The engine also clamps specs stored before a bound existed
//! ([`crate::spec::EffectiveSpec::workers`]).

use crate::spec::{FieldPath, PipelineSpec, ResourceSpec};

use super::rules::Findings;

/// Most workers per pipeline (`parallelism_spec.constant`).
pub const MAX_PARALLELISM: u64 = crate::spec::MAX_WORKERS;
/// Most attempts per datum (`datum_tries`).
pub const MAX_DATUM_TRIES: i64 = crate::spec::MAX_TRIES as i64;
/// Most datums per set and sets per worker (`datum_set_spec.number`, `.per_worker`).
pub const MAX_DATUM_SET_COUNT: i64 = 1_000_000_000;
/// Largest set in bytes (`datum_set_spec.size_bytes`): 1 PiB.
pub const MAX_DATUM_SET_BYTES: i64 = 1 << 50;
/// Most CPUs a worker may request or be limited to (`resource_*.cpu`).
pub const MAX_CPU: f64 = crate::spec::MAX_CPUS;
/// Most GPUs per worker (`resource_*.gpu.number`).
pub const MAX_GPUS: i64 = 1024;
/// Most commits a trigger may wait for (`input.pfs.trigger.commits`).
pub const MAX_TRIGGER_COMMITS: i64 = 1_000_000_000;
/// Highest port number (`service.internal_port`, `.external_port`).
pub const MAX_PORT: i64 = 65_535;

/// Every bound on one spec.
pub(crate) fn check(spec: &PipelineSpec, out: &mut Findings) {
    let root = FieldPath::root();
    if let Some(p) = &spec.parallelism_spec {
        over_u64(
            out,
            root.field("parallelism_spec").field("constant"),
            p.constant,
            MAX_PARALLELISM,
        );
    }
    if let Some(t) = spec.datum_tries {
        over(out, root.field("datum_tries"), t, MAX_DATUM_TRIES);
    }
    if let Some(d) = &spec.datum_set_spec {
        let path = root.field("datum_set_spec");
        for (field, v, max) in [
            ("number", d.number, MAX_DATUM_SET_COUNT),
            ("per_worker", d.per_worker, MAX_DATUM_SET_COUNT),
            ("size_bytes", d.size_bytes, MAX_DATUM_SET_BYTES),
        ] {
            if let Some(v) = v {
                over(out, path.field(field), v, max);
            }
        }
    }
    for (field, r) in [
        ("resource_requests", &spec.resource_requests),
        ("resource_limits", &spec.resource_limits),
        ("sidecar_resource_requests", &spec.sidecar_resource_requests),
        ("sidecar_resource_limits", &spec.sidecar_resource_limits),
    ] {
        if let Some(r) = r {
            resources(out, root.field(field), r);
        }
    }
    if let Some(s) = &spec.service {
        let path = root.field("service");
        for (field, v) in [
            ("internal_port", s.internal_port),
            ("external_port", s.external_port),
        ] {
            negative(out, path.field(field), i64::from(v));
            over(out, path.field(field), i64::from(v), MAX_PORT);
        }
    }
    if let Some(input) = &spec.input {
        input.for_each(&mut |at| {
            if let Some(n) = at
                .input
                .pfs
                .as_ref()
                .and_then(|p| p.trigger.as_ref())
                .and_then(|t| t.commits)
            {
                let path = at.path.field("pfs").field("trigger").field("commits");
                over(out, path, n, MAX_TRIGGER_COMMITS);
            }
        });
    }
}

fn resources(out: &mut Findings, path: FieldPath, r: &ResourceSpec) {
    if let Some(cpu) = r.cpu {
        let p = path.field("cpu");
        if !cpu.is_finite() {
            let msg = format!("{p} must be a finite number");
            out.error("limit.not_finite", p, msg);
        } else if cpu < 0.0 {
            negative(out, p, -1);
        } else if cpu > MAX_CPU {
            out.error(
                "limit.exceeded",
                p.clone(),
                format!("{p} {cpu} is over the limit of {MAX_CPU}"),
            );
        }
    }
    if let Some(g) = &r.gpu {
        let p = path.field("gpu").field("number");
        negative(out, p.clone(), g.number);
        over(out, p, g.number, MAX_GPUS);
    }
}

fn over(out: &mut Findings, path: FieldPath, v: i64, max: i64) {
    if v > max {
        out.error(
            "limit.exceeded",
            path.clone(),
            format!("{path} {v} is over the limit of {max}"),
        );
    }
}

fn over_u64(out: &mut Findings, path: FieldPath, v: u64, max: u64) {
    if v > max {
        out.error(
            "limit.exceeded",
            path.clone(),
            format!("{path} {v} is over the limit of {max}"),
        );
    }
}

fn negative(out: &mut Findings, path: FieldPath, v: i64) {
    if v < 0 {
        out.error(
            "limit.negative",
            path.clone(),
            format!("{path} cannot be negative"),
        );
    }
}
