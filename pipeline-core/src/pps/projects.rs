//! Deleting a project as the engine sees it: with `force`, its pipelines and repos go first.
//!
//! Project records themselves live in the store (`pfs/projects.rs`); this module adds what
//! only the engine knows: which pipelines a project holds.

use crate::pfs::{PfsError, ProjectInfo};

use super::Engine;
use super::error::{PpsError, Result};
use super::records::PipelineInfo;

/// At most this many names in a refusal.
const NAMES_SHOWN: usize = 10;

fn some_names(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    if names.len() > NAMES_SHOWN {
        shown.push("…");
    }
    shown.join(", ")
}

impl Engine {
    /// The pipelines of project `name`, by name.
    ///
    /// Blocking: store reads only.
    pub fn pipelines_in_project(&self, name: &str) -> Result<Vec<PipelineInfo>> {
        Ok(self
            .list_pipelines()?
            .into_iter()
            .filter(|p| p.project == name)
            .collect())
    }

    /// Deletes project `name`. Without `force` a project that still has pipelines or repos is
    /// refused, naming them. With `force` its pipelines are deleted (downstream first), then
    /// its repos, then the project; a pipeline or branch of another project that reads one
    /// of them stops the delete with an error naming it (what was deleted stays deleted, and
    /// running the delete again after fixing that finishes it). `default` cannot be deleted.
    ///
    /// Async: deleting pipelines waits for their workers to stop.
    pub async fn delete_project(&self, name: &str, force: bool) -> Result<()> {
        // Checked first: `--force` on `default` must not delete its pipelines.
        crate::pfs::projects::refuse_default(name)?;
        let info: ProjectInfo = self.store().inspect_project(name)?;
        let pipelines: Vec<String> = self
            .pipelines_in_project(&info.name)?
            .iter()
            .map(PipelineInfo::id)
            .collect();
        if !force && !pipelines.is_empty() {
            return Err(PpsError::Store(PfsError::InUse {
                what: format!("project {name}"),
                reason: format!(
                    "it still has pipelines: {}; delete them first, or delete the project with --force",
                    some_names(&pipelines)
                ),
            }));
        }
        if force {
            self.delete_all_pipelines(pipelines).await?;
            self.delete_all_repos(name)?;
        }
        Ok(self.store().delete_project(name)?)
    }

    /// Deletes `pipelines`, each once nothing reads it any more (downstream first); an error
    /// when a round deletes none (something outside the project reads them).
    async fn delete_all_pipelines(&self, mut pipelines: Vec<String>) -> Result<()> {
        while !pipelines.is_empty() {
            let before = pipelines.len();
            let mut left = Vec::new();
            let mut last_error = None;
            for p in pipelines.drain(..) {
                match self.delete_pipeline(&p, false).await {
                    Ok(()) => {}
                    Err(e @ PpsError::Store(PfsError::InUse { .. })) => {
                        left.push(p);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if left.len() == before
                && let Some(e) = last_error
            {
                return Err(e);
            }
            pipelines = left;
        }
        Ok(())
    }

    /// Deletes every repo of project `name`, each once no other branch has it in its
    /// provenance.
    fn delete_all_repos(&self, name: &str) -> Result<()> {
        let store = self.store();
        let mut repos = store.transact(|t| t.repos_in_project(name))?;
        while !repos.is_empty() {
            let before = repos.len();
            let mut left = Vec::new();
            let mut last_error = None;
            for r in repos.drain(..) {
                match store.delete_repo(&r, false) {
                    Ok(()) => {}
                    Err(e @ PfsError::InUse { .. }) => {
                        left.push(r);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if left.len() == before
                && let Some(e) = last_error
            {
                return Err(e.into());
            }
            repos = left;
        }
        Ok(())
    }
}
