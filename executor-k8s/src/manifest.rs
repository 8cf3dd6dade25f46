//! Worker pod manifests built from a [`WorkerPoolSpec`]: pure functions, no I/O.
//!
//! Every pipeline-spec field that Kubernetes can express maps to the pod as Pachyderm's
//! worker does (reference §1.1, §1.2, §1.5, §1.8):
//!
//! | spec field | pod field |
//! |---|---|
//! | `transform.image` | `containers[0].image` (default `ubuntu:20.04`) |
//! | `transform.image_pull_secrets` | `imagePullSecrets` |
//! | `transform.user` (`uid[:gid]`) | `containers[0].securityContext.runAsUser/runAsGroup` |
//! | `transform.working_dir` | `containers[0].workingDir` |
//! | `transform.env` | `containers[0].env` |
//! | `transform.secrets` with `env_var` | `env[].valueFrom.secretKeyRef` |
//! | `transform.secrets` with `mount_path` | a `secret` volume mounted read-only there |
//! | `resource_requests` / `resource_limits` | `resources.requests/limits` (`cpu`, `memory`, `ephemeral-storage`, `gpu.type`) |
//! | `resource_limits.pids` | **rejected** (no pod field; the kubelet's `podPidsLimit` applies); `resource_requests.pids` is ignored, as on Docker |
//! | `scheduling_spec.node_selector` | `nodeSelector` |
//! | `scheduling_spec.priority_class_name` | `priorityClassName` |
//! | `tolerations` | `tolerations` (`EXISTS`→`Exists`, `NO_SCHEDULE`→`NoSchedule`, ...) |
//! | `metadata.labels/annotations` | pod labels/annotations (our own keys win) |
//! | `transform.memory_volume` | the `/pfs` emptyDir gets `medium: Memory` |
//! | `pod_spec` (deprecated) | RFC 7386 JSON merge patch on the pod spec |
//! | `pod_patch` | RFC 6902 JSON patch on the pod spec |
//!
//! The two patches are applied after everything else, in Pachyderm's order: first the merge
//! patch `pod_spec`, then `pod_patch` (Pachyderm's `worker_rc.go` does the same), both on the
//! JSON of the pod **spec** (not the whole pod), so existing `pod_patch` paths such as
//! `/containers/0/resources` keep working. Both come from the `json-patch` crate: it
//! implements RFC 6902 (with JSON-pointer escapes and atomic failure) and RFC 7386, is
//! actively maintained, and is the crate kube itself uses for JSON patches, so it adds no
//! new dependency tree. Malformed JSON, a patch that is not an operation list, an operation
//! that fails (e.g. `remove` of a missing path), or a result that is no longer a valid
//! `PodSpec` are errors naming `pod_spec` or `pod_patch`.
//!
//! **User names.** Kubernetes only accepts numeric ids in `securityContext`. A numeric
//! `uid[:gid]` (and `root`) is mapped there; a user *name* cannot be resolved before the pod
//! exists (Pachyderm looks it up in the container's `/etc/passwd` at run time), so it is
//! rejected with an error naming `transform.user` and asking for the numeric form.
//!
//! **Idle entrypoint.** The worker container does not run user code itself: its command is
//! [`IDLE_COMMAND`], a `/bin/sh` loop that sleeps until the pod is deleted (and exits at once on
//! `SIGTERM`), so one pod serves many datums, each run through the exec API. The image
//! therefore needs `/bin/sh`, `sleep` and `tar` (every distribution base image and busybox
//! have them). An image without a shell (distroless, `scratch`) fails to start; the pod's
//! `StartError`/`RunContainerError` reason is reported by `start_workers`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, LocalObjectReference,
    ObjectFieldSelector, PersistentVolumeClaimVolumeSource, Pod, PodSpec, ResourceRequirements,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pipeline_core::executor::WorkerPoolSpec;
use pipeline_core::spec::{
    EffectiveSpec, ResourceSpec, TolerationEffect, TolerationOperator, Transform,
};

use crate::config::K8sConfig;
use crate::names;

/// Name of the container that runs user code (Pachyderm's worker container has the same).
pub const USER_CONTAINER: &str = "user";
/// Image used when the spec gives none (Pachyderm's built-in default).
pub const DEFAULT_IMAGE: &str = "ubuntu:20.04";
/// The worker container's command: idle until deleted, exit promptly on `SIGTERM`.
pub const IDLE_COMMAND: [&str; 3] = [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
];

const PFS_VOLUME: &str = "pfs";
const CONTROL_VOLUME: &str = "pach-worker";
const SHARED_VOLUME: &str = "pach-shared";

/// A pipeline spec that cannot be turned into a valid pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ManifestError {
    /// The spec field, e.g. `pod_patch` or `tolerations[1].operator`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ManifestError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ManifestError> for pipeline_core::executor::ExecutorError {
    fn from(e: ManifestError) -> Self {
        pipeline_core::executor::ExecutorError::InvalidTask {
            field: e.field,
            message: e.message,
        }
    }
}

/// Parses `transform.user` into `(uid, gid)`. `root` is uid 0.
pub fn parse_user(user: &str) -> Result<(i64, Option<i64>), ManifestError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let id = |s: &str, what: &str| -> Result<i64, ManifestError> {
        if s == "root" {
            return Ok(0);
        }
        s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            ManifestError::new(
                "transform.user",
                format!(
                    "{what} {s:?} is not a numeric id: the Kubernetes executor sets \
                     securityContext.runAsUser/runAsGroup, which need numbers; \
                     write \"uid[:gid]\" (for example \"1000:1000\")"
                ),
            )
        })
    };
    Ok((id(u, "user")?, g.map(|g| id(g, "group")).transpose()?))
}

fn cpu_quantity(cpu: f64, field: &str) -> Result<Quantity, ManifestError> {
    if !cpu.is_finite() || cpu < 0.0 {
        return Err(ManifestError::new(
            field,
            format!("{cpu} is not a valid CPU amount (expected a non-negative number)"),
        ));
    }
    let millis = (cpu * 1000.0).round();
    Ok(Quantity(if millis % 1000.0 == 0.0 {
        format!("{}", millis / 1000.0)
    } else {
        format!("{millis}m")
    }))
}

fn resource_list(
    spec: &ResourceSpec,
    field: &str,
) -> Result<BTreeMap<String, Quantity>, ManifestError> {
    let mut out = BTreeMap::new();
    if let Some(cpu) = spec.cpu {
        out.insert("cpu".into(), cpu_quantity(cpu, &format!("{field}.cpu"))?);
    }
    for (name, value, sub) in [
        ("memory", &spec.memory, "memory"),
        ("ephemeral-storage", &spec.disk, "disk"),
    ] {
        if let Some(v) = value {
            let v = v.trim();
            if v.is_empty() {
                return Err(ManifestError::new(
                    format!("{field}.{sub}"),
                    "empty quantity (expected a Kubernetes quantity such as \"64M\" or \"1Gi\")",
                ));
            }
            out.insert(name.to_string(), Quantity(v.to_string()));
        }
    }
    if let Some(gpu) = &spec.gpu {
        if gpu.number < 0 {
            return Err(ManifestError::new(
                format!("{field}.gpu.number"),
                format!(
                    "{} GPUs requested (expected a whole number >= 0)",
                    gpu.number
                ),
            ));
        }
        if gpu.number > 0 {
            if gpu.gpu_type.trim().is_empty() {
                return Err(ManifestError::new(
                    format!("{field}.gpu.type"),
                    "missing GPU resource name (expected e.g. \"nvidia.com/gpu\")",
                ));
            }
            out.insert(gpu.gpu_type.clone(), Quantity(gpu.number.to_string()));
        }
    }
    Ok(out)
}

fn toleration(t: &pipeline_core::spec::Toleration, i: usize) -> Result<Toleration, ManifestError> {
    let field = format!("tolerations[{i}]");
    let operator = match t
        .operator
        .as_ref()
        .map(TolerationOperator::as_str)
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("EXISTS") => "Exists",
        Some("EQUAL") => "Equal",
        Some("") | Some("EMPTY") | None => {
            return Err(ManifestError::new(
                format!("{field}.operator"),
                "cannot omit key/value comparison operator; specify EQUAL or EXISTS",
            ));
        }
        Some(other) => {
            return Err(ManifestError::new(
                format!("{field}.operator"),
                format!("unknown operator {other:?} (expected EQUAL or EXISTS)"),
            ));
        }
    };
    let effect = match t
        .effect
        .as_ref()
        .map(|e| e.as_str())
        .map(|e| e.to_ascii_uppercase().replace('_', ""))
        .as_deref()
    {
        None | Some("") | Some("ALLEFFECTS") => None,
        Some("NOSCHEDULE") => Some("NoSchedule"),
        Some("PREFERNOSCHEDULE") => Some("PreferNoSchedule"),
        Some("NOEXECUTE") => Some("NoExecute"),
        Some(_) => {
            return Err(ManifestError::new(
                format!("{field}.effect"),
                format!(
                    "unknown effect {:?} (expected ALL_EFFECTS, NO_SCHEDULE, \
                     PREFER_NO_SCHEDULE or NO_EXECUTE)",
                    t.effect
                        .as_ref()
                        .map(TolerationEffect::as_str)
                        .unwrap_or_default()
                ),
            ));
        }
    };
    Ok(Toleration {
        key: t.key.clone().filter(|k| !k.is_empty()),
        operator: Some(operator.to_string()),
        value: t.value.clone().filter(|v| !v.is_empty()),
        effect: effect.map(str::to_string),
        toleration_seconds: t.toleration_seconds,
    })
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

/// Applies `pod_spec` (RFC 7386 merge patch) then `pod_patch` (RFC 6902) to a pod spec.
pub fn apply_patches(spec: PodSpec, pipeline: &EffectiveSpec) -> Result<PodSpec, ManifestError> {
    let merge = pipeline
        .pod_spec
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    let patch = pipeline
        .pod_patch
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    if merge.is_none() && patch.is_none() {
        return Ok(spec);
    }
    let mut doc = serde_json::to_value(&spec)
        .map_err(|e| ManifestError::new("pod_spec", format!("cannot serialize pod spec: {e}")))?;
    let mut last = "pod_spec";
    if let Some(merge) = merge {
        let value: serde_json::Value = serde_json::from_str(merge).map_err(|e| {
            ManifestError::new(
                "pod_spec",
                format!("malformed PodSpec: not valid JSON ({e})"),
            )
        })?;
        if !value.is_object() {
            return Err(ManifestError::new(
                "pod_spec",
                "malformed PodSpec: expected a JSON object (a merge patch of the pod spec)",
            ));
        }
        json_patch::merge(&mut doc, &value);
    }
    if let Some(patch) = patch {
        last = "pod_patch";
        let ops: json_patch::Patch = serde_json::from_str(patch).map_err(|e| {
            ManifestError::new(
                "pod_patch",
                format!(
                    "malformed PodPatch: expected an RFC 6902 JSON Patch (an array of \
                     {{\"op\", \"path\", ...}} objects): {e}"
                ),
            )
        })?;
        json_patch::patch(&mut doc, &ops).map_err(|e| {
            ManifestError::new(
                "pod_patch",
                format!("cannot apply to the worker pod spec: {e}"),
            )
        })?;
    }
    serde_json::from_value(doc).map_err(|e| {
        ManifestError::new(
            last,
            format!("the patched pod spec is not a valid Kubernetes PodSpec: {e}"),
        )
    })
}

/// Builds the pod of worker `index` of a pool (with `metadata.generateName`, no name).
///
/// ```
/// use std::sync::Arc;
/// use executor_k8s::{build_worker_pod, K8sConfig};
/// use pipeline_core::executor::{Secrets, WorkerPoolSpec};
/// use pipeline_core::spec::{PipelineSpec, Transform};
///
/// let spec = PipelineSpec {
///     transform: Some(Transform { image: Some("alpine:3.20".into()), ..Default::default() }),
///     ..Default::default()
/// };
/// let pool = WorkerPoolSpec {
///     project: "default".into(), pipeline: "edges".into(), version: 1, workers: 1,
///     spec: Arc::new(spec.effective()), secrets: Secrets::default(),
/// };
/// let pod = build_worker_pod(&pool, &K8sConfig::default(), 0).unwrap();
/// assert_eq!(pod.metadata.generate_name.as_deref(), Some("default-edges-v1-w0-"));
/// ```
pub fn build_worker_pod(
    pool: &WorkerPoolSpec,
    config: &K8sConfig,
    index: usize,
) -> Result<Pod, ManifestError> {
    let spec: &EffectiveSpec = &pool.spec;
    let transform = &spec.transform;
    let (labels, annotations) = worker_metadata(pool, config, index);
    let mut env = worker_env(pool, transform);
    let (mut volumes, mut mounts) = worker_volumes(config, transform);
    add_secrets(transform, &mut env, &mut volumes, &mut mounts)?;
    let container = Container {
        name: USER_CONTAINER.into(),
        image: Some(worker_image(transform).to_string()),
        command: Some(IDLE_COMMAND.iter().map(|s| s.to_string()).collect()),
        working_dir: transform.working_dir.clone().filter(|w| !w.is_empty()),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: worker_resources(spec)?,
        security_context: worker_security_context(transform)?,
        ..Default::default()
    };
    let pod_spec = worker_pod_spec(spec, config, transform, container, volumes)?;
    let pod_spec = apply_patches(pod_spec, spec)?;

    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(names::generate_name(
                &pool.project,
                &pool.pipeline,
                pool.version,
                index,
            )),
            namespace: config.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    })
}

/// A worker pod's labels and annotations: the user's first, ours win.
fn worker_metadata(
    pool: &WorkerPoolSpec,
    config: &K8sConfig,
    index: usize,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let spec: &EffectiveSpec = &pool.spec;
    let mut labels: BTreeMap<String, String> = spec
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = spec
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .unwrap_or_default();
    labels.extend(names::pipeline_selector_labels(
        &pool.project,
        &pool.pipeline,
        &config.owner,
    ));
    labels.insert(names::LABEL_VERSION.into(), pool.version.to_string());
    labels.insert(names::LABEL_WORKER.into(), index.to_string());
    labels.insert(names::LABEL_COMPONENT.into(), "worker".into());
    annotations.insert(names::ANNOTATION_PROJECT.into(), pool.project.clone());
    annotations.insert(names::ANNOTATION_PIPELINE.into(), pool.pipeline.clone());
    (labels, annotations)
}

/// The user container's environment: pod-level variables, then `transform.env` (secret
/// variables are added by [`add_secrets`]).
fn worker_env(pool: &WorkerPoolSpec, transform: &Transform) -> Vec<EnvVar> {
    let mut env = vec![
        plain_env("PPS_PIPELINE_NAME", &pool.pipeline),
        plain_env("PPS_PROJECT_NAME", &pool.project),
        field_env("PPS_POD_NAME", "metadata.name"),
        field_env("PACH_NAMESPACE", "metadata.namespace"),
        field_env("PPS_WORKER_IP", "status.podIP"),
        plain_env("PACH_IN_WORKER", "true"),
    ];
    env.extend(transform.env.iter().map(|(k, v)| plain_env(k, v)));
    env
}

/// The `/pfs` and control volumes (and the shared claim, when configured) with their mounts.
fn worker_volumes(config: &K8sConfig, transform: &Transform) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![
        Volume {
            name: PFS_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: transform.memory_volume.then(|| "Memory".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: CONTROL_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    let mut mounts = vec![
        VolumeMount {
            name: PFS_VOLUME.into(),
            mount_path: config.paths.pfs.clone(),
            ..Default::default()
        },
        VolumeMount {
            name: CONTROL_VOLUME.into(),
            mount_path: config.paths.control.clone(),
            ..Default::default()
        },
    ];
    if let Some(shared) = &config.shared_volume {
        volumes.push(Volume {
            name: SHARED_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: shared.claim_name.clone(),
                read_only: None,
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: SHARED_VOLUME.into(),
            mount_path: shared.mount_path.clone(),
            ..Default::default()
        });
    }
    (volumes, mounts)
}

/// `transform.secrets`: environment variables from secret keys, and secret volumes.
fn add_secrets(
    transform: &Transform,
    env: &mut Vec<EnvVar>,
    volumes: &mut Vec<Volume>,
    mounts: &mut Vec<VolumeMount>,
) -> Result<(), ManifestError> {
    for (i, s) in transform.secrets.iter().enumerate() {
        let field = format!("transform.secrets[{i}]");
        if s.name.trim().is_empty() {
            return Err(ManifestError::new(
                format!("{field}.name"),
                "missing secret name",
            ));
        }
        if let Some(var) = s.env_var.as_deref().filter(|v| !v.is_empty()) {
            let key = s.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| {
                ManifestError::new(
                    format!("{field}.key"),
                    format!("secret {:?} has env_var set but is missing key", s.name),
                )
            })?;
            env.push(EnvVar {
                name: var.to_string(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: s.name.clone(),
                        key: key.to_string(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        if let Some(path) = s.mount_path.as_deref().filter(|p| !p.is_empty()) {
            if !path.starts_with('/') {
                return Err(ManifestError::new(
                    format!("{field}.mount_path"),
                    format!("{path:?} is not an absolute path"),
                ));
            }
            let vol = format!("secret-{i}");
            volumes.push(Volume {
                name: vol.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(s.name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: vol,
                mount_path: path.to_string(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    Ok(())
}

/// Requests and limits of the user container.
fn worker_resources(spec: &EffectiveSpec) -> Result<Option<ResourceRequirements>, ManifestError> {
    if let Some(pids) = spec.resource_limits.as_ref().and_then(|l| l.pids) {
        // A limit that is accepted and not enforced is worse than a clear refusal.
        return Err(ManifestError::new(
            "resource_limits.pids",
            format!(
                "a limit of {pids} processes cannot be enforced on Kubernetes: a pod spec has no \
                 pids limit (it is the kubelet's podPidsLimit, set per node by the cluster \
                 administrator); remove the field to run this pipeline on Kubernetes"
            ),
        ));
    }
    let requests = match &spec.resource_requests {
        Some(r) => resource_list(r, "resource_requests")?,
        None => BTreeMap::new(),
    };
    let mut limits = match &spec.resource_limits {
        Some(r) => resource_list(r, "resource_limits")?,
        None => BTreeMap::new(),
    };
    // Kubernetes requires a limit for extended resources such as GPUs; a GPU given only as
    // a request is mirrored into the limits (requests and limits must then be equal).
    if let Some(gpu) = spec.resource_requests.as_ref().and_then(|r| r.gpu.as_ref())
        && gpu.number > 0
        && !limits.contains_key(&gpu.gpu_type)
    {
        limits.insert(gpu.gpu_type.clone(), Quantity(gpu.number.to_string()));
    }
    Ok(
        (!requests.is_empty() || !limits.is_empty()).then(|| ResourceRequirements {
            requests: (!requests.is_empty()).then_some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            ..Default::default()
        }),
    )
}

/// `transform.user` as the container's user and group.
fn worker_security_context(
    transform: &Transform,
) -> Result<Option<SecurityContext>, ManifestError> {
    Ok(match transform.user.as_deref().filter(|u| !u.is_empty()) {
        Some(user) => {
            let (uid, gid) = parse_user(user)?;
            Some(SecurityContext {
                run_as_user: Some(uid),
                run_as_group: gid,
                ..Default::default()
            })
        }
        None => None,
    })
}

/// `transform.image`, or the default image when it is unset or blank.
fn worker_image(transform: &Transform) -> &str {
    transform
        .image
        .as_deref()
        .filter(|i| !i.trim().is_empty())
        .unwrap_or(DEFAULT_IMAGE)
}

/// The pod spec around the user container, before the spec's patches are applied.
fn worker_pod_spec(
    spec: &EffectiveSpec,
    config: &K8sConfig,
    transform: &Transform,
    container: Container,
    volumes: Vec<Volume>,
) -> Result<PodSpec, ManifestError> {
    let scheduling = spec.scheduling_spec.as_ref();
    let tolerations = spec
        .tolerations
        .iter()
        .enumerate()
        .map(|(i, t)| toleration(t, i))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(10),
        automount_service_account_token: Some(config.automount_service_account_token),
        service_account_name: config.service_account.clone(),
        image_pull_secrets: (!transform.image_pull_secrets.is_empty()).then(|| {
            transform
                .image_pull_secrets
                .iter()
                .map(|n| LocalObjectReference { name: n.clone() })
                .collect()
        }),
        node_selector: scheduling
            .filter(|s| !s.node_selector.is_empty())
            .map(|s| s.node_selector.clone()),
        priority_class_name: scheduling
            .and_then(|s| s.priority_class_name.clone())
            .filter(|p| !p.is_empty()),
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        volumes: Some(volumes),
        ..Default::default()
    })
}

/// Builds the pods of every worker of a pool.
pub fn build_worker_pods(
    pool: &WorkerPoolSpec,
    config: &K8sConfig,
) -> Result<Vec<Pod>, ManifestError> {
    (0..pool.workers.max(1))
        .map(|i| build_worker_pod(pool, config, i))
        .collect()
}

/// Renders the worker pods of a pool as a multi-document YAML stream (`---` separated), the
/// manifests `start_workers` would create, and for a service (or `spout.service`) the
/// Kubernetes Service exposing them ([`crate::build_service`]). Meant for reviewing what would be applied, e.g. a
/// future `pipectl create pipeline --executor kubernetes --dry-run -o yaml` (the CLI command
/// itself belongs to the engine's `pipectl` work and is not part of this crate).
///
/// ```
/// use std::sync::Arc;
/// use executor_k8s::{render_worker_manifests, K8sConfig};
/// use pipeline_core::executor::{Secrets, WorkerPoolSpec};
///
/// let pool = WorkerPoolSpec {
///     project: "default".into(), pipeline: "edges".into(), version: 1, workers: 2,
///     spec: Arc::new(Default::default()), secrets: Secrets::default(),
/// };
/// let yaml = render_worker_manifests(&pool, &K8sConfig::default()).unwrap();
/// assert_eq!(yaml.matches("kind: Pod").count(), 2);
/// assert!(yaml.contains("image: ubuntu:20.04"));
/// ```
pub fn render_worker_manifests(
    pool: &WorkerPoolSpec,
    config: &K8sConfig,
) -> Result<String, ManifestError> {
    let mut out = String::new();
    for pod in build_worker_pods(pool, config)? {
        push_document(&mut out, "Pod", serde_json::to_value(&pod))?;
    }
    if let Some(service) = crate::service::build_service(pool, config) {
        push_document(&mut out, "Service", serde_json::to_value(&service))?;
    }
    Ok(out)
}

/// Appends an object (as serialized) to a YAML stream as a `---` document of `kind`,
/// `apiVersion` and `kind` first, as kubectl prints them.
fn push_document(
    out: &mut String,
    kind: &str,
    object: serde_json::Result<serde_json::Value>,
) -> Result<(), ManifestError> {
    let mut value = object
        .map_err(|e| ManifestError::new("pipeline", format!("cannot serialize the {kind}: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".into(), "v1".into());
        ordered.insert("kind".into(), kind.into());
        for (k, v) in std::mem::take(obj) {
            if k != "apiVersion" && k != "kind" {
                ordered.insert(k, v);
            }
        }
        *obj = ordered;
    }
    let yaml = serde_saphyr::to_string(&value)
        .map_err(|e| ManifestError::new("pipeline", format!("cannot render YAML: {e}")))?;
    out.push_str("---\n");
    out.push_str(&yaml);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(())
}
