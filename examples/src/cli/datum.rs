//! `pipectl list datum -f SPEC [--input REPO=DIR ...] [-o json]`: preview a spec's datums
//! before running anything.
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

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline_core::datum::{Datum, DatumPlan, LocalTree, PlanError, TreeSource};
use pipeline_core::pfs::{CommitTree, RepoRef, Store};
use pipeline_core::spec::{self, Input, ParseError};
use pipeline_core::validate;

/// Output format of `list datum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table: datum ID and input paths.
    Table,
    /// One JSON object per line.
    Json,
}

/// Arguments of `pipectl list datum`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListDatumArgs {
    /// The pipeline spec (JSON or YAML, one pipeline).
    #[arg(short = 'f', long = "file", value_name = "SPEC")]
    pub file: PathBuf,
    /// Use a local directory as the head of a repo (repeatable).
    #[arg(long = "input", value_name = "REPO=DIR", value_parser = parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The store that repos without `--input` are read from (set from the global `--root`).
    #[arg(skip)]
    pub root: Option<PathBuf>,
}

fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((repo, dir)) if !repo.is_empty() && !dir.is_empty() => {
            Ok((repo.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected REPO=DIR, got {s:?}")),
    }
}

/// Runs `list datum`, printing to the process's stdout and stderr; returns the exit code.
pub fn list_datum(args: &ListDatumArgs) -> i32 {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let code = run(args, &mut out, &mut io::stderr());
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("pipectl: writing output: {e}");
            1
        }
        _ => code,
    }
}

/// Runs `list datum` with explicit output streams; returns the exit code.
pub fn run(args: &ListDatumArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match list_to(args, out, err) {
        Ok(()) => 0,
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(failure) => {
            let _ = writeln!(err, "{failure}");
            1
        }
    }
}

/// Why `list datum` stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("pipectl: {0}")]
    Message(String),
    #[error("pipectl: writing output: {0}")]
    Output(#[from] io::Error),
}

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Message(msg.into()))
}

fn list_to(args: &ListDatumArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let file = args.file.display().to_string();
    let specs = match spec::parse_file(&args.file) {
        Ok(specs) => specs,
        Err(ParseError::Invalid {
            source_name,
            diagnostics,
        }) => {
            for d in &diagnostics {
                writeln!(err, "{source_name}:{d}")?;
            }
            return fail(format!(
                "{file}: not a valid pipeline spec ({} problem(s))",
                diagnostics.len()
            ));
        }
        Err(e) => return fail(e.to_string()),
    };
    let parsed = match specs.as_slice() {
        [one] => one,
        [] => return fail(format!("{file}: holds no pipeline spec")),
        many => {
            return fail(format!(
                "{file}: holds {} pipeline specs; list datum takes one, split the file",
                many.len()
            ));
        }
    };
    let report = validate::validate(parsed);
    for w in &report.warnings {
        writeln!(err, "{}:{w}", parsed.source_name)?;
    }
    if !report.is_valid() {
        for e in &report.errors {
            writeln!(err, "{}:{e}", parsed.source_name)?;
        }
        return fail(format!(
            "{file}: the spec has {} error(s)",
            report.errors.len()
        ));
    }

    let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    for (repo, dir) in &args.inputs {
        if sources.contains_key(repo) {
            return fail(format!("--input {repo}=...: repo {repo:?} given twice"));
        }
        let tree = LocalTree::open(dir)
            .or_else(|e| fail(format!("--input {repo}={}: {e}", dir.display())))?;
        sources.insert(repo.clone(), Arc::new(tree));
    }

    // Check repos against the spec as written, so field paths match the file (the plan's own
    // paths follow the effective spec, whose children are sorted into datum order).
    let pipeline = parsed.pipeline_name().unwrap_or_default();
    let mut missing = Vec::new();
    if let Some(input) = &parsed.spec.input {
        missing_repos(input, "input".into(), pipeline, &sources, &mut missing);
    }
    if let Some(root) = args.root.as_deref().filter(|_| !missing.is_empty()) {
        missing = from_store(root, missing, &mut sources)?;
    }
    if !missing.is_empty() {
        for Missing {
            field, repo, cron, ..
        } in &missing
        {
            let msg = if *cron {
                format!(
                    "{field}: can't list datums with a cron input, there will be no datums until the pipeline is created (or pass --input {repo}=DIR holding tick files)"
                )
            } else {
                format!("{field}: no data for repo {repo:?}: pass --input {repo}=DIR")
            };
            writeln!(err, "{}: {msg}", parsed.source_name)?;
        }
        return fail(format!(
            "{file}: {} input repo(s) without data (neither in the store at {} nor given with --input)",
            missing.len(),
            args.root
                .as_deref()
                .map(|r| r.display().to_string())
                .unwrap_or_else(|| "--root".into())
        ));
    }

    let plan =
        DatumPlan::for_spec(&parsed.spec.effective(), &sources).or_else(|e| fail(explain(&e)))?;
    if args.output == Format::Table {
        writeln!(out, "{:<64}  INPUTS", "ID")?;
    }
    for datum in plan.datums() {
        let datum = datum.or_else(|e| fail(explain(&e)))?;
        match args.output {
            Format::Table => writeln!(out, "{}  {}", datum.id(), inputs_cell(&datum))?,
            Format::Json => {
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
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// An input repo that no `--input` supplied.
#[derive(Debug)]
struct Missing {
    /// Field path as written in the file.
    field: String,
    repo: String,
    /// Branch read by the input (`master` unless the spec names one).
    branch: String,
    /// Project of the repo, when the spec names one.
    project: Option<String>,
    cron: bool,
}

/// Collects every input whose repo has no tree yet.
fn missing_repos(
    input: &Input,
    field: String,
    pipeline: &str,
    sources: &HashMap<String, Arc<dyn TreeSource>>,
    out: &mut Vec<Missing>,
) {
    if let Some(pfs) = &input.pfs
        && let Some(repo) = pfs.repo.as_deref().filter(|r| !sources.contains_key(*r))
    {
        out.push(Missing {
            field: format!("{field}.pfs.repo"),
            repo: repo.to_string(),
            branch: pfs.branch.clone().unwrap_or_else(|| "master".into()),
            project: pfs.project.clone(),
            cron: false,
        });
    }
    if let Some(c) = &input.cron {
        let repo = match (&c.repo, &c.name) {
            (Some(r), _) if !r.is_empty() => r.clone(),
            (_, Some(n)) => format!("{pipeline}_{n}"),
            _ => String::new(),
        };
        if !sources.contains_key(&repo) {
            out.push(Missing {
                field: format!("{field}.cron"),
                repo,
                branch: "master".into(),
                project: c.project.clone(),
                cron: true,
            });
        }
    }
    for (kind, children) in [
        ("cross", &input.cross),
        ("union", &input.union),
        ("join", &input.join),
        ("group", &input.group),
    ] {
        for (i, child) in children.iter().flatten().enumerate() {
            missing_repos(
                child,
                format!("{field}.{kind}[{i}]"),
                pipeline,
                sources,
                out,
            );
        }
    }
}

/// Reads the repos still missing from the store at `root` (the head of each input's branch);
/// returns those the store does not have either. A missing store is not an error: every repo
/// then stays missing and is reported as such.
fn from_store(
    root: &Path,
    missing: Vec<Missing>,
    sources: &mut HashMap<String, Arc<dyn TreeSource>>,
) -> Result<Vec<Missing>, Failure> {
    if !root.join("meta.redb").exists() {
        return Ok(missing);
    }
    let store = Store::open(root)
        .or_else(|e| fail(format!("opening the store {}: {e}", root.display())))?;
    let mut still = Vec::new();
    for m in missing {
        let repo = match &m.project {
            Some(project) => RepoRef::in_project(project, &m.repo),
            None => RepoRef::new(&m.repo),
        };
        let head = repo.and_then(|repo| store.resolve_commit(&repo, &m.branch));
        match head {
            Ok(commit) => {
                let tree: Arc<dyn TreeSource> = Arc::new(CommitTree::new(store.clone(), commit));
                sources.insert(m.repo.clone(), tree);
            }
            Err(_) => still.push(m),
        }
    }
    Ok(still)
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
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn invoke(spec: &str, inputs: &[(&str, &Path)], output: Format) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.yaml");
        fs::write(&file, spec).unwrap();
        let args = ListDatumArgs {
            file,
            inputs: inputs
                .iter()
                .map(|(r, d)| (r.to_string(), d.to_path_buf()))
                .collect(),
            output,
            root: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut out, &mut err);
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
        let (code, out, err) = invoke(SPEC, &[("images", images.path())], Format::Table);
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
        let (code, out, err) = invoke(bad, &[], Format::Table);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("input.pfs.glob"), "{err}");
        assert!(err.contains("spec.yaml:4:"), "{err}");
        let unknown = "pipeline: {name: edges}\nbogus: 1\n";
        let (code, _, err) = invoke(unknown, &[], Format::Table);
        assert_eq!(code, 1);
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn repo_without_input_is_a_clear_error() {
        let (code, _, err) = invoke(SPEC, &[], Format::Table);
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
        let (code, _, err) = invoke(spec, &[("images", images.path())], Format::Table);
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
        let (code, _, err) = invoke(spec, &[], Format::Table);
        assert_eq!(code, 1);
        assert!(
            err.contains("there will be no datums until the pipeline is created"),
            "{err}"
        );
        let ticks = tempfile::tempdir().unwrap();
        write(ticks.path(), "2024-05-01T10:00:00Z", "");
        let (code, out, err) = invoke(spec, &[("p_tick", ticks.path())], Format::Table);
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
            Format::Table,
        );
        assert_eq!(code, 1);
        assert!(err.contains("--input images=/nonexistent/dir"), "{err}");
    }
}
