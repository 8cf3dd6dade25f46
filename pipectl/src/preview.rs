//! `pipectl list datum -f SPEC [--input REPO=DIR ...] [-o json]`: preview a spec's datums
//! before running anything ([`pipeline_core::pps::preview_datums`]).
//!
//! - The spec is parsed and validated first; a spec with errors prints every error
//!   (`FILE:LINE:COL: field: message`) and exits 1.
//! - `--input REPO=DIR` uses a local directory as the head of `REPO` (symlinks are never
//!   followed out of `DIR`; see [`pipeline_core::datum::LocalTree`]). Repos without `--input`
//!   are read from the store at `--root`: the head of the input's branch (`master` unless the
//!   spec names one), so a preview shows exactly what the next job would see.
//! - Output: a table (datum ID, input paths), or `-o json`: one object per line,
//!   `{"id", "inputs": [{"name", "repo", "branch", "path"}...], "files": [...]}` with inputs in
//!   datum order and files as user code sees them (`/pfs/<input><path>`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pipeline_core::datum::{Datum, DatumPlan, PlanError};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::Store;
use pipeline_core::pps::{MissingInput, PreviewError, preview_datums};
use pipeline_core::spec::{self, ParseError, ParsedSpec};
use pipeline_core::validate;

use crate::error::{CliError, Res};
use crate::output::Format;

/// Parses `REPO=DIR`.
pub fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((repo, dir)) if !repo.is_empty() && !dir.is_empty() => {
            Ok((repo.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected REPO=DIR, got {s:?}")),
    }
}

/// Runs `list datum -f SPEC` against the store at `root` (if there is one), printing to the
/// process's stdout and stderr.
pub fn run(root: &Path, file: &Path, inputs: &[(String, PathBuf)], output: Format) -> Res {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    list_to(
        Some(root),
        file,
        inputs,
        output,
        &mut out,
        &mut io::stderr(),
    )?;
    out.flush().map_err(CliError::Output)
}

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(CliError::Usage(msg.into()))
}

fn write_err(err: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Res {
    writeln!(err, "{line}").map_err(CliError::Output)
}

/// Parses and validates the one spec of `file`, printing its diagnostics on `err`.
fn load(file: &Path, err: &mut dyn Write) -> Res<ParsedSpec> {
    let name = file.display().to_string();
    let specs = match spec::parse_file(file) {
        Ok(specs) => specs,
        Err(ParseError::Invalid {
            source_name,
            diagnostics,
        }) => {
            for d in &diagnostics {
                write_err(err, format_args!("{source_name}:{d}"))?;
            }
            return fail(format!(
                "{name}: not a valid pipeline spec ({} problem(s))",
                diagnostics.len()
            ));
        }
        Err(e) => return fail(ErrorChain(&e).to_string()),
    };
    let parsed = match <[ParsedSpec; 1]>::try_from(specs) {
        Ok([one]) => one,
        Err(v) if v.is_empty() => return fail(format!("{name}: holds no pipeline spec")),
        Err(many) => {
            return fail(format!(
                "{name}: holds {} pipeline specs; list datum takes one, split the file",
                many.len()
            ));
        }
    };
    let report = validate::validate(&parsed);
    for w in &report.warnings {
        write_err(err, format_args!("{}:{w}", parsed.source_name))?;
    }
    if !report.is_valid() {
        for e in &report.errors {
            write_err(err, format_args!("{}:{e}", parsed.source_name))?;
        }
        return fail(format!(
            "{name}: the spec has {} error(s)",
            report.errors.len()
        ));
    }
    Ok(parsed)
}

fn list_to(
    root: Option<&Path>,
    file: &Path,
    inputs: &[(String, PathBuf)],
    output: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Res {
    let parsed = load(file, err)?;
    let store = || root.map_or(Ok(None), Store::open_existing);
    match preview_datums(&parsed.spec, inputs, store) {
        Ok(plan) => print_plan(&plan, output, out),
        Err(e) => Err(explain_preview(e, &parsed, file, root, err)),
    }
}

fn print_plan(plan: &DatumPlan, output: Format, out: &mut dyn Write) -> Res {
    let w = |r: io::Result<()>| r.map_err(CliError::Output);
    if output != Format::Json {
        w(writeln!(out, "{:<64}  INPUTS", "ID"))?;
    }
    for datum in plan.datums() {
        let datum = datum.or_else(|e| fail(explain(&e)))?;
        if output != Format::Json {
            w(writeln!(out, "{}  {}", datum.id(), inputs_cell(&datum)))?;
            continue;
        }
        let files = plan
            .files(&datum)
            .map(|f| f.map(|f| format!("/pfs/{}{}", f.name, f.path)))
            .collect::<Result<Vec<_>, _>>()
            .or_else(|e| fail(explain(&e)))?;
        let inputs: Vec<serde_json::Value> = datum
            .inputs
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.leaf.name, "repo": i.leaf.repo, "branch": i.leaf.branch, "path": i.path,
                })
            })
            .collect();
        let line = serde_json::json!({"id": datum.id().to_hex(), "inputs": inputs, "files": files});
        w(writeln!(out, "{line}"))?;
    }
    Ok(())
}

/// The command-line form of a preview failure (missing inputs are listed on `err` first).
fn explain_preview(
    e: PreviewError,
    parsed: &ParsedSpec,
    file: &Path,
    root: Option<&Path>,
    err: &mut dyn Write,
) -> CliError {
    let message = match e {
        PreviewError::DuplicateInput { repo } => {
            format!("--input {repo}=...: repo {repo:?} given twice")
        }
        PreviewError::LocalInput { repo, dir, source } => {
            format!("--input {repo}={}: {}", dir.display(), ErrorChain(&source))
        }
        PreviewError::MissingInputs { inputs } => {
            if let Err(e) = print_missing(&inputs, parsed, err) {
                return e;
            }
            format!(
                "{}: {} input repo(s) without data (neither in the store at {} nor given with --input)",
                file.display(),
                inputs.len(),
                root.map(|r| r.display().to_string())
                    .unwrap_or_else(|| "--root".into())
            )
        }
        PreviewError::Store(e) => format!(
            "opening the store {}: {}",
            root.map(|r| r.display().to_string()).unwrap_or_default(),
            ErrorChain(&e)
        ),
        PreviewError::Plan(e) => explain(&e),
        other => ErrorChain(&other).to_string(),
    };
    CliError::Usage(message)
}

fn print_missing(missing: &[MissingInput], parsed: &ParsedSpec, err: &mut dyn Write) -> Res {
    for MissingInput {
        field, repo, cron, ..
    } in missing
    {
        let msg = if *cron {
            format!(
                "{field}: can't list datums with a cron input, there will be no datums until the pipeline is created (or pass --input {repo}=DIR holding tick files)"
            )
        } else {
            format!("{field}: no data for repo {repo:?}: pass --input {repo}=DIR")
        };
        write_err(err, format_args!("{}: {msg}", parsed.source_name))?;
    }
    Ok(())
}

fn inputs_cell(d: &Datum) -> String {
    d.inputs
        .iter()
        .map(|i| format!("{}:{}", i.leaf.name, i.path))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the command-line remedy to planning errors.
fn explain(e: &PlanError) -> String {
    match e {
        PlanError::MissingSource { repo, .. } => {
            format!("{e}: put it in the store at --root or pass --input {repo}=DIR")
        }
        PlanError::CronWithoutTicks { repo, .. } => {
            format!("{e} (or pass --input {repo}=DIR holding tick files)")
        }
        _ => ErrorChain(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn invoke(spec: &str, inputs: &[(&str, &Path)], output: Format) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.yaml");
        fs::write(&file, spec).unwrap();
        let inputs: Vec<(String, PathBuf)> = inputs
            .iter()
            .map(|(r, d)| (r.to_string(), d.to_path_buf()))
            .collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = match list_to(None, &file, &inputs, output, &mut out, &mut err) {
            Ok(()) => 0,
            Err(e) => {
                writeln!(err, "pipectl: {e}").unwrap();
                1
            }
        };
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    const SPEC: &str = "pipeline: {name: edges}\ntransform: {image: 'opencv:1', cmd: [python3, /edges.py]}\ninput:\n  pfs: {repo: images, glob: '/*'}\n";

    fn images() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.png", "b.png", "dir/c.png", "dir/sub/d.png"] {
            write(d.path(), f, f);
        }
        d
    }

    #[test]
    fn table_lists_datum_ids_and_paths() {
        let images = images();
        let (code, out, err) = invoke(SPEC, &[("images", images.path())], Format::Text);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("ID "));
        assert!(lines[3].ends_with("  images:/dir/"), "{out}");
        assert_eq!(lines[1].split_whitespace().next().unwrap().len(), 64);
    }

    #[test]
    fn json_has_inputs_in_datum_order_and_files() {
        let images = images();
        let (code, out, err) = invoke(SPEC, &[("images", images.path())], Format::Json);
        assert_eq!(code, 0, "{err}");
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 3);
        let dir = &rows[2];
        assert_eq!(
            dir["inputs"][0],
            serde_json::json!({"name": "images", "repo": "images", "branch": "master", "path": "/dir/"})
        );
        assert_eq!(
            dir["files"],
            serde_json::json!(["/pfs/images/dir/c.png", "/pfs/images/dir/sub/d.png"])
        );
        assert_eq!(dir["id"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn spec_with_errors_prints_them_and_exits_1() {
        let bad = "pipeline: {name: edges}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  pfs: {repo: images, glob: '/['}\n";
        let (code, out, err) = invoke(bad, &[], Format::Text);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("input.pfs.glob"), "{err}");
        assert!(err.contains("spec.yaml:4:"), "{err}");
        let unknown = "pipeline: {name: edges}\nbogus: 1\n";
        let (code, _, err) = invoke(unknown, &[], Format::Text);
        assert_eq!(code, 1);
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn repo_without_input_is_a_clear_error() {
        let (code, _, err) = invoke(SPEC, &[], Format::Text);
        assert_eq!(code, 1);
        assert!(
            err.contains(
                "spec.yaml: input.pfs.repo: no data for repo \"images\": pass --input images=DIR"
            ),
            "{err}"
        );
    }

    #[test]
    fn missing_repos_are_named_by_their_written_path() {
        let images = images();
        let spec = "pipeline: {name: p}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  cross:\n  - pfs: {name: z, repo: masks, glob: '/*'}\n  - pfs: {repo: images, glob: '/*'}\n  - pfs: {name: y, repo: other, glob: '/*'}\n";
        let (code, _, err) = invoke(spec, &[("images", images.path())], Format::Text);
        assert_eq!(code, 1);
        assert!(
            err.contains("input.cross[0].pfs.repo: no data for repo \"masks\""),
            "{err}"
        );
        assert!(
            err.contains("input.cross[2].pfs.repo: no data for repo \"other\""),
            "{err}"
        );
        assert!(err.contains("2 input repo(s) without data"), "{err}");
    }

    #[test]
    fn cron_needs_the_tick_repo() {
        let spec = "pipeline: {name: p}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  cron: {name: tick, spec: '@every 60s'}\n";
        let (code, _, err) = invoke(spec, &[], Format::Text);
        assert_eq!(code, 1);
        assert!(
            err.contains("there will be no datums until the pipeline is created"),
            "{err}"
        );
        let ticks = tempfile::tempdir().unwrap();
        write(ticks.path(), "2024-05-01T10:00:00Z", "");
        let (code, out, err) = invoke(spec, &[("p_tick", ticks.path())], Format::Text);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("tick:/2024-05-01T10:00:00Z"), "{out}");
    }

    #[test]
    fn bad_input_flags() {
        assert!(parse_input("images").is_err());
        assert!(parse_input("=dir").is_err());
        assert_eq!(
            parse_input("a=b=c").unwrap(),
            ("a".to_string(), PathBuf::from("b=c"))
        );
        let (code, _, err) = invoke(
            SPEC,
            &[("images", Path::new("/nonexistent/dir"))],
            Format::Text,
        );
        assert_eq!(code, 1);
        assert!(err.contains("--input images=/nonexistent/dir"), "{err}");
    }
}
