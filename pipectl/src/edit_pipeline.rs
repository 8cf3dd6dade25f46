//! `pipectl edit pipeline P`: the pipeline's spec (as given) opened in an editor, then
//! validated and applied as `update pipeline` — pachctl's `edit pipeline`. Nothing is applied
//! when the spec is unchanged, invalid, renamed, or when the editor fails; an invalid edit is
//! kept in a file the error names, so it is not lost.

use std::path::Path;

use clap::Args;
use pipeline_server::routes::pipelines::CreatePipelines;

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res, io_err};
use crate::output::Format;

/// `edit pipeline`.
#[derive(Debug, Args)]
pub struct EditPipelineArgs {
    /// Pipeline name.
    pub name: String,
    /// The editor command (default: `$EDITOR`, else `$VISUAL`, else `vi`); run with the file
    /// as its last argument (through `sh -c`, so it may carry options).
    #[arg(long)]
    pub editor: Option<String>,
    /// Format of the file to edit.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Json)]
    pub output: Format,
    /// Reprocess every datum with the edited spec (a new salt).
    #[arg(long)]
    pub reprocess: bool,
}

/// Runs `edit pipeline`.
pub fn edit_pipeline(g: &Global, args: EditPipelineArgs, no_wait: bool) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let current = conn.call(
        conn.client
            .inspect_pipeline(&crate::project::pipeline(&args.name)),
    )?;
    let (text, ext) = match args.output {
        Format::Yaml => (
            serde_saphyr::to_string(&current.spec).map_err(|e| CliError::Usage(e.to_string()))?,
            "yaml",
        ),
        _ => (
            serde_json::to_string_pretty(&current.spec)
                .map_err(|e| CliError::Usage(e.to_string()))?
                + "\n",
            "json",
        ),
    };
    let file = tempfile::Builder::new()
        .prefix(&format!("{}-", args.name.replace('/', "-")))
        .suffix(&format!(".{ext}"))
        .tempfile()
        .map_err(io_err(std::env::temp_dir()))?;
    std::fs::write(file.path(), &text).map_err(io_err(file.path()))?;
    run_editor(args.editor.as_deref(), file.path())?;
    let edited = std::fs::read_to_string(file.path()).map_err(io_err(file.path()))?;
    if edited == text {
        eprintln!("pipeline {} unchanged", args.name);
        return Ok(());
    }
    let req = CreatePipelines {
        spec: edited,
        source_name: format!("edit of pipeline {}", args.name),
        update: true,
        reprocess: args.reprocess,
        executor: None,
        // The stored spec names its project.
        project: None,
    };
    if let Err(e) = check(&conn, &req, &args.name) {
        let (_, kept) = file.keep().map_err(|e| io_err("edit")(e.error))?;
        return Err(CliError::Usage(format!(
            "{e}\nnothing was applied; your edit is kept in {}",
            kept.display()
        )));
    }
    drop(conn);
    crate::pipeline::apply_edit(g, req, no_wait)
}

/// Refuses an edit that is invalid, holds other than one pipeline, or renames it.
fn check(conn: &crate::conn::Conn, req: &CreatePipelines, name: &str) -> Res {
    let planned = conn.call(conn.client.dry_run_pipelines(req))?;
    match planned.as_slice() {
        [one] if one.name == name => Ok(()),
        [one] => Err(CliError::BadArgs(format!(
            "the edit renames pipeline {name} to {}: create the new one with `pipectl create pipeline`",
            one.name
        ))),
        _ => Err(CliError::BadArgs(format!(
            "the edit holds {} pipelines; it must hold exactly pipeline {name}",
            planned.len()
        ))),
    }
}

/// Runs the editor on `file` and waits for it; a failing editor applies nothing.
fn run_editor(editor: Option<&str>, file: &Path) -> Res {
    let editor = editor
        .map(str::to_string)
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .or_else(|| {
            std::env::var("VISUAL")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
        .map_err(io_err("sh"))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "the editor ({editor}) exited with {status}; nothing was applied"
        )))
    }
}
