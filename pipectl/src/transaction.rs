//! `start|stop|resume|finish|delete|list|inspect transaction`, and the one place
//! ([`divert`]) where the commands a transaction takes are queued instead of run.
//!
//! **Where the active transaction is remembered.** pachctl keeps it in its config, per
//! context. A context here is the store `--root` names (reached in-process or through its
//! server's socket: the same store either way) or the server `--server` names, so the
//! pointer lives in `ROOT/transactions.json` (0600), keyed by that context (`store`, or
//! `server http://...`). It sits beside the store whose transactions it points into, so two
//! stores never share an active transaction, and one root used with several servers keeps
//! one per server. The transactions themselves (their queued requests) are in the store.
//!
//! **What is queued.** While a transaction is active, `create repo`, `delete repo`,
//! `create branch`, `delete branch`, `start commit`, `finish commit` and `create pipeline`
//! print `Added to transaction: ID` and run when the transaction finishes; `update pipeline`
//! and `edit pipeline` are refused (an update kills running jobs first, which a transaction
//! could not undo); every other command runs at once, as in pachctl.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use pipeline_core::pps::{TransactionFinished, TransactionInfo, TransactionRequest};

use crate::cli::{Command, Create, Delete, Edit, Finish, Start, Update};
use crate::conn::{Access, Conn, Global, connect};
use crate::data;
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, json_pretty, outln, print_json, timestamp};

/// The file, inside the store directory, that remembers the active transaction per context.
const ACTIVE_FILE: &str = "transactions.json";

/// `list transaction`.
#[derive(Debug, Args)]
pub struct ListTransactionArgs {
    /// Output format (`json`: one transaction per line).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `inspect transaction [ID]`.
#[derive(Debug, Args)]
pub struct InspectTransactionArgs {
    /// Transaction ID (default: the active one).
    pub id: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `start transaction`.
#[derive(Debug, Args)]
pub struct StartTransactionArgs {
    /// Output format (`json`: the new transaction).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `finish transaction [ID]`.
#[derive(Debug, Args)]
pub struct FinishTransactionArgs {
    /// Transaction ID (default: the active one).
    pub id: Option<String>,
    /// Output format (`json`: what each request did and the jobs started).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `resume transaction ID`, `delete transaction [ID]`.
#[derive(Debug, Args)]
pub struct TransactionIdArgs {
    /// Transaction ID (for `delete`, default: the active one).
    pub id: Option<String>,
}

/// Nouns of `resume`.
#[derive(Debug, Subcommand)]
pub enum Resume {
    /// Make a stopped transaction the active one again: the commands it takes are queued in
    /// it again.
    Transaction {
        /// Transaction ID.
        id: String,
    },
}

/// The active-transaction pointers of a store directory, by context.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ActiveFile {
    /// Context → active transaction ID.
    active: BTreeMap<String, String>,
}

/// The context the active transaction belongs to (see the module docs).
fn context(g: &Global) -> String {
    match &g.server {
        Some(url) => format!("server {url}"),
        None => "store".to_string(),
    }
}

fn active_path(root: &Path) -> PathBuf {
    root.join(ACTIVE_FILE)
}

fn read_active_file(root: &Path) -> Res<ActiveFile> {
    let path = active_path(root);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "{}: not a file of active transactions ({e}); delete it to forget them",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ActiveFile::default()),
        Err(e) => Err(CliError::Io { path, source: e }),
    }
}

/// Writes the pointers atomically (a temp file renamed over the old one), owner-only.
fn write_active_file(root: &Path, file: &ActiveFile) -> Res {
    let path = active_path(root);
    fs::create_dir_all(root).map_err(io_err(root))?;
    let tmp = root.join(format!("{ACTIVE_FILE}.tmp-{}", std::process::id()));
    let text = serde_json::to_vec_pretty(file).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// The active transaction of this context, if any.
pub fn active(g: &Global) -> Res<Option<String>> {
    Ok(read_active_file(&g.root)?.active.remove(&context(g)))
}

/// Makes `id` the active transaction of this context (`None`: no active transaction).
fn set_active(g: &Global, id: Option<&str>) -> Res {
    let mut file = read_active_file(&g.root)?;
    let key = context(g);
    match id {
        Some(id) => file.active.insert(key, id.to_string()),
        None => file.active.remove(&key),
    };
    write_active_file(&g.root, &file)
}

/// `ID`, or the active transaction, or an error saying there is none.
fn id_or_active(g: &Global, id: Option<String>) -> Res<String> {
    match id {
        Some(id) => Ok(id),
        None => active(g)?.ok_or_else(|| {
            CliError::BadArgs(
                "no active transaction: name one (`pipectl list transaction` shows them) or \
                 start one with `pipectl start transaction`"
                    .into(),
            )
        }),
    }
}

/// `start transaction`: a new transaction, made the active one; prints its ID.
pub fn start(g: &Global, args: StartTransactionArgs) -> Res {
    if let Some(id) = active(g)? {
        return Err(CliError::BadArgs(format!(
            "transaction {id} is active; finish it, stop it (`pipectl stop transaction`) or \
             delete it before starting another"
        )));
    }
    let conn = connect(g, Access::Write, None)?;
    let info = conn.call(conn.client.start_transaction())?;
    set_active(g, Some(&info.id))?;
    match args.output {
        Format::Json => print_json(&info),
        Format::Text | Format::Yaml => outln!("{}", info.id),
    }
    Ok(())
}

/// `stop transaction`: commands run at once again; the transaction stays, to resume.
pub fn stop(g: &Global) -> Res {
    let id = id_or_active(g, None)?;
    set_active(g, None)?;
    eprintln!("stopped transaction {id} (`pipectl resume transaction {id}` continues it)");
    Ok(())
}

/// `resume transaction ID`: makes an existing transaction the active one.
pub fn resume(g: &Global, what: Resume) -> Res {
    let Resume::Transaction { id } = what;
    if let Some(current) = active(g)?
        && current != id
    {
        return Err(CliError::BadArgs(format!(
            "transaction {current} is active; stop it (`pipectl stop transaction`) first"
        )));
    }
    let conn = connect(g, Access::Read, None)?;
    let info = conn.call(conn.client.inspect_transaction(&id))?;
    set_active(g, Some(&info.id))?;
    eprintln!("resumed transaction {}", info.id);
    Ok(())
}

/// `finish transaction [ID]`: runs every queued request at once, deactivates the
/// transaction, and waits for the jobs of its commit set (unless `--no-wait`).
pub fn finish(g: &Global, args: FinishTransactionArgs) -> Res {
    let id = id_or_active(g, args.id)?;
    let conn = connect(g, Access::Write, None)?;
    let done = conn.call(conn.client.finish_transaction(&id))?;
    if active(g)?.as_deref() == Some(id.as_str()) {
        set_active(g, None)?;
    }
    print_finished(&done, args.output)?;
    crate::engine::after_write_on(
        &conn,
        g.no_wait,
        done.commit_set.as_deref(),
        &format!("transaction {id}"),
    )
}

fn print_finished(done: &TransactionFinished, output: Format) -> Res {
    if output == Format::Json {
        let stdout = std::io::stdout();
        return json_pretty(&mut stdout.lock(), done);
    }
    outln!("finished transaction {}", done.id);
    if let Some(set) = &done.commit_set {
        outln!("commit set {set}: {} job(s)", done.jobs.len());
    }
    Ok(())
}

/// `delete transaction [ID]`: forgets its queued requests; deactivates it if active.
pub fn delete(g: &Global, args: TransactionIdArgs) -> Res {
    let id = id_or_active(g, args.id)?;
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.delete_transaction(&id))?;
    if active(g)?.as_deref() == Some(id.as_str()) {
        set_active(g, None)?;
    }
    Ok(())
}

/// `list transaction`: every open transaction with its requests (`*` marks the active one).
pub fn list(g: &Global, args: ListTransactionArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let all = conn.call(conn.client.list_transactions())?;
    let current = active(g)?;
    if args.output == Format::Json {
        for t in &all {
            print_json(t);
        }
        return Ok(());
    }
    outln!("{:<34} {:<20} REQUESTS", "ID", "STARTED");
    for t in &all {
        let mark = if current.as_deref() == Some(t.id.as_str()) {
            "*"
        } else {
            " "
        };
        let requests: Vec<String> = t.requests.iter().map(|r| r.describe()).collect();
        outln!(
            "{mark}{:<33} {:<20} {}",
            t.id,
            timestamp(t.started_ms),
            requests.join("; ")
        );
    }
    Ok(())
}

/// `inspect transaction [ID]`: one transaction and its requests in order.
pub fn inspect(g: &Global, args: InspectTransactionArgs) -> Res {
    let id = id_or_active(g, args.id)?;
    let conn = connect(g, Access::Read, None)?;
    let t = conn.call(conn.client.inspect_transaction(&id))?;
    if args.output == Format::Json {
        let stdout = std::io::stdout();
        return json_pretty(&mut stdout.lock(), &t);
    }
    print_inspected(g, &t)
}

fn print_inspected(g: &Global, t: &TransactionInfo) -> Res {
    outln!("Transaction: {}", t.id);
    outln!("Started: {}", timestamp(t.started_ms));
    let state = if active(g)?.as_deref() == Some(t.id.as_str()) {
        "active"
    } else {
        "stopped"
    };
    outln!("State: {state}");
    outln!("Requests: {}", t.requests.len());
    for (i, r) in t.requests.iter().enumerate() {
        outln!("  {}. {}", i + 1, r.describe());
    }
    Ok(())
}

/// The request a command makes inside a transaction: `Some` for the commands a transaction
/// takes, `None` for the others (they run at once). `update|edit pipeline` are refused.
fn request_of(command: &Command) -> Res<Option<TransactionRequest>> {
    Ok(Some(match command {
        Command::Create {
            what: Create::Data(c),
        } => data::create_request(c),
        Command::Delete {
            what: Delete::Data(d),
        } => match data::delete_request(d) {
            Some(r) => r,
            None => return Ok(None),
        },
        Command::Start {
            what: Start::Data(s),
        } => data::start_request(s),
        Command::Finish {
            what: Finish::Data(f),
        } => data::finish_request(f),
        Command::Create {
            what: Create::Pipeline(a),
        } if !a.dry_run => {
            let req = crate::pipeline::spec_request(a, false)?;
            TransactionRequest::CreatePipeline {
                spec: req.spec,
                source_name: req.source_name,
                executor: req.executor,
            }
        }
        Command::Update {
            what: Update::Pipeline(a),
        } if !a.dry_run => return Err(update_refused()),
        Command::Edit {
            what: Edit::Pipeline(_),
        } => return Err(update_refused()),
        _ => return Ok(None),
    }))
}

fn update_refused() -> CliError {
    CliError::BadArgs(
        "update pipeline cannot be part of a transaction: it kills the pipeline's running \
         jobs first, which the transaction could not undo. Stop the transaction \
         (`pipectl stop transaction`), update, then resume it"
            .into(),
    )
}

/// Whether `command` is one a transaction takes (cheap: no I/O).
fn takes(command: &Command) -> bool {
    matches!(
        command,
        Command::Create {
            what: Create::Data(_) | Create::Pipeline(_)
        } | Command::Delete {
            what: Delete::Data(_)
        } | Command::Start {
            what: Start::Data(_)
        } | Command::Finish {
            what: Finish::Data(_)
        } | Command::Update {
            what: Update::Pipeline(_)
        } | Command::Edit {
            what: Edit::Pipeline(_)
        }
    )
}

/// While a transaction is active, queues a command it takes instead of running it and
/// prints `Added to transaction: ID`; returns whether it did. Every command passes here
/// first (`cli::dispatch`).
pub fn divert(g: &Global, command: &Command) -> Res<bool> {
    if !takes(command) {
        return Ok(false);
    }
    let Some(id) = active(g)? else {
        return Ok(false);
    };
    let Some(request) = request_of(command)? else {
        return Ok(false);
    };
    let conn: Conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.append_transaction_request(&id, &request))?;
    outln!("Added to transaction: {id}");
    Ok(true)
}
