//! The pipeline registry: create, update, inspect, list, stop, start, delete; and the
//! store-dependent validation (reference §5 rows 38–43) plugged into [`crate::validate`].

use crate::pfs::{BranchRef, CommitId, PfsError, RepoRef, StoreTxn};
use crate::spec::effective::DEFAULT_BRANCH;
use crate::spec::{Diagnostic, EffectiveSpec, FieldPath, Input, ParsedSpec, PipelineSpec};
use crate::validate::{self, StoreCheck};

use super::error::{PpsError, Result};
use super::images::{ImagePins, pinned_image};
use super::keys::{self, DeletedPipelineKey, PipelineKey, PipelineVersionKey, RecordKey, RerunKey};
use super::pipeline_id::{pipeline_id, pipeline_id_of_repo};
use super::records::{JobState, PipelineInfo, enc};
use super::{Engine, now_ms};

/// Options of [`Engine::create_pipeline`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Update the pipeline if it exists (also implied by the spec's `update: true`).
    pub update: bool,
    /// With `update`: a new salt, so every datum is reprocessed.
    pub reprocess: bool,
    /// Executor name (default: the engine's default). Stored with the pipeline.
    pub executor: Option<String>,
    /// Images pinned by [`Engine::pin_images`], recorded with each pipeline version. A
    /// pipeline absent here keeps its current pin if its image is unchanged, else runs its
    /// image by name (as given).
    pub images: ImagePins,
}

/// A spec to register: as written (typed, and as JSON with its explicit `null`s) and its
/// effective form (defaults merged and applied).
pub(crate) struct Registration<'a> {
    /// The spec as written.
    pub spec: &'a PipelineSpec,
    /// The spec as written, as JSON (`None` for a record from before defaults existed).
    pub user_json: Option<serde_json::Value>,
    /// What the pipeline runs (its salt is set by registration).
    pub effective: EffectiveSpec,
}

/// A pipeline version ready to be written ([`record_pipeline`]).
pub(crate) struct NewVersion {
    /// The record.
    pub info: PipelineInfo,
    /// Its input branches.
    pub branches: Vec<InputBranch>,
}

/// Which datums [`Engine::rerun_pipeline`] runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RerunMode {
    /// Only what did not succeed: the new job skips every datum that succeeded with the
    /// same datum hash in the pipeline's **last** job (even a failed or killed one), with
    /// reason `unchanged` from that job, and carries their outputs (file entries, not bytes)
    /// from that job's output commit into its own; everything else runs as usual.
    FailedOnly,
    /// Every datum (a new salt, as `update --reprocess`).
    All,
}

/// A failed-only rerun waiting for its job (stored at `R/{pipeline}`): the first job
/// discovered for pipeline `version` reuses the successful datums of `job`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RerunRequest {
    /// The pipeline version the rerun registered.
    pub version: u64,
    /// The pipeline's last job before the rerun.
    pub job: String,
}

/// What registering a spec does (`Engine::plan_registration`).
enum Plan {
    /// Nothing: the pipeline exists with exactly this spec.
    Unchanged(Box<PipelineInfo>),
    /// Record this version.
    Record(Box<PlannedVersion>),
}

/// A pipeline version ready to be recorded by `record_pipeline`.
struct PlannedVersion {
    /// The new version.
    info: PipelineInfo,
    /// The version it replaces.
    existing: Option<PipelineInfo>,
    /// Its input branches.
    branches: Vec<InputBranch>,
}

/// An input branch of a pipeline, with the field it comes from.
#[derive(Debug, Clone)]
pub(crate) struct InputBranch {
    pub branch: BranchRef,
    pub field: FieldPath,
    pub cron: bool,
    /// `input.pfs.trigger`: the branch is a trigger branch (named by `effective()`).
    pub trigger: Option<crate::spec::Trigger>,
}

/// The store's form of an effective `input.pfs.trigger` (sizes in bytes).
fn branch_trigger(
    t: &crate::spec::Trigger,
    branch: &BranchRef,
) -> Result<crate::pfs::BranchTrigger> {
    let bad = |m: String| PpsError::Usage(format!("trigger of input branch {branch}: {m}"));
    Ok(crate::pfs::BranchTrigger {
        branch: t.branch.clone().unwrap_or_else(|| DEFAULT_BRANCH.into()),
        all: t.all,
        size_bytes: t
            .size
            .as_deref()
            .map(crate::validate::syntax::parse_human_size)
            .transpose()
            .map_err(|e| bad(e.to_string()))?,
        commits: t
            .commits
            .map(|n| {
                u64::try_from(n)
                    .map_err(|_| bad("can't trigger on a negative number of commits".into()))
            })
            .transpose()?,
        rate_limit_spec: t.rate_limit_spec.clone(),
        cron_spec: t.cron_spec.clone(),
        last_tick_s: None,
    })
}

/// Every pfs/cron input branch of an effective input, in spec order.
pub(crate) fn input_branches(input: &Input, out: &mut Vec<InputBranch>) {
    let project = |p: &Option<String>| {
        p.clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::pfs::DEFAULT_PROJECT.to_string())
    };
    input.for_each(&mut |at| {
        if let Some(p) = &at.input.pfs
            && let Some(repo) = &p.repo
            && let Ok(r) = RepoRef::in_project(&project(&p.project), repo)
            && let Ok(b) = r.branch(p.branch.as_deref().unwrap_or(DEFAULT_BRANCH))
        {
            out.push(InputBranch {
                branch: b,
                field: at.path.field("pfs").field("repo"),
                cron: false,
                trigger: p.trigger.clone(),
            });
        }
        if let Some(c) = &at.input.cron
            && let Some(repo) = &c.repo
            && let Ok(r) = RepoRef::in_project(&project(&c.project), repo)
            && let Ok(b) = r.branch(DEFAULT_BRANCH)
        {
            out.push(InputBranch {
                branch: b,
                field: at.path.field("cron"),
                cron: true,
                trigger: None,
            });
        }
    });
}

/// Store-dependent checks: input repos exist, no repo has the pipeline's name (unless it is
/// this pipeline's output repo, on update), no cycle, one branch per repo per DAG, and every
/// secret `transform.secrets` names exists with its `key` (stored or supplied by the host).
#[derive(Debug)]
pub struct EngineCheck<'a> {
    engine: &'a Engine,
}

impl<'a> EngineCheck<'a> {
    /// A check against `engine`'s store and registry.
    pub fn new(engine: &'a Engine) -> Self {
        EngineCheck { engine }
    }
}

impl StoreCheck for EngineCheck<'_> {
    fn check(&self, spec: &PipelineSpec, effective: &EffectiveSpec) -> Vec<Diagnostic> {
        store_findings(self.engine, self.engine, spec, effective)
    }
}

/// What the store-dependent checks read: the committed store, or what one transaction
/// sees (its own earlier changes included).
pub(crate) trait RegistryView {
    /// Whether pipeline `name` is registered.
    fn pipeline_registered(&self, name: &str) -> bool;
    /// Whether the repo exists.
    fn repo_exists(&self, repo: &RepoRef) -> bool;
    /// The full provenance of a branch (`None` when it does not exist).
    fn branch_provenance(&self, branch: &BranchRef) -> Option<Vec<BranchRef>>;
}

impl RegistryView for Engine {
    fn pipeline_registered(&self, name: &str) -> bool {
        self.inspect_pipeline(name).is_ok()
    }

    fn repo_exists(&self, repo: &RepoRef) -> bool {
        self.store().inspect_repo(repo).is_ok()
    }

    fn branch_provenance(&self, branch: &BranchRef) -> Option<Vec<BranchRef>> {
        self.store()
            .inspect_branch(branch)
            .ok()
            .map(|b| b.provenance)
    }
}

impl RegistryView for StoreTxn<'_> {
    fn pipeline_registered(&self, name: &str) -> bool {
        matches!(
            self.engine_get(&PipelineKey::new(name).encode()),
            Ok(Some(_))
        )
    }

    fn repo_exists(&self, repo: &RepoRef) -> bool {
        StoreTxn::repo_exists(self, repo).unwrap_or(false)
    }

    fn branch_provenance(&self, branch: &BranchRef) -> Option<Vec<BranchRef>> {
        self.inspect_branch(branch).ok().map(|b| b.provenance)
    }
}

/// The store-dependent findings of [`EngineCheck`], read through `view`.
pub(crate) fn store_findings(
    engine: &Engine,
    view: &dyn RegistryView,
    spec: &PipelineSpec,
    effective: &EffectiveSpec,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(name) = spec.pipeline.as_ref().map(|_| effective.name.clone()) else {
        return out;
    };
    let id = pipeline_id(&effective.project, &name);
    let registered = view.pipeline_registered(&id);
    let out_repo = RepoRef::in_project(&effective.project, &name).ok();
    if let Err(PfsError::ProjectNotFound { .. }) =
        engine.store().inspect_project(&effective.project)
    {
        out.push(Diagnostic::error(
            "pipeline.project.not_found",
            FieldPath::root().field("pipeline").field("project"),
            format!(
                "project {} not found; create it with `pipectl create project {}`",
                effective.project, effective.project
            ),
        ));
    }
    if !registered
        && let Some(r) = &out_repo
        && view.repo_exists(r)
    {
        out.push(Diagnostic::error(
            "pipeline.name.repo_exists",
            FieldPath::root().field("pipeline").field("name"),
            format!(
                "pipeline \"{id}\" cannot be created because a repo with the same name already exists"
            ),
        ));
    }
    check_secrets(engine, effective, &mut out);
    super::egress::check_spec(engine, effective, &mut out);
    let mut branches = Vec::new();
    if let Some(input) = &effective.input {
        input_branches(input, &mut branches);
    }
    let mut seen: std::collections::BTreeMap<RepoRef, String> = Default::default();
    for b in &branches {
        if let Some(other) = seen.insert(b.branch.repo.clone(), b.branch.name.clone())
            && other != b.branch.name
        {
            out.push(Diagnostic::error(
                "input.repo.branches",
                b.field.clone(),
                format!(
                    "multiple branches from the same repo, \"{}\", cannot participate in a DAG",
                    b.branch.repo
                ),
            ));
        }
        if b.cron {
            continue;
        }
        if out_repo.as_ref() == Some(&b.branch.repo) {
            out.push(Diagnostic::error(
                "input.repo.self",
                b.field.clone(),
                format!("pipeline \"{id}\" cannot read its own output repo"),
            ));
            continue;
        }
        if !view.repo_exists(&b.branch.repo) {
            out.push(Diagnostic::error(
                "input.repo.not_found",
                b.field.clone(),
                format!("repo {} not found", b.branch.repo),
            ));
        } else if registered
            && let Some(provenance) = view.branch_provenance(&b.branch)
            && let Some(me) = &out_repo
            && provenance.iter().any(|p| p.repo == *me)
        {
            out.push(Diagnostic::error(
                "input.cycle",
                b.field.clone(),
                format!(
                    "cycle detected because {} is already in the subvenance of {id}",
                    b.branch
                ),
            ));
        }
    }
    out
}

/// Every `transform.secrets[i]` names a secret that exists and has its `key`, with
/// Pachyderm's messages.
fn check_secrets(engine: &Engine, effective: &EffectiveSpec, out: &mut Vec<Diagnostic>) {
    for (i, mount) in effective.transform.secrets.iter().enumerate() {
        let field = FieldPath::root()
            .field("transform")
            .field("secrets")
            .index(i);
        let message = match engine.secret_keys(&mount.name) {
            Ok(None) => format!("missing Kubernetes secret {}", mount.name),
            Ok(Some(keys)) => match &mount.key {
                Some(key) if !keys.contains(key) => {
                    format!("Kubernetes secret {} missing key {key}", mount.name)
                }
                _ => continue,
            },
            Err(e) => format!("reading secret {}: {e}", mount.name),
        };
        out.push(Diagnostic::error(
            "transform.secret.missing",
            field,
            message,
        ));
    }
}

/// Writes a pipeline version inside one transaction: cron repos, missing input branches and
/// triggers, the output repo (new pipeline) or the old output branch's demotion (output
/// branch renamed), the records, then the output branch's provenance (which opens the
/// first job's commits).
///
/// `salvage_from` (a failed-only rerun) is kept for the version's first job; any other
/// registration drops a rerun request still waiting.
pub(crate) fn record_pipeline(
    txn: &mut StoreTxn<'_>,
    info: &PipelineInfo,
    existing: Option<&PipelineInfo>,
    branches: &[InputBranch],
    salvage_from: Option<&str>,
) -> Result<()> {
    let id = info.id();
    let key = PipelineKey::new(&id).encode();
    if existing.is_none() && txn.engine_get(&key)?.is_some() {
        return Err(PpsError::PipelineExists(id));
    }
    for b in branches.iter().filter(|b| b.cron) {
        // Cron repos are created with the pipeline, with an empty first commit.
        if !txn.repo_exists(&b.branch.repo)? {
            let what = format!("cron ticks of pipeline {id}");
            txn.create_repo(&b.branch.repo, &what)?;
            txn.create_branch(&b.branch, None, &[])?;
        }
    }
    // Input branches that do not exist yet are created empty (as Pachyderm does); trigger
    // branches start at the head of the branch they watch.
    for b in branches {
        if let Some(t) = &b.trigger {
            let trigger = branch_trigger(t, &b.branch)?;
            let watched = b.branch.repo.branch(&trigger.branch)?;
            if !txn.branch_exists(&watched)? {
                txn.create_branch(&watched, None, &[])?;
            }
            txn.set_branch_trigger(&b.branch, trigger)?;
        } else if !b.cron && !txn.branch_exists(&b.branch)? {
            txn.create_branch(&b.branch, None, &[])?;
        }
    }
    let out_branch = &info.output_branch;
    match existing {
        Some(old) if old.output_branch != *out_branch => {
            // Leave the old output branch as a plain branch.
            let head = txn.inspect_branch(&old.output_branch)?.head;
            txn.create_branch(&old.output_branch, Some(&head), &[])?;
        }
        Some(_) => {}
        None if !txn.repo_exists(&out_branch.repo)? => {
            let what = format!("output of pipeline {id}");
            txn.create_repo(&out_branch.repo, &what)?;
        }
        None => {}
    }
    // The record goes in before the first commit's job is discovered (same transaction).
    txn.engine_delete(&DeletedPipelineKey::new(&id).encode())?;
    txn.engine_put(&key, &enc(info))?;
    txn.engine_put(
        &PipelineVersionKey::new(&id, info.version).encode(),
        &enc(info),
    )?;
    let rerun = RerunKey::new(&id).encode();
    match salvage_from {
        Some(job) => {
            let request = RerunRequest {
                version: info.version,
                job: job.to_string(),
            };
            txn.engine_put(&rerun, &enc(&request))?;
        }
        None => txn.engine_delete(&rerun)?,
    }
    if !info.stopped {
        let provenance_changed = match txn.inspect_branch(out_branch) {
            Ok(b) => b.direct_provenance != info.inputs,
            Err(_) => true,
        };
        if provenance_changed {
            txn.create_branch(out_branch, None, &info.inputs)?;
        } else {
            txn.propagate_branches(std::slice::from_ref(out_branch))?;
        }
    }
    Ok(())
}

/// Refuses to delete pipeline `name` while another pipeline reads its output branch.
fn check_unread(
    output: &std::result::Result<crate::pfs::BranchInfo, PfsError>,
    name: &str,
) -> Result<()> {
    if let Ok(b) = output
        && !b.subvenance.is_empty()
    {
        let users: Vec<String> = b
            .subvenance
            .iter()
            .map(|s| pipeline_id_of_repo(&s.repo))
            .collect();
        return Err(PpsError::Store(PfsError::InUse {
            what: format!("pipeline {name}"),
            reason: format!("pipelines {} read its output", users.join(", ")),
        }));
    }
    Ok(())
}

/// Removes a pipeline inside one transaction: its output repo (or, with `keep_repo`, its
/// output branch's provenance), its cron repos and every record it owns. A repo that is
/// already gone is not an error, so a pipeline whose repo was removed can still be deleted.
fn remove_pipeline(txn: &mut StoreTxn<'_>, info: &PipelineInfo, keep_repo: bool) -> Result<()> {
    let id = info.id();
    let name = id.as_str();
    check_unread(&txn.inspect_branch(&info.output_branch), name)?;
    let repo = info.output_branch.repo.clone();
    if keep_repo {
        if txn.branch_exists(&info.output_branch)? {
            let head = txn.inspect_branch(&info.output_branch)?.head;
            txn.create_branch(&info.output_branch, Some(&head), &[])?;
        }
    } else if txn.repo_exists(&repo)? {
        txn.delete_repo(&repo, true)?;
    }
    // Cron repos belong to the pipeline (reference §4.6).
    let mut branches = Vec::new();
    if let Some(input) = &info.effective.input {
        input_branches(input, &mut branches);
    }
    for b in branches.iter().filter(|b| b.cron) {
        if txn.repo_exists(&b.branch.repo)? {
            txn.delete_repo(&b.branch.repo, true)?;
        }
    }
    for prefix in keys::owned_by(name) {
        txn.engine_delete_prefix(prefix.as_bytes())?;
    }
    txn.engine_delete(&PipelineKey::new(name).encode())?;
    txn.engine_delete(&RerunKey::new(name).encode())?;
    txn.engine_put(
        &DeletedPipelineKey::new(name).encode(),
        now_ms().to_string().as_bytes(),
    )?;
    Ok(())
}

fn invalid(spec: &PipelineSpec, diagnostics: Vec<Diagnostic>) -> PpsError {
    PpsError::InvalidSpec {
        pipeline: spec
            .pipeline
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        diagnostics,
    }
}

impl Engine {
    /// Validates a parsed spec, merged over the cluster and project defaults, with every
    /// store-free rule plus [`EngineCheck`] (findings carry line and column; a spec that
    /// cannot be merged is one finding, `defaults.merge`).
    ///
    /// Blocking: store reads only.
    pub fn validate(&self, parsed: &ParsedSpec) -> validate::Report {
        match self.apply_defaults(parsed) {
            Ok(merged) => self.validate_merged(&merged),
            Err(PpsError::InvalidSpec { diagnostics, .. }) => validate::Report {
                errors: diagnostics,
                warnings: Vec::new(),
            },
            Err(e) => validate::Report {
                errors: vec![Diagnostic::error(
                    "defaults.read",
                    FieldPath::root(),
                    format!("could not read the pipeline defaults: {e}"),
                )],
                warnings: Vec::new(),
            },
        }
    }

    /// [`Engine::validate`] of a spec whose defaults are already merged.
    fn validate_merged(&self, merged: &ParsedSpec) -> validate::Report {
        validate::validate_with(merged, &[&EngineCheck::new(self)])
    }

    /// Creates (or, with `update`, updates) every pipeline of a parsed spec file, in order.
    /// Each spec is first merged over the cluster and project defaults
    /// ([`Engine::apply_defaults`]); the merged specs are validated, and nothing is created if
    /// one is invalid.
    ///
    /// Blocking: store I/O only (one transaction per pipeline); the jobs it starts run on the next [`Engine::run_pending`].
    pub fn create_pipelines(
        &self,
        parsed: &[ParsedSpec],
        opts: &CreateOptions,
    ) -> Result<Vec<PipelineInfo>> {
        let merged = parsed
            .iter()
            .map(|p| self.apply_defaults(p))
            .collect::<Result<Vec<_>>>()?;
        for p in &merged {
            let report = validate::validate(p);
            if !report.is_valid() {
                return Err(invalid(&p.spec, report.errors));
            }
        }
        let mut out = Vec::new();
        for (user, p) in parsed.iter().zip(&merged) {
            // Store checks run per spec, so a later spec may read an earlier one's output.
            let report = self.validate_merged(p);
            if !report.is_valid() {
                return Err(invalid(&p.spec, report.errors));
            }
            let registration = Registration {
                spec: &user.spec,
                user_json: Some(crate::spec::spec_patch(&user.spec, Some(&user.node))),
                effective: p.spec.effective(),
            };
            out.push(self.register(registration, opts, None)?);
        }
        Ok(out)
    }

    /// Creates (or updates) one pipeline built in code, merged over the cluster and project
    /// defaults like a parsed one. See [`Engine::create_pipelines`].
    ///
    /// Blocking: store I/O only (one transaction); the job it starts runs on the next [`Engine::run_pending`].
    pub fn create_pipeline(
        &self,
        spec: &PipelineSpec,
        opts: &CreateOptions,
    ) -> Result<PipelineInfo> {
        let user_json = crate::spec::spec_patch(spec, None);
        let merged = self.merge_defaults(spec, &user_json)?;
        let mut report = validate::validate_spec(&merged);
        let effective = merged.effective();
        report.errors.extend(
            EngineCheck::new(self)
                .check(&merged, &effective)
                .into_iter()
                .filter(|d| d.severity == crate::spec::Severity::Error),
        );
        if !report.is_valid() {
            return Err(invalid(spec, report.errors));
        }
        let registration = Registration {
            spec,
            user_json: Some(user_json),
            effective,
        };
        self.register(registration, opts, None)
    }

    /// Registers one validated pipeline: a new one, or a new version of an existing one. The
    /// pipeline record, its output repo and branch, its input branches and its first job's
    /// commits are written in **one** store transaction; only killing an updated pipeline's
    /// unfinished jobs happens before it (idempotent: a re-run kills nothing twice).
    ///
    /// Creating a pipeline that exists with exactly this spec (and executor) is a no-op that
    /// returns it, so a `create pipeline` re-run after an interruption succeeds.
    ///
    /// `salvage_from`: see [`RerunMode::FailedOnly`].
    fn register(
        &self,
        registration: Registration<'_>,
        opts: &CreateOptions,
        salvage_from: Option<&str>,
    ) -> Result<PipelineInfo> {
        let plan = self.plan_registration(registration, opts, |name| {
            Ok(self.inspect_pipeline(name).ok())
        })?;
        let reg = match plan {
            Plan::Unchanged(info) => return Ok(*info),
            Plan::Record(reg) => reg,
        };
        if reg.existing.is_some() {
            let reason = "all jobs killed because pipeline was updated";
            self.kill_unfinished(&reg.info.name, reason)?;
        }
        self.store().transact(|txn| {
            record_pipeline(
                txn,
                &reg.info,
                reg.existing.as_ref(),
                &reg.branches,
                salvage_from,
            )
        })?;
        Ok(reg.info)
    }

    /// Creates a **new** pipeline inside `txn` (a transaction's `create pipeline`): the spec
    /// is merged over the defaults and checked against what `txn` sees, then recorded as
    /// [`Engine::create_pipeline`] records it. Creating a pipeline that exists with exactly
    /// this spec is a no-op; an update is refused, because it kills the pipeline's running
    /// jobs first, which a transaction could not undo.
    pub(crate) fn register_in(
        &self,
        txn: &mut StoreTxn<'_>,
        spec: &PipelineSpec,
        opts: &CreateOptions,
    ) -> Result<PipelineInfo> {
        let user_json = crate::spec::spec_patch(spec, None);
        let merged = self.merge_defaults(spec, &user_json)?;
        let effective = merged.effective();
        let mut report = validate::validate_spec(&merged);
        report.errors.extend(
            store_findings(self, &*txn, &merged, &effective)
                .into_iter()
                .filter(|d| d.severity == crate::spec::Severity::Error),
        );
        if !report.is_valid() {
            return Err(invalid(spec, report.errors));
        }
        let registration = Registration {
            spec,
            user_json: Some(user_json),
            effective,
        };
        let plan = self.plan_registration(registration, opts, |name| {
            match txn.engine_get(&PipelineKey::new(name).encode())? {
                Some(v) => Ok(Some(decode(&PipelineKey::new(name).encode(), &v)?)),
                None => Ok(None),
            }
        })?;
        let reg = match plan {
            Plan::Unchanged(info) => return Ok(*info),
            Plan::Record(reg) => reg,
        };
        if reg.existing.is_some() {
            return Err(PpsError::Unsupported {
                pipeline: reg.info.name,
                what: "update pipeline inside a transaction (it kills the running jobs first, which the transaction could not undo; run it outside the transaction)".into(),
            });
        }
        record_pipeline(txn, &reg.info, None, &reg.branches, None)?;
        Ok(reg.info)
    }

    /// What registering `registration` would record: the new version (with its executor,
    /// salt and image pin), the current one it replaces and its input branches; or the
    /// current version itself when it is a create of exactly the registered spec.
    /// `existing` reads the current version of a pipeline by name.
    fn plan_registration(
        &self,
        registration: Registration<'_>,
        opts: &CreateOptions,
        existing: impl FnOnce(&str) -> Result<Option<PipelineInfo>>,
    ) -> Result<Plan> {
        let spec = registration.spec;
        let name = spec
            .pipeline
            .as_ref()
            .map(|_| registration.effective.name.clone())
            .ok_or_else(|| PpsError::Usage("the spec has no pipeline name".into()))?;
        let name = pipeline_id(&registration.effective.project, &name);
        let existing = existing(&name)?;
        if let Some(old) = &existing
            && !(opts.update || spec.update)
        {
            if old.spec == *spec && opts.executor.as_ref().is_none_or(|e| *e == old.executor) {
                return Ok(Plan::Unchanged(Box::new(old.clone())));
            }
            return Err(PpsError::PipelineExists(name));
        }
        let version = self.new_version(registration, existing.as_ref(), opts)?;
        Ok(Plan::Record(Box::new(PlannedVersion {
            info: version.info,
            existing,
            branches: version.branches,
        })))
    }

    /// The record of the next version of pipeline `registration` (version 1 when `existing`
    /// is `None`) and its input branches; nothing is written.
    pub(crate) fn new_version(
        &self,
        registration: Registration<'_>,
        existing: Option<&PipelineInfo>,
        opts: &CreateOptions,
    ) -> Result<NewVersion> {
        let Registration {
            spec,
            user_json,
            mut effective,
        } = registration;
        let name = pipeline_id(&effective.project, &effective.name);
        if super::job_gateway::needs_gateway(&effective) && !self.has_job_gateways() {
            return Err(PpsError::NoJobGateway { pipeline: name });
        }
        let executor = opts
            .executor
            .clone()
            .or_else(|| existing.map(|p| p.executor.clone()))
            .unwrap_or_else(|| self.inner.default_executor.clone());
        if !self.inner.executors.contains_key(&executor) {
            return Err(PpsError::UnknownExecutor {
                pipeline: name,
                executor,
                registered: self.executor_names().join(", "),
            });
        }
        let salt = match (existing, opts.reprocess || spec.reprocess) {
            (Some(_), true) => CommitId::generate().to_string(),
            (Some(old), false) => old.salt.clone(),
            (None, _) => effective
                .salt
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| CommitId::generate().to_string()),
        };
        effective.salt = Some(salt.clone());
        let out_repo = RepoRef::in_project(&effective.project, &effective.name)?;
        let out_branch = out_repo.branch(&effective.output_branch)?;
        let mut branches = Vec::new();
        if let Some(input) = &effective.input {
            input_branches(input, &mut branches);
        }
        let mut inputs: Vec<BranchRef> = branches.iter().map(|b| b.branch.clone()).collect();
        inputs.sort();
        inputs.dedup();
        let now = now_ms();
        let image = pinned_image(opts, &name, existing, &effective, &executor);
        let info = PipelineInfo {
            name: effective.name.clone(),
            project: out_repo.project.clone(),
            version: existing.map_or(1, |p| p.version + 1),
            spec: spec.clone(),
            user_spec_json: user_json,
            effective,
            salt,
            executor,
            stopped: existing.is_some_and(|p| p.stopped),
            output_branch: out_branch,
            inputs,
            created_ms: existing.map_or(now, |p| p.created_ms),
            updated_ms: now,
            image,
            spout_status: None,
        };
        Ok(NewVersion { info, branches })
    }

    /// Reruns a pipeline (Pachyderm's `RerunPipeline`): its current spec registered again as an
    /// update, so unfinished jobs are killed and a new job runs over the current input heads.
    /// See [`RerunMode`] for which datums run.
    ///
    /// Blocking: store I/O only; the new job runs on the next [`Engine::run_pending`].
    pub fn rerun_pipeline(&self, name: &str, mode: RerunMode) -> Result<PipelineInfo> {
        let current = self.inspect_pipeline(name)?;
        let opts = CreateOptions {
            update: true,
            reprocess: mode == RerunMode::All,
            executor: Some(current.executor.clone()),
            ..CreateOptions::default()
        };
        let salvage_from = match mode {
            RerunMode::FailedOnly => {
                self.discover_jobs()?;
                self.list_jobs(Some(name))?.pop().map(|j| j.id)
            }
            RerunMode::All => None,
        };
        // The version's own effective spec: a rerun picks up no new defaults.
        let registration = Registration {
            spec: &current.spec,
            user_json: current.user_spec_json.clone(),
            effective: current.effective.clone(),
        };
        self.register(registration, &opts, salvage_from.as_deref())
    }

    /// The current version of a pipeline.
    ///
    /// Blocking: store reads only.
    pub fn inspect_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        let key = PipelineKey::new(name).encode();
        match self.store().engine_get(&key)? {
            Some(v) => decode(&key, &v),
            None => Err(PpsError::PipelineNotFound(name.to_string())),
        }
    }

    /// A given version of a pipeline.
    ///
    /// Blocking: store reads only.
    pub fn pipeline_version(&self, name: &str, version: u64) -> Result<PipelineInfo> {
        let key = PipelineVersionKey::new(name, version).encode();
        match self.store().engine_get(&key)? {
            Some(v) => decode(&key, &v),
            None => Err(PpsError::PipelineNotFound(format!(
                "{name} (version {version})"
            ))),
        }
    }

    /// Every pipeline, by name.
    ///
    /// Blocking: store reads only.
    pub fn list_pipelines(&self) -> Result<Vec<PipelineInfo>> {
        let mut out = Vec::new();
        for kv in self.store().engine_scan(PipelineKey::all().as_bytes())? {
            let (k, v) = kv?;
            if PipelineKey::decode(&k).is_none() {
                return Err(PpsError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    message: "not a pipeline key".into(),
                });
            }
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Stops a pipeline: unfinished jobs are killed and no new job is created until
    /// [`Engine::start_pipeline`]. The output branch loses its provenance and the record is
    /// updated in one transaction.
    ///
    /// Blocking: store I/O only (one transaction).
    pub fn stop_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        let mut info = self.inspect_pipeline(name)?;
        self.kill_unfinished(name, "all jobs killed because pipeline was stopped")?;
        info.stopped = true;
        self.store().transact(|txn| -> Result<()> {
            let head = txn.inspect_branch(&info.output_branch)?.head;
            txn.create_branch(&info.output_branch, Some(&head), &[])?;
            txn.engine_put(&PipelineKey::new(name).encode(), &enc(&info))?;
            Ok(())
        })?;
        self.reconcile_spouts()?;
        Ok(info)
    }

    /// Restarts a stopped pipeline: its provenance comes back, which makes a job over the
    /// current input heads (one transaction with the record's update).
    ///
    /// Blocking: store I/O only (one transaction).
    pub fn start_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        let mut info = self.inspect_pipeline(name)?;
        if !info.stopped {
            return Ok(info);
        }
        info.stopped = false;
        self.store().transact(|txn| -> Result<()> {
            txn.engine_put(&PipelineKey::new(name).encode(), &enc(&info))?;
            txn.create_branch(&info.output_branch, None, &info.inputs)?;
            Ok(())
        })?;
        self.reconcile_spouts()?;
        Ok(info)
    }

    /// Deletes a pipeline: its jobs, datum records and logs, its output repo (unless
    /// `keep_repo`) and whatever its executor left. Refused while another pipeline reads it.
    ///
    /// Killing its unfinished jobs, stopping its workers and the executor's cleanup come
    /// first and are idempotent; then the records, the output repo (however many files it
    /// holds) and its cron repos go in **one** store transaction. Interrupted at any point,
    /// the pipeline is either still there with its repo or gone with it, and running the
    /// delete again finishes it.
    ///
    /// Deleting a pipeline that was already deleted succeeds (its tombstone stays in the
    /// store until a pipeline of that name is created again); an unknown name is
    /// [`PpsError::PipelineNotFound`].
    ///
    /// Async: waits for the pipeline's running jobs to stop and its workers to be removed.
    pub async fn delete_pipeline(&self, name: &str, keep_repo: bool) -> Result<()> {
        let info = match self.inspect_pipeline(name) {
            Err(PpsError::PipelineNotFound(_))
                if self
                    .store()
                    .engine_get(&DeletedPipelineKey::new(name).encode())?
                    .is_some() =>
            {
                return Ok(());
            }
            other => other?,
        };
        let store = self.store();
        check_unread(&store.inspect_branch(&info.output_branch), name)?;
        self.kill_unfinished(name, "job killed because pipeline was deleted")?;
        self.stop_spouts(Some(&info.id())).await;
        {
            let mut pools = self.inner.pools.lock().await;
            let id = info.id();
            let keys: Vec<_> = pools.keys().filter(|(p, _)| *p == id).cloned().collect();
            for k in keys {
                if let Some(mut pool) = pools.remove(&k) {
                    for w in pool.iter_mut() {
                        let _ = w.stop().await;
                    }
                }
            }
        }
        if let Some(ex) = self.inner.executors.get(&info.executor) {
            let _ = ex.remove_pipeline(&info.project, &info.name).await;
        }
        store.transact(|txn| remove_pipeline(txn, &info, keep_repo))
    }

    /// Kills every unfinished job of a pipeline with `reason`.
    pub(crate) fn kill_unfinished(&self, name: &str, reason: &str) -> Result<()> {
        self.discover_jobs()?;
        for job in self.list_jobs(Some(name))? {
            if !job.state.is_terminal() {
                let (pipeline, id) = (job.pipeline.clone(), job.id.clone());
                self.finish_job(job, JobState::JobKilled, reason)?;
                self.cancel_service(&pipeline, &id);
            }
        }
        Ok(())
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| PpsError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}
