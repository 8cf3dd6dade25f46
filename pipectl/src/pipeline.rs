//! `pipectl` engine commands over the API: pipelines, jobs, datums, logs, cron; and waiting
//! for the jobs a command started. A job ID may be a prefix of 8+ characters.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pipeline_core::pps::{DatumInfo, JobInfo, JobState, PipelineInfo, RerunMode};
use pipeline_server::error::ErrorKind;
use pipeline_server::routes::pipelines::{CreatePipelines, DryRunPipeline};
use pipeline_server::{ApiError, ClientError};

use crate::conn::{Access, Conn, Global, connect};
use crate::engine::{ExecutorKind, committed_then, job_line};
use crate::error::{CliError, Res};
use crate::output::{Format, outln, print_json, timestamp};

/// `create pipeline` / `update pipeline`.
#[derive(Debug, Args)]
pub struct CreatePipelineArgs {
    /// Spec file (JSON or YAML; several pipelines allowed), `-` for standard input, or an
    /// `http://` / `https://` URL.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE|-|URL",
        required_unless_present = "jsonnet",
        conflicts_with = "jsonnet"
    )]
    pub file: Option<PathBuf>,
    /// A Jsonnet template (file, `-` or URL) evaluated to the specs instead of `-f`.
    #[arg(long, value_name = "TEMPLATE|-|URL")]
    pub jsonnet: Option<PathBuf>,
    /// A string top-level argument of the `--jsonnet` template, `KEY=VALUE` (repeatable).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
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
    /// `--push-images` and its registry options.
    #[command(flatten)]
    pub push: crate::push_images::PushArgs,
}

/// `rerun pipeline`.
#[derive(Debug, Args)]
pub struct RerunPipelineArgs {
    /// Pipeline name.
    pub name: String,
    /// Every datum, not only those that did not succeed in the last job (a new salt).
    #[arg(long)]
    pub reprocess: bool,
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
    /// Pipelines of every project, not only the current one (`--project`).
    #[arg(short = 'A', long)]
    pub all_projects: bool,
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
    /// Only datums in this state (repeatable).
    #[arg(long = "state", value_enum)]
    pub states: Vec<crate::datum_verbs::StateArg>,
    /// Datums per page (with `--page`: print that page only).
    #[arg(long)]
    pub page_size: Option<usize>,
    /// The page to print, 0 first (needs `--page-size`).
    #[arg(long)]
    pub page: Option<usize>,
    /// The reading order backwards (skipped first, failed last).
    #[arg(long)]
    pub reverse: bool,
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
    /// Keep printing lines as they are stored until the job (`--job`, or the pipeline's
    /// newest) ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
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
        Some((p, j)) if !p.is_empty() && !j.is_empty() => {
            Ok((crate::project::pipeline(p), j.to_string()))
        }
        _ => Err(CliError::BadArgs(format!(
            "expected PIPELINE@JOB, got {s:?}"
        ))),
    }
}

/// An error the API code answered in this process (a store-less dry run or preview), as the
/// client would have received it.
pub fn api_err(e: ApiError) -> CliError {
    CliError::Api(ClientError::Api {
        kind: e.kind,
        message: e.message,
    })
}

/// The text of a spec (file, `-` or URL), with the parser's errors for an unreadable or
/// binary one.
fn read_spec(file: &std::path::Path) -> Res<(String, String)> {
    let (bytes, name) = crate::spec_source::read(file)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, name)),
        Err(e) => {
            pipeline_core::spec::parse_bytes(e.as_bytes(), &name)?;
            Err(CliError::BadArgs(format!("{name}: not UTF-8 text")))
        }
    }
}

/// Waits for the jobs of `sets` (or, when the write made none, whatever is pending), prints
/// a line per job, and returns [`committed_then`]'s verdict on `what`.
fn wait_started(conn: &Conn, no_wait: bool, sets: &[String], what: &str) -> Res {
    if sets.len() <= 1 {
        let set = sets.first().map(String::as_str);
        return crate::engine::after_write_on(conn, no_wait, set, what);
    }
    if no_wait {
        return Ok(());
    }
    let client = &conn.client;
    let jobs = conn.call(async {
        let mut all = Vec::new();
        for id in sets {
            all.extend(client.wait_commit_set(id).await?);
        }
        Ok(all)
    });
    if let Ok(jobs) = &jobs {
        for j in jobs {
            eprintln!("{}", job_line(j));
        }
    }
    committed_then(what, jobs)
}

/// `create pipeline` / `update pipeline`.
pub fn create(g: &Global, args: CreatePipelineArgs, update: bool, no_wait: bool) -> Res {
    if args.dry_run {
        let mut req = spec_request(&args, update)?;
        // The executor only decides how the dry run is shown; the server need not have it.
        req.executor = None;
        let planned = match connect(g, Access::Read, None) {
            Ok(conn) => conn.call(conn.client.dry_run_pipelines(&req))?,
            Err(CliError::NoStore(_)) => {
                pipeline_server::routes::pipelines::dry_run(&req).map_err(api_err)?
            }
            Err(e) => return Err(e),
        };
        return print_dry_run(&planned, args.executor);
    }
    let req = spec_request(&args, update)?;
    apply(g, &req, args.executor, no_wait, &spec_source(&args))
}

/// Where `create|update pipeline` reads its specs (`--jsonnet` or `-f`), for hints.
fn spec_source(args: &CreatePipelineArgs) -> PathBuf {
    args.jsonnet
        .as_ref()
        .or(args.file.as_ref())
        .cloned()
        .unwrap_or_default()
}

/// The request `create|update pipeline` sends: the specs read from `-f` or evaluated from
/// `--jsonnet`, with their images pushed first under `--push-images` (not for a dry run).
pub(crate) fn spec_request(args: &CreatePipelineArgs, update: bool) -> Res<CreatePipelines> {
    if args.jsonnet.is_none() && !args.args.is_empty() {
        return Err(CliError::BadArgs(
            "--arg gives a top-level argument to a --jsonnet template; there is none".into(),
        ));
    }
    let source = spec_source(args);
    let (spec, source_name) = match &args.jsonnet {
        Some(template) => crate::jsonnet::evaluate(template, &args.args)?,
        None => read_spec(&source)?,
    };
    let mut req = CreatePipelines {
        spec,
        source_name,
        update,
        reprocess: args.reprocess,
        executor: args.executor.map(|e| e.name().to_string()),
        project: crate::project::flag(),
    };
    if args.push.push_images && !args.dry_run {
        let from_stdin = source.as_os_str() == "-";
        let pushed = crate::push_images::push_spec_images(
            &req.spec,
            &req.source_name,
            &args.push,
            from_stdin,
        )?;
        for line in &pushed.report {
            eprintln!("{line}");
        }
        req.spec = pushed.spec;
        req.source_name = format!("{} (images pushed)", req.source_name);
    }
    Ok(req)
}

/// `edit pipeline`'s update of a validated edit.
pub(crate) fn apply_edit(g: &Global, req: CreatePipelines, no_wait: bool) -> Res {
    apply(g, &req, None, no_wait, std::path::Path::new("FILE"))
}

/// Sends a create or update of the specs in `req`, reports what it did, and waits for the
/// jobs it started (`file` names the spec in hints).
fn apply(
    g: &Global,
    req: &CreatePipelines,
    executor: Option<ExecutorKind>,
    no_wait: bool,
    file: &std::path::Path,
) -> Res {
    let update = req.update;
    let conn = connect(g, Access::Write, executor)?;
    let kept = if update && !req.reprocess {
        transform_changed(&conn, req)
    } else {
        Vec::new()
    };
    let written = conn
        .call(conn.client.create_pipelines(req))
        .map_err(|e| use_update(e, update, file))?;
    for p in &written.pipelines {
        eprintln!(
            "{} pipeline {} (version {}, executor {})",
            if p.version == 1 { "created" } else { "updated" },
            p.name,
            p.version,
            p.executor
        );
    }
    for name in &kept {
        eprintln!(
            "note: the transform of pipeline {name} changed, but the outputs of datums it \
             already processed are kept (their inputs did not change, so they are skipped); \
             to recompute them: `pipectl rerun pipeline {name} --reprocess` (or `update \
             pipeline --reprocess`)"
        );
    }
    let names: Vec<&str> = written.pipelines.iter().map(|p| p.name.as_str()).collect();
    wait_started(
        &conn,
        no_wait,
        &written.commit_sets,
        &format!("pipeline {}", names.join(", ")),
    )
}

/// The pipelines of `req` that exist and whose transform the spec changes: an update without
/// `--reprocess` keeps their old outputs.
fn transform_changed(conn: &Conn, req: &CreatePipelines) -> Vec<String> {
    let Ok(specs) = pipeline_core::spec::parse_str(&req.spec, &req.source_name) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for s in specs {
        let Some(name) = s.pipeline_name() else {
            continue;
        };
        let effective = s.spec.effective();
        if effective.s3_out
            || effective.reprocess_spec == pipeline_core::spec::ReprocessSpec::EveryJob
        {
            // Every job recomputes every datum: nothing is kept.
            continue;
        }
        let Ok(old) = conn.call(conn.client.inspect_pipeline(name)) else {
            continue;
        };
        let json = |t| serde_json::to_value(t).unwrap_or_default();
        if json(&old.spec.transform) != json(&s.spec.transform) {
            changed.push(name.to_string());
        }
    }
    changed
}

/// A `create pipeline` refused because the pipeline exists, with how to change it instead.
fn use_update(e: CliError, update: bool, file: &std::path::Path) -> CliError {
    let exists = match &e {
        CliError::Api(ClientError::Api {
            kind: ErrorKind::Conflict,
            message,
        }) => message.starts_with("pipeline \"") && message.ends_with("\" already exists"),
        _ => false,
    };
    if update || !exists {
        return e;
    }
    CliError::Hinted {
        error: Box::new(e),
        hint: format!(
            "to change it, use `pipectl update pipeline -f {}` (add --reprocess to recompute \
             every datum)",
            crate::spec_source::display_name(file)
        ),
    }
}

/// `rerun pipeline NAME [--reprocess]`: a new version of the pipeline whose job runs what did
/// not succeed in its last job, or with `--reprocess` every datum.
pub fn rerun_pipeline(g: &Global, args: RerunPipelineArgs, no_wait: bool) -> Res {
    let mode = if args.reprocess {
        RerunMode::All
    } else {
        RerunMode::FailedOnly
    };
    let conn = connect(g, Access::Write, None)?;
    let p = conn.call(
        conn.client
            .rerun_pipeline(&crate::project::pipeline(&args.name), mode),
    )?;
    eprintln!(
        "rerunning pipeline {} (version {}, {})",
        p.name,
        p.version,
        if args.reprocess {
            "every datum"
        } else {
            "datums that did not succeed"
        }
    );
    let sets = if p.stopped {
        Vec::new()
    } else {
        // The rerun's job writes the open head of the output branch: its commit set.
        let repo = p.output_branch.repo.to_string();
        let branch = conn.call(conn.client.inspect_branch(&repo, &p.output_branch.name))?;
        let head = conn.call(conn.client.inspect_commit(&repo, branch.head.as_str()))?;
        if head.is_finished() {
            Vec::new()
        } else {
            vec![branch.head.to_string()]
        }
    };
    wait_started(
        &conn,
        no_wait,
        &sets,
        &format!("rerun of pipeline {}", p.name),
    )
}

fn print_dry_run(planned: &[DryRunPipeline], executor: Option<ExecutorKind>) -> Res {
    for p in planned {
        if executor == Some(ExecutorKind::Kubernetes) {
            let pool = pipeline_core::pps::dry_run_pool_spec(&p.spec);
            let yaml =
                executor_k8s::render_worker_manifests(&pool, &executor_k8s::K8sConfig::default())
                    .map_err(|e| CliError::Usage(e.to_string()))?;
            print!("{yaml}");
        } else {
            outln!("would {} pipeline {}", p.action, p.name);
        }
    }
    Ok(())
}

fn pipeline_line(p: &PipelineInfo, jobs: &[JobInfo]) -> String {
    let id = p.id();
    let last = jobs
        .iter()
        .find(|j| j.pipeline == id)
        .map_or("-", |j| j.state.as_str());
    let inputs: Vec<String> = p.inputs.iter().map(|b| b.to_string()).collect();
    // A spout has no jobs: its state is its run's (a crash loop shows as `restarting`).
    let state = match p.spout_status.as_ref().map(|s| s.state) {
        _ if p.stopped => "paused",
        Some(pipeline_core::pps::SpoutState::Restarting) => "restarting",
        Some(pipeline_core::pps::SpoutState::Waiting) => "waiting",
        _ => "running",
    };
    format!(
        "{:<20} {:<8} {:<11} {:<10} {:<15} {}",
        id,
        p.version,
        p.executor,
        state,
        last,
        inputs.join(",")
    )
}

/// `list pipeline`.
pub fn list_pipeline(g: &Global, args: ListPipelineArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let project = crate::project::current();
    let list: Vec<_> = conn
        .call(conn.client.list_pipelines())?
        .into_iter()
        .filter(|p| args.all_projects || p.project == project)
        .collect();
    match args.output {
        Format::Json => list.iter().for_each(print_json),
        Format::Text | Format::Yaml => {
            let jobs = conn.call(conn.client.list_jobs(None))?;
            outln!(
                "{:<20} {:<8} {:<11} {:<10} {:<15} INPUTS",
                "NAME",
                "VERSION",
                "EXECUTOR",
                "STATE",
                "LAST JOB"
            );
            for p in &list {
                outln!("{}", pipeline_line(p, &jobs));
            }
        }
    }
    Ok(())
}

/// `inspect pipeline`.
pub fn inspect_pipeline(g: &Global, args: PipelineArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let p = conn.call(
        conn.client
            .inspect_pipeline(&crate::project::pipeline(&args.name)),
    )?;
    match args.output {
        Format::Json => print_json(&p),
        Format::Text | Format::Yaml => {
            outln!("Name: {}", p.name);
            if p.project != pipeline_core::pfs::DEFAULT_PROJECT {
                outln!("Project: {}", p.project);
            }
            outln!("Version: {}", p.version);
            outln!("Executor: {}", p.executor);
            if let Some(pin) = &p.image {
                outln!("Image: {} (digest {})", pin.image, pin.digest);
            }
            outln!("State: {}", if p.stopped { "paused" } else { "running" });
            if let Some(svc) = &p.effective.service {
                print_service(&conn, &p.id(), svc)?;
            }
            if let Some(line) = spout_line(&p) {
                outln!("Spout: {line}");
            }
            if let Some(svc) = p.effective.spout.as_ref().and_then(|s| s.service.as_ref()) {
                outln!(
                    "Spout service: listening on {} while the spout runs (the code's port: {})",
                    pipeline_core::pps::service_address(svc),
                    svc.internal_port
                );
            }
            outln!("Output branch: {}", p.output_branch);
            let inputs: Vec<String> = p.inputs.iter().map(|b| b.to_string()).collect();
            outln!("Inputs: {}", inputs.join(", "));
            outln!("Salt: {}", p.salt);
            outln!(
                "Spec:\n{}",
                serde_json::to_string_pretty(&p.spec).unwrap_or_default()
            );
            // Cluster and project defaults merged under the spec, then the built-in ones.
            outln!(
                "Effective spec:\n{}",
                serde_json::to_string_pretty(&p.effective).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The `Service:` lines of `inspect pipeline`: where the service listens, its newest job
/// and the last error of a service job that did not end by being replaced.
fn print_service(conn: &Conn, pipeline: &str, svc: &pipeline_core::spec::Service) -> Res {
    outln!(
        "Service: listening on {} (the code's port: {})",
        pipeline_core::pps::service_address(svc),
        svc.internal_port
    );
    let jobs = conn.call(conn.client.list_jobs(Some(pipeline)))?;
    if let Some(newest) = jobs.iter().max_by_key(|j| j.created_ms) {
        outln!("Service job: {} {}", newest.id, newest.state.as_str());
    }
    let failed = jobs
        .iter()
        .filter(|j| {
            matches!(
                j.state,
                JobState::JobFailure | JobState::JobKilled | JobState::JobUnrunnable
            ) && !j.reason.is_empty()
        })
        .max_by_key(|j| j.created_ms);
    if let Some(j) = failed {
        outln!(
            "Service last error: job {} {}: {}",
            j.id,
            j.state.as_str(),
            j.reason
        );
    }
    Ok(())
}

/// How a spout runs, in one line: its state, restarts, last error and next try.
fn spout_line(p: &PipelineInfo) -> Option<String> {
    p.effective.spout.as_ref()?;
    let Some(s) = &p.spout_status else {
        return Some(if p.stopped { "stopped" } else { "not running" }.into());
    };
    let state = match s.state {
        pipeline_core::pps::SpoutState::Starting => "starting",
        pipeline_core::pps::SpoutState::Running => "running",
        pipeline_core::pps::SpoutState::Restarting => "restarting",
        pipeline_core::pps::SpoutState::Waiting => "waiting",
    };
    let mut line = format!("{state}, {} restart(s)", s.restarts);
    if let Some(e) = &s.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    if let Some(next) = s.next_try_ms {
        line.push_str(&format!(
            "; next try at {}",
            pipeline_core::pps::format_ms(next)
        ));
    }
    Some(line)
}

/// `delete pipeline`.
pub fn delete_pipeline(g: &Global, args: DeletePipelineArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    let name = crate::project::pipeline(&args.name);
    conn.call(conn.client.delete_pipeline(&name, args.keep_repo))?;
    eprintln!("deleted pipeline {}", args.name);
    Ok(())
}

/// `stop pipeline`.
pub fn stop_pipeline(g: &Global, name: &str) -> Res {
    let name = &crate::project::pipeline(name);
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.stop_pipeline(name))?;
    eprintln!("stopped pipeline {name}");
    Ok(())
}

/// `start pipeline`.
pub fn start_pipeline(g: &Global, name: &str, no_wait: bool) -> Res {
    let name = &crate::project::pipeline(name);
    let conn = connect(g, Access::Write, None)?;
    let written = conn.call(conn.client.start_pipeline(name))?;
    eprintln!("started pipeline {name}");
    wait_started(
        &conn,
        no_wait,
        &written.commit_sets,
        &format!("start of pipeline {name}"),
    )
}

/// How long a job ran (or has been running): `850ms`, `12.3s`, `4m05s`, `2h03m`; `-` when
/// it never started.
pub fn job_duration(j: &JobInfo, now_ms: u64) -> String {
    let Some(start) = j.started_ms else {
        return "-".into();
    };
    let ms = j.finished_ms.unwrap_or(now_ms).saturating_sub(start);
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Prints job rows (newest first, as given).
pub fn print_jobs(jobs: &[JobInfo], format: Format) {
    match format {
        Format::Json => jobs.iter().for_each(print_json),
        Format::Text | Format::Yaml => {
            outln!(
                "{:<34} {:<16} {:<15} {:<20} {:>8} {:>6} {:>9} {:>7} {:>6} {:>9}  REASON",
                "ID",
                "PIPELINE",
                "STATE",
                "STARTED",
                "DURATION",
                "TOTAL",
                "PROCESSED",
                "SKIPPED",
                "FAILED",
                "RECOVERED"
            );
            let now = now_ms();
            for j in jobs {
                let s = &j.stats;
                outln!(
                    "{:<34} {:<16} {:<15} {:<20} {:>8} {:>6} {:>9} {:>7} {:>6} {:>9}  {}",
                    j.id,
                    j.pipeline,
                    j.state.as_str(),
                    j.started_ms.map_or_else(|| "-".to_string(), timestamp),
                    job_duration(j, now),
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
    let conn = connect(g, Access::Read, None)?;
    let pipeline = args.pipeline.as_deref().map(crate::project::pipeline);
    let jobs = conn.call(conn.client.list_jobs(pipeline.as_deref()))?;
    print_jobs(&jobs, args.output);
    Ok(())
}

/// `inspect job`.
pub fn inspect_job(g: &Global, args: JobArgs) -> Res {
    let (pipeline, job) = parse_job(&args.job)?;
    let conn = connect(g, Access::Read, None)?;
    let j = conn.call(conn.client.inspect_job(&pipeline, &job))?;
    match args.output {
        Format::Json => print_json(&j),
        Format::Text | Format::Yaml => print_job(&j),
    }
    Ok(())
}

fn print_job(j: &JobInfo) {
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
    outln!(
        "Started: {}",
        j.started_ms.map_or_else(|| "-".to_string(), timestamp)
    );
    outln!("Duration: {}", job_duration(j, now_ms()));
    let s = &j.stats;
    outln!(
        "Datums: {} total, {} processed, {} skipped, {} failed, {} recovered",
        s.datums_total,
        s.datums_processed,
        s.datums_skipped,
        s.datums_failed,
        s.datums_recovered
    );
    outln!("Datum sets: {} committed", s.datum_sets);
    outln!("Bytes: {} in, {} out", s.bytes_in, s.bytes_out);
    outln!(
        "Time: plan {} ms, process {} ms, finish {} ms",
        s.plan_ms,
        s.process_ms,
        s.finish_ms
    );
    outln!("Restarts: {}", j.restarts);
    if let Some(e) = &j.egress {
        outln!("Egress: {} ({} attempts)", e.target, e.attempts);
        if let Some(err) = &e.last_error {
            outln!("Egress last error: {err}");
        }
        if let Some(next) = e.next_try_ms {
            outln!("Egress next try: {}", timestamp(next));
        }
        if e.last_error.is_none() && e.attempts > 0 {
            outln!("Egress written: {}", e.written);
        }
    }
}

/// `wait job PIPELINE@JOB`: until it is done (or cannot progress); exit 1 unless SUCCESS.
pub fn wait_job(g: &Global, args: JobArgs) -> Res {
    let (pipeline, job) = parse_job(&args.job)?;
    let conn = connect(g, Access::Read, None)?;
    let j = conn.call(conn.client.wait_job(&pipeline, &job))?;
    match args.output {
        Format::Json => print_json(&j),
        Format::Text | Format::Yaml => outln!("{}", job_line(&j)),
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
    let (pipeline, job) = parse_job(job)?;
    let conn = connect(g, Access::Write, None)?;
    let j = conn.call(conn.client.stop_job(&pipeline, &job))?;
    eprintln!("stopped job {}@{}", j.pipeline, j.id);
    Ok(())
}

/// `restart datum P@JOB DATUM[,DATUM...]`: the running datums named (IDs or input paths)
/// start their attempt again. Jobs run where the store is owned, so this reaches them through
/// a `pipectl serve`.
pub fn restart_datum(g: &Global, job: &str, datums: &str) -> Res {
    let (pipeline, job) = parse_job(job)?;
    let wanted: Vec<String> = datums
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    if wanted.is_empty() {
        return Err(CliError::BadArgs(
            "restart datum needs datum IDs or input paths, separated by commas".into(),
        ));
    }
    let conn = connect(g, Access::Write, None)?;
    let r = conn.call(conn.client.restart_datum(&pipeline, &job, &wanted))?;
    for id in &r.restarted {
        eprintln!("restarted datum {id} of {pipeline}@{job}");
    }
    Ok(())
}

/// A datum's reason in words (and the job whose output a skipped one kept).
pub(crate) fn datum_reason(d: &DatumInfo) -> String {
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
    if let Some(file) = &args.file {
        if !args.states.is_empty()
            || args.page_size.is_some()
            || args.page.is_some()
            || args.reverse
        {
            return Err(CliError::BadArgs(
                "--state, --page-size, --page and --reverse list a job's datums (PIPELINE@JOB), not a preview (-f)".into(),
            ));
        }
        let inputs = args
            .inputs
            .iter()
            .map(|i| crate::preview::parse_input(i).map_err(CliError::BadArgs))
            .collect::<Res<Vec<_>>>()?;
        return crate::preview::run(g, file, &inputs, args.output);
    }
    let job = args
        .job
        .ok_or_else(|| CliError::BadArgs("list datum needs PIPELINE@JOB or -f SPEC".into()))?;
    let (pipeline, job) = parse_job(&job)?;
    let listing = crate::datum_verbs::Listing {
        states: args.states,
        page_size: args.page_size,
        page: args.page,
        reverse: args.reverse,
    };
    crate::datum_verbs::list(g, &pipeline, &job, &listing, args.output)
}

/// `inspect datum`.
pub fn inspect_datum(g: &Global, args: InspectDatumArgs) -> Res {
    let (pipeline, job) = parse_job(&args.job)?;
    let conn = connect(g, Access::Read, None)?;
    let job = conn.call(conn.client.inspect_job(&pipeline, &job))?.id;
    let d = conn.call(conn.client.inspect_datum(&pipeline, &job, &args.datum))?;
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

/// `logs [-f]`: prints lines as they arrive; with `-f` until the job ends.
pub fn logs(g: &Global, args: LogsArgs) -> Res {
    if args.datum.is_some() && args.job.is_none() {
        return Err(CliError::BadArgs("--datum needs --job".into()));
    }
    let conn = connect(g, Access::Read, None)?;
    let mut lines = conn.call(conn.client.logs(
        &crate::project::pipeline(&args.pipeline),
        args.job.as_deref(),
        args.datum.as_deref(),
        args.follow,
    ))?;
    while let Some(l) = conn.call(lines.next())? {
        match args.output {
            Format::Json => print_json(&l),
            Format::Text | Format::Yaml => outln!(
                "{} {} {} {} {}",
                pipeline_core::pps::format_ms(l.ts_ms),
                &l.job,
                l.datum.get(..12).unwrap_or(&l.datum),
                l.stream,
                l.message
            ),
        }
    }
    Ok(())
}

/// `run cron`.
pub fn run_cron(g: &Global, cmd: Run, no_wait: bool) -> Res {
    let Run::Cron { pipeline } = cmd;
    let pipeline = crate::project::pipeline(&pipeline);
    let conn = connect(g, Access::Write, None)?;
    let ticks = conn.call(conn.client.run_cron(&pipeline))?.commit_sets;
    for id in &ticks {
        eprintln!("tick committed (commit set {id})");
    }
    wait_started(
        &conn,
        no_wait,
        &ticks,
        &format!("cron tick (commit set {})", ticks.join(", ")),
    )
}
