//! [`EffectiveSpec`]: the spec the engine runs, every default applied, produced once.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::effective::{DEFAULT_BRANCH, DEFAULT_DATUM_TRIES, DEFAULT_PROJECT};
use super::{
    DatumSetSpec, Determined, Duration, Egress, Input, Metadata, ParallelismSpec, PipelineRef,
    PipelineSpec, ProjectRef, ReprocessSpec, ResourceSpec, SchedulingSpec, Service, Spout,
    Toleration, Transform,
};

/// A pipeline spec with Pachyderm's defaults applied: what planning and executors read.
///
/// Made by [`PipelineSpec::effective`] (once, at registration; the engine stores it next to
/// the spec as written). Fields with a default are no longer optional. Inputs keep the spec's
/// types, with their defaults filled in and compound children in datum order (see
/// [`effective`](super::effective)). The request flags of a create request (`update`,
/// `reprocess`, `dry_run`, `spec_commit`) are not part of it.
///
/// It is written and read as a [`PipelineSpec`] (JSON with every default present), so stored
/// and printed effective specs look like specs; reading one back applies no default again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EffectiveSpec {
    /// Pipeline name.
    pub name: String,
    /// Project name (default `default`).
    pub project: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Kubernetes labels and annotations for the worker pods.
    pub metadata: Option<Metadata>,
    /// The user code (`image` filled in: see [`EffectiveSpec::image`]).
    pub transform: Transform,
    /// `tf_job` (always rejected by validation; carried so nothing written is lost).
    pub tf_job: Option<serde_json::Value>,
    /// Number of workers.
    pub parallelism_spec: Option<ParallelismSpec>,
    /// Push the output commit elsewhere after each job.
    pub egress: Option<Egress>,
    /// Branch of the output repo that job commits go to (default `master`).
    pub output_branch: String,
    /// Output is written through an S3 gateway.
    pub s3_out: bool,
    /// Resource requests for the user container.
    pub resource_requests: Option<ResourceSpec>,
    /// Resource limits for the user container.
    pub resource_limits: Option<ResourceSpec>,
    /// Resource limits for the storage sidecar.
    pub sidecar_resource_limits: Option<ResourceSpec>,
    /// Resource requests for the storage sidecar.
    pub sidecar_resource_requests: Option<ResourceSpec>,
    /// The input tree: defaults filled in, compound children in datum order.
    pub input: Option<Input>,
    /// Which datums a job runs again (default `until_success`).
    pub reprocess_spec: ReprocessSpec,
    /// Run as a long-lived service.
    pub service: Option<Service>,
    /// Run as a spout.
    pub spout: Option<Spout>,
    /// How datums are grouped into sets.
    pub datum_set_spec: Option<DatumSetSpec>,
    /// Per-attempt limit for user code on one datum.
    pub datum_timeout: Option<Duration>,
    /// Wall-clock limit for a job.
    pub job_timeout: Option<Duration>,
    /// Mixed into every datum hash: set once the pipeline is registered (the engine's salt).
    pub salt: Option<String>,
    /// Total attempts per datum, at least 1 (default 3, also for `0`; a negative value runs
    /// one attempt).
    pub datum_tries: u32,
    /// Kubernetes node selector and priority class.
    pub scheduling_spec: Option<SchedulingSpec>,
    /// Deprecated JSON merge patch for the worker pod spec.
    pub pod_spec: Option<String>,
    /// RFC 6902 JSON patch for the worker pod spec.
    pub pod_patch: Option<String>,
    /// Scale to zero workers when idle.
    pub autoscaling: bool,
    /// Kubernetes tolerations for the worker pods.
    pub tolerations: Vec<Toleration>,
    /// Determined integration (carried, not acted on).
    pub determined: Option<Determined>,
    /// Alerting threshold.
    pub maximum_expected_uptime: Option<Duration>,
}

/// Most workers per pipeline (`parallelism_spec.constant`; re-exported as
/// `validate::bounds::MAX_PARALLELISM`).
pub const MAX_WORKERS: u64 = 1024;

/// Most attempts per datum; a larger stored `datum_tries` is clamped to it.
pub const MAX_TRIES: u32 = 100;

/// Attempts per datum from the written `datum_tries` (see [`EffectiveSpec::datum_tries`]).
fn datum_tries(written: Option<i64>) -> u32 {
    let tries = written.filter(|t| *t != 0).unwrap_or(DEFAULT_DATUM_TRIES);
    u32::try_from(tries.clamp(1, i64::from(MAX_TRIES))).unwrap_or(DEFAULT_DATUM_TRIES as u32)
}

impl EffectiveSpec {
    /// Takes a spec whose defaults were **already applied** (the form
    /// [`PipelineSpec::effective`] produces, or an effective spec read back as JSON) without
    /// applying them again: inputs are taken as they are, a missing top-level field gets its
    /// default. To get the effective form of a spec as written, call
    /// [`PipelineSpec::effective`] instead.
    pub fn from_defaulted(spec: PipelineSpec) -> EffectiveSpec {
        let (name, project) = match spec.pipeline {
            Some(PipelineRef { name, project }) => (name, project.map(|p| p.name)),
            None => (String::new(), None),
        };
        EffectiveSpec {
            name,
            project: project
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PROJECT.to_string()),
            description: spec.description,
            metadata: spec.metadata,
            transform: spec.transform.unwrap_or_default(),
            tf_job: spec.tf_job,
            parallelism_spec: spec.parallelism_spec,
            egress: spec.egress,
            output_branch: spec
                .output_branch
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| DEFAULT_BRANCH.to_string()),
            s3_out: spec.s3_out,
            resource_requests: spec.resource_requests,
            resource_limits: spec.resource_limits,
            sidecar_resource_limits: spec.sidecar_resource_limits,
            sidecar_resource_requests: spec.sidecar_resource_requests,
            input: spec.input,
            reprocess_spec: spec
                .reprocess_spec
                .filter(|r| !r.is_blank())
                .unwrap_or(ReprocessSpec::UntilSuccess),
            service: spec.service,
            spout: spec.spout,
            datum_set_spec: spec.datum_set_spec,
            datum_timeout: spec.datum_timeout,
            job_timeout: spec.job_timeout,
            salt: spec.salt,
            datum_tries: datum_tries(spec.datum_tries),
            scheduling_spec: spec.scheduling_spec,
            pod_spec: spec.pod_spec,
            pod_patch: spec.pod_patch,
            autoscaling: spec.autoscaling,
            tolerations: spec.tolerations,
            determined: spec.determined,
            maximum_expected_uptime: spec.maximum_expected_uptime,
        }
    }

    /// This effective spec in the spec's shape (every default written out), e.g. to print it
    /// or to validate it.
    pub fn to_spec(&self) -> PipelineSpec {
        let s = self.clone();
        PipelineSpec {
            pipeline: Some(PipelineRef {
                name: s.name,
                project: Some(ProjectRef { name: s.project }),
            }),
            description: s.description,
            metadata: s.metadata,
            transform: Some(s.transform),
            tf_job: s.tf_job,
            parallelism_spec: s.parallelism_spec,
            egress: s.egress,
            output_branch: Some(s.output_branch),
            s3_out: s.s3_out,
            resource_requests: s.resource_requests,
            resource_limits: s.resource_limits,
            sidecar_resource_limits: s.sidecar_resource_limits,
            sidecar_resource_requests: s.sidecar_resource_requests,
            input: s.input,
            reprocess_spec: Some(s.reprocess_spec),
            service: s.service,
            spout: s.spout,
            datum_set_spec: s.datum_set_spec,
            datum_timeout: s.datum_timeout,
            job_timeout: s.job_timeout,
            salt: s.salt,
            datum_tries: Some(i64::from(s.datum_tries)),
            scheduling_spec: s.scheduling_spec,
            pod_spec: s.pod_spec,
            pod_patch: s.pod_patch,
            autoscaling: s.autoscaling,
            tolerations: s.tolerations,
            determined: s.determined,
            maximum_expected_uptime: s.maximum_expected_uptime,
            ..PipelineSpec::default()
        }
    }

    /// The user image (`transform.image`; `ubuntu:20.04` unless the spec names one). Empty
    /// only for an effective spec built by hand without one.
    pub fn image(&self) -> &str {
        self.transform.image.as_deref().unwrap_or("")
    }

    /// Number of workers: `parallelism_spec.constant`, at least 1 and at most
    /// [`MAX_WORKERS`] (validation refuses more; a spec stored before that bound existed is
    /// clamped here, see [`EffectiveSpec::workers_clamped`]).
    pub fn workers(&self) -> usize {
        let n = self.parallelism_spec.as_ref().map_or(1, |s| s.constant);
        usize::try_from(n.clamp(1, MAX_WORKERS)).unwrap_or(1)
    }

    /// Whether this pipeline's user code talks over the network with the engine's host:
    /// spouts write through the server, services are reached on a port, and S3 inputs and
    /// `s3_out` read and write through the job's S3 gateway. Executors that isolate workers
    /// from the network (Docker's default `none`) put such workers on a network where the
    /// host is reachable (see [`crate::executor::Executor::host_address`]).
    pub fn talks_to_host(&self) -> bool {
        let mut s3_input = false;
        if let Some(input) = &self.input {
            input.for_each(&mut |at| s3_input |= at.input.pfs.as_ref().is_some_and(|p| p.s3));
        }
        s3_input || self.s3_out || self.service.is_some() || self.spout.is_some()
    }

    /// The written `parallelism_spec.constant` when [`EffectiveSpec::workers`] had to clamp
    /// it to [`MAX_WORKERS`] (for the caller to warn about).
    pub fn workers_clamped(&self) -> Option<u64> {
        self.parallelism_spec
            .as_ref()
            .map(|s| s.constant)
            .filter(|n| *n > MAX_WORKERS)
    }
}

impl Serialize for EffectiveSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_spec().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EffectiveSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PipelineSpec::deserialize(deserializer).map(EffectiveSpec::from_defaulted)
    }
}
