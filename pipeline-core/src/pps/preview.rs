//! Previewing a spec's datums before anything runs: the datums the next job of the pipeline
//! would see, with repos taken from local directories or from the store.
//!
//! A repo given as a local directory ([`LocalTree`], symlinks never followed out of it) wins;
//! every other input repo is read from the store: the head of the input's branch (the
//! default branch unless the spec names one). Inputs with data in neither are reported
//! together, named by their field path **as written** in the spec file.
//!
//! A preview shows datum IDs and paths, which depend on paths alone, so local directories
//! are opened with [`LocalTree::open_listing`]: no file is ever opened or read, and the
//! plan's content hashes (and so datum hashes) of local inputs are zero. A problem in a
//! local tree (a name PFS cannot store, a refused symlink) ends the datum stream with an
//! error when the walk reaches it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::datum::{DatumPlan, LocalTree, PlanError, SourceError, TreeSource};
use crate::pfs::{CommitTree, RepoRef, Store};
use crate::spec::effective::DEFAULT_BRANCH;
use crate::spec::{Input, PipelineSpec};

/// An input repo that has data neither locally nor in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingInput {
    /// Field path as written in the spec file, e.g. `input.cross[0].pfs.repo`.
    pub field: String,
    /// The repo (for a cron input: its tick repo, `<pipeline>_<name>` unless named).
    pub repo: String,
    /// The branch the input reads.
    pub branch: String,
    /// The repo's project, when the spec names one.
    pub project: Option<String>,
    /// A cron input: its repo only exists once the pipeline is created.
    pub cron: bool,
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreviewError {
    /// The same repo was given as a local directory twice.
    #[error("repo {repo:?} given twice as a local input")]
    DuplicateInput {
        /// The repo.
        repo: String,
    },
    /// A local directory could not be used as a repo.
    #[error("local input {repo}={}", dir.display())]
    LocalInput {
        /// The repo.
        repo: String,
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// The store could not be opened.
    #[error("opening the store")]
    Store(#[source] crate::pfs::PfsError),
    /// Input repos without data, in spec order.
    #[error("{} input repo(s) without data", inputs.len())]
    MissingInputs {
        /// The inputs.
        inputs: Vec<MissingInput>,
    },
    /// Planning failed (bad input spec, unreadable tree, ...).
    #[error("planning datums")]
    Plan(#[source] PlanError),
}

/// Plans the datums of `spec` over `local` directories (repo name → directory) and, for the
/// other input repos, the heads of their branches in the store that `store` opens (called
/// only when some input repo is not local; `Ok(None)`: no store, e.g. from
/// [`Store::open_existing`]). Iterate the plan's [`DatumPlan::datums`] to stream them;
/// nothing is run or written, and no local file's content is read (datum IDs and files are
/// exact; content hashes of local inputs are zero, see the module docs).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.png"), "x").unwrap();
/// let spec = pipeline_core::spec::parse_str(
///     "pipeline: {name: edges}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: images, glob: '/*'}}\n",
///     "edges.yaml",
/// )
/// .unwrap();
/// let local = [("images".to_string(), dir.path().to_path_buf())];
/// let plan = pipeline_core::pps::preview_datums(&spec[0].spec, &local, || Ok(None)).unwrap();
/// assert_eq!(plan.datums().count(), 1);
/// ```
pub fn preview_datums(
    spec: &PipelineSpec,
    local: &[(String, PathBuf)],
    store: impl FnOnce() -> crate::pfs::Result<Option<Store>>,
) -> Result<DatumPlan, PreviewError> {
    let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    for (repo, dir) in local {
        if sources.contains_key(repo) {
            return Err(PreviewError::DuplicateInput { repo: repo.clone() });
        }
        let tree = LocalTree::open_listing(dir).map_err(|source| PreviewError::LocalInput {
            repo: repo.clone(),
            dir: dir.clone(),
            source,
        })?;
        sources.insert(repo.clone(), Arc::new(tree));
    }
    // Walk the spec as written, so field paths match the file (the plan's own paths follow
    // the effective spec, whose children are sorted into datum order).
    let pipeline = spec.pipeline.as_ref().map_or("", |p| p.name.as_str());
    let mut missing = Vec::new();
    if let Some(input) = &spec.input {
        missing_inputs(input, pipeline, &sources, &mut missing);
    }
    if !missing.is_empty()
        && let Some(store) = store().map_err(PreviewError::Store)?
    {
        missing.retain(|m| !read_from_store(&store, m, &mut sources));
    }
    if !missing.is_empty() {
        return Err(PreviewError::MissingInputs { inputs: missing });
    }
    DatumPlan::for_spec(&spec.effective(), &sources).map_err(PreviewError::Plan)
}

/// Adds the head of `m`'s branch in `store` to `sources`; false when the store lacks it.
fn read_from_store(
    store: &Store,
    m: &MissingInput,
    sources: &mut HashMap<String, Arc<dyn TreeSource>>,
) -> bool {
    let repo = match &m.project {
        Some(project) => RepoRef::in_project(project, &m.repo),
        None => RepoRef::new(&m.repo),
    };
    match repo.and_then(|repo| store.resolve_commit(&repo, &m.branch)) {
        Ok(commit) => {
            let tree: Arc<dyn TreeSource> = Arc::new(CommitTree::new(store.clone(), commit));
            sources.insert(m.repo.clone(), tree);
            true
        }
        Err(_) => false,
    }
}

/// Collects every input whose repo has no tree yet, in spec order.
fn missing_inputs(
    input: &Input,
    pipeline: &str,
    sources: &HashMap<String, Arc<dyn TreeSource>>,
    out: &mut Vec<MissingInput>,
) {
    input.for_each(&mut |at| {
        if let Some(pfs) = &at.input.pfs
            && let Some(repo) = pfs.repo.as_deref().filter(|r| !sources.contains_key(*r))
        {
            out.push(MissingInput {
                field: at.path.field("pfs").field("repo").to_string(),
                repo: repo.to_string(),
                branch: pfs.branch.clone().unwrap_or_else(|| DEFAULT_BRANCH.into()),
                project: pfs.project.clone(),
                cron: false,
            });
        }
        if let Some(c) = &at.input.cron {
            let repo = match (&c.repo, &c.name) {
                (Some(r), _) if !r.is_empty() => r.clone(),
                (_, Some(n)) => format!("{pipeline}_{n}"),
                _ => String::new(),
            };
            if !sources.contains_key(&repo) {
                out.push(MissingInput {
                    field: at.path.field("cron").to_string(),
                    repo,
                    branch: DEFAULT_BRANCH.into(),
                    project: c.project.clone(),
                    cron: true,
                });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::FinishOptions;

    fn spec(input: &str) -> PipelineSpec {
        let text = format!("pipeline: {{name: p}}\ntransform: {{cmd: [sh]}}\ninput:\n{input}");
        crate::spec::parse_str(&text, "p.yaml").unwrap()[0]
            .spec
            .clone()
    }

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        d
    }

    fn paths(plan: &DatumPlan) -> Vec<String> {
        plan.datums()
            .map(|d| d.unwrap().inputs[0].path.clone())
            .collect()
    }

    #[test]
    fn local_directories_are_repos() {
        let images = dir_with(&["a.png", "dir/c.png"]);
        let local = [("images".to_string(), images.path().to_path_buf())];
        let plan = preview_datums(&spec("  pfs: {repo: images, glob: '/*'}\n"), &local, || {
            Ok(None)
        })
        .unwrap();
        assert_eq!(paths(&plan), ["/a.png", "/dir/"]);
    }

    #[test]
    fn other_repos_come_from_the_head_of_their_branch_in_the_store() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let repo = RepoRef::new("images").unwrap();
        store.create_repo(&repo, "").unwrap();
        let c = store
            .start_commit(&repo.branch("dev").unwrap(), "")
            .unwrap()
            .commit;
        store.put_file_bytes(&c, "/b.png", b"b").unwrap();
        store.finish_commit(&c, FinishOptions::default()).unwrap();
        let s = spec("  pfs: {repo: images, branch: dev, glob: '/*'}\n");
        let plan = preview_datums(&s, &[], || Ok(Some(store.clone()))).unwrap();
        assert_eq!(paths(&plan), ["/b.png"]);
        // master has no commit: the input is missing.
        let s = spec("  pfs: {repo: images, glob: '/*'}\n");
        match preview_datums(&s, &[], || Ok(Some(store.clone()))) {
            Err(PreviewError::MissingInputs { inputs }) => assert_eq!(inputs[0].branch, "master"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_inputs_are_named_by_their_written_path() {
        let images = dir_with(&["a.png"]);
        let local = [("images".to_string(), images.path().to_path_buf())];
        let s = spec(
            "  cross:\n  - pfs: {name: z, repo: masks, glob: '/*'}\n  - pfs: {repo: images, glob: '/*'}\n  - cron: {name: tick, spec: '@every 60s'}\n",
        );
        let Err(PreviewError::MissingInputs { inputs }) = preview_datums(&s, &local, || Ok(None))
        else {
            panic!("expected missing inputs");
        };
        let got: Vec<(&str, &str, bool)> = inputs
            .iter()
            .map(|m| (m.field.as_str(), m.repo.as_str(), m.cron))
            .collect();
        assert_eq!(
            got,
            [
                ("input.cross[0].pfs.repo", "masks", false),
                ("input.cross[2].cron", "p_tick", true)
            ]
        );
    }

    #[test]
    fn duplicate_and_unreadable_local_inputs_are_refused() {
        let images = dir_with(&["a.png"]);
        let s = spec("  pfs: {repo: images, glob: '/*'}\n");
        let twice = [
            ("images".to_string(), images.path().to_path_buf()),
            ("images".to_string(), images.path().to_path_buf()),
        ];
        assert!(matches!(
            preview_datums(&s, &twice, || Ok(None)),
            Err(PreviewError::DuplicateInput { .. })
        ));
        let gone = [("images".to_string(), PathBuf::from("/nonexistent/dir"))];
        assert!(matches!(
            preview_datums(&s, &gone, || Ok(None)),
            Err(PreviewError::LocalInput { .. })
        ));
    }
}
