//! Projects: `create|list|inspect|update|delete project`, and the current project (the
//! global `--project` flag, or `PIPECTL_PROJECT`) applied to every name the CLI reads.
//!
//! Repos are `[PROJECT/]NAME`, pipelines `[PROJECT/]NAME`, jobs `[PROJECT/]PIPELINE@JOB`: a
//! name without `PROJECT/` is in the current project (`default` unless `--project` says
//! otherwise). The functions here are the one place that rule is applied.

use clap::Args;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pfs::{DEFAULT_PROJECT, ProjectInfo, RepoRef};

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res};
use crate::output::{Format, outln, print_json};

static CURRENT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Records the current project from the global flag; an invalid name is a usage error.
pub fn init(g: &Global) -> Res {
    if let Some(p) = &g.project {
        pipeline_core::pfs::names::validate_project_name(p)
            .map_err(|e| CliError::BadArgs(format!("--project (or PIPECTL_PROJECT) {p:?}: {e}")))?;
    }
    let _ = CURRENT.set(g.project.clone());
    Ok(())
}

/// The project `--project` named, if any.
pub fn flag() -> Option<String> {
    CURRENT.get().cloned().flatten()
}

/// The current project: `--project`, else `default`.
pub fn current() -> String {
    flag().unwrap_or_else(|| DEFAULT_PROJECT.to_string())
}

/// `name` with the current project when it names none (`repo`, `pipeline`, `pipeline@job`:
/// whatever precedes the first `/` before any `@` or `:` is a project).
fn qualify(name: &str) -> String {
    qualify_in(flag().as_deref(), name)
}

/// `name` in `project` unless it names one (the default project adds nothing, so the short
/// forms stay short).
fn qualify_in(project: Option<&str>, name: &str) -> String {
    let head_end = name.find(['@', ':']).unwrap_or(name.len());
    if name[..head_end].contains('/') {
        return name.to_string();
    }
    match project {
        Some(p) if p != DEFAULT_PROJECT => format!("{p}/{name}"),
        _ => name.to_string(),
    }
}

/// A repo reference (`[PROJECT/]REPO[@COMMIT][:PATH]`) in the current project unless it
/// names one.
pub fn file_ref(s: &str) -> Res<FileRef> {
    Ok(FileRef::parse(&qualify(s))?)
}

/// A repo name (`[PROJECT/]REPO`) in the current project unless it names one.
pub fn repo(s: &str) -> Res<RepoRef> {
    Ok(RepoRef::parse(&qualify(s))?)
}

/// A pipeline ID (`[PROJECT/]PIPELINE`) in the current project unless it names one.
pub fn pipeline(s: &str) -> String {
    qualify(s)
}

/// Arguments of `create project`.
#[derive(Debug, Args)]
pub struct CreateProjectArgs {
    /// Project name.
    pub name: String,
    /// Free text.
    #[arg(short, long, default_value = "")]
    pub description: String,
}

/// Arguments of `update project`.
#[derive(Debug, Args)]
pub struct UpdateProjectArgs {
    /// Project name.
    pub name: String,
    /// The new description.
    #[arg(short, long)]
    pub description: String,
}

/// Arguments of `inspect project`.
#[derive(Debug, Args)]
pub struct InspectProjectArgs {
    /// Project name.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Arguments of `list project`.
#[derive(Debug, Args)]
pub struct ListProjectArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Arguments of `delete project`.
#[derive(Debug, Args)]
pub struct DeleteProjectArgs {
    /// Project name.
    pub name: String,
    /// Also delete its pipelines and repos (else a project that has any is refused).
    #[arg(short, long)]
    pub force: bool,
}

fn created(ms: u64) -> String {
    match ms {
        0 => "-".into(),
        _ => pipeline_core::pps::format_ms(ms),
    }
}

fn print_one(p: &ProjectInfo, output: Format) {
    match output {
        Format::Json => print_json(p),
        Format::Text | Format::Yaml => {
            outln!("Name: {}", p.name);
            outln!("Description: {}", p.description);
            outln!("Created: {}", created(p.created_ms));
        }
    }
}

/// `create project`.
pub fn create(g: &Global, a: CreateProjectArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.create_project(&a.name, &a.description))?;
    eprintln!("created project {}", a.name);
    Ok(())
}

/// `update project`.
pub fn update(g: &Global, a: UpdateProjectArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.update_project(&a.name, &a.description))?;
    eprintln!("updated project {}", a.name);
    Ok(())
}

/// `inspect project`.
pub fn inspect(g: &Global, a: InspectProjectArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let p = conn.call(conn.client.inspect_project(&a.name))?;
    print_one(&p, a.output);
    Ok(())
}

/// `list project` (the current project marked `*`).
pub fn list(g: &Global, a: ListProjectArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let list = conn.call(conn.client.list_projects())?;
    let active = current();
    match a.output {
        Format::Json => list.iter().for_each(print_json),
        Format::Text | Format::Yaml => {
            outln!(
                "{:<7} {:<24} {:<25} DESCRIPTION",
                "ACTIVE",
                "PROJECT",
                "CREATED"
            );
            for p in &list {
                let mark = if p.name == active { "*" } else { "" };
                outln!(
                    "{:<7} {:<24} {:<25} {}",
                    mark,
                    p.name,
                    created(p.created_ms),
                    p.description
                );
            }
        }
    }
    Ok(())
}

/// `delete project [--force]`.
pub fn delete(g: &Global, a: DeleteProjectArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.delete_project(&a.name, a.force))?;
    eprintln!("deleted project {}", a.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::qualify_in;

    #[test]
    fn names_without_a_project_get_the_current_one() {
        let lab = Some("lab");
        assert_eq!(qualify_in(lab, "images"), "lab/images");
        assert_eq!(
            qualify_in(lab, "images@master:/a/b"),
            "lab/images@master:/a/b"
        );
        assert_eq!(qualify_in(lab, "edges@0123abcd"), "lab/edges@0123abcd");
        // An explicit project wins; a `/` in the path or after `@` is not a project.
        assert_eq!(
            qualify_in(lab, "other/images@master"),
            "other/images@master"
        );
        assert_eq!(
            qualify_in(lab, "images@master:/dir/x"),
            "lab/images@master:/dir/x"
        );
        assert_eq!(qualify_in(Some("default"), "images"), "images");
        assert_eq!(qualify_in(None, "images@master"), "images@master");
    }
}
