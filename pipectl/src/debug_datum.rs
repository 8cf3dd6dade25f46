//! `pipectl debug datum PIPELINE@JOB DATUM`: runs one recorded datum again on this machine
//! the way its job ran it (the inputs of the job's input commits, the same environment, the
//! pipeline version's transform and pinned image), then compares the result with what the
//! job recorded: the same ending (success, or the same exit code / signal / timeout / OOM)
//! and, for a datum that succeeded, the same output files byte for byte. `--shell` opens a
//! shell in the datum's environment instead. The recipe is `pipeline_core::pps::reproduce`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use pipeline_core::executor::policy::DatumPolicy;
use pipeline_core::executor::{CancellationToken, DatumTask, Executor, LogSink, LogStream};
use pipeline_core::pps::reproduce::{
    DatumRecipe, OutputComparison, compare_outputs, datum_recipe, verdict_failure,
};
use pipeline_core::pps::{DatumFailure, JobInfo};

use crate::conn::{Access, Conn, Global, connect};
use crate::engine::{ExecutorKind, process_executor};
use crate::error::{CliError, Res, io_err};

/// Nouns of `debug`.
#[derive(Debug, Subcommand)]
pub enum Debug {
    /// Run one datum of a job again here and compare with what the job recorded.
    Datum(DebugDatumArgs),
}

/// `debug datum`.
#[derive(Debug, Args)]
pub struct DebugDatumArgs {
    /// PIPELINE@JOB (a job ID prefix of 8+ characters works).
    pub job: String,
    /// The datum ID.
    pub datum: String,
    /// Where to run it (default: the executor the job ran on).
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
    /// Keep the datum's directory (inputs under `DIR/<input>`, outputs under `DIR/out`) in
    /// DIR, which must be empty or absent; otherwise a temporary directory is removed.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Open a shell (`$SHELL`, else `sh`) in the datum's environment instead of running the
    /// transform: the process executor's shell runs in the datum's directory, Docker's in the
    /// pipeline's image with the inputs at `/pfs`.
    #[arg(long)]
    pub shell: bool,
}

/// Runs `debug datum`.
pub fn run(g: &Global, cmd: Debug) -> Res {
    let Debug::Datum(args) = cmd;
    let (pipeline, job) = args
        .job
        .split_once('@')
        .filter(|(p, j)| !p.is_empty() && !j.is_empty())
        .ok_or_else(|| CliError::BadArgs(format!("expected PIPELINE@JOB, got {:?}", args.job)))?;
    let pipeline = crate::project::pipeline(pipeline);
    let pipeline = pipeline.as_str();
    let conn = connect(g, Access::Read, None)?;
    let job = conn.call(conn.client.inspect_job(pipeline, job))?;
    let d = conn.call(conn.client.inspect_datum(pipeline, &job.id, &args.datum))?;
    let version = conn.call(conn.client.pipeline_version(pipeline, job.version))?;
    let recipe = datum_recipe(&version, &job, &d);
    let kind = match args.executor {
        Some(k) => k,
        None => executor_kind(&version.executor)?,
    };
    if recipe.pool.spec.transform.datum_batching && !args.shell {
        // Its code waits on the control pipes only a job's worker serves.
        return Err(CliError::BadArgs(format!(
            "pipeline {}: debug datum does not rerun transform.datum_batching pipelines yet \
             (--shell opens a shell with the datum's inputs)",
            job.pipeline
        )));
    }
    let (_tmp, dir) = datum_dir(args.keep.as_deref())?;
    fetch_inputs(&conn, &recipe, &dir)?;
    std::fs::create_dir_all(dir.join("out")).map_err(io_err(dir.join("out")))?;
    describe(&recipe, &d.id, &dir);
    if args.shell {
        return shell(kind, &recipe, &dir);
    }
    let ending = run_once(&conn, kind, &recipe, &job, &d.id, &dir)?;
    let committed = committed_outputs(&conn, &job, &recipe)?;
    let compared =
        compare_outputs(&dir.join("out"), &committed).map_err(io_err(dir.join("out")))?;
    verdict(&recipe, ending, &compared)
}

/// The kind of executor named `name`.
fn executor_kind(name: &str) -> Res<ExecutorKind> {
    [
        ExecutorKind::Process,
        ExecutorKind::Docker,
        ExecutorKind::Kubernetes,
    ]
    .into_iter()
    .find(|k| k.name() == name)
    .ok_or_else(|| {
        CliError::BadArgs(format!(
            "the job ran on executor {name:?}; pick one with --executor"
        ))
    })
}

/// The datum's directory: `keep` (created; must be empty) or a temporary one.
fn datum_dir(keep: Option<&Path>) -> Res<(Option<tempfile::TempDir>, PathBuf)> {
    match keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            let empty = std::fs::read_dir(dir)
                .map_err(io_err(dir))?
                .next()
                .is_none();
            if !empty {
                return Err(CliError::BadArgs(format!(
                    "--keep {}: the directory is not empty",
                    dir.display()
                )));
            }
            Ok((None, dir.canonicalize().map_err(io_err(dir))?))
        }
        None => {
            let t = tempfile::tempdir().map_err(io_err(std::env::temp_dir()))?;
            let p = t.path().to_path_buf();
            Ok((Some(t), p))
        }
    }
}

/// Downloads every input of the recipe to `dir/<name><path>`, verified as any `get file`.
fn fetch_inputs(conn: &Conn, recipe: &DatumRecipe, dir: &Path) -> Res {
    for i in &recipe.inputs {
        let target = dir.join(&i.name).join(i.path.trim_start_matches('/'));
        let r = crate::project::file_ref(&format!("{}@{}:{}", i.repo, i.commit, i.path))?;
        if i.path.ends_with('/') {
            std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            crate::data::get_dir(conn, &r, &i.path, &target)?;
        } else {
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(io_err(p))?;
            }
            let mut dl = conn.call(conn.client.get_file(&i.repo, &i.commit, &i.path))?;
            crate::data::download_to(conn, &mut dl, &target, &indicatif::ProgressBar::hidden())?;
        }
    }
    Ok(())
}

/// What is about to run, on stderr.
fn describe(recipe: &DatumRecipe, datum: &str, dir: &Path) {
    eprintln!("datum {datum}: inputs in {}", dir.display());
    for i in &recipe.inputs {
        eprintln!(
            "  /pfs/{}{} <- {}@{}:{}",
            i.name,
            i.path.trim_end_matches('/'),
            i.repo,
            i.commit,
            i.path
        );
    }
    if !recipe.secrets_left_out.is_empty() {
        eprintln!(
            "not reproduced: the values of secrets {} (the job's host supplied them)",
            recipe.secrets_left_out.join(", ")
        );
    }
}

/// Log lines of the rerun, straight to stderr.
struct Stderr;

impl LogSink for Stderr {
    fn line(&self, stream: LogStream, line: &str) {
        match stream {
            LogStream::Stdout => eprintln!("[stdout] {line}"),
            LogStream::Stderr => eprintln!("[stderr] {line}"),
        }
    }
}

/// Starts one worker of the job's pipeline version on executor `kind` and runs the datum
/// once under the spec's timeout and accepted exit codes. Returns how it ended.
fn run_once(
    conn: &Conn,
    kind: ExecutorKind,
    recipe: &DatumRecipe,
    job: &JobInfo,
    datum: &str,
    dir: &Path,
) -> Res<Option<DatumFailure>> {
    let executor = executor(conn, kind)?;
    let mut workers = conn.block_on(executor.start_workers(&recipe.pool))?;
    let Some(worker) = workers.first_mut() else {
        return Err(CliError::Usage("the executor started no worker".into()));
    };
    let spec = &recipe.pool.spec;
    let task = DatumTask {
        job_id: job.id.clone(),
        datum_id: datum.to_string(),
        scratch: dir.to_path_buf(),
        inputs: recipe
            .inputs
            .iter()
            .map(|i| i.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        program: recipe.program.clone(),
        env: recipe.env.clone(),
        user: spec.transform.user.clone(),
        working_dir: spec.transform.working_dir.clone(),
        cancel: CancellationToken::new(),
        logs: Arc::new(Stderr),
    };
    let policy = DatumPolicy {
        timeout: spec.datum_timeout.as_ref().map(|d| d.as_std()),
        accept_return_code: spec.transform.accept_return_code.clone(),
    };
    let verdict = conn.block_on(policy.run(worker.as_mut(), task));
    for w in &mut workers {
        let _ = conn.block_on(w.stop());
    }
    Ok(verdict_failure(&verdict?))
}

/// The executor of `kind`, built on this machine.
fn executor(conn: &Conn, kind: ExecutorKind) -> Res<Arc<dyn Executor>> {
    match kind {
        ExecutorKind::Process => process_executor(),
        ExecutorKind::Docker => {
            let config = executor_docker::DockerConfig {
                owner: format!("pipectl-debug-{}", std::process::id()),
                remove_leftovers_on_connect: false,
                ..Default::default()
            };
            let ex = conn.block_on(executor_docker::DockerExecutor::builder().config(config).build())?;
            Ok(Arc::new(ex))
        }
        ExecutorKind::Kubernetes => Err(CliError::BadArgs(
            "debug datum runs on this machine: pick --executor docker (the pipeline's image) or process".into(),
        )),
    }
}

/// The content hashes the job committed for the datum's outputs.
fn committed_outputs(
    conn: &Conn,
    job: &JobInfo,
    recipe: &DatumRecipe,
) -> Res<BTreeMap<String, pipeline_core::hash::ContentHash>> {
    let repo = job.output_commit.repo.name.clone();
    let commit = job.output_commit.id.to_string();
    let mut out = BTreeMap::new();
    for path in &recipe.outputs {
        let f = conn.call(conn.client.inspect_file(&repo, &commit, path))?;
        out.insert(path.clone(), f.hash);
    }
    Ok(out)
}

/// Prints how the rerun compares with the record; `Err` (exit 1) when it differs.
fn verdict(recipe: &DatumRecipe, ending: Option<DatumFailure>, c: &OutputComparison) -> Res {
    let show =
        |f: &Option<DatumFailure>| f.as_ref().map_or("success".to_string(), |f| f.to_string());
    let same_ending = ending == recipe.recorded_failure;
    println!("recorded: {}", show(&recipe.recorded_failure));
    println!("this run: {}", show(&ending));
    if recipe.recorded_failure.is_none() {
        for (label, paths) in [
            ("same", &c.same),
            ("differs", &c.differ),
            ("missing", &c.missing),
            ("extra", &c.extra),
        ] {
            for p in paths {
                println!("{label:<8} /pfs/out{p}");
            }
        }
    }
    let outputs_same = recipe.recorded_failure.is_some() || c.identical();
    if same_ending && outputs_same {
        println!("reproduced: identical");
        Ok(())
    } else {
        Err(CliError::Usage(
            "not reproduced: the run differs from the job's record".into(),
        ))
    }
}

/// `--shell`: a shell with the datum's environment, in its directory (process) or in the
/// pipeline's image with the directory at `/pfs` (Docker).
fn shell(kind: ExecutorKind, recipe: &DatumRecipe, dir: &Path) -> Res {
    let status = match kind {
        ExecutorKind::Docker => {
            let mut c = std::process::Command::new("docker");
            c.args(["run", "--rm", "-it", "--entrypoint", "sh", "-w", "/pfs"]);
            c.arg("-v").arg(format!("{}:/pfs", dir.display()));
            for (k, v) in &recipe.env {
                c.arg("-e").arg(format!("{k}={v}"));
            }
            c.arg(recipe.pool.spec.image());
            c.status()
        }
        _ => {
            let sh = std::env::var("SHELL").unwrap_or_else(|_| "sh".into());
            eprintln!(
                "(the process executor's /pfs is this directory: paths in the variables start with /pfs)"
            );
            std::process::Command::new(sh)
                .current_dir(dir)
                .envs(recipe.env.iter().map(|(k, v)| (k, v)))
                .env("PFS", dir)
                .status()
        }
    };
    status.map_err(io_err("shell"))?;
    Ok(())
}
