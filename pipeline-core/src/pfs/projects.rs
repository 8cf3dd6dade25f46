//! Projects: the namespaces repos (and so pipelines) live in (reference §1.1, §4.1).
//!
//! A project is a record in [`Table::Projects`] (`name` → [`ProjectInfo`]). Two kinds of
//! project exist without a record, so that stores written before projects were records keep
//! opening unchanged (no migration at open):
//!
//! - [`DEFAULT_PROJECT`] always exists (it cannot be deleted; its description can be set,
//!   which writes its record);
//! - a project that a stored repo names exists (only older stores can have such repos: a repo
//!   is created only in an existing project). It is listed with an empty description and the
//!   creation time of its oldest repo.
//!
//! Creating a repo in a project that does not exist is [`PfsError::ProjectNotFound`];
//! deleting a project that still has repos is refused ([`PfsError::InUse`] naming them). The
//! engine's `delete project --force` deletes the project's pipelines and repos first.

use serde::{Deserialize, Serialize};

use super::error::{PfsError, Result};
use super::meta::{Kv, MetaRead, MetaWrite, Table, prefix_end};
use super::model::{DEFAULT_PROJECT, RepoInfo, RepoRef, now_ms};
use super::names::validate_project_name;
use super::records::{decode, encode};
use super::store::Store;
use super::txn::StoreTxn;

/// Information about a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectInfo {
    /// Project name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time, milliseconds since the Unix epoch (0 for the implicit `default`
    /// project of a store that never recorded it).
    pub created_ms: u64,
}

/// The range of repo keys (`project/…`) of `project`.
fn repo_range(project: &str) -> (Vec<u8>, Vec<u8>) {
    let start = format!("{project}/").into_bytes();
    let end = prefix_end(&start);
    (start, end)
}

/// Reads what the projects need, from a read snapshot or a write transaction.
trait ProjectSource {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn scan_raw(&self, table: Table, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Kv>>;

    fn record(&self, name: &str) -> Result<Option<ProjectInfo>> {
        self.get_raw(Table::Projects, name.as_bytes())?
            .map(|v| decode("project record", &v))
            .transpose()
    }

    fn records(&self) -> Result<Vec<ProjectInfo>> {
        self.scan_raw(Table::Projects, &[], &[0xff], usize::MAX)?
            .iter()
            .map(|(_, v)| decode("project record", v))
            .collect()
    }

    fn repos_of(&self, project: &str, limit: usize) -> Result<Vec<RepoInfo>> {
        let (start, end) = repo_range(project);
        self.scan_raw(Table::Repos, &start, &end, limit)?
            .iter()
            .map(|(_, v)| decode("repo record", v))
            .collect()
    }

    fn all_repos(&self) -> Result<Vec<RepoInfo>> {
        self.scan_raw(Table::Repos, &[], &[0xff], usize::MAX)?
            .iter()
            .map(|(_, v)| decode("repo record", v))
            .collect()
    }
}

impl ProjectSource for dyn MetaWrite + '_ {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(table, key)
    }

    fn scan_raw(&self, table: Table, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Kv>> {
        self.scan_collect(table, start, end, limit)
    }
}

impl ProjectSource for dyn MetaRead + '_ {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(table, key)
    }

    fn scan_raw(&self, table: Table, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Kv>> {
        self.scan(table, start, end)?.take(limit).collect()
    }
}

/// The project `name` as `src` sees it: its record, or the implicit project (see the module
/// docs), or `None`.
fn find<S: ProjectSource + ?Sized>(src: &S, name: &str) -> Result<Option<ProjectInfo>> {
    if let Some(info) = src.record(name)? {
        return Ok(Some(info));
    }
    if name == DEFAULT_PROJECT {
        return Ok(Some(implicit(name, 0)));
    }
    Ok(src
        .repos_of(name, usize::MAX)?
        .iter()
        .map(|r| r.created_ms)
        .min()
        .map(|created| implicit(name, created)))
}

/// Every project `src` sees, sorted by name.
fn list<S: ProjectSource + ?Sized>(src: &S) -> Result<Vec<ProjectInfo>> {
    let mut out: std::collections::BTreeMap<String, ProjectInfo> = src
        .records()?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let recorded: std::collections::BTreeSet<String> = out.keys().cloned().collect();
    out.entry(DEFAULT_PROJECT.to_string())
        .or_insert_with(|| implicit(DEFAULT_PROJECT, 0));
    for repo in src.all_repos()? {
        let project = &repo.repo.project;
        if recorded.contains(project) {
            continue;
        }
        // An implicit project was created with its oldest repo.
        let entry = out
            .entry(project.clone())
            .or_insert_with(|| implicit(project, repo.created_ms));
        if entry.created_ms == 0 || entry.created_ms > repo.created_ms {
            entry.created_ms = repo.created_ms;
        }
    }
    Ok(out.into_values().collect())
}

fn implicit(name: &str, created_ms: u64) -> ProjectInfo {
    ProjectInfo {
        name: name.to_string(),
        description: String::new(),
        created_ms,
    }
}

/// An error for deleting the `default` project (it always exists); `Ok` for any other name
/// (validated).
pub(crate) fn refuse_default(name: &str) -> Result<()> {
    validate_project_name(name)?;
    if name == DEFAULT_PROJECT {
        return Err(PfsError::InUse {
            what: format!("project {name}"),
            reason: "the default project always exists".into(),
        });
    }
    Ok(())
}

fn not_found(name: &str) -> PfsError {
    PfsError::ProjectNotFound {
        project: name.to_string(),
    }
}

impl Store {
    /// Creates project `name` (an error naming it when it exists or the name is invalid).
    ///
    /// ```
    /// use pipeline_core::pfs::{RepoRef, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// store.create_project("staging", "pre-production data").unwrap();
    /// store.create_repo(&RepoRef::in_project("staging", "images").unwrap(), "").unwrap();
    /// let names: Vec<String> = store.list_projects().unwrap().into_iter().map(|p| p.name).collect();
    /// assert_eq!(names, ["default", "staging"]);
    /// assert!(store.delete_project("staging").is_err()); // it has a repo
    /// ```
    pub fn create_project(&self, name: &str, description: &str) -> Result<ProjectInfo> {
        self.transact(|t| t.create_project(name, description))
    }

    /// One project (`default` always exists).
    pub fn inspect_project(&self, name: &str) -> Result<ProjectInfo> {
        validate_project_name(name)?;
        find(&*self.inner.meta.read()?, name)?.ok_or_else(|| not_found(name))
    }

    /// Every project, sorted by name: the recorded ones, `default`, and those stored repos
    /// name (see the module docs).
    pub fn list_projects(&self) -> Result<Vec<ProjectInfo>> {
        list(&*self.inner.meta.read()?)
    }

    /// Sets a project's description.
    pub fn update_project(&self, name: &str, description: &str) -> Result<ProjectInfo> {
        self.transact(|t| t.update_project(name, description))
    }

    /// Deletes an empty project. Refused for `default` and while the project has repos
    /// ([`PfsError::InUse`] naming them).
    pub fn delete_project(&self, name: &str) -> Result<()> {
        self.transact(|t| t.delete_project(name))
    }
}

/// Projects inside a [`StoreTxn`] (the [`Store`] methods of the same names run these in a
/// transaction of their own).
impl StoreTxn<'_> {
    /// Creates a project.
    pub fn create_project(&mut self, name: &str, description: &str) -> Result<ProjectInfo> {
        validate_project_name(name)?;
        if find(&*self.w, name)?.is_some() {
            return Err(PfsError::ProjectExists {
                project: name.to_string(),
            });
        }
        let info = ProjectInfo {
            name: name.to_string(),
            description: description.to_string(),
            created_ms: now_ms(),
        };
        self.w
            .put(Table::Projects, name.as_bytes(), &encode(&info))?;
        Ok(info)
    }

    /// Whether project `name` exists (see the module docs for the implicit ones).
    pub fn project_exists(&self, name: &str) -> Result<bool> {
        Ok(find(&*self.w, name)?.is_some())
    }

    /// An error naming the project unless it exists.
    pub fn require_project(&self, name: &str) -> Result<()> {
        match self.project_exists(name)? {
            true => Ok(()),
            false => Err(not_found(name)),
        }
    }

    /// Every project, sorted by name.
    pub fn list_projects(&self) -> Result<Vec<ProjectInfo>> {
        list(&*self.w)
    }

    /// Sets a project's description (writing the record of an implicit project).
    pub fn update_project(&mut self, name: &str, description: &str) -> Result<ProjectInfo> {
        validate_project_name(name)?;
        let mut info = find(&*self.w, name)?.ok_or_else(|| not_found(name))?;
        info.description = description.to_string();
        self.w
            .put(Table::Projects, name.as_bytes(), &encode(&info))?;
        Ok(info)
    }

    /// The repos of project `name`, sorted by name.
    pub fn repos_in_project(&self, name: &str) -> Result<Vec<RepoRef>> {
        Ok(self
            .w
            .repos_of(name, usize::MAX)?
            .into_iter()
            .map(|r| r.repo)
            .collect())
    }

    /// Deletes an empty project; see [`Store::delete_project`].
    pub fn delete_project(&mut self, name: &str) -> Result<()> {
        refuse_default(name)?;
        find(&*self.w, name)?.ok_or_else(|| not_found(name))?;
        let repos = self.w.repos_of(name, 11)?;
        if !repos.is_empty() {
            let mut names: Vec<String> =
                repos.iter().take(10).map(|r| r.repo.to_string()).collect();
            if repos.len() > 10 {
                names.push("…".into());
            }
            return Err(PfsError::InUse {
                what: format!("project {name}"),
                reason: format!(
                    "it still has repos: {}; delete them (and the pipelines writing them) first, \
                     or delete the project with --force",
                    names.join(", ")
                ),
            });
        }
        self.w.delete(Table::Projects, name.as_bytes())
    }
}
