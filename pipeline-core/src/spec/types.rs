//! The pipeline spec as typed Rust values: every field Pachyderm 2.x accepts.
//!
//! Field names are Pachyderm's snake_case proto names; the lowerCamelCase JSON names are
//! accepted as aliases. Unknown fields are errors. Every field that has a Pachyderm default is
//! an `Option` (or an empty collection / `false`), so the spec *as written* is kept intact;
//! defaults are applied only by [`PipelineSpec::effective`](super::PipelineSpec::effective).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{
    FileFormatType, RepoType, ReprocessSpec, ServiceType, TolerationEffect, TolerationOperator,
};
use super::{Duration, FieldPath};

fn is_false(b: &bool) -> bool {
    !*b
}

/// A whole pipeline spec (Pachyderm's `CreatePipelineRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name and project. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRef>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Kubernetes labels and annotations for the worker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// The user code. Required (the defaults always add one unless it is explicitly `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    /// `tf_job`: accepted by the parser, always rejected by validation as in Pachyderm.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "tfJob")]
    pub tf_job: Option<serde_json::Value>,
    /// Number of workers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "parallelismSpec"
    )]
    pub parallelism_spec: Option<ParallelismSpec>,
    /// Push the output commit to object storage or a SQL database after each job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
    /// Request flag: this create is an update of an existing pipeline.
    #[serde(default, skip_serializing_if = "is_false")]
    pub update: bool,
    /// Branch of the output repo that job commits go to (default `master`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "outputBranch"
    )]
    pub output_branch: Option<String>,
    /// Output is written through an S3 gateway instead of `/pfs/out`.
    #[serde(default, skip_serializing_if = "is_false", alias = "s3Out")]
    pub s3_out: bool,
    /// Resource requests for the user container.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "resourceRequests"
    )]
    pub resource_requests: Option<ResourceSpec>,
    /// Resource limits for the user container.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "resourceLimits"
    )]
    pub resource_limits: Option<ResourceSpec>,
    /// Resource limits for the storage sidecar (Kubernetes only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "sidecarResourceLimits"
    )]
    pub sidecar_resource_limits: Option<ResourceSpec>,
    /// Resource requests for the storage sidecar (Kubernetes only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "sidecarResourceRequests"
    )]
    pub sidecar_resource_requests: Option<ResourceSpec>,
    /// The input tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// Request flag: with `update`, reprocess every datum (new salt).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reprocess: bool,
    /// Request flag: validate only.
    #[serde(default, skip_serializing_if = "is_false", alias = "dryRun")]
    pub dry_run: bool,
    /// Request field: the spec commit to create the pipeline from.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "specCommit")]
    pub spec_commit: Option<serde_json::Value>,
    /// `until_success` (default) or `every_job`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "reprocessSpec"
    )]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub reprocess_spec: Option<ReprocessSpec>,
    /// Run as a long-lived service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Run as a spout (no input, writes commits itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spout: Option<Spout>,
    /// How datums are grouped into sets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "datumSetSpec"
    )]
    pub datum_set_spec: Option<DatumSetSpec>,
    /// Per-attempt limit for user code on one datum.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "datumTimeout"
    )]
    pub datum_timeout: Option<Duration>,
    /// Wall-clock limit for a job.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "jobTimeout")]
    pub job_timeout: Option<Duration>,
    /// Mixed into every datum hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Total attempts per datum (default 3).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "datumTries",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub datum_tries: Option<i64>,
    /// Kubernetes node selector and priority class.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "schedulingSpec"
    )]
    pub scheduling_spec: Option<SchedulingSpec>,
    /// Deprecated: JSON merge patch applied to the worker pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "podSpec")]
    pub pod_spec: Option<String>,
    /// RFC 6902 JSON patch applied to the worker pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "podPatch")]
    pub pod_patch: Option<String>,
    /// Scale to zero workers when idle.
    #[serde(default, skip_serializing_if = "is_false")]
    pub autoscaling: bool,
    /// Kubernetes tolerations for the worker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Determined integration (carried, not acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub determined: Option<Determined>,
    /// Alerting threshold; needs `autoscaling`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "maximumExpectedUptime"
    )]
    pub maximum_expected_uptime: Option<Duration>,
}

/// `pipeline`: the pipeline's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PipelineRef {
    /// Pipeline name; also the output repo's name.
    #[serde(default)]
    pub name: String,
    /// Project (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectRef>,
}

/// A project reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectRef {
    /// Project name.
    #[serde(default)]
    pub name: String,
}

/// `metadata`: labels and annotations for worker pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Pod labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `transform`: the user code and how it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Container image (default `ubuntu:20.04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Program and arguments, exec'ed directly (no shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Recovery program, run after each failed attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "errCmd")]
    pub err_cmd: Vec<String>,
    /// Environment variables for the user code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secrets mounted as files or exposed as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretMount>,
    /// Image pull secrets.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "imagePullSecrets"
    )]
    pub image_pull_secrets: Vec<String>,
    /// Lines fed to `cmd`'s stdin, joined with `\n` plus a final `\n`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdin: Vec<String>,
    /// Lines fed to `err_cmd`'s stdin.
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "errStdin")]
    pub err_stdin: Vec<String>,
    /// Exit codes besides 0 that count as success.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "acceptReturnCode",
        deserialize_with = "super::lenient::vec_int"
    )]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<super::lenient::IntSchema>"))]
    pub accept_return_code: Vec<i64>,
    /// Inert in Pachyderm 2.x: accepted, ignored, warned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub debug: bool,
    /// `user[:group]` or `uid[:gid]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory for `cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "workingDir")]
    pub working_dir: Option<String>,
    /// Inert in Pachyderm 2.x: accepted, ignored, warned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `/pfs` on a memory-backed volume.
    #[serde(default, skip_serializing_if = "is_false", alias = "memoryVolume")]
    pub memory_volume: bool,
    /// One user process handles many datums.
    #[serde(default, skip_serializing_if = "is_false", alias = "datumBatching")]
    pub datum_batching: bool,
}

/// `transform.secrets[]`: a secret mounted as a file or exposed as an env var.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretMount {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Key inside the secret (required with `env_var`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where to mount the secret as files.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "mountPath")]
    pub mount_path: Option<String>,
    /// Environment variable to expose `key` as.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "envVar")]
    pub env_var: Option<String>,
}

/// `input`: exactly one of its fields must be set (checked by validation, so that every
/// mistake can be reported with its path rather than failing the parse).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A glob over one repo's branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfs: Option<PfsInput>,
    /// Datums keyed by `join_on`, crossed per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Vec<Input>>,
    /// One datum per `group_by` key across all children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Vec<Input>>,
    /// Cartesian product of the children's datums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross: Option<Vec<Input>>,
    /// Concatenation of the children's datums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union: Option<Vec<Input>>,
    /// Ticks on a schedule, as files in a cron repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronInput>,
}

/// Which kind of input an [`Input`] is, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputKind<'a> {
    /// `pfs`
    Pfs(&'a PfsInput),
    /// `cross`
    Cross(&'a [Input]),
    /// `union`
    Union(&'a [Input]),
    /// `join`
    Join(&'a [Input]),
    /// `group`
    Group(&'a [Input]),
    /// `cron`
    Cron(&'a CronInput),
}

impl Input {
    /// The input's kind, if exactly one is set (`None` for zero or several: a validation error).
    pub fn kind(&self) -> Option<InputKind<'_>> {
        let mut kinds = [
            self.pfs.as_ref().map(InputKind::Pfs),
            self.cross.as_deref().map(InputKind::Cross),
            self.union.as_deref().map(InputKind::Union),
            self.join.as_deref().map(InputKind::Join),
            self.group.as_deref().map(InputKind::Group),
            self.cron.as_ref().map(InputKind::Cron),
        ]
        .into_iter()
        .flatten();
        let first = kinds.next()?;
        kinds.next().is_none().then_some(first)
    }

    /// The compound children, by field name, in field order (`cross`, `union`, `join`,
    /// `group`); only the lists that are set.
    pub fn children(&self) -> impl Iterator<Item = (&'static str, &[Input])> {
        [
            ("cross", &self.cross),
            ("union", &self.union),
            ("join", &self.join),
            ("group", &self.group),
        ]
        .into_iter()
        .filter_map(|(kind, list)| list.as_deref().map(|l| (kind, l)))
    }

    /// The one walk over an input tree: calls `f` on this input (the spec's `input`) and every
    /// input nested in it, parents first, in written order, each with its field path
    /// (`input.cross[1]`) and the compound inputs enclosing it.
    ///
    /// ```
    /// use pipeline_core::spec::PipelineSpec;
    /// let spec: PipelineSpec = serde_json::from_str(r#"{"input": {"cross": [
    ///     {"pfs": {"repo": "a", "glob": "/*"}},
    ///     {"union": [{"pfs": {"repo": "b", "glob": "/*"}}]}]}}"#).unwrap();
    /// let mut repos = Vec::new();
    /// spec.input.unwrap().for_each(&mut |at| {
    ///     if let Some(pfs) = &at.input.pfs {
    ///         repos.push(format!("{} {:?}", at.path.field("pfs"), at.enclosing));
    ///     }
    /// });
    /// assert_eq!(repos, [
    ///     r#"input.cross[0].pfs ["cross"]"#,
    ///     r#"input.cross[1].union[0].pfs ["cross", "union"]"#,
    /// ]);
    /// ```
    pub fn for_each(&self, f: &mut dyn FnMut(InputAt<'_>)) {
        self.walk(&FieldPath::root().field("input"), &mut Vec::new(), f);
    }

    fn walk(
        &self,
        path: &FieldPath,
        enclosing: &mut Vec<&'static str>,
        f: &mut dyn FnMut(InputAt<'_>),
    ) {
        f(InputAt {
            input: self,
            path,
            enclosing,
        });
        for (kind, children) in self.children() {
            enclosing.push(kind);
            for (i, child) in children.iter().enumerate() {
                child.walk(&path.field(kind).index(i), enclosing, f);
            }
            enclosing.pop();
        }
    }
}

/// One input met by [`Input::for_each`]: the input, where it is, and what encloses it.
#[derive(Debug, Clone, Copy)]
pub struct InputAt<'a> {
    /// The input.
    pub input: &'a Input,
    /// Its field path in the spec, e.g. `input.cross[1]`.
    pub path: &'a FieldPath,
    /// The compound inputs enclosing it, outermost first (`cross`, `union`, `join`, `group`).
    pub enclosing: &'a [&'static str],
}

impl InputAt<'_> {
    /// Whether a compound input of `kind` (`join`, `group`...) encloses this one at any depth.
    pub fn is_inside(&self, kind: &str) -> bool {
        self.enclosing.contains(&kind)
    }
}

/// `input.pfs`: a glob over a repo's branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PfsInput {
    /// Name under `/pfs` and env-var prefix (default: the repo name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Project of the input repo (default: the pipeline's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Input repo. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Repo type (`user`, `meta`, `spec`; default `user`).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "repoType")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub repo_type: Option<RepoType>,
    /// Branch (default `master`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Must be empty in a spec (filled in at job time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The glob that splits the input into datums. Required unless `s3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Join key template (`$1`, `${2}`...).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "joinOn")]
    pub join_on: Option<String>,
    /// In a join: also emit datums for unmatched files of this input.
    #[serde(default, skip_serializing_if = "is_false", alias = "outerJoin")]
    pub outer_join: bool,
    /// Group key template.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "groupBy")]
    pub group_by: Option<String>,
    /// Files appear as named pipes, streamed on read.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lazy: bool,
    /// Files appear as empty files.
    #[serde(default, skip_serializing_if = "is_false", alias = "emptyFiles")]
    pub empty_files: bool,
    /// Served through an S3 gateway instead of files.
    #[serde(default, skip_serializing_if = "is_false")]
    pub s3: bool,
    /// Deferred processing trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Content of this input is left out of the datum hash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reference: bool,
    /// Whether commits on this input start jobs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "propagationSpec"
    )]
    pub propagation_spec: Option<PropagationSpec>,
}

/// `input.pfs.trigger`: when the trigger branch moves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Watched branch (default `master`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// AND the conditions instead of OR.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    /// Cron spec limiting how often the trigger fires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "rateLimitSpec"
    )]
    pub rate_limit_spec: Option<String>,
    /// Human size (`1M`) of new data that fires the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Number of new commits that fires the trigger.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub commits: Option<i64>,
    /// Fire on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "cronSpec")]
    pub cron_spec: Option<String>,
}

/// `input.pfs.propagation_spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PropagationSpec {
    /// Commits on this input never start jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub never: bool,
}

/// `input.cron`: ticks on a schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CronInput {
    /// Name under `/pfs`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Project of the cron repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Cron repo (default `<pipeline>_<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Filled in at job time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Schedule: 5-field cron or `@every 1m`-style descriptor. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// Each tick replaces earlier tick files.
    #[serde(default, skip_serializing_if = "is_false")]
    pub overwrite: bool,
    /// RFC 3339 start time (default: creation time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// `parallelism_spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ParallelismSpec {
    /// Number of workers (0 means 1).
    #[serde(default, deserialize_with = "super::lenient::int")]
    #[cfg_attr(feature = "schema", schemars(with = "super::lenient::IntSchema"))]
    pub constant: u64,
}

/// `egress`: where to push output after each job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Old form of `object_storage.url`.
    #[serde(default, rename = "URL", skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Object storage target.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "objectStorage"
    )]
    pub object_storage: Option<ObjectStorageEgress>,
    /// SQL database target.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "sqlDatabase"
    )]
    pub sql_database: Option<SqlDatabaseEgress>,
}

/// `egress.object_storage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ObjectStorageEgress {
    /// Target URL.
    #[serde(default)]
    pub url: String,
}

/// `egress.sql_database`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SqlDatabaseEgress {
    /// Database URL.
    #[serde(default)]
    pub url: String,
    /// File format of the output files.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "fileFormat")]
    pub file_format: Option<FileFormat>,
    /// Credentials secret. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
}

/// `egress.sql_database.file_format`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FileFormat {
    /// `CSV`, `JSON` or `PARQUET`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub format_type: Option<FileFormatType>,
    /// Column names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

/// A reference to one key of a named secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Key in the secret.
    #[serde(default)]
    pub key: String,
}

/// `resource_requests` / `resource_limits`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPUs (fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory, Kubernetes quantity (`64M`, `1Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
    /// Ephemeral disk, Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// Most processes and threads the worker may run at once (our extension, enforced by the
    /// process executor's cgroup and Docker's `PidsLimit`; not a Pachyderm field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

/// `resource_*.gpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Resource name, e.g. `nvidia.com/gpu`.
    #[serde(default, rename = "type")]
    pub gpu_type: String,
    /// Whole number of GPUs.
    #[serde(default, deserialize_with = "super::lenient::int")]
    #[cfg_attr(feature = "schema", schemars(with = "super::lenient::IntSchema"))]
    pub number: i64,
}

/// `service`: expose the user code as a long-running service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Port inside the worker.
    #[serde(
        default,
        alias = "internalPort",
        deserialize_with = "super::lenient::int"
    )]
    #[cfg_attr(feature = "schema", schemars(with = "super::lenient::IntSchema"))]
    pub internal_port: i32,
    /// Port exposed outside.
    #[serde(
        default,
        alias = "externalPort",
        deserialize_with = "super::lenient::int"
    )]
    #[cfg_attr(feature = "schema", schemars(with = "super::lenient::IntSchema"))]
    pub external_port: i32,
    /// Output only: filled in by inspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `ClusterIP`, `LoadBalancer` or `NodePort` (default).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub service_type: Option<ServiceType>,
}

/// `spout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Spout {
    /// Optional service exposed by the spout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
}

/// `datum_set_spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DatumSetSpec {
    /// Datums per set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub number: Option<i64>,
    /// Target input bytes per set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "sizeBytes",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub size_bytes: Option<i64>,
    /// Sets per worker.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "perWorker",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub per_worker: Option<i64>,
}

/// `scheduling_spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SchedulingSpec {
    /// Pod nodeSelector.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        alias = "nodeSelector"
    )]
    pub node_selector: BTreeMap<String, String>,
    /// Pod priorityClassName.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "priorityClassName"
    )]
    pub priority_class_name: Option<String>,
}

/// `tolerations[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// Taint key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `EXISTS` or `EQUAL` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub operator: Option<TolerationOperator>,
    /// Taint value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `ALL_EFFECTS`, `NO_SCHEDULE`, `PREFER_NO_SCHEDULE` or `NO_EXECUTE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub effect: Option<TolerationEffect>,
    /// Seconds the pod tolerates a `NO_EXECUTE` taint.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "tolerationSeconds",
        deserialize_with = "super::lenient::opt_int"
    )]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<super::lenient::IntSchema>")
    )]
    pub toleration_seconds: Option<i64>,
}

/// `determined`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Determined {
    /// Determined workspaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<String>,
}
