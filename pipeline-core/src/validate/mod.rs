//! Spec validation: **all** problems at once, each with a field path, a line and column in the
//! source file, a message saying what is wrong and what is expected, and a stable rule code.
//!
//! ```
//! use pipeline_core::{spec, validate};
//! let specs = spec::parse_str(r#"{
//!   "pipeline": {"name": "edges"},
//!   "transform": {"image": "opencv", "cmd": ["python3", "/edges.py"]},
//!   "input": {"cross": [
//!     {"pfs": {"repo": "images", "glob": "/*"}},
//!     {"pfs": {"repo": "masks", "glob": "/["}}
//!   ]}
//! }"#, "edges.json").unwrap();
//! let report = validate::validate(&specs[0]);
//! assert!(!report.is_valid());
//! let e = &report.errors[0];
//! assert_eq!(e.path.to_string(), "input.cross[1].pfs.glob");
//! assert_eq!((e.location.line, e.location.column), (6, 31));
//! assert_eq!(report.warnings[0].code, "transform.image.tag");
//! ```
//!
//! What is checked: everything Pachyderm 2.x checks when a pipeline is created that needs no
//! store (reference §5, rows 1–37 and 44–53, with the same acceptances: a one-child cross, a join
//! child without `join_on`, union children sharing a name are all fine), plus what Pachyderm only
//! finds at run time: glob syntax, a missing `cmd`, bad `join_on`/`group_by` templates (`$01`),
//! an all-zero `datum_set_spec`, `service` with `spout`, `maximum_expected_uptime` without
//! `autoscaling`, invalid repo/branch names. Structural problems (unknown fields, wrong types,
//! durations) are found earlier, by [`crate::spec::parse_str`].
//!
//! Checks that need the store (input repos exist, a repo with the pipeline's name, DAG cycles,
//! one branch per repo per DAG) plug in through [`StoreCheck`] and [`validate_with`].
//!
//! | code | severity | field |
//! |---|---|---|
//! | `pipeline.missing` | error | `pipeline` |
//! | `pipeline.name.empty` / `.chars` / `.start` / `.length` / `.kubernetes` | error | `pipeline.name` |
//! | `pipeline.project.name` | error | `pipeline.project.name` |
//! | `transform.null` | error | `transform` (explicit `null`) |
//! | `transform.cmd.missing`, `transform.cmd.program` | error | `transform.cmd` |
//! | `transform.secret.name`, `transform.secret.key` | error | `transform.secrets[i]` |
//! | `tf_job.unsupported` | error | `tf_job` |
//! | `reprocess_spec.value` | error | `reprocess_spec` |
//! | `output_branch.name` | error | `output_branch` |
//! | `resources.value` | error | `resource_requests.*`, `resource_limits.*` (cpu, memory, pids) |
//! | `datum_set_spec.zero`, `datum_set_spec.negative` | error | `datum_set_spec` |
//! | `maximum_expected_uptime.autoscaling` | error | `maximum_expected_uptime` |
//! | `service.type`, `service.parallelism`, `service.spout` | error | `service`, `parallelism_spec.constant` |
//! | `spout.autoscaling`, `spout.input`, `s3_out.service_spout` | error | `autoscaling`, `input`, `s3_out` |
//! | `pod_spec.json`, `pod_patch.json` | error | `pod_spec`, `pod_patch` |
//! | `toleration.operator`, `toleration.effect` | error | `tolerations[i]` |
//! | `egress.sql.secret`, `egress.sql.format` | error | `egress.sql_database` |
//! | `input.none`, `input.multiple` | error | any input |
//! | `input.repo.required`, `input.repo.name`, `input.glob.required`, `input.glob.syntax`, `input.commit`, `input.branch.name`, `input.project.name`, `input.repo_type` | error | `….pfs` |
//! | `input.name.reserved`, `input.name.path`, `input.name.duplicate` | error | `….pfs.name` (or `.repo` when the name is defaulted), `….cron.name` |
//! | `input.cron.name`, `input.cron.spec`, `input.cron.repo`, `input.cron.start` | error | `….cron` |
//! | `input.s3.glob`, `input.s3.lazy`, `input.s3.empty_files`, `input.s3.nested` | error | `….pfs` |
//! | `input.join_on.template`, `input.group_by.template` | error | `….pfs.join_on` / `group_by` |
//! | `input.trigger.branch` / `.size` / `.cron` / `.commits` | error | `….pfs.trigger` |
//! | `transform.image.tag`, `transform.debug.inert`, `transform.dockerfile.inert`, `transform.secret.unused` | warning | `transform` |
//! | `input.lazy_empty_files`, `input.join_on.ignored`, `input.group_by.ignored`, `input.template.group`, `input.template.literal` | warning | `….pfs` |
//! | `input.missing`, `datum_tries.negative`, `pod_spec.deprecated` | warning | top level |
//! | `limit.exceeded`, `limit.negative`, `limit.not_finite` | error | every numeric field that sizes something ([`bounds`]: `parallelism_spec.constant`, `datum_tries`, `datum_set_spec.*`, `resource_*.cpu`, `resource_*.gpu.number`, `….trigger.commits`, `service.*_port`) |

pub mod bounds;
mod glob_check;
mod rules;
pub mod syntax;

use crate::spec::{Diagnostic, EffectiveSpec, FieldPath, ParsedSpec, PipelineSpec, Severity};

/// The outcome of validating one spec: errors (the spec is rejected) and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Problems that make the spec invalid.
    pub errors: Vec<Diagnostic>,
    /// Things that are accepted but probably not what the author meant.
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    /// Whether the spec has no errors (warnings are allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Error => self.errors.push(d),
            Severity::Warning => self.warnings.push(d),
        }
    }
}

/// A check that needs state outside the spec (the store, the engine): input repos exist, no
/// repo has the pipeline's name, no DAG cycle, one branch per repo per DAG. The engine
/// implements it and passes it to [`validate_with`]; findings are located like built-in ones.
///
/// ```
/// use pipeline_core::spec::{Diagnostic, EffectiveSpec, FieldPath, PipelineSpec, parse_str};
/// use pipeline_core::validate::{StoreCheck, validate_with};
///
/// struct NoRepos;
/// impl StoreCheck for NoRepos {
///     fn check(&self, _spec: &PipelineSpec, effective: &EffectiveSpec) -> Vec<Diagnostic> {
///         let repo = effective.input.as_ref().and_then(|i| i.pfs.as_ref())
///             .and_then(|p| p.repo.clone()).unwrap_or_default();
///         vec![Diagnostic::error(
///             "input.repo.not_found",
///             FieldPath::root().field("input").field("pfs").field("repo"),
///             format!("repo default/{repo} not found"),
///         )]
///     }
/// }
///
/// let specs = parse_str("pipeline: {name: a}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  pfs: {repo: images, glob: /*}\n", "a.yaml").unwrap();
/// let report = validate_with(&specs[0], &[&NoRepos]);
/// assert_eq!(report.errors[0].location.line, 4);
/// ```
pub trait StoreCheck {
    /// Findings about `spec` (as written) given its `effective` form; paths refer to the spec
    /// as written.
    fn check(&self, spec: &PipelineSpec, effective: &EffectiveSpec) -> Vec<Diagnostic>;
}

/// Validates a parsed spec with every store-free rule; findings carry line and column.
pub fn validate(parsed: &ParsedSpec) -> Report {
    validate_with(parsed, &[])
}

/// Like [`validate`], plus store-dependent checks.
pub fn validate_with(parsed: &ParsedSpec, checks: &[&dyn StoreCheck]) -> Report {
    let mut findings = rules::Findings::default();
    rules::check(&parsed.spec, &mut findings);
    if parsed.node.is_explicit_null("transform") {
        // `"transform": null` defeats the default transform: Pachyderm's own error replaces
        // the transform rules' findings.
        findings.0.retain(|d| !d.code.starts_with("transform."));
        findings.0.push(Diagnostic::error(
            "transform.null",
            FieldPath::root().field("transform"),
            "pipeline must specify a transform (`transform` is null)",
        ));
    }
    if !checks.is_empty() {
        let effective = parsed.spec.effective();
        for check in checks {
            findings.0.extend(check.check(&parsed.spec, &effective));
        }
    }
    let mut report = Report::default();
    for d in findings.0 {
        report.push(parsed.locate_diagnostic(d));
    }
    report.errors.sort_by_key(|d| d.location);
    report.warnings.sort_by_key(|d| d.location);
    report
}

/// Validates a spec built in code (no source file): like [`validate`], with locations `0:0`.
///
/// ```
/// use pipeline_core::spec::PipelineSpec;
/// let report = pipeline_core::validate::validate_spec(&PipelineSpec::default());
/// assert_eq!(report.errors[0].message, "no `pipeline` specified: add `pipeline: {name: ...}`");
/// ```
pub fn validate_spec(spec: &PipelineSpec) -> Report {
    let mut findings = rules::Findings::default();
    rules::check(spec, &mut findings);
    let mut report = Report::default();
    for d in findings.0 {
        report.push(d);
    }
    report
}
