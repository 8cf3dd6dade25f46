//! The worker-pool spec of a pipeline version: what an executor is given to start its warm
//! workers. One definition for the engine and for dry runs (e.g. rendering Kubernetes worker
//! manifests before a pipeline exists).

use std::sync::Arc;

use crate::executor::{Secrets, WorkerPoolSpec};
use crate::pfs::DEFAULT_PROJECT;
use crate::spec::{EffectiveSpec, PipelineSpec};

use super::records::PipelineInfo;

/// The number of workers of an effective spec: `parallelism_spec.constant`, at least 1 and
/// at most [`crate::spec::MAX_WORKERS`]; a stored spec over that bound (written before
/// validation refused it) is clamped with a warning, never allocated for.
pub fn worker_count(effective: &EffectiveSpec) -> usize {
    if let Some(written) = effective.workers_clamped() {
        tracing::warn!(
            written,
            limit = crate::spec::MAX_WORKERS,
            "parallelism_spec.constant {written} is over the limit of {}; using {} workers",
            crate::spec::MAX_WORKERS,
            crate::spec::MAX_WORKERS
        );
    }
    effective.workers()
}

/// The pool of a registered pipeline version: its effective spec (with its salt), its
/// project, name and version, and the host's secret values. When the version's image was
/// pinned ([`PipelineInfo::image`]), the spec's `transform.image` is the pinned reference, so
/// workers run exactly that content whatever the tag points at now.
pub fn pool_spec(info: &PipelineInfo, secrets: &Secrets) -> WorkerPoolSpec {
    let mut effective = info.effective.clone();
    if let Some(pinned) = &info.image {
        effective.transform.image = Some(pinned.reference.clone());
    }
    build(
        info.project.clone(),
        info.name.clone(),
        info.version,
        effective,
        secrets,
    )
}

/// The pool a spec would get as version 1 of a new pipeline, without secret values: for
/// previews that must not touch a store or an executor (`pipectl create pipeline --dry-run`).
///
/// ```
/// let parsed = pipeline_core::spec::parse_str(
///     "pipeline: {name: edges}\ntransform: {image: 'x:1', cmd: [sh]}\nparallelism_spec: {constant: 3}\ninput: {pfs: {repo: images, glob: '/*'}}\n",
///     "edges.yaml",
/// )
/// .unwrap();
/// let pool = pipeline_core::pps::dry_run_pool_spec(&parsed[0].spec);
/// assert_eq!((pool.project.as_str(), pool.pipeline.as_str(), pool.version, pool.workers), ("default", "edges", 1, 3));
/// ```
pub fn dry_run_pool_spec(spec: &PipelineSpec) -> WorkerPoolSpec {
    let effective = spec.effective();
    let name = spec
        .pipeline
        .as_ref()
        .map(|_| effective.name.clone())
        .unwrap_or_default();
    let project = Some(effective.project.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_string());
    build(project, name, 1, effective, &Secrets::default())
}

fn build(
    project: String,
    pipeline: String,
    version: u64,
    effective: EffectiveSpec,
    secrets: &Secrets,
) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project,
        pipeline,
        version,
        workers: worker_count(&effective),
        spec: Arc::new(effective),
        secrets: secrets.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> PipelineSpec {
        let text = format!(
            "pipeline: {{name: p}}\ntransform: {{cmd: [sh]}}\ninput: {{pfs: {{repo: d, glob: '/*'}}}}\n{extra}"
        );
        crate::spec::parse_str(&text, "p.yaml").unwrap()[0]
            .spec
            .clone()
    }

    #[test]
    fn workers_follow_parallelism_with_at_least_one() {
        assert_eq!(worker_count(&spec("").effective()), 1);
        assert_eq!(
            worker_count(&spec("parallelism_spec: {constant: 0}").effective()),
            1
        );
        assert_eq!(
            worker_count(&spec("parallelism_spec: {constant: 4}").effective()),
            4
        );
    }

    #[test]
    fn dry_run_is_version_one_of_the_effective_spec() {
        let pool = dry_run_pool_spec(&spec("parallelism_spec: {constant: 2}"));
        assert_eq!(pool.project, DEFAULT_PROJECT);
        assert_eq!(pool.pipeline, "p");
        assert_eq!(pool.version, 1);
        assert_eq!(pool.workers, 2);
        assert_eq!(
            *pool.spec,
            spec("parallelism_spec: {constant: 2}").effective()
        );
        assert!(pool.secrets.0.is_empty());
    }

    #[test]
    fn registered_version_carries_its_salt_and_secrets() {
        let info = PipelineInfo {
            name: "p".into(),
            project: "proj".into(),
            version: 7,
            spec: spec(""),
            user_spec_json: None,
            effective: {
                let mut e = spec("").effective();
                e.salt = Some("abc".into());
                e
            },
            salt: "abc".into(),
            executor: "process".into(),
            stopped: false,
            output_branch: crate::pfs::RepoRef::new("p")
                .unwrap()
                .branch("master")
                .unwrap(),
            inputs: Vec::new(),
            created_ms: 0,
            updated_ms: 0,
            image: None,
            spout_status: None,
        };
        let pool = pool_spec(&info, &Secrets::default());
        assert_eq!(
            (pool.project.as_str(), pool.pipeline.as_str(), pool.version),
            ("proj", "p", 7)
        );
        assert_eq!(pool.spec.salt.as_deref(), Some("abc"));
    }
}
