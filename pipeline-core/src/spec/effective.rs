//! The effective spec: Pachyderm's defaults applied by one explicit step.
//!
//! Parsing never fills defaults, so a user can always see the spec as written next to the spec
//! the engine runs. [`PipelineSpec::effective`] mirrors Pachyderm 2.x's server-side defaulting
//! (`setPipelineDefaults` / `setInputDefaults` / `SortInput`):
//!
//! | field | default |
//! |---|---|
//! | `pipeline.project.name` | `default` |
//! | `transform` | added when absent; `image` `ubuntu:20.04` when absent or empty |
//! | `output_branch` | `master` |
//! | `datum_tries` | `3` (also when `0`) |
//! | `reprocess_spec` | `until_success` |
//! | children of `cross`/`union`/`join`/`group` | stably sorted by *explicit* name (see below) |
//! | `input.pfs.name` | the repo |
//! | `input.pfs.branch` | `master`, or `<pipeline>-trigger-<n>` when the input has a `trigger` |
//! | `input.pfs.trigger.branch` | `master` |
//! | `input.pfs.repo_type` | `user` |
//! | `input.pfs.project`, `input.cron.project` | the pipeline's project |
//! | `input.pfs.glob` | normalised: `""`→`/`, `abc`→`/abc`, `abc/`→`/abc` (`/` for `s3` without a glob) |
//! | `input.cron.repo` | `<pipeline>_<name>` |
//!
//! **Input order.** Before any name is defaulted, the children of every compound input are
//! stably sorted by their *explicit* name, children first (post-order). A PFS child's key is its
//! explicit `name` (`""` when unset), a cron child's key is always `""`, and a compound child's
//! key is the key of its first child. So unnamed inputs keep their written order and come first.
//! This order is the order of inputs inside every datum, hence it decides datum IDs.
//!
//! `cron.start` (Pachyderm: "now") and `salt` (Pachyderm: a random UUID) are left unset: they are
//! not deterministic and belong to pipeline creation, not to the spec.

use std::collections::BTreeMap;

use super::{EffectiveSpec, Input, PipelineSpec, ProjectRef, RepoType, ReprocessSpec, Transform};

/// Pachyderm's default user image.
pub const DEFAULT_IMAGE: &str = "ubuntu:20.04";
/// Default output branch and input branch.
pub const DEFAULT_BRANCH: &str = "master";
/// Default total attempts per datum.
pub const DEFAULT_DATUM_TRIES: i64 = 3;
/// Default `reprocess_spec`.
pub const DEFAULT_REPROCESS_SPEC: ReprocessSpec = ReprocessSpec::UntilSuccess;
/// Default project name.
pub const DEFAULT_PROJECT: &str = "default";
/// Default PFS input repo type.
pub const DEFAULT_REPO_TYPE: RepoType = RepoType::User;

/// Normalises a glob the way Pachyderm's `CleanPath` does (the same function the datum planner
/// uses, [`crate::glob::normalize`]): `""` → `/`, `abc` → `/abc`, `abc/` → `/abc`.
///
/// ```
/// use pipeline_core::spec::normalize_glob;
/// assert_eq!(normalize_glob(""), "/");
/// assert_eq!(normalize_glob("abc/"), "/abc");
/// assert_eq!(normalize_glob("/*/*"), "/*/*");
/// ```
pub fn normalize_glob(glob: &str) -> String {
    crate::glob::normalize(glob)
}

fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

fn default_if_blank(s: &mut Option<String>, default: &str) {
    if is_blank(s) {
        *s = Some(default.to_string());
    }
}

/// The sort key Pachyderm uses for an input: its explicit name (`""` when unset; always `""`
/// for cron), or for a compound input the key of its first child.
pub(crate) fn explicit_sort_key(input: &Input) -> &str {
    let mut current = input;
    loop {
        if let Some(pfs) = &current.pfs {
            return pfs.name.as_deref().unwrap_or("");
        }
        let children = current
            .cross
            .as_deref()
            .or(current.union.as_deref())
            .or(current.join.as_deref())
            .or(current.group.as_deref());
        match children.and_then(|c| c.first()) {
            Some(first) => current = first,
            None => return "",
        }
    }
}

/// Stably sorts every compound input's children by explicit name, children before parents.
fn sort_inputs(input: &mut Input) {
    for children in [
        input.cross.as_mut(),
        input.union.as_mut(),
        input.join.as_mut(),
        input.group.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        for child in children.iter_mut() {
            sort_inputs(child);
        }
        children.sort_by(|a, b| explicit_sort_key(a).cmp(explicit_sort_key(b)));
    }
}

struct InputDefaults<'a> {
    pipeline: &'a str,
    project: &'a str,
    /// Trigger branches handed out so far, per input repo.
    triggers: BTreeMap<String, usize>,
}

impl InputDefaults<'_> {
    /// Fills defaults in written (already sorted) order.
    fn apply(&mut self, input: &mut Input) {
        if let Some(pfs) = input.pfs.as_mut() {
            if is_blank(&pfs.name) {
                pfs.name.clone_from(&pfs.repo);
            }
            default_if_blank(&mut pfs.project, self.project);
            if pfs.repo_type.as_ref().is_none_or(RepoType::is_blank) {
                pfs.repo_type = Some(DEFAULT_REPO_TYPE);
            }
            if is_blank(&pfs.branch) {
                if let Some(trigger) = pfs.trigger.as_mut() {
                    let repo = pfs.repo.clone().unwrap_or_default();
                    let n = self.triggers.entry(repo).or_insert(0);
                    *n += 1;
                    pfs.branch = Some(format!("{}-trigger-{}", self.pipeline, n));
                    default_if_blank(&mut trigger.branch, DEFAULT_BRANCH);
                } else {
                    pfs.branch = Some(DEFAULT_BRANCH.to_string());
                }
            } else if let Some(trigger) = pfs.trigger.as_mut() {
                default_if_blank(&mut trigger.branch, DEFAULT_BRANCH);
            }
            match pfs.glob.as_deref() {
                Some(glob) => pfs.glob = Some(normalize_glob(glob)),
                None if pfs.s3 => pfs.glob = Some("/".to_string()),
                None => {}
            }
        }
        if let Some(cron) = input.cron.as_mut() {
            default_if_blank(&mut cron.project, self.project);
            if let Some(name) = cron.name.as_deref().filter(|n| !n.is_empty())
                && is_blank(&cron.repo)
            {
                cron.repo = Some(format!("{}_{}", self.pipeline, name));
            }
        }
        for children in [
            input.cross.as_mut(),
            input.union.as_mut(),
            input.join.as_mut(),
            input.group.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            for child in children.iter_mut() {
                self.apply(child);
            }
        }
    }
}

impl PipelineSpec {
    /// The [`EffectiveSpec`]: this spec with Pachyderm's defaults applied (see the
    /// [module docs](crate::spec::effective) for the full table), inputs in datum order.
    ///
    /// Infallible: defaults are applied to whatever is present, so call it on a spec that
    /// [validation](crate::validate) accepted to get a runnable spec.
    ///
    /// Call it **once, on the spec as written**: it is deliberately not idempotent, because
    /// filling in names changes the sort keys (an effective spec's inputs defaulted
    /// again may be reordered, which would change datum IDs).
    ///
    /// ```
    /// use pipeline_core::spec::PipelineSpec;
    /// let spec: PipelineSpec = serde_json::from_str(r#"{
    ///     "pipeline": {"name": "montage"},
    ///     "transform": {"cmd": ["sh"]},
    ///     "input": {"cross": [
    ///         {"pfs": {"name": "z", "repo": "edges", "glob": "/"}},
    ///         {"pfs": {"repo": "images", "glob": ""}}
    ///     ]}
    /// }"#).unwrap();
    /// let eff = spec.effective();
    /// assert_eq!(eff.image(), "ubuntu:20.04");
    /// assert_eq!(eff.datum_tries, 3);
    /// let cross = eff.input.unwrap().cross.unwrap();
    /// // The unnamed input sorts first; names, branches and globs are filled in.
    /// let first = cross[0].pfs.as_ref().unwrap();
    /// assert_eq!(first.name.as_deref(), Some("images"));
    /// assert_eq!(first.branch.as_deref(), Some("master"));
    /// assert_eq!(first.glob.as_deref(), Some("/"));
    /// ```
    pub fn effective(&self) -> EffectiveSpec {
        EffectiveSpec::from_defaulted(self.with_defaults())
    }

    /// This spec with every default written in (the effective spec in the spec's shape).
    fn with_defaults(&self) -> PipelineSpec {
        let mut spec = self.clone();
        if let Some(pipeline) = spec.pipeline.as_mut() {
            let project = pipeline.project.get_or_insert_with(ProjectRef::default);
            if project.name.is_empty() {
                project.name = DEFAULT_PROJECT.to_string();
            }
        }
        let transform = spec.transform.get_or_insert_with(Transform::default);
        default_if_blank(&mut transform.image, DEFAULT_IMAGE);
        default_if_blank(&mut spec.output_branch, DEFAULT_BRANCH);
        if spec.datum_tries.is_none_or(|t| t == 0) {
            spec.datum_tries = Some(DEFAULT_DATUM_TRIES);
        }
        if spec
            .reprocess_spec
            .as_ref()
            .is_none_or(ReprocessSpec::is_blank)
        {
            spec.reprocess_spec = Some(DEFAULT_REPROCESS_SPEC);
        }
        let pipeline_name = spec
            .pipeline
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let project = spec
            .pipeline
            .as_ref()
            .and_then(|p| p.project.as_ref())
            .map(|p| p.name.clone())
            .unwrap_or_else(|| DEFAULT_PROJECT.to_string());
        if let Some(input) = spec.input.as_mut() {
            sort_inputs(input);
            InputDefaults {
                pipeline: &pipeline_name,
                project: &project,
                triggers: BTreeMap::new(),
            }
            .apply(input);
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CronInput, PfsInput, PipelineRef};

    fn pfs(name: Option<&str>, repo: &str) -> Input {
        Input {
            pfs: Some(PfsInput {
                name: name.map(str::to_string),
                repo: Some(repo.to_string()),
                glob: Some("*".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn names(inputs: &[Input]) -> Vec<String> {
        inputs
            .iter()
            .map(|i| match (&i.pfs, &i.cron) {
                (Some(p), _) => p.name.clone().unwrap_or_default(),
                (_, Some(c)) => c.name.clone().unwrap_or_default(),
                _ => format!("<{}>", explicit_sort_key(i)),
            })
            .collect()
    }

    fn spec_with(input: Input) -> PipelineSpec {
        PipelineSpec {
            pipeline: Some(PipelineRef {
                name: "p".into(),
                project: None,
            }),
            input: Some(input),
            ..Default::default()
        }
    }

    #[test]
    fn top_level_defaults() {
        let eff = PipelineSpec::default().effective();
        assert_eq!(eff.image(), DEFAULT_IMAGE);
        assert_eq!(eff.output_branch, "master");
        assert_eq!(eff.datum_tries, 3);
        assert_eq!(eff.reprocess_spec, ReprocessSpec::UntilSuccess);
        let zero = PipelineSpec {
            datum_tries: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.effective().datum_tries, 3);
        let five = PipelineSpec {
            datum_tries: Some(5),
            ..Default::default()
        };
        assert_eq!(five.effective().datum_tries, 5);
        let negative = PipelineSpec {
            datum_tries: Some(-2),
            ..Default::default()
        };
        assert_eq!(negative.effective().datum_tries, 1);
        let eff = spec_with(pfs(None, "a")).effective();
        assert_eq!(eff.project, DEFAULT_PROJECT);
    }

    #[test]
    fn unnamed_first_then_by_explicit_name() {
        // cross[{pfs repo:b}, {pfs name:"a", repo:z}] keeps b first.
        let eff = spec_with(Input {
            cross: Some(vec![pfs(None, "b"), pfs(Some("a"), "z")]),
            ..Default::default()
        })
        .effective();
        assert_eq!(
            names(eff.input.unwrap().cross.as_deref().unwrap()),
            ["b", "a"]
        );
        // cross[{pfs name:"z"}, {pfs repo:a}] puts the unnamed a first.
        let eff = spec_with(Input {
            cross: Some(vec![pfs(Some("z"), "q"), pfs(None, "a")]),
            ..Default::default()
        })
        .effective();
        assert_eq!(
            names(eff.input.unwrap().cross.as_deref().unwrap()),
            ["a", "z"]
        );
    }

    #[test]
    fn sort_is_stable_and_recursive_with_cron_and_compound_keys() {
        let cron = Input {
            cron: Some(CronInput {
                name: Some("tick".into()),
                spec: Some("@every 1m".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // The inner union sorts to [y(unnamed), m]; its key is then "" (unnamed first child),
        // so it sorts first (shown by its first child's defaulted name).
        let inner = Input {
            union: Some(vec![pfs(Some("m"), "r1"), pfs(None, "y")]),
            ..Default::default()
        };
        let eff = spec_with(Input {
            cross: Some(vec![
                pfs(Some("c"), "r2"),
                inner,
                cron,
                pfs(Some("b"), "r3"),
            ]),
            ..Default::default()
        })
        .effective();
        let cross = eff.input.unwrap().cross.unwrap();
        assert_eq!(names(&cross), ["<y>", "tick", "b", "c"]);
        assert_eq!(names(cross[0].union.as_deref().unwrap()), ["y", "m"]);
        let cron = cross[1].cron.as_ref().unwrap();
        assert_eq!(cron.repo.as_deref(), Some("p_tick"));
        assert_eq!(cron.project.as_deref(), Some("default"));
    }

    #[test]
    fn pfs_defaults_and_glob_normalisation() {
        for (glob, want) in [("", "/"), ("abc", "/abc"), ("abc/", "/abc"), ("/", "/")] {
            let mut input = pfs(None, "images");
            if let Some(p) = input.pfs.as_mut() {
                p.glob = Some(glob.into());
            }
            let eff = spec_with(input).effective();
            let p = eff.input.unwrap().pfs.unwrap();
            assert_eq!(p.glob.as_deref(), Some(want), "glob {glob:?}");
            assert_eq!(p.name.as_deref(), Some("images"));
            assert_eq!(p.branch.as_deref(), Some("master"));
            assert_eq!(p.repo_type, Some(RepoType::User));
        }
    }

    #[test]
    fn trigger_branches_are_numbered_per_repo() {
        let mut a = pfs(Some("a1"), "a");
        let mut b = pfs(Some("a2"), "a");
        for i in [&mut a, &mut b] {
            if let Some(p) = i.pfs.as_mut() {
                p.trigger = Some(Default::default());
            }
        }
        let eff = spec_with(Input {
            cross: Some(vec![a, b]),
            ..Default::default()
        })
        .effective();
        let cross = eff.input.unwrap().cross.unwrap();
        let branches: Vec<_> = cross
            .iter()
            .map(|i| i.pfs.as_ref().unwrap().branch.clone().unwrap())
            .collect();
        assert_eq!(branches, ["p-trigger-1", "p-trigger-2"]);
        let trig = cross[0].pfs.as_ref().unwrap().trigger.as_ref().unwrap();
        assert_eq!(trig.branch.as_deref(), Some("master"));
    }
}
