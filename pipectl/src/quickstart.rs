//! `pipectl quickstart`: the seed document's `my-pipeline` (glob `/*`) and a reduce stage
//! (glob `/`) on local processes, then an incremental run after adding one file.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef};
use pipeline_core::pps::{CreateOptions, JobInfo};
use pipeline_core::spec::effective::DEFAULT_BRANCH;

use crate::engine::{open_engine, wait_for_jobs};
use crate::error::CliError;
use crate::output::{Format, outln};
use crate::pipeline::print_jobs;

/// `quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Store directory to use (default: a fresh temporary directory, removed at the end).
    #[arg(long = "dir")]
    pub dir: Option<PathBuf>,
}

/// The seed document's pipeline: every top-level file of `data` is one datum; the command
/// gets `/pfs/data` and `/pfs/out` as arguments, as in the seed's `["command", "/pfs/data",
/// "/pfs/out"]`.
const SPECS: &str = r#"
pipeline: {name: my-pipeline}
transform:
  cmd: [sh, -c, 'for f in "$1"/*; do wc -w < "$f" | tr -d " " > "$2/$(basename "$f").words"; done', command, /pfs/data, /pfs/out]
input: {pfs: {repo: data, glob: "/*"}}
---
pipeline: {name: total}
transform:
  cmd: [sh, -c, 'cat /pfs/my-pipeline/* | awk "{s+=\$1} END {print s}" > /pfs/out/total']
input: {pfs: {repo: my-pipeline, glob: "/"}}
"#;

fn print_tree(engine: &pipeline_core::pps::Engine, c: &CommitRef) -> Result<(), CliError> {
    for f in engine.store().list_file_recursive(c, "/")? {
        let f = f?;
        let (_, mut r) = engine.store().get_file(c, &f.path)?;
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        outln!(
            "  {}@{}:{}  {}",
            c.repo.name,
            &c.id.as_str()[..8],
            f.path,
            s.trim_end()
        );
    }
    Ok(())
}

fn show(engine: &pipeline_core::pps::Engine, jobs: &[JobInfo]) -> Result<(), CliError> {
    outln!();
    print_jobs(jobs, Format::Text);
    for j in jobs {
        outln!("\nfiles in {}@{}:", j.pipeline, j.id);
        print_tree(engine, &j.output_commit)?;
    }
    Ok(())
}

/// Runs the quickstart.
pub fn run(args: QuickstartArgs) -> Result<(), CliError> {
    let tmp;
    let root = match args.dir {
        Some(d) => d,
        None => {
            tmp = std::env::temp_dir().join(format!("pipectl-quickstart-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            tmp.clone()
        }
    };
    outln!("store: {}", root.display());
    let (rt, engine) = open_engine(&root, None)?;
    let store = engine.store().clone();
    let data = RepoRef::new("data")?;
    if store.inspect_repo(&data).is_err() {
        store.create_repo(&data, "quickstart input")?;
    }
    outln!("$ pipectl create repo data\n$ pipectl put file data@master:/ -f ... (3 files)");
    let c = store
        .start_commit(&data.branch(DEFAULT_BRANCH)?, "three files")?
        .commit;
    for (name, text) in [
        ("/a.txt", "the quick brown fox\n"),
        ("/b.txt", "jumps over\nthe lazy dog\n"),
        ("/c.txt", "hello pipelines\n"),
    ] {
        store.put_file_bytes(&c, name, text.as_bytes())?;
    }
    store.finish_commit(&c, FinishOptions::default())?;
    outln!(
        "$ pipectl create pipeline -f quickstart.yaml   # my-pipeline (glob /*) and total (glob /)"
    );
    let parsed = pipeline_core::spec::parse_str(SPECS, "quickstart.yaml")?;
    engine.create_pipelines(&parsed, &CreateOptions::default())?;
    let jobs = wait_for_jobs(&rt, &engine, false)?;
    show(&engine, &jobs)?;

    outln!("\n$ pipectl put file data@master:/d.txt -f d.txt   # one new file");
    let c = store
        .start_commit(&data.branch(DEFAULT_BRANCH)?, "one more file")?
        .commit;
    store.put_file_bytes(&c, "/d.txt", b"one more file for the count\n")?;
    store.finish_commit(&c, FinishOptions::default())?;
    let jobs = wait_for_jobs(&rt, &engine, false)?;
    show(&engine, &jobs)?;
    if let Some(j) = jobs.iter().find(|j| j.pipeline == "my-pipeline") {
        outln!(
            "\nmy-pipeline ran {} datum(s) and skipped {} (unchanged files keep their output).",
            j.stats.datums_processed,
            j.stats.datums_skipped
        );
        for d in engine.list_datums("my-pipeline", &j.id)? {
            outln!(
                "  {} {:<8} {}",
                &d.id[..12],
                d.state.as_str(),
                d.inputs.first().map(|i| i.path.as_str()).unwrap_or("")
            );
        }
    }
    drop(engine);
    drop(store);
    drop(rt);
    if args_dir_is_temp(&root) {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

fn args_dir_is_temp(root: &std::path::Path) -> bool {
    root.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("pipectl-quickstart-"))
}
