//! `pipectl fsck [--fix]`: the store's check (`Store::check`, through the API) — every object
//! and every reference of the store verified; exit 0 when clean, 1 with the list of problems
//! otherwise.

use std::io::{self, Write};

use pipeline_core::pfs::CheckReport;

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, human, json_pretty};

/// Arguments of `fsck`.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Move damaged objects into `ROOT/lost+found` (never deleted), so that putting the right
    /// content again repairs every file that names them. References are only reported.
    #[arg(long)]
    pub fix: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Runs `fsck`; returns the exit code (0 clean, 1 when problems were found).
pub fn run(g: &Global, args: FsckArgs) -> Res<i32> {
    let conn = connect(g, Access::Read, None)?;
    let report = conn.call(conn.client.fsck(args.fix))?;
    let mut out = io::stdout().lock();
    match args.output {
        Format::Json => json_pretty(&mut out, &report)?,
        Format::Yaml => {
            let y = serde_saphyr::to_string(&report).map_err(|e| CliError::Usage(e.to_string()))?;
            write!(out, "{y}").map_err(io_err("-"))?;
        }
        Format::Text => text(&mut out, &report)?,
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}

fn text(out: &mut impl Write, r: &CheckReport) -> Res {
    for p in &r.problems {
        writeln!(out, "{p}").map_err(io_err("-"))?;
    }
    let verdict = if r.is_clean() {
        "clean".to_string()
    } else {
        format!("{} problem(s)", r.problems.len())
    };
    writeln!(
        out,
        "checked {} objects ({}), {} file entries, {} commits: {verdict}{}",
        r.objects,
        human(r.bytes),
        r.files,
        r.commits,
        if r.moved > 0 {
            format!("; moved {} damaged object(s) to lost+found (put the right content again to repair)", r.moved)
        } else {
            String::new()
        }
    )
    .map_err(io_err("-"))
}
