//! Cluster and project defaults as engine records (`E/cluster`, `E/project/{project}`), and
//! their use: every create and update merges the spec over them
//! ([`crate::spec::defaults`] has the rules).
//!
//! Setting defaults changes no pipeline by itself: a pipeline takes the defaults in force
//! when it is next created or updated. With [`SetDefaultsOptions::regenerate`] (Pachyderm's
//! `--regenerate`), every pipeline in scope whose effective spec the new defaults change gets
//! a new version (reprocessing everything with [`SetDefaultsOptions::reprocess`]), written in
//! the **same** store transaction as the defaults.

use serde::{Deserialize, Serialize};

use crate::pfs::names::validate_project_name;
use crate::spec::effective::DEFAULT_PROJECT;
use crate::spec::{
    Diagnostic, FieldPath, ParsedSpec, PipelineDefaults, PipelineSpec, apply_defaults, spec_patch,
};
use crate::validate;

use super::error::{PpsError, Result};
use super::keys::{DefaultsKey, RecordKey};
use super::records::{PipelineInfo, enc};
use super::registry::{CreateOptions, NewVersion, Registration, decode, record_pipeline};
use super::{Engine, now_ms};

/// Whose defaults: the cluster's, or one project's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultsScope {
    /// The cluster defaults, under every project's.
    Cluster,
    /// The defaults of one project (over the cluster's).
    Project(String),
}

impl DefaultsScope {
    fn key(&self) -> DefaultsKey<'_> {
        match self {
            DefaultsScope::Cluster => DefaultsKey::Cluster,
            DefaultsScope::Project(p) => DefaultsKey::Project(p),
        }
    }

    /// Whether a pipeline of `project` takes these defaults.
    fn covers(&self, project: &str) -> bool {
        match self {
            DefaultsScope::Cluster => true,
            DefaultsScope::Project(p) => p == project,
        }
    }

    /// Refuses a malformed project name, and a project that does not exist in `store`.
    fn check(&self, store: &crate::pfs::Store) -> Result<()> {
        if let DefaultsScope::Project(p) = self {
            validate_project_name(p).map_err(|e| PpsError::Store(e.into()))?;
            store.inspect_project(p)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for DefaultsScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultsScope::Cluster => f.write_str("cluster defaults"),
            DefaultsScope::Project(p) => write!(f, "defaults of project {p}"),
        }
    }
}

/// Options of [`Engine::set_defaults`] and [`Engine::delete_defaults`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetDefaultsOptions {
    /// Give every pipeline in scope whose effective spec changes a new version now.
    pub regenerate: bool,
    /// With `regenerate` (and implying it): the new versions reprocess every datum.
    pub reprocess: bool,
    /// Check and report the affected pipelines, write nothing.
    pub dry_run: bool,
}

/// Stored defaults, as [`Engine::defaults`] returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefaultsRecord {
    /// The document as given (`{}` when none are set).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub defaults: PipelineDefaults,
    /// When they were last set, ms since the epoch (absent when none are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_ms: Option<u64>,
}

/// What setting or deleting defaults did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefaultsChange {
    /// With `regenerate`: the pipelines whose effective spec changed (and, unless `dry_run`,
    /// got a new version), by name.
    pub affected_pipelines: Vec<String>,
    /// Nothing was written (a dry run).
    pub dry_run: bool,
}

impl Engine {
    /// The defaults of `scope` (the empty document `{}` when none are set, as in Pachyderm).
    ///
    /// Blocking: one store read.
    pub fn defaults(&self, scope: &DefaultsScope) -> Result<DefaultsRecord> {
        scope.check(self.store())?;
        let key = scope.key().encode();
        match self.store().engine_get(&key)? {
            Some(v) => decode(&key, &v),
            None => Ok(DefaultsRecord {
                defaults: PipelineDefaults::empty(),
                updated_ms: None,
            }),
        }
    }

    /// Sets the defaults of `scope` (replacing what was there: `update defaults` is the same
    /// as `create defaults`, as in Pachyderm). Pipelines change only with
    /// [`SetDefaultsOptions::regenerate`], in the same transaction; a regenerated spec that
    /// is no longer valid is [`PpsError::InvalidSpec`] naming it, and nothing is written.
    ///
    /// Blocking: store I/O only (one transaction); jobs of regenerated pipelines run on the
    /// next [`Engine::run_pending`].
    pub fn set_defaults(
        &self,
        scope: &DefaultsScope,
        defaults: &PipelineDefaults,
        opts: SetDefaultsOptions,
    ) -> Result<DefaultsChange> {
        scope.check(self.store())?;
        let regenerated = if opts.regenerate || opts.reprocess {
            self.regenerated(scope, defaults, opts.reprocess)?
        } else {
            Vec::new()
        };
        let change = DefaultsChange {
            affected_pipelines: regenerated
                .iter()
                .map(|(v, _)| v.info.name.clone())
                .collect(),
            dry_run: opts.dry_run,
        };
        if opts.dry_run {
            return Ok(change);
        }
        for (version, _) in &regenerated {
            self.kill_unfinished(
                &version.info.name,
                "all jobs killed because the pipeline's defaults changed",
            )?;
        }
        let key = scope.key().encode();
        let record = DefaultsRecord {
            defaults: defaults.clone(),
            updated_ms: Some(now_ms()),
        };
        self.store().transact(|txn| -> Result<()> {
            if defaults.document().is_empty() {
                txn.engine_delete(&key)?;
            } else {
                txn.engine_put(&key, &enc(&record))?;
            }
            for (version, existing) in &regenerated {
                record_pipeline(txn, &version.info, Some(existing), &version.branches, None)?;
            }
            Ok(())
        })?;
        Ok(change)
    }

    /// Removes the defaults of `scope` (the same as setting `{}`).
    ///
    /// Blocking: as [`Engine::set_defaults`].
    pub fn delete_defaults(
        &self,
        scope: &DefaultsScope,
        opts: SetDefaultsOptions,
    ) -> Result<DefaultsChange> {
        self.set_defaults(scope, &PipelineDefaults::empty(), opts)
    }

    /// `parsed` with its spec merged over the cluster defaults and the defaults of its
    /// project (the located tree stays the spec's own, so findings point into its file). A
    /// spec that cannot be merged is [`PpsError::InvalidSpec`] (rule `defaults.merge`).
    ///
    /// Blocking: two store reads.
    pub fn apply_defaults(&self, parsed: &ParsedSpec) -> Result<ParsedSpec> {
        let user_json = spec_patch(&parsed.spec, Some(&parsed.node));
        let spec = self.merge_defaults(&parsed.spec, &user_json)?;
        Ok(ParsedSpec {
            spec,
            ..parsed.clone()
        })
    }

    /// `user_json` (the JSON of `spec`, as written) merged over the stored defaults.
    pub(crate) fn merge_defaults(
        &self,
        spec: &PipelineSpec,
        user_json: &serde_json::Value,
    ) -> Result<PipelineSpec> {
        let project = project_of(spec);
        let cluster = self.defaults(&DefaultsScope::Cluster)?.defaults;
        let project_defaults = match validate_project_name(&project) {
            Ok(()) => self.defaults(&DefaultsScope::Project(project))?.defaults,
            // The spec's rules report the bad name.
            Err(_) => PipelineDefaults::empty(),
        };
        merge(spec, &[&cluster, &project_defaults], user_json)
    }

    /// The pipelines in `scope` whose effective spec changes under `defaults`, each with its
    /// next version (as an update; a new salt with `reprocess`) and its current record.
    fn regenerated(
        &self,
        scope: &DefaultsScope,
        defaults: &PipelineDefaults,
        reprocess: bool,
    ) -> Result<Vec<(NewVersion, PipelineInfo)>> {
        let cluster = match scope {
            DefaultsScope::Cluster => defaults.clone(),
            DefaultsScope::Project(_) => self.defaults(&DefaultsScope::Cluster)?.defaults,
        };
        let mut out = Vec::new();
        for info in self.list_pipelines()? {
            if !scope.covers(&info.project) {
                continue;
            }
            let project = match scope {
                DefaultsScope::Project(_) => defaults.clone(),
                DefaultsScope::Cluster => {
                    self.defaults(&DefaultsScope::Project(info.project.clone()))?
                        .defaults
                }
            };
            let user_json = match &info.user_spec_json {
                Some(json) => json.clone(),
                None => spec_patch(&info.spec, None),
            };
            let merged = merge(&info.spec, &[&cluster, &project], &user_json)?;
            let mut effective = merged.effective();
            effective.salt = Some(info.salt.clone());
            if effective == info.effective {
                continue;
            }
            check_regenerated(self, &merged, &effective)?;
            let opts = CreateOptions {
                update: true,
                reprocess,
                executor: Some(info.executor.clone()),
                ..CreateOptions::default()
            };
            let registration = Registration {
                spec: &info.spec,
                user_json: Some(user_json.clone()),
                effective,
            };
            let version = self.new_version(registration, Some(&info), &opts)?;
            out.push((version, info));
        }
        Ok(out)
    }
}

/// The project a spec names (`default` when it names none).
fn project_of(spec: &PipelineSpec) -> String {
    spec.pipeline
        .as_ref()
        .and_then(|p| p.project.as_ref())
        .map(|p| p.name.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_string())
}

/// [`apply_defaults`] with its error as the engine's.
fn merge(
    spec: &PipelineSpec,
    layers: &[&PipelineDefaults],
    user_json: &serde_json::Value,
) -> Result<PipelineSpec> {
    apply_defaults(layers, user_json).map_err(|e| PpsError::InvalidSpec {
        pipeline: spec
            .pipeline
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        diagnostics: vec![Diagnostic::error(
            "defaults.merge",
            FieldPath::root(),
            e.to_string(),
        )],
    })
}

/// Every rule, and the store checks, on a regenerated spec.
fn check_regenerated(
    engine: &Engine,
    merged: &PipelineSpec,
    effective: &crate::spec::EffectiveSpec,
) -> Result<()> {
    use crate::validate::StoreCheck;
    let mut report = validate::validate_spec(merged);
    report.errors.extend(
        super::EngineCheck::new(engine)
            .check(merged, effective)
            .into_iter()
            .filter(|d| d.severity == crate::spec::Severity::Error),
    );
    if report.is_valid() {
        return Ok(());
    }
    Err(PpsError::InvalidSpec {
        pipeline: effective.name.clone(),
        diagnostics: report.errors,
    })
}
