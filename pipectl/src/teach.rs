//! Errors that teach: a repo or pipeline that is not found gets "did you mean `NAME`?" when an
//! existing one is close ([`pipeline_core::suggest::nearest`] picks it; this module words it).
//!
//! The missing name is read from the not-found error the core produced (`repo P/N not found`,
//! `pipeline "N" not found`), as it arrives from the API in either mode; the candidates are
//! listed with a second, read-only request after the command's own connection is gone.

use pipeline_core::pfs::{DEFAULT_PROJECT, PfsError};
use pipeline_core::pps::PpsError;
use pipeline_core::suggest::nearest;
use pipeline_server::ClientError;
use pipeline_server::error::ErrorKind;

use crate::conn::{Access, Global, connect};
use crate::error::CliError;

/// What a not-found error says is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A repo: project and name.
    Repo(String, String),
    /// A pipeline.
    Pipeline(String),
}

/// The repo or pipeline a not-found error names, if it is one of those.
pub fn missing(e: &CliError) -> Option<Missing> {
    match e {
        CliError::Store(PfsError::RepoNotFound { repo }) => repo_of(repo),
        CliError::Engine(PpsError::PipelineNotFound(name)) => Some(Missing::Pipeline(name.clone())),
        CliError::Api(ClientError::Api {
            kind: ErrorKind::NotFound | ErrorKind::Invalid,
            message,
        }) => parse_message(message),
        _ => None,
    }
}

/// A message that ends with `repo P/N not found` (alone, or as the last finding of an
/// invalid spec: `input.pfs.repo: repo P/N not found`) or is `pipeline "N" not found`, as the
/// core words them.
fn parse_message(message: &str) -> Option<Missing> {
    if let Some(rest) = message.strip_suffix(" not found")
        && let Some((before, repo)) = rest.rsplit_once("repo ")
        && (before.is_empty() || before.ends_with(": "))
    {
        return repo_of(repo);
    }
    let name = message
        .strip_prefix("pipeline \"")?
        .strip_suffix("\" not found")?;
    Some(Missing::Pipeline(name.to_string()))
}

/// `project/name`, where neither part is empty or holds a space.
fn repo_of(repo: &str) -> Option<Missing> {
    let (project, name) = repo.split_once('/')?;
    let part = |s: &str| !s.is_empty() && !s.contains([' ', '/']);
    (part(project) && part(name)).then(|| Missing::Repo(project.to_string(), name.to_string()))
}

/// The existing name nearest to `m`, as the user would type it (`name`, or `project/name`
/// outside the default project).
fn nearest_existing(g: &Global, m: &Missing) -> Option<String> {
    // A hint is not worth waiting for a store another process holds.
    let g = Global {
        no_wait_lock: true,
        ..g.clone()
    };
    let conn = connect(&g, Access::Read, None).ok()?;
    match m {
        Missing::Repo(project, name) => {
            let repos = conn.call(conn.client.list_repos()).ok()?;
            let names = repos
                .iter()
                .filter(|r| r.repo.project == *project)
                .map(|r| r.repo.name.as_str());
            let found = nearest(name, names)?;
            Some(if project == DEFAULT_PROJECT {
                found.to_string()
            } else {
                format!("{project}/{found}")
            })
        }
        Missing::Pipeline(name) => {
            let pipelines = conn.call(conn.client.list_pipelines()).ok()?;
            let ids: Vec<String> = pipelines.iter().map(|p| p.id()).collect();
            nearest(name, ids.iter().map(String::as_str)).map(str::to_string)
        }
    }
}

/// `e` with "did you mean `NAME`?" when it is a not-found repo or pipeline and an existing one
/// is close; otherwise `e` unchanged.
pub fn teach(g: &Global, e: CliError) -> CliError {
    let Some(m) = missing(&e) else {
        return e;
    };
    match nearest_existing(g, &m) {
        Some(name) => CliError::Hinted {
            error: Box::new(e),
            hint: format!("did you mean `{name}`?"),
        },
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(kind: ErrorKind, message: &str) -> CliError {
        CliError::Api(ClientError::Api {
            kind,
            message: message.into(),
        })
    }

    #[test]
    fn the_core_s_not_found_errors_are_read_and_nothing_else() {
        let pfs = PfsError::RepoNotFound {
            repo: "default/imgs".into(),
        };
        let want = Some(Missing::Repo("default".into(), "imgs".into()));
        assert_eq!(missing(&api(ErrorKind::NotFound, &pfs.to_string())), want);
        assert_eq!(missing(&CliError::Store(pfs)), want);
        let pps = PpsError::PipelineNotFound("edgse".into());
        let want = Some(Missing::Pipeline("edgse".into()));
        assert_eq!(missing(&api(ErrorKind::NotFound, &pps.to_string())), want);
        assert_eq!(missing(&CliError::Engine(pps)), want);
        let spec =
            "invalid spec for pipeline \"e\": 3:15: input.pfs.repo: repo default/imgs not found";
        assert_eq!(
            missing(&api(ErrorKind::Invalid, spec)),
            Some(Missing::Repo("default".into(), "imgs".into()))
        );
        for (kind, msg) in [
            (ErrorKind::Conflict, "repo default/x not found"),
            (ErrorKind::Internal, "repo default/x not found"),
            (ErrorKind::Invalid, "3:15: the repo default/x not found"),
            (ErrorKind::NotFound, "repo default/a b not found"),
            (ErrorKind::NotFound, "repo /x not found"),
            (ErrorKind::NotFound, "branch default/x@master not found"),
            (ErrorKind::NotFound, "repo x not found"),
            (ErrorKind::NotFound, "pipeline \"x\" already exists"),
        ] {
            assert_eq!(missing(&api(kind, msg)), None, "{msg}");
        }
    }
}
