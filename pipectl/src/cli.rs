//! The argument grammar of `pipectl` and the routing of each command to its module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::conn::{Access, Global};
use crate::error::{Res, report};
use crate::{
    commit_history, commit_verbs, completion, data, defaults, draw, engine, file_verbs, fsck,
    pipeline, project, quickstart, secret, serve, transaction, validate, version,
};

/// The exit codes, shown by `pipectl --help` (see `error::exit`).
const EXIT_CODES: &str = "Exit codes:
  0  done (and every job the command ran succeeded)
  1  the command failed and changed nothing (a failed write is discarded); wait job: the job
     did not succeed, with the reason (e.g. the open input commit it waits for)
  2  usage error (bad arguments); validate: a file could not be read
  3  your change is committed (the message names the commit), but a job it started failed or
     could not run (e.g. the store was in use); do not retry the write";

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Store directory.
    #[arg(long, global = true, env = "PIPECTL_ROOT", default_value = ".pipectl")]
    pub root: PathBuf,
    /// Keep the store's metadata on a server: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// (create its schema once with `pipectl init --store URL --objects DIR`). `--root` then
    /// holds only this host's own state (the server's socket, scratch space).
    #[arg(long, global = true, env = "PIPECTL_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Where a `--store` server store keeps file contents: a directory, `file:///DIR`, or an
    /// object store (`s3://BUCKET/PREFIX`, `gs://`, `az://`; endpoint and credentials from the
    /// standard `AWS_*` / `GOOGLE_*` / `AZURE_*` environment variables).
    #[arg(long, global = true, env = "PIPECTL_OBJECTS")]
    pub objects: Option<String>,
    /// Don't wait for the jobs a command starts (they run on the next command that waits).
    /// PIPECTL_NO_WAIT=1 sets it (spouts get it: they never wait for downstream jobs).
    #[arg(long, global = true, env = "PIPECTL_NO_WAIT",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub no_wait: bool,
    /// Use the server at this URL (`http://HOST:PORT` or `unix:PATH`) instead of the store's
    /// own socket or the store itself.
    #[arg(long, global = true, env = "PIPECTL_SERVER")]
    pub server: Option<String>,
    /// The bearer token for `--server` (`pipectl serve --print-token` shows it).
    #[arg(long, global = true, env = "PIPECTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// When another process holds the store, fail at once instead of waiting for it.
    #[arg(long, global = true)]
    pub no_wait_lock: bool,
    /// Show a host directory (e.g. your pipeline's scripts) read-only to user code on the
    /// process executor, at the same path; repeatable, or `:`-separated in PIPECTL_EXPOSE.
    #[arg(long, global = true, env = "PIPECTL_EXPOSE", value_delimiter = ':')]
    pub expose: Vec<PathBuf>,
    /// The project to act in: repos and pipelines named without `PROJECT/` are in it
    /// (default: `default`, or PIPECTL_PROJECT).
    #[arg(long, global = true, env = "PIPECTL_PROJECT")]
    pub project: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level verbs; each command group flattens its nouns into them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate pipeline spec files (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate::ValidateArgs),
    /// Create the store (other commands that write create it too; reads never do); with
    /// `--store URL --objects DIR`, create (or upgrade) the server store's schema.
    Init,
    /// Run the quickstart: a data repo, a map and a reduce pipeline, an incremental re-run.
    Quickstart(quickstart::QuickstartArgs),
    /// Edit a pipeline's spec in an editor, then validate and apply it as an update.
    Edit {
        /// What to edit.
        #[command(subcommand)]
        what: Edit,
    },
    /// Update a pipeline.
    Update {
        /// What to update.
        #[command(subcommand)]
        what: Update,
    },
    /// Stop a pipeline or a job.
    Stop {
        /// What to stop.
        #[command(subcommand)]
        what: Stop,
    },
    /// Wait for a job, a commit, or the jobs of a commit set.
    Wait {
        /// What to wait for.
        #[command(subcommand)]
        what: Wait,
    },
    /// Show user-code logs.
    Logs(pipeline::LogsArgs),
    /// Serve the store until SIGTERM/Ctrl-C: the HTTP API on the store's socket (and
    /// `--listen`), pending jobs, cron ticks and triggers; other pipectl commands go through it.
    Serve(serve::ServeArgs),
    /// Run one datum of a job again on this machine and compare it with the job's record.
    Debug {
        /// What to debug.
        #[command(subcommand)]
        what: crate::debug_datum::Debug,
    },
    /// Datum-batching user code: report the previous datum, wait for the next one.
    Next {
        /// What to wait for.
        #[command(subcommand)]
        what: Next,
    },
    /// Restart running datums of a running job.
    Restart {
        /// What to restart.
        #[command(subcommand)]
        what: Restart,
    },
    /// Run a pipeline again: what did not succeed in its last job, or every datum.
    Rerun {
        /// What to rerun.
        #[command(subcommand)]
        what: Rerun,
    },
    /// Run a cron tick now.
    Run {
        /// What to run.
        #[command(subcommand)]
        what: pipeline::Run,
    },
    /// Create a repo, branch, ...
    Create {
        /// What to create.
        #[command(subcommand)]
        what: Create,
    },
    /// List repos, branches, files, commits, ...
    List {
        /// What to list.
        #[command(subcommand)]
        what: List,
    },
    /// Squash a commit set: its commits deleted, their changes kept in their children.
    Squash {
        /// What to squash.
        #[command(subcommand)]
        what: Squash,
    },
    /// Delete a repo, branch, file, ...
    Delete {
        /// What to delete.
        #[command(subcommand)]
        what: Delete,
    },
    /// Inspect a commit, repo, branch, file, ...
    Inspect {
        /// What to inspect.
        #[command(subcommand)]
        what: Inspect,
    },
    /// Upload data.
    Put {
        /// What to upload.
        #[command(subcommand)]
        what: data::Put,
    },
    /// Download data.
    Get {
        /// What to download.
        #[command(subcommand)]
        what: data::Get,
    },
    /// Match files with a glob.
    Glob {
        /// What to match.
        #[command(subcommand)]
        what: data::Glob,
    },
    /// Remove stored contents no commit refers to any more (deleted repos, replaced outputs).
    Gc(data::GcArgs),
    /// Verify every stored object and every reference (exit 0 clean, 1 with the list of
    /// problems); `--fix` moves damaged objects aside so a re-put repairs them.
    Fsck(fsck::FsckArgs),
    /// Compare the files of two commits.
    Diff {
        /// What to compare.
        #[command(subcommand)]
        what: data::Diff,
    },
    /// Print pipectl's version (and the git commit it was built from, when known).
    Version(version::VersionArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completion(completion::CompletionArgs),
    /// Copy a file or directory between commits (contents are shared, not copied).
    Copy {
        /// What to copy.
        #[command(subcommand)]
        what: Copy,
    },
    /// Find the commits that changed a path.
    Find {
        /// What to find.
        #[command(subcommand)]
        what: Find,
    },
    /// Follow the commits of a branch as they finish.
    Subscribe {
        /// What to follow.
        #[command(subcommand)]
        what: Subscribe,
    },
    /// Draw the DAG of repos and pipelines as text.
    Draw {
        /// What to draw.
        #[command(subcommand)]
        what: Draw,
    },
    /// Start a commit, ...
    Start {
        /// What to start.
        #[command(subcommand)]
        what: Start,
    },
    /// Finish a commit, ...
    Finish {
        /// What to finish.
        #[command(subcommand)]
        what: Finish,
    },
    /// Resume a stopped transaction.
    Resume {
        /// What to resume.
        #[command(subcommand)]
        what: crate::transaction::Resume,
    },
}

/// Nouns of `create`.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// Create pipelines from a spec file.
    Pipeline(pipeline::CreatePipelineArgs),
    /// Store a Kubernetes `Secret` manifest (JSON or YAML) for pipelines' `transform.secrets`.
    Secret(secret::CreateSecretArgs),
    /// Set the cluster's (`--cluster`) or a project's (`--project P`) pipeline defaults.
    Defaults(defaults::SetDefaultsArgs),
    /// A project (a namespace of repos and pipelines).
    Project(project::CreateProjectArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::Create),
}

/// Nouns of `list`.
#[derive(Debug, Subcommand)]
pub enum List {
    /// The datums of a job (`PIPELINE@JOB`), or a spec's datums previewed (`-f SPEC`).
    Datum(pipeline::ListDatumArgs),
    /// Pipelines.
    Pipeline(pipeline::ListPipelineArgs),
    /// Jobs.
    Job(pipeline::ListJobArgs),
    /// Stored secrets (names, types and keys; never values).
    Secret(secret::ListSecretArgs),
    /// Open transactions and their queued requests (`*`: the active one).
    Transaction(transaction::ListTransactionArgs),
    /// Projects (the current one marked `*`).
    Project(project::ListProjectArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::List),
}

/// Nouns of `delete`.
#[derive(Debug, Subcommand)]
pub enum Delete {
    /// A pipeline.
    Pipeline(pipeline::DeletePipelineArgs),
    /// A commit set (`ID`, or `REPO@COMMIT` for its set), dropped: every commit of the set
    /// (none may have children) and its jobs' datum records; heads move to the parents.
    Commit(commit_history::CommitSetArgs),
    /// A stored secret.
    Secret(secret::DeleteSecretArgs),
    /// A transaction and its queued requests (default: the active one).
    Transaction(transaction::TransactionIdArgs),
    /// The cluster's (`--cluster`) or a project's (`--project P`) pipeline defaults.
    Defaults(defaults::DeleteDefaultsArgs),
    /// A project (refused while it has pipelines or repos, unless `--force`).
    Project(project::DeleteProjectArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::Delete),
}

/// Nouns of `squash`.
#[derive(Debug, Subcommand)]
pub enum Squash {
    /// A commit set (`ID`, or `REPO@COMMIT` for its set): every commit of the set is deleted
    /// and its changes kept in its children (refused for a commit without children: use
    /// `delete commit`); its jobs are stopped and lose their datum records.
    Commit(commit_history::CommitSetArgs),
}

/// Nouns of `inspect`.
#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// A pipeline.
    Pipeline(pipeline::PipelineArgs),
    /// A job (`PIPELINE@JOB`).
    Job(pipeline::JobArgs),
    /// A datum of a job.
    Datum(pipeline::InspectDatumArgs),
    /// A stored secret (never its values).
    Secret(secret::InspectSecretArgs),
    /// A transaction's queued requests (default: the active one).
    Transaction(transaction::InspectTransactionArgs),
    /// The cluster's (`--cluster`) or a project's (`--project P`) pipeline defaults.
    Defaults(defaults::InspectDefaultsArgs),
    /// A project.
    Project(project::InspectProjectArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::Inspect),
}

/// Nouns of `start`.
#[derive(Debug, Subcommand)]
pub enum Start {
    /// A stopped pipeline.
    Pipeline {
        /// Pipeline name.
        name: String,
    },
    /// A transaction, made the active one: the commands it takes are queued in it until
    /// `finish transaction`.
    Transaction(transaction::StartTransactionArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::Start),
}

/// Nouns of `edit`.
#[derive(Debug, Subcommand)]
pub enum Edit {
    /// Edit a pipeline's spec (JSON unless `-o yaml`); applied only when it changed and is valid.
    Pipeline(crate::edit_pipeline::EditPipelineArgs),
}

/// Nouns of `update`.
#[derive(Debug, Subcommand)]
pub enum Update {
    /// Update pipelines from a spec file.
    Pipeline(pipeline::CreatePipelineArgs),
    /// Replace the cluster's (`--cluster`) or a project's (`--project P`) pipeline defaults.
    Defaults(defaults::SetDefaultsArgs),
    /// A project's description.
    Project(project::UpdateProjectArgs),
}

/// Nouns of `next`.
#[derive(Debug, Subcommand)]
pub enum Next {
    /// Report the previous datum's result and block until the next datum is mounted (for
    /// `transform.datum_batching` user code; talks to the worker, never to the store).
    Datum(crate::next_datum::NextDatumArgs),
}

/// Nouns of `restart`.
#[derive(Debug, Subcommand)]
pub enum Restart {
    /// Cancel the current attempt of running datums (IDs or input paths, comma-separated);
    /// each starts again at once without using up one of its `datum_tries`.
    Datum {
        /// PIPELINE@JOB (a job ID prefix of 8+ characters works).
        job: String,
        /// DATUM[,DATUM...]: datum IDs or paths of their input files.
        datums: String,
    },
}

/// Nouns of `rerun`.
#[derive(Debug, Subcommand)]
pub enum Rerun {
    /// A new version of a pipeline whose job reruns the datums that did not succeed in its
    /// last job (`--reprocess`: every datum).
    Pipeline(pipeline::RerunPipelineArgs),
}

/// Nouns of `stop`.
#[derive(Debug, Subcommand)]
pub enum Stop {
    /// Stop a pipeline (no new jobs until started).
    Pipeline {
        /// Pipeline name.
        name: String,
    },
    /// Stop a job (`PIPELINE@JOB`).
    Job {
        /// `PIPELINE@JOB`.
        job: String,
    },
    /// Stop adding commands to the active transaction (it stays, to resume or finish).
    Transaction,
}

/// Nouns of `wait`.
#[derive(Debug, Subcommand)]
pub enum Wait {
    /// Run pending jobs until `PIPELINE@JOB` is done (exit 1 with the reason unless it
    /// succeeded, e.g. the open input commit a STARTING job waits for).
    Job(pipeline::JobArgs),
    /// Wait until a commit (`REPO@COMMIT`, or `REPO@BRANCH` for its head) is finished and
    /// print it; exit 1 when it finished with an error or is still open (`--timeout`).
    Commit(commit_verbs::WaitCommitArgs),
    /// Wait until every commit of a commit set (`ID`, or `REPO@COMMIT` for its set) is
    /// finished, the output commits of its jobs included, and print them; exit 1 naming those
    /// that finished with an error or are still open (`--timeout`).
    Commitset(commit_history::WaitCommitSetArgs),
}

/// Nouns of `copy`.
#[derive(Debug, Subcommand)]
pub enum Copy {
    /// `copy file SRC_REPO@REF:PATH DST_REPO@BRANCH:PATH` (auto-commit rule on the
    /// destination; only entries are written).
    File(file_verbs::CopyFileArgs),
}

/// Nouns of `find`.
#[derive(Debug, Subcommand)]
pub enum Find {
    /// `find commit REPO@BRANCH:PATH`: the commits that added, modified or deleted the path,
    /// newest first, printed as they are found.
    Commit(commit_verbs::FindCommitArgs),
}

/// Nouns of `subscribe`.
#[derive(Debug, Subcommand)]
pub enum Subscribe {
    /// `subscribe commit REPO@BRANCH`: the branch's finished commits, then each new one as
    /// it finishes (one JSON object per line with `-o json`) until Ctrl-C; in embedded mode
    /// (no server) only those there now.
    Commit(commit_verbs::SubscribeCommitArgs),
}

/// Nouns of `draw`.
#[derive(Debug, Subcommand)]
pub enum Draw {
    /// The DAG of repos and pipelines, as a tree per input repo (deterministic).
    Pipeline(draw::DrawArgs),
}

/// Nouns of `finish`.
#[derive(Debug, Subcommand)]
pub enum Finish {
    /// Run every request of a transaction (default: the active one) at once.
    Transaction(transaction::FinishTransactionArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::Finish),
}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let g = Global {
        root: cli.root,
        store: cli.store,
        objects: cli.objects,
        server: cli.server,
        token: cli.token,
        no_wait: cli.no_wait,
        no_wait_lock: cli.no_wait_lock,
        project: cli.project,
    };
    let mut expose = cli.expose;
    if matches!(cli.command, Command::Serve(_)) {
        expose.extend(crate::serve::spout_bin_dir_to_expose());
    }
    let result = project::init(&g)
        .and_then(|()| engine::expose(&g.root, expose))
        .and_then(|()| dispatch(&g, cli.command));
    match result {
        Ok(code) => code,
        Err(e) => report(&crate::teach::teach(&g, e)),
    }
}

/// `next datum`: runs inside a worker's sandbox (no store, no transaction).
fn next(what: Next) -> Res<i32> {
    match what {
        Next::Datum(args) => crate::next_datum::run(args).map(|()| 0),
    }
}

/// Runs one command; returns its exit code when it is not 0 or an error.
fn dispatch(g: &Global, command: Command) -> Res<i32> {
    let root = g;
    let no_wait = g.no_wait;
    let command = match command {
        Command::Next { what } => return next(what),
        other => other,
    };
    if transaction::divert(g, &command)? {
        return Ok(0);
    }
    let Some(command) = run_transaction(g, command)? else {
        return Ok(0);
    };
    match command {
        Command::Init => init(g)?,
        Command::Validate(args) => return Ok(validate::run(args)),
        Command::Version(args) => version::run(args)?,
        Command::Completion(args) => completion::run(args)?,
        Command::Quickstart(args) => quickstart::run(args)?,
        Command::Create {
            what: Create::Pipeline(a),
        } => pipeline::create(root, a, false, no_wait)?,
        Command::Update {
            what: Update::Pipeline(a),
        } => pipeline::create(root, a, true, no_wait)?,
        Command::Edit {
            what: Edit::Pipeline(a),
        } => crate::edit_pipeline::edit_pipeline(root, a, no_wait)?,
        Command::List {
            what: List::Datum(a),
        } => pipeline::list_datum(root, a)?,
        Command::List {
            what: List::Pipeline(a),
        } => pipeline::list_pipeline(root, a)?,
        Command::List { what: List::Job(a) } => pipeline::list_job(root, a)?,
        Command::Inspect {
            what: Inspect::Pipeline(a),
        } => pipeline::inspect_pipeline(root, a)?,
        Command::Inspect {
            what: Inspect::Job(a),
        } => pipeline::inspect_job(root, a)?,
        Command::Inspect {
            what: Inspect::Datum(a),
        } => pipeline::inspect_datum(root, a)?,
        Command::Delete {
            what: Delete::Pipeline(a),
        } => pipeline::delete_pipeline(root, a)?,
        Command::Stop {
            what: Stop::Pipeline { name },
        } => pipeline::stop_pipeline(root, &name)?,
        Command::Stop {
            what: Stop::Job { job },
        } => pipeline::stop_job(root, &job)?,
        Command::Start {
            what: Start::Pipeline { name },
        } => pipeline::start_pipeline(root, &name, no_wait)?,
        Command::Wait { what: Wait::Job(a) } => pipeline::wait_job(root, a)?,
        Command::Wait {
            what: Wait::Commit(a),
        } => commit_verbs::wait(root, a)?,
        Command::Wait {
            what: Wait::Commitset(a),
        } => commit_history::wait(root, a)?,
        Command::Squash {
            what: Squash::Commit(a),
        } => commit_history::squash(root, a)?,
        Command::Delete {
            what: Delete::Commit(a),
        } => commit_history::delete(root, a)?,
        Command::Copy {
            what: Copy::File(a),
        } => file_verbs::copy(root, a)?,
        Command::Find {
            what: Find::Commit(a),
        } => commit_verbs::find(root, a)?,
        Command::Subscribe {
            what: Subscribe::Commit(a),
        } => commit_verbs::subscribe(root, a)?,
        Command::Draw {
            what: Draw::Pipeline(a),
        } => draw::run(root, a)?,
        Command::Logs(a) => pipeline::logs(root, a)?,
        Command::Fsck(a) => return fsck::run(root, a),
        Command::Run { what } => pipeline::run_cron(root, what, no_wait)?,
        Command::Rerun {
            what: Rerun::Pipeline(a),
        } => pipeline::rerun_pipeline(root, a, no_wait)?,
        Command::Serve(args) => serve::serve(root, args)?,
        Command::Restart {
            what: Restart::Datum { job, datums },
        } => pipeline::restart_datum(root, &job, &datums)?,
        Command::Debug { what } => crate::debug_datum::run(root, what)?,
        other => run_secret(root, other)?,
    }
    Ok(0)
}

/// The secret commands; anything else goes to [`run_project`].
fn run_secret(root: &Global, command: Command) -> Res {
    match command {
        Command::Create {
            what: Create::Secret(a),
        } => secret::create(root, a),
        Command::List {
            what: List::Secret(a),
        } => secret::list(root, a),
        Command::Inspect {
            what: Inspect::Secret(a),
        } => secret::inspect(root, a),
        Command::Delete {
            what: Delete::Secret(a),
        } => secret::delete(root, a),
        other => run_project(root, other),
    }
}

/// Runs the transaction commands (`start|stop|resume|finish|delete|list|inspect
/// transaction`); hands any other command back.
fn run_transaction(g: &Global, command: Command) -> Res<Option<Command>> {
    match command {
        Command::Start {
            what: Start::Transaction(a),
        } => transaction::start(g, a),
        Command::Stop {
            what: Stop::Transaction,
        } => transaction::stop(g),
        Command::Resume { what } => transaction::resume(g, what),
        Command::Finish {
            what: Finish::Transaction(a),
        } => transaction::finish(g, a),
        Command::List {
            what: List::Transaction(a),
        } => transaction::list(g, a),
        Command::Inspect {
            what: Inspect::Transaction(a),
        } => transaction::inspect(g, a),
        Command::Delete {
            what: Delete::Transaction(a),
        } => transaction::delete(g, a),
        other => return Ok(Some(other)),
    }?;
    Ok(None)
}

/// The project commands; anything else goes to [`run_data`].
fn run_project(root: &Global, command: Command) -> Res {
    match command {
        Command::Create {
            what: Create::Project(a),
        } => project::create(root, a),
        Command::Update {
            what: Update::Project(a),
        } => project::update(root, a),
        Command::Inspect {
            what: Inspect::Project(a),
        } => project::inspect(root, a),
        Command::List {
            what: List::Project(a),
        } => project::list(root, a),
        Command::Delete {
            what: Delete::Project(a),
        } => project::delete(root, a),
        other => run_data(root, other),
    }
}

/// The data commands; commands that write commits then wait for the jobs they started
/// unless `--no-wait`.
fn run_data(root: &Global, command: Command) -> Res {
    match command {
        Command::Create {
            what: Create::Data(c),
        } => data::create(root, c),
        Command::List {
            what: List::Data(c),
        } => data::list(root, c),
        Command::Delete {
            what: Delete::Data(c),
        } => data::delete(root, c),
        Command::Inspect {
            what: Inspect::Data(c),
        } => data::inspect(root, c),
        Command::Put { what } => data::put(root, what),
        Command::Get { what } => data::get(root, what),
        Command::Glob { what } => data::glob(root, what),
        Command::Diff { what } => data::diff(root, what),
        Command::Gc(args) => data::gc(root, args),
        Command::Start {
            what: Start::Data(c),
        } => data::start(root, c),
        Command::Finish {
            what: Finish::Data(c),
        } => data::finish(root, c),
        other => run_defaults(root, other),
    }
}

/// The cluster and project defaults commands.
fn run_defaults(root: &Global, command: Command) -> Res {
    match command {
        Command::Create {
            what: Create::Defaults(a),
        }
        | Command::Update {
            what: Update::Defaults(a),
        } => defaults::set(root, a),
        Command::Inspect {
            what: Inspect::Defaults(a),
        } => defaults::inspect(root, a),
        Command::Delete {
            what: Delete::Defaults(a),
        } => defaults::delete(root, a),
        _ => Ok(()),
    }
}

/// `pipectl init`: creates the store (or opens an existing one) and says where it is; with
/// `--store`, creates or upgrades the server's schema.
fn init(g: &Global) -> Res {
    if g.store.is_some() {
        return crate::conn::init_server_store(g);
    }
    let store = crate::conn::open_store(g, Access::Write)?;
    drop(store);
    let shown = std::path::absolute(&g.root).unwrap_or_else(|_| g.root.clone());
    crate::output::outln!("store at {}", shown.display());
    Ok(())
}
