//! Pipeline IDs: how a pipeline is named across projects.
//!
//! A pipeline is identified by `(project, name)`; its output repo is `project/name`. As text
//! (every engine method that takes a pipeline, [`JobInfo::pipeline`](super::JobInfo), the
//! API, the CLI) a pipeline ID is `NAME` for a pipeline of the `default` project and
//! `PROJECT/NAME` for any other; `default/NAME` is accepted as the same pipeline as `NAME`.
//! Names never contain `/`, so the two forms cannot be confused.
//!
//! ```
//! use pipeline_core::pps::{pipeline_id, split_pipeline_id};
//! assert_eq!(pipeline_id("default", "edges"), "edges");
//! assert_eq!(pipeline_id("staging", "edges"), "staging/edges");
//! assert_eq!(split_pipeline_id("staging/edges").unwrap(), ("staging".to_string(), "edges".to_string()));
//! assert_eq!(split_pipeline_id("edges").unwrap(), ("default".to_string(), "edges".to_string()));
//! assert!(split_pipeline_id("a/b/c").is_err());
//! ```

use crate::pfs::names::{validate_project_name, validate_repo_name};
use crate::pfs::{DEFAULT_PROJECT, RepoRef};

use super::error::Result;

/// The ID of pipeline `name` of `project`: `name` in the default project, else
/// `project/name`.
pub fn pipeline_id(project: &str, name: &str) -> String {
    match project {
        DEFAULT_PROJECT | "" => name.to_string(),
        _ => format!("{project}/{name}"),
    }
}

/// The project and name of a pipeline ID (`NAME` or `PROJECT/NAME`), both validated.
pub fn split_pipeline_id(id: &str) -> Result<(String, String)> {
    let (project, name) = id.split_once('/').unwrap_or((DEFAULT_PROJECT, id));
    validate_project_name(project).map_err(crate::pfs::PfsError::from)?;
    validate_repo_name(name).map_err(crate::pfs::PfsError::from)?;
    Ok((project.to_string(), name.to_string()))
}

/// A pipeline ID in its canonical form (`default/edges` is `edges`), validated.
pub fn canonical_pipeline_id(id: &str) -> Result<String> {
    let (project, name) = split_pipeline_id(id)?;
    Ok(pipeline_id(&project, &name))
}

/// The ID of the pipeline whose output repo is `repo`.
pub fn pipeline_id_of_repo(repo: &RepoRef) -> String {
    pipeline_id(&repo.project, &repo.name)
}
