//! `pipectl version [-o json]`: the crate version and, when the build knew it, the git commit.

use clap::Args;
use serde::Serialize;

use crate::error::Res;
use crate::output::{Format, outln, print_json};

/// `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// What `pipectl version` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The program's name.
    pub name: &'static str,
    /// The crate version.
    pub version: &'static str,
    /// The git commit it was built from (`None` when built outside a git checkout).
    pub git_commit: Option<&'static str>,
}

/// This build's version.
pub fn info() -> VersionInfo {
    VersionInfo {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        git_commit: option_env!("PIPECTL_GIT_COMMIT").filter(|c| !c.is_empty()),
    }
}

/// `pipectl version`.
pub fn run(args: VersionArgs) -> Res {
    let v = info();
    match args.output {
        Format::Json => print_json(&v),
        Format::Text | Format::Yaml => match v.git_commit {
            Some(c) => outln!("{} {} (git commit {c})", v.name, v.version),
            None => outln!("{} {} (git commit unknown)", v.name, v.version),
        },
    }
    Ok(())
}
