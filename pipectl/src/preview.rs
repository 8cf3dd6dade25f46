//! `pipectl list datum -f SPEC [--input REPO=DIR ...] [-o json]`: preview a spec's datums
//! before running anything, through the API (`POST /api/v1/datums/preview`).
//!
//! - The spec is parsed and validated first; a spec with errors is refused with every error
//!   (`FILE:LINE:COL: field: message`), exit 2.
//! - `--input REPO=DIR` uses a local directory as the head of `REPO` (symlinks are never
//!   followed out of `DIR`; see [`pipeline_core::datum::LocalTree`]) and only its paths are
//!   read, never a file's content (IDs and paths depend on paths alone); the directory is sent
//!   as an absolute path, so the server reads it (its Unix socket or in this process; not
//!   over TCP). Repos without `--input` are read from the store: the head of the input's
//!   branch (`master` unless the spec names one), so a preview shows exactly what the next
//!   job would see. Without a store (and no server) the same preview runs in this process
//!   over the local directories only; nothing is created.
//! - Output: a table (datum ID, input paths), or `-o json`: one object per line,
//!   `{"id", "inputs": [{"name", "repo", "branch", "path"}...], "files": [...]}` with inputs in
//!   datum order and files as user code sees them (`/pfs/<input><path>`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pipeline_server::ClientError;
use pipeline_server::routes::datums::{
    LocalInput, Preview, PreviewDatum, PreviewDatums, PreviewLine,
};

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res, io_err};
use crate::output::Format;
use crate::pipeline::api_err;

/// Parses `REPO=DIR`.
pub fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((repo, dir)) if !repo.is_empty() && !dir.is_empty() => {
            Ok((repo.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected REPO=DIR, got {s:?}")),
    }
}

/// The request for `file` with `inputs` (directories made absolute).
fn request(file: &Path, inputs: &[(String, PathBuf)], output: Format) -> Res<PreviewDatums> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(io_err(file))?;
    let spec = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            pipeline_core::spec::parse_bytes(e.as_bytes(), &name)?;
            return Err(CliError::BadArgs(format!("{name}: not UTF-8 text")));
        }
    };
    let inputs = inputs
        .iter()
        .map(|(repo, dir)| LocalInput {
            repo: repo.clone(),
            dir: std::path::absolute(dir)
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string(),
        })
        .collect();
    Ok(PreviewDatums {
        spec,
        source_name: name,
        inputs,
        files: output == Format::Json,
    })
}

/// Runs `list datum -f SPEC` against the store's API (or, without a store, in this
/// process), printing to the process's stdout and stderr.
pub fn run(g: &Global, file: &Path, inputs: &[(String, PathBuf)], output: Format) -> Res {
    let req = request(file, inputs, output)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let mut printer = Printer::new(output, &mut out, &mut err);
    match connect(g, Access::Read, None) {
        Ok(conn) => {
            let mut lines = conn.call(conn.client.preview_datums(&req))?;
            printer.header()?;
            while let Some(line) = conn.call(lines.next())? {
                printer.line(line)?;
            }
        }
        Err(CliError::NoStore(_)) => local(&req, &mut printer)?,
        Err(e) => return Err(e),
    }
    out.flush().map_err(CliError::Output)
}

/// The preview without a store, in this process.
fn local(req: &PreviewDatums, printer: &mut Printer<'_>) -> Res {
    let preview = Preview::prepare(req, None).map_err(api_err)?;
    printer.header()?;
    let mut result = Ok(());
    preview.stream(&mut |line| {
        result = printer.line(line);
        result.is_ok()
    });
    result
}

/// Prints preview lines: datums on `out`, warnings on `err`.
struct Printer<'a> {
    output: Format,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    fn new(output: Format, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Printer { output, out, err }
    }

    /// The table header (text output only).
    fn header(&mut self) -> Res {
        if self.output == Format::Json {
            return Ok(());
        }
        writeln!(self.out, "{:<64}  INPUTS", "ID").map_err(CliError::Output)
    }

    fn line(&mut self, line: PreviewLine) -> Res {
        match line {
            PreviewLine::Warning(w) => writeln!(self.err, "{w}").map_err(CliError::Output),
            PreviewLine::Datum(d) => self.datum(&d),
            PreviewLine::Error(e) => Err(CliError::Api(ClientError::Api {
                kind: e.kind,
                message: e.message,
            })),
        }
    }

    fn datum(&mut self, d: &PreviewDatum) -> Res {
        let r = if self.output == Format::Json {
            let line = serde_json::to_string(d).map_err(|e| CliError::Usage(e.to_string()))?;
            writeln!(self.out, "{line}")
        } else {
            // Written piece by piece: no string per datum beyond what the line holds.
            write!(self.out, "{} ", d.id).and_then(|()| {
                for (i, input) in d.inputs.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(self.out, "{sep}{}:{}", input.name, input.path)?;
                }
                writeln!(self.out)
            })
        };
        r.map_err(CliError::Output)
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
        let run = |out: &mut Vec<u8>, err: &mut Vec<u8>| -> Res {
            let req = request(&file, &inputs, output)?;
            let mut printer = Printer::new(output, out, err);
            local(&req, &mut printer)
        };
        let code = match run(&mut out, &mut err) {
            Ok(()) => 0,
            Err(e) => {
                writeln!(
                    err,
                    "pipectl: {}",
                    pipeline_core::error_chain::ErrorChain(&e)
                )
                .unwrap();
                e.exit_code()
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
    fn table_lists_every_input_of_a_datum() {
        let images = images();
        let spec = "pipeline: {name: p}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  cross:\n  - pfs: {repo: images, glob: '/a.png'}\n  - pfs: {name: m, repo: images, glob: '/dir/*'}\n";
        let (code, out, err) = invoke(spec, &[("images", images.path())], Format::Text);
        assert_eq!(code, 0, "{err}");
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{out}");
        let (id, cell) = rows[1].split_once("  ").unwrap();
        assert_eq!(id.len(), 64, "{out}");
        assert_eq!(cell, "images:/a.png, m:/dir/sub/");
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
    fn spec_with_errors_prints_them_and_exits_2() {
        let bad = "pipeline: {name: edges}\ntransform: {image: 'x:1', cmd: [sh]}\ninput:\n  pfs: {repo: images, glob: '/['}\n";
        let (code, out, err) = invoke(bad, &[], Format::Text);
        assert_eq!(code, 2);
        assert!(out.is_empty());
        assert!(err.contains("input.pfs.glob"), "{err}");
        assert!(err.contains("spec.yaml:4:"), "{err}");
        let unknown = "pipeline: {name: edges}\nbogus: 1\n";
        let (code, _, err) = invoke(unknown, &[], Format::Text);
        assert_eq!(code, 2);
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn repo_without_input_is_a_clear_error() {
        let (code, _, err) = invoke(SPEC, &[], Format::Text);
        assert_eq!(code, 2);
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
        assert_eq!(code, 2);
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
        assert_eq!(code, 2);
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
    fn a_name_pfs_cannot_store_is_named_when_the_walk_reaches_it() {
        let images = images();
        write(images.path(), "dir/bad*name", "x");
        let (code, out, err) = invoke(SPEC, &[("images", images.path())], Format::Text);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("input.pfs: reading repo \"images\""), "{err}");
        assert!(err.contains("bad*name"), "{err}");
        assert!(err.contains("glob characters"), "{err}");
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
        assert_eq!(code, 2);
        assert!(err.contains("--input images=/nonexistent/dir"), "{err}");
    }
}
