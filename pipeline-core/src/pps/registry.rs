//! The pipeline registry: create, update, inspect, list, stop, start, delete; and the
//! store-dependent validation (reference §5 rows 38–43) plugged into [`crate::validate`].

use crate::pfs::{BranchRef, CommitId, FinishOptions, PfsError, RepoRef};
use crate::spec::{Diagnostic, EffectiveSpec, FieldPath, Input, ParsedSpec, PipelineSpec};
use crate::validate::{self, StoreCheck};

use super::error::{PpsError, Result};
use super::records::{
    JobState, PipelineInfo, enc, job_prefix, log_prefix, pipeline_key, version_key,
};
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
        branch: t.branch.clone().unwrap_or_else(|| "master".into()),
        all: t.all,
        size_bytes: t
            .size
            .as_deref()
            .map(crate::validate::syntax::parse_human_size)
            .transpose()
            .map_err(bad)?,
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
            && let Ok(b) = r.branch(p.branch.as_deref().unwrap_or("master"))
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
            && let Ok(b) = r.branch("master")
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
/// this pipeline's output repo, on update), no cycle, one branch per repo per DAG.
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
        let mut out = Vec::new();
        let Some(name) = spec.pipeline.as_ref().map(|_| effective.name.clone()) else {
            return out;
        };
        let store = self.engine.store();
        let registered = self.engine.inspect_pipeline(&name).is_ok();
        if !registered
            && let Ok(r) = RepoRef::new(&name)
            && store.inspect_repo(&r).is_ok()
        {
            out.push(Diagnostic::error(
                "pipeline.name.repo_exists",
                FieldPath::root().field("pipeline").field("name"),
                format!(
                    "pipeline \"{name}\" cannot be created because a repo with the same name already exists"
                ),
            ));
        }
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
            if b.branch.repo.name == name {
                out.push(Diagnostic::error(
                    "input.repo.self",
                    b.field.clone(),
                    format!("pipeline \"{name}\" cannot read its own output repo"),
                ));
                continue;
            }
            if store.inspect_repo(&b.branch.repo).is_err() {
                out.push(Diagnostic::error(
                    "input.repo.not_found",
                    b.field.clone(),
                    format!("repo {} not found", b.branch.repo),
                ));
            } else if registered
                && let Ok(info) = store.inspect_branch(&b.branch)
                && let Ok(me) = RepoRef::new(&name)
                && info.provenance.iter().any(|p| p.repo == me)
            {
                out.push(Diagnostic::error(
                    "input.cycle",
                    b.field.clone(),
                    format!(
                        "cycle detected because {} is already in the subvenance of {name}",
                        b.branch
                    ),
                ));
            }
        }
        out
    }
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
    /// Validates a parsed spec with every store-free rule plus [`EngineCheck`] (findings
    /// carry line and column).
    pub fn validate(&self, parsed: &ParsedSpec) -> validate::Report {
        validate::validate_with(parsed, &[&EngineCheck::new(self)])
    }

    /// Creates (or, with `update`, updates) every pipeline of a parsed spec file, in order.
    /// All specs are validated first; nothing is created if one is invalid.
    pub fn create_pipelines(
        &self,
        parsed: &[ParsedSpec],
        opts: &CreateOptions,
    ) -> Result<Vec<PipelineInfo>> {
        for p in parsed {
            let report = validate::validate(p);
            if !report.is_valid() {
                return Err(invalid(&p.spec, report.errors));
            }
        }
        let mut out = Vec::new();
        for p in parsed {
            // Store checks run per spec, so a later spec may read an earlier one's output.
            let report = self.validate(p);
            if !report.is_valid() {
                return Err(invalid(&p.spec, report.errors));
            }
            out.push(self.register(&p.spec, opts)?);
        }
        Ok(out)
    }

    /// Creates (or updates) one pipeline built in code. See [`Engine::create_pipelines`].
    pub fn create_pipeline(
        &self,
        spec: &PipelineSpec,
        opts: &CreateOptions,
    ) -> Result<PipelineInfo> {
        let mut report = validate::validate_spec(spec);
        let effective = spec.effective();
        report.errors.extend(
            EngineCheck::new(self)
                .check(spec, &effective)
                .into_iter()
                .filter(|d| d.severity == crate::spec::Severity::Error),
        );
        if !report.is_valid() {
            return Err(invalid(spec, report.errors));
        }
        self.register(spec, opts)
    }

    fn register(&self, spec: &PipelineSpec, opts: &CreateOptions) -> Result<PipelineInfo> {
        let store = self.store();
        let mut effective = spec.effective();
        let name = spec
            .pipeline
            .as_ref()
            .map(|_| effective.name.clone())
            .ok_or_else(|| PpsError::Usage("the spec has no pipeline name".into()))?;
        let mut s3_input = false;
        if let Some(input) = &effective.input {
            input.for_each(&mut |at| s3_input |= at.input.pfs.as_ref().is_some_and(|p| p.s3));
        }
        for (what, set) in [
            ("input.pfs.s3 (inputs served over S3)", s3_input),
            ("s3_out (output written over S3)", effective.s3_out),
            ("service", effective.service.is_some()),
            ("spout", effective.spout.is_some()),
            ("egress", effective.egress.is_some()),
            (
                "transform.datum_batching",
                effective.transform.datum_batching,
            ),
        ] {
            if set {
                return Err(PpsError::Unsupported {
                    pipeline: name.clone(),
                    what: what.into(),
                });
            }
        }
        let existing = self.inspect_pipeline(&name).ok();
        let update = opts.update || spec.update;
        if existing.is_some() && !update {
            return Err(PpsError::PipelineExists(name));
        }
        let executor = opts
            .executor
            .clone()
            .or_else(|| existing.as_ref().map(|p| p.executor.clone()))
            .unwrap_or_else(|| self.inner.default_executor.clone());
        if !self.inner.executors.contains_key(&executor) {
            return Err(PpsError::UnknownExecutor {
                pipeline: name,
                executor,
                registered: self.executor_names().join(", "),
            });
        }
        let salt = match (&existing, opts.reprocess || spec.reprocess) {
            (Some(_), true) => CommitId::generate().to_string(),
            (Some(old), false) => old.salt.clone(),
            (None, _) => spec
                .salt
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| CommitId::generate().to_string()),
        };
        effective.salt = Some(salt.clone());
        let out_repo = RepoRef::new(&name)?;
        let out_branch = out_repo.branch(&effective.output_branch)?;
        let mut branches = Vec::new();
        if let Some(input) = &effective.input {
            input_branches(input, &mut branches);
        }
        // Cron repos are created with the pipeline.
        for b in branches.iter().filter(|b| b.cron) {
            if store.inspect_repo(&b.branch.repo).is_err() {
                store.create_repo(&b.branch.repo, &format!("cron ticks of pipeline {name}"))?;
                let c = store.start_commit(&b.branch, "")?;
                store.finish_commit(&c.commit, FinishOptions::default())?;
            }
        }
        // Input branches that do not exist yet are created empty (as Pachyderm does); trigger
        // branches start at the head of the branch they watch.
        for b in &branches {
            if let Some(t) = &b.trigger {
                let trigger = branch_trigger(t, &b.branch)?;
                let watched = b.branch.repo.branch(&trigger.branch)?;
                if store.inspect_branch(&watched).is_err() {
                    store.create_branch(&watched, None, &[])?;
                }
                store.set_branch_trigger(&b.branch, trigger)?;
            } else if !b.cron && store.inspect_branch(&b.branch).is_err() {
                store.create_branch(&b.branch, None, &[])?;
            }
        }
        let mut inputs: Vec<BranchRef> = branches.into_iter().map(|b| b.branch).collect();
        inputs.sort();
        inputs.dedup();
        let now = now_ms();
        let info = PipelineInfo {
            name: name.clone(),
            project: out_repo.project.clone(),
            version: existing.as_ref().map_or(1, |p| p.version + 1),
            spec: spec.clone(),
            effective,
            salt,
            executor,
            stopped: existing.as_ref().is_some_and(|p| p.stopped),
            output_branch: out_branch.clone(),
            inputs: inputs.clone(),
            created_ms: existing.as_ref().map_or(now, |p| p.created_ms),
            updated_ms: now,
        };
        if let Some(old) = &existing {
            self.kill_unfinished(&name, "all jobs killed because pipeline was updated")?;
            if old.output_branch != out_branch {
                // Leave the old output branch as a plain branch.
                let head = store.inspect_branch(&old.output_branch)?.head;
                store.create_branch(&old.output_branch, Some(&head), &[])?;
            }
        } else if store.inspect_repo(&out_repo).is_err() {
            store.create_repo(&out_repo, &format!("output of pipeline {name}"))?;
        }
        // Record the pipeline before its first commit appears, so the job finds its version.
        store.engine_write(vec![
            (pipeline_key(&name), Some(enc(&info))),
            (version_key(&name, info.version), Some(enc(&info))),
        ])?;
        if !info.stopped {
            let provenance_changed = match store.inspect_branch(&out_branch) {
                Ok(b) => b.direct_provenance != inputs,
                Err(_) => true,
            };
            if provenance_changed {
                store.create_branch(&out_branch, None, &inputs)?;
            } else {
                store.propagate_branches(std::slice::from_ref(&out_branch))?;
            }
        }
        Ok(info)
    }

    /// The current version of a pipeline.
    pub fn inspect_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        match self.store().engine_get(&pipeline_key(name))? {
            Some(v) => decode(&pipeline_key(name), &v),
            None => Err(PpsError::PipelineNotFound(name.to_string())),
        }
    }

    /// A given version of a pipeline.
    pub fn pipeline_version(&self, name: &str, version: u64) -> Result<PipelineInfo> {
        match self.store().engine_get(&version_key(name, version))? {
            Some(v) => decode(&version_key(name, version), &v),
            None => Err(PpsError::PipelineNotFound(format!(
                "{name} (version {version})"
            ))),
        }
    }

    /// Every pipeline, by name.
    pub fn list_pipelines(&self) -> Result<Vec<PipelineInfo>> {
        let mut out = Vec::new();
        for kv in self.store().engine_scan(b"P/")? {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Stops a pipeline: unfinished jobs are killed and no new job is created until
    /// [`Engine::start_pipeline`].
    pub fn stop_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        let mut info = self.inspect_pipeline(name)?;
        self.kill_unfinished(name, "all jobs killed because pipeline was stopped")?;
        let head = self.store().inspect_branch(&info.output_branch)?.head;
        self.store()
            .create_branch(&info.output_branch, Some(&head), &[])?;
        info.stopped = true;
        self.store()
            .engine_write(vec![(pipeline_key(name), Some(enc(&info)))])?;
        Ok(info)
    }

    /// Restarts a stopped pipeline: its provenance comes back, which makes a job over the
    /// current input heads.
    pub fn start_pipeline(&self, name: &str) -> Result<PipelineInfo> {
        let mut info = self.inspect_pipeline(name)?;
        if !info.stopped {
            return Ok(info);
        }
        info.stopped = false;
        self.store()
            .engine_write(vec![(pipeline_key(name), Some(enc(&info)))])?;
        self.store()
            .create_branch(&info.output_branch, None, &info.inputs)?;
        Ok(info)
    }

    /// Deletes a pipeline: its jobs, datum records and logs, its output repo (unless
    /// `keep_repo`) and whatever its executor left. Refused while another pipeline reads it.
    pub async fn delete_pipeline(&self, name: &str, keep_repo: bool) -> Result<()> {
        let info = self.inspect_pipeline(name)?;
        let store = self.store();
        let repo = RepoRef::new(name)?;
        if let Ok(b) = store.inspect_branch(&info.output_branch)
            && !b.subvenance.is_empty()
        {
            let users: Vec<String> = b.subvenance.iter().map(|s| s.repo.name.clone()).collect();
            return Err(PpsError::Store(PfsError::InUse {
                what: format!("pipeline {name}"),
                reason: format!("pipelines {} read its output", users.join(", ")),
            }));
        }
        self.kill_unfinished(name, "job killed because pipeline was deleted")?;
        {
            let mut pools = self.inner.pools.lock().await;
            let keys: Vec<_> = pools.keys().filter(|(p, _)| p == name).cloned().collect();
            for k in keys {
                if let Some(mut pool) = pools.remove(&k) {
                    for w in pool.iter_mut() {
                        let _ = w.stop().await;
                    }
                }
            }
        }
        if let Some(ex) = self.inner.executors.get(&info.executor) {
            let _ = ex.remove_pipeline(&info.project, name).await;
        }
        if keep_repo {
            let head = store.inspect_branch(&info.output_branch)?.head;
            store.create_branch(&info.output_branch, Some(&head), &[])?;
        } else {
            store.delete_repo(&repo, true)?;
        }
        // Cron repos belong to the pipeline (reference §4.6).
        let mut branches = Vec::new();
        if let Some(input) = &info.effective.input {
            input_branches(input, &mut branches);
        }
        for b in branches.iter().filter(|b| b.cron) {
            match store.delete_repo(&b.branch.repo, true) {
                Ok(()) | Err(PfsError::RepoNotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut dels = Vec::new();
        for prefix in [
            job_prefix(name),
            format!("D/{name}/").into_bytes(),
            log_prefix(name, None, None),
            format!("V/{name}/").into_bytes(),
        ] {
            for kv in store.engine_scan(&prefix)? {
                dels.push((kv?.0, None));
                if dels.len() >= 10_000 {
                    store.engine_write(std::mem::take(&mut dels))?;
                }
            }
        }
        dels.push((pipeline_key(name), None));
        store.engine_write(dels)?;
        Ok(())
    }

    /// Kills every unfinished job of a pipeline with `reason`.
    pub(crate) fn kill_unfinished(&self, name: &str, reason: &str) -> Result<()> {
        self.discover_jobs()?;
        for job in self.list_jobs(Some(name))? {
            if !job.state.is_terminal() {
                self.finish_job(job, JobState::JobKilled, reason)?;
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
