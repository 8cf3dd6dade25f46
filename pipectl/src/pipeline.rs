//! `pipectl` engine commands: pipelines, jobs, datums, logs, cron; and waiting for the jobs
//! a command started.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pipeline_core::pps::{
    CreateOptions, DatumInfo, Engine, JobInfo, JobState, PipelineInfo, PpsError,
};

use crate::conn::Global;
use crate::engine::{ExecutorKind, committed_then, open_engine, wait_for_jobs};
use crate::error::{CliError, Res};
use crate::output::{Format, outln, print_json};

/// `create pipeline` / `update pipeline`.
#[derive(Debug, Args)]
pub struct CreatePipelineArgs {
    /// Spec file (JSON or YAML; several pipelines allowed).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Where user code runs (stored with the pipeline).
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
    /// With `update`: a new salt, so every datum is reprocessed.
    #[arg(long)]
    pub reprocess: bool,
    /// Print what would be created (with `--executor kubernetes -o yaml`: the worker pods).
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of `--dry-run` (the worker pods are YAML whatever it says).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// A pipeline name argument with an output format.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Pipeline name.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `delete pipeline`.
#[derive(Debug, Args)]
pub struct DeletePipelineArgs {
    /// Pipeline name.
    pub name: String,
    /// Keep the output repo (as a plain repo).
    #[arg(long)]
    pub keep_repo: bool,
}

/// `list pipeline`.
#[derive(Debug, Args)]
pub struct ListPipelineArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `list job`.
#[derive(Debug, Args)]
pub struct ListJobArgs {
    /// Only this pipeline's jobs.
    #[arg(short = 'p', long = "pipeline")]
    pub pipeline: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// A `PIPELINE@JOB` argument.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// `PIPELINE@JOB`.
    pub job: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `inspect datum PIPELINE@JOB DATUM`.
#[derive(Debug, Args)]
pub struct InspectDatumArgs {
    /// `PIPELINE@JOB`.
    pub job: String,
    /// Datum ID (a unique prefix is enough).
    pub datum: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `list datum PIPELINE@JOB` or `list datum -f SPEC --input REPO=DIR` (preview).
#[derive(Debug, Args)]
pub struct ListDatumArgs {
    /// `PIPELINE@JOB`: the datums of a job, with state and reason.
    pub job: Option<String>,
    /// Preview a spec's datums instead (nothing runs): repos come from `--input` or the store.
    #[arg(short = 'f', long = "file", value_name = "SPEC")]
    pub file: Option<PathBuf>,
    /// With `-f`: a local directory as the head of a repo (repeatable).
    #[arg(long = "input", value_name = "REPO=DIR")]
    pub inputs: Vec<String>,
    /// Output format (`text`, alias `table`, or `json`).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Pipeline.
    #[arg(short = 'p', long = "pipeline")]
    pub pipeline: String,
    /// Only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only this datum (needs `--job`).
    #[arg(long)]
    pub datum: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `run cron PIPELINE`.
#[derive(Debug, Subcommand)]
pub enum Run {
    /// Commit a tick now to every cron input of a pipeline.
    Cron {
        /// Pipeline.
        pipeline: String,
    },
}

fn parse_job(s: &str) -> Res<(String, String)> {
    match s.split_once('@') {
        Some((p, j)) if !p.is_empty() && !j.is_empty() => Ok((p.to_string(), j.to_string())),
        _ => Err(CliError::Usage(format!("expected PIPELINE@JOB, got {s:?}"))),
    }
}

/// `create pipeline` / `update pipeline`.
pub fn create(g: &Global, args: CreatePipelineArgs, update: bool, no_wait: bool) -> Res {
    let root = g.root.as_path();
    let parsed = pipeline_core::spec::parse_file(&args.file)?;
    if args.dry_run {
        for p in &parsed {
            let report = pipeline_core::validate::validate(p);
            if !report.is_valid() {
                return Err(CliError::Engine(PpsError::InvalidSpec {
                    pipeline: p.pipeline_name().unwrap_or_default().to_string(),
                    diagnostics: report.errors,
                }));
            }
            if args.executor == Some(ExecutorKind::Kubernetes) {
                let pool = pipeline_core::pps::dry_run_pool_spec(&p.spec);
                let yaml = executor_k8s::render_worker_manifests(
                    &pool,
                    &executor_k8s::K8sConfig::default(),
                )
                .map_err(|e| CliError::Usage(e.to_string()))?;
                print!("{yaml}");
            } else {
                outln!(
                    "would {} pipeline {}",
                    if update { "update" } else { "create" },
                    p.pipeline_name().unwrap_or_default()
                );
            }
        }
        return Ok(());
    }
    let (rt, engine) = open_engine(root, args.executor)?;
    let opts = CreateOptions {
        update,
        reprocess: args.reprocess,
        executor: args.executor.map(|e| e.name().to_string()),
    };
    let created = engine.create_pipelines(&parsed, &opts)?;
    for p in &created {
        eprintln!(
            "{} pipeline {} (version {}, executor {})",
            if p.version == 1 { "created" } else { "updated" },
            p.name,
            p.version,
            p.executor
        );
    }
    let names: Vec<&str> = created.iter().map(|p| p.name.as_str()).collect();
    committed_then(
        &format!("pipeline {}", names.join(", ")),
        wait_for_jobs(&rt, &engine, no_wait),
    )
}

fn pipeline_line(p: &PipelineInfo, engine: &Engine) -> String {
    let last = engine
        .list_jobs(Some(&p.name))
        .ok()
        .and_then(|j| j.last().map(|j| j.state.as_str()))
        .unwrap_or("-");
    let inputs: Vec<String> = p.inputs.iter().map(|b| b.to_string()).collect();
    format!(
        "{:<20} {:<8} {:<11} {:<10} {:<15} {}",
        p.name,
        p.version,
        p.executor,
        if p.stopped { "paused" } else { "running" },
        last,
        inputs.join(",")
    )
}

/// `list pipeline`.
pub fn list_pipeline(g: &Global, args: ListPipelineArgs) -> Res {
    let root = g.root.as_path();
    let (_rt, engine) = open_engine(root, None)?;
    let list = engine.list_pipelines()?;
    match args.output {
        Format::Json => list.iter().for_each(print_json),
        Format::Text | Format::Yaml => {
            outln!(
                "{:<20} {:<8} {:<11} {:<10} {:<15} INPUTS",
                "NAME",
                "VERSION",
                "EXECUTOR",
                "STATE",
                "LAST JOB"
            );
            for p in &list {
                outln!("{}", pipeline_line(p, &engine));
            }
        }
    }
    Ok(())
}

/// `inspect pipeline`.
pub fn inspect_pipeline(g: &Global, args: PipelineArgs) -> Res {
    let root = g.root.as_path();
    let (_rt, engine) = open_engine(root, None)?;
    let p = engine.inspect_pipeline(&args.name)?;
    match args.output {
        Format::Json => print_json(&p),
        Format::Text | Format::Yaml => {
            outln!("Name: {}", p.name);
            outln!("Version: {}", p.version);
            outln!("Executor: {}", p.executor);
            outln!("State: {}", if p.stopped { "paused" } else { "running" });
            outln!("Output branch: {}", p.output_branch);
            let inputs: Vec<String> = p.inputs.iter().map(|b| b.to_string()).collect();
            outln!("Inputs: {}", inputs.join(", "));
            outln!("Salt: {}", p.salt);
            outln!(
                "Spec:\n{}",
                serde_json::to_string_pretty(&p.spec).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `delete pipeline`.
pub fn delete_pipeline(g: &Global, args: DeletePipelineArgs) -> Res {
    let root = g.root.as_path();
    let (rt, engine) = open_engine(root, None)?;
    rt.block_on(engine.delete_pipeline(&args.name, args.keep_repo))?;
    eprintln!("deleted pipeline {}", args.name);
    Ok(())
}

/// `stop pipeline`.
pub fn stop_pipeline(g: &Global, name: &str) -> Res {
    let root = g.root.as_path();
    let (_rt, engine) = open_engine(root, None)?;
    engine.stop_pipeline(name)?;
    eprintln!("stopped pipeline {name}");
    Ok(())
}

/// `start pipeline`.
pub fn start_pipeline(g: &Global, name: &str, no_wait: bool) -> Res {
    let root = g.root.as_path();
    let (rt, engine) = open_engine(root, None)?;
    engine.start_pipeline(name)?;
    eprintln!("started pipeline {name}");
    committed_then(
        &format!("start of pipeline {name}"),
        wait_for_jobs(&rt, &engine, no_wait),
    )
}

/// Prints job rows.
pub fn print_jobs(jobs: &[JobInfo], format: Format) {
    match format {
        Format::Json => jobs.iter().for_each(print_json),
        Format::Text | Format::Yaml => {
            outln!(
                "{:<34} {:<16} {:<15} {:>6} {:>9} {:>7} {:>6} {:>9}  REASON",
                "ID",
                "PIPELINE",
                "STATE",
                "TOTAL",
                "PROCESSED",
                "SKIPPED",
                "FAILED",
                "RECOVERED"
            );
            for j in jobs {
                let s = &j.stats;
                outln!(
                    "{:<34} {:<16} {:<15} {:>6} {:>9} {:>7} {:>6} {:>9}  {}",
                    j.id,
                    j.pipeline,
                    j.state.as_str(),
                    s.datums_total,
                    s.datums_processed,
                    s.datums_skipped,
                    s.datums_failed,
                    s.datums_recovered,
                    j.reason
                );
            }
        }
    }
}

/// `list job`.
pub fn list_job(g: &Global, args: ListJobArgs) -> Res {
    let root = g.root.as_path();
    let (_rt, engine) = open_engine(root, None)?;
    engine.discover_jobs()?;
    let mut jobs = engine.list_jobs(args.pipeline.as_deref())?;
    jobs.reverse();
    for j in &mut jobs {
        if j.reason.is_empty()
            && let Some(waiting) = engine.waiting_for(j)?
        {
            j.reason = waiting;
        }
    }
    print_jobs(&jobs, args.output);
    Ok(())
}

/// `inspect job`.
pub fn inspect_job(g: &Global, args: JobArgs) -> Res {
    let root = g.root.as_path();
    let (pipeline, job) = parse_job(&args.job)?;
    let (_rt, engine) = open_engine(root, None)?;
    let j = engine.inspect_job(&pipeline, &job)?;
    match args.output {
        Format::Json => print_json(&j),
        Format::Text | Format::Yaml => {
            outln!("ID: {}", j.id);
            outln!("Pipeline: {} (version {})", j.pipeline, j.version);
            outln!("State: {}", j.state.as_str());
            if !j.reason.is_empty() {
                outln!("Reason: {}", j.reason);
            }
            outln!("Output commit: {}", j.output_commit);
            let inputs: Vec<String> = j.inputs.iter().map(|c| c.to_string()).collect();
            outln!("Inputs: {}", inputs.join(", "));
            outln!("Base job: {}", j.base_job.as_deref().unwrap_or("-"));
            let s = &j.stats;
            outln!(
                "Datums: {} total, {} processed, {} skipped, {} failed, {} recovered",
                s.datums_total,
                s.datums_processed,
                s.datums_skipped,
                s.datums_failed,
                s.datums_recovered
            );
            outln!("Bytes: {} in, {} out", s.bytes_in, s.bytes_out);
            outln!(
                "Time: plan {} ms, process {} ms, finish {} ms",
                s.plan_ms,
                s.process_ms,
                s.finish_ms
            );
            outln!("Restarts: {}", j.restarts);
        }
    }
    Ok(())
}

/// `wait job PIPELINE@JOB`: runs pending jobs until it is done; exit 1 unless SUCCESS.
pub fn wait_job(g: &Global, args: JobArgs) -> Res {
    let root = g.root.as_path();
    let (pipeline, job) = parse_job(&args.job)?;
    let (rt, engine) = open_engine(root, None)?;
    let j = rt.block_on(async {
        let r = engine.wait_job(&pipeline, &job).await;
        engine.shutdown().await;
        r
    })?;
    match args.output {
        Format::Json => print_json(&j),
        Format::Text | Format::Yaml => outln!("{}", crate::engine::job_line(&j)),
    }
    if j.state == JobState::JobSuccess {
        return Ok(());
    }
    let state = if j.state.is_terminal() {
        format!("ended {}", j.state.as_str())
    } else {
        format!("cannot finish yet: it is {}", j.state.as_str())
    };
    Err(CliError::JobNotSucceeded {
        job: format!("{}@{}", j.pipeline, j.id),
        state,
        reason: j.reason.clone(),
    })
}

/// `stop job`.
pub fn stop_job(g: &Global, job: &str) -> Res {
    let root = g.root.as_path();
    let (pipeline, job) = parse_job(job)?;
    let (_rt, engine) = open_engine(root, None)?;
    let j = engine.stop_job(&pipeline, &job, None)?;
    eprintln!("stopped job {}@{}", j.pipeline, j.id);
    Ok(())
}

fn datum_reason(d: &DatumInfo) -> String {
    let mut r = match &d.reason {
        pipeline_core::pps::DatumReason::Unchanged { from_job } => {
            format!("unchanged (output of job {from_job})")
        }
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default()
            .replace('_', " "),
    };
    if let Some(f) = &d.failure {
        r.push_str(&format!("; {f}"));
    }
    r
}

/// `list datum`.
pub fn list_datum(g: &Global, args: ListDatumArgs) -> Res {
    let root = g.root.as_path();
    if let Some(file) = &args.file {
        let inputs = args
            .inputs
            .iter()
            .map(|i| crate::preview::parse_input(i).map_err(CliError::Usage))
            .collect::<Res<Vec<_>>>()?;
        return crate::preview::run(root, file, &inputs, args.output);
    }
    let job = args
        .job
        .ok_or_else(|| CliError::Usage("list datum needs PIPELINE@JOB or -f SPEC".into()))?;
    let (pipeline, job) = parse_job(&job)?;
    let (_rt, engine) = open_engine(root, None)?;
    let datums = engine.list_datums(&pipeline, &job)?;
    if args.output == Format::Json {
        datums.iter().for_each(print_json);
    } else {
        outln!("{:<64} {:<9} {:<30} REASON", "ID", "STATE", "INPUTS");
        for d in &datums {
            let inputs: Vec<String> = d
                .inputs
                .iter()
                .map(|i| format!("{}:{}", i.repo, i.path))
                .collect();
            outln!(
                "{:<64} {:<9} {:<30} {}",
                d.id,
                d.state.as_str(),
                inputs.join(","),
                datum_reason(d)
            );
        }
    }
    Ok(())
}

/// `inspect datum`.
pub fn inspect_datum(g: &Global, args: InspectDatumArgs) -> Res {
    let root = g.root.as_path();
    let (pipeline, job) = parse_job(&args.job)?;
    let (_rt, engine) = open_engine(root, None)?;
    let matches: Vec<DatumInfo> = engine
        .list_datums(&pipeline, &job)?
        .into_iter()
        .filter(|d| d.id.starts_with(&args.datum))
        .collect();
    let d = match matches.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(CliError::Engine(PpsError::DatumNotFound {
                pipeline,
                job,
                datum: args.datum,
            }));
        }
        _ => {
            return Err(CliError::Usage(format!(
                "datum prefix {:?} is ambiguous",
                args.datum
            )));
        }
    };
    match args.output {
        Format::Json => print_json(&d),
        Format::Text | Format::Yaml => {
            outln!("ID: {}", d.id);
            outln!("Job: {} (outputs from job {})", job, d.job);
            outln!("State: {}", d.state.as_str());
            outln!("Reason: {}", datum_reason(&d));
            outln!("Attempts: {}", d.attempts);
            for i in &d.inputs {
                outln!("Input: {} {}:{}", i.name, i.repo, i.path);
            }
            for o in &d.outputs {
                outln!("Output: {o}");
            }
            let s = &d.stats;
            outln!(
                "Stats: {} bytes in, {} bytes out, download {} µs, process {} µs, upload {} µs",
                s.bytes_in,
                s.bytes_out,
                s.download_us,
                s.process_us,
                s.upload_us
            );
        }
    }
    Ok(())
}

/// `logs`.
pub fn logs(g: &Global, args: LogsArgs) -> Res {
    let root = g.root.as_path();
    if args.datum.is_some() && args.job.is_none() {
        return Err(CliError::Usage("--datum needs --job".into()));
    }
    let (_rt, engine) = open_engine(root, None)?;
    let lines = engine.logs(&args.pipeline, args.job.as_deref(), args.datum.as_deref())?;
    for l in &lines {
        match args.output {
            Format::Json => print_json(l),
            Format::Text | Format::Yaml => outln!(
                "{} {} {} {} {}",
                pipeline_core::pps::format_ms(l.ts_ms),
                &l.job,
                &l.datum[..l.datum.len().min(12)],
                l.stream,
                l.message
            ),
        }
    }
    Ok(())
}

/// `run cron`.
pub fn run_cron(g: &Global, cmd: Run, no_wait: bool) -> Res {
    let root = g.root.as_path();
    let Run::Cron { pipeline } = cmd;
    let (rt, engine) = open_engine(root, None)?;
    let ticks: Vec<String> = engine
        .run_cron(&pipeline)?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    for id in &ticks {
        eprintln!("tick committed (commit set {id})");
    }
    committed_then(
        &format!("cron tick (commit set {})", ticks.join(", ")),
        wait_for_jobs(&rt, &engine, no_wait),
    )
}
