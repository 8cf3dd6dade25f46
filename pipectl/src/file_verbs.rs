//! pachctl's `diff file` and `copy file`.
//!
//! `diff file NEW_REPO@REF[:PATH] [OLD_REPO@REF[:PATH]]` compares what is below `PATH` on
//! each side (default `/`; the old side defaults to the new commit's parent and the same
//! path), file by file, or one level deep with `--shallow`; `--name-only` prints the
//! changed paths alone. `copy file SRC_REPO@REF:PATH DST_REPO@BRANCH:PATH` writes entries
//! only: the copy shares the source's stored contents.

use std::io::{self, Write};

use clap::Args;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pfs::{Change, DiffEntry};
use pipeline_core::spec::effective::DEFAULT_BRANCH;
use pipeline_server::routes::commit_verbs::CopyFile;
use pipeline_server::routes::commits::DiffQuery;

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, human, json_line};

/// `diff file`.
#[derive(Debug, Args)]
pub struct DiffFileArgs {
    /// `REPO@BRANCH_OR_COMMIT[:PATH]`: the new side.
    pub new: String,
    /// `REPO@BRANCH_OR_COMMIT[:PATH]`: the old side (default: the new commit's parent, same
    /// path).
    pub old: Option<String>,
    /// Compare one level only: the entries directly in the directories (a sub-directory is
    /// one entry, compared by its contents' hash).
    #[arg(short, long)]
    pub shallow: bool,
    /// Print only the changed paths, one per line.
    #[arg(long)]
    pub name_only: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `copy file`.
#[derive(Debug, Args)]
pub struct CopyFileArgs {
    /// `REPO@BRANCH_OR_COMMIT:PATH`: the file or directory to copy.
    pub src: String,
    /// `REPO@BRANCH:PATH` (or an open commit's ID): where it lands.
    pub dst: String,
}

/// The commit-ish of a reference (`master` when absent).
fn at_of(r: &FileRef) -> &str {
    r.commit.as_deref().unwrap_or(DEFAULT_BRANCH)
}

/// A reference that must name a path (`what` names the argument in the error).
fn with_path(arg: &str, what: &str) -> Res<(FileRef, String)> {
    let r = crate::project::file_ref(arg)?;
    if r.path.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::BadArgs(format!(
            "{what} {arg:?}: expected REPO@BRANCH:PATH (the path is missing)"
        )));
    }
    let path = r.file_path()?;
    Ok((r, path))
}

/// Runs `diff file`.
pub fn diff(g: &Global, args: DiffFileArgs) -> Res {
    let new = crate::project::file_ref(&args.new)?;
    let path = new.file_path()?;
    let mut q = DiffQuery {
        path: Some(path.clone()),
        shallow: args.shallow,
        ..DiffQuery::default()
    };
    if let Some(o) = &args.old {
        let old = crate::project::file_ref(o)?;
        q.old = Some(format!("{}@{}", old.repo, at_of(&old)));
        q.old_path = Some(match old.path {
            Some(_) => old.file_path()?,
            None => path,
        });
    }
    let conn = connect(g, Access::Read, None)?;
    let mut diffs = conn.call(
        conn.client
            .diff_commit(&new.repo.to_string(), at_of(&new), &q),
    )?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.output == Format::Text && !args.name_only {
        writeln!(
            out,
            "{:<9} {:<60} {:>12} {:>12}",
            "CHANGE", "PATH", "OLD SIZE", "NEW SIZE"
        )
        .map_err(io_err("-"))?;
    }
    while let Some(d) = conn.call(diffs.next())? {
        match (args.output, args.name_only) {
            (Format::Json, false) => json_line(&mut out, &d)?,
            (Format::Json, true) => json_line(&mut out, &serde_json::json!({ "path": d.path }))?,
            (_, true) => writeln!(out, "{}", d.path).map_err(io_err("-"))?,
            (_, false) => diff_row(&mut out, &d)?,
        }
    }
    out.flush().map_err(io_err("-"))
}

/// One line of the text diff.
fn diff_row(out: &mut impl Write, d: &DiffEntry) -> Res {
    let size = |f: &Option<pipeline_core::pfs::FileInfo>| {
        f.as_ref()
            .map(|f| human(f.size))
            .unwrap_or_else(|| "-".into())
    };
    writeln!(
        out,
        "{:<9} {:<60} {:>12} {:>12}",
        change_name(d.change),
        d.path,
        size(&d.old),
        size(&d.new),
    )
    .map_err(io_err("-"))
}

/// How a change is printed.
pub fn change_name(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Deleted => "deleted",
        Change::Modified => "modified",
    }
}

/// Runs `copy file` (pachctl's auto-commit rule on the destination), then waits for the
/// jobs it started (unless `--no-wait`).
pub fn copy(g: &Global, args: CopyFileArgs) -> Res {
    let (src, src_path) = with_path(&args.src, "source")?;
    let (dst, dst_path) = with_path(&args.dst, "destination")?;
    let req = CopyFile {
        src_repo: src.repo.to_string(),
        src_commit: at_of(&src).to_string(),
        src_path,
        path: dst_path,
    };
    let conn = connect(g, Access::Write, None)?;
    let w = conn.call(
        conn.client
            .copy_file(&dst.repo.to_string(), at_of(&dst), &req),
    );
    crate::data::written(g, &conn, w)
}
