//! pachctl's `squash commit`, `delete commit` and `wait commitset`: each takes a commit-set
//! ID (or `REPO@COMMIT`, meaning that commit's set) and goes through the API, so embedded and
//! server mode print the same.

use std::io::{self, Write};
use std::time::Duration;

use clap::Args;
use pipeline_core::pfs::names::is_commit_id_shaped;
use pipeline_core::pps::RemovedCommitSet;
use pipeline_core::spec::effective::DEFAULT_BRANCH;

use crate::commit_verbs::parse_timeout;
use crate::conn::{Access, Conn, Global, connect};
use crate::data::{print_commit_header, print_commit_row};
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, json_line, json_pretty};

/// `squash commit` and `delete commit`.
#[derive(Debug, Args)]
pub struct CommitSetArgs {
    /// The commit set: its ID, or `REPO@COMMIT` (a branch names its head) for that commit's
    /// set.
    pub commit_set: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `wait commitset`.
#[derive(Debug, Args)]
pub struct WaitCommitSetArgs {
    /// The commit set: its ID, or `REPO@COMMIT` (a branch names its head) for that commit's
    /// set.
    pub commit_set: String,
    /// Give up after this long (`500ms`, `30s`, `5m`, `1h`; a bare number is seconds):
    /// exit 1 naming the commits still open.
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// The commit-set ID an argument names: a bare ID, or the ID of `REPO@COMMIT`'s commit.
fn commit_set_id(conn: &Conn, arg: &str) -> Res<String> {
    if !arg.contains('@') {
        if is_commit_id_shaped(arg) {
            return Ok(arg.to_ascii_lowercase());
        }
        return Err(CliError::BadArgs(format!(
            "{arg:?}: expected a commit-set ID (32 hexadecimal characters) or REPO@COMMIT"
        )));
    }
    let r = crate::project::file_ref(arg)?;
    if r.path.is_some() {
        return Err(CliError::BadArgs(format!(
            "{arg:?}: expected a commit-set ID or REPO@COMMIT (no path)"
        )));
    }
    let at = r.commit.as_deref().unwrap_or(DEFAULT_BRANCH);
    let info = conn.call(conn.client.inspect_commit(&r.repo.to_string(), at))?;
    Ok(info.commit.id.to_string())
}

/// `squash commit ID`: the set's commits deleted, their changes kept in their children.
pub fn squash(g: &Global, args: CommitSetArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    let id = commit_set_id(&conn, &args.commit_set)?;
    let done = conn
        .call(conn.client.squash_commit_set(&id))
        .map_err(|e| teach_squash(e, &id))?;
    print_removed(&done, args.output)
}

/// `delete commit ID`: the set's commits dropped.
pub fn delete(g: &Global, args: CommitSetArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    let id = commit_set_id(&conn, &args.commit_set)?;
    let done = conn
        .call(conn.client.delete_commit_set(&id))
        .map_err(|e| teach_delete(e, &id))?;
    print_removed(&done, args.output)
}

/// A squash refused for a commit without children: say which command drops it.
fn teach_squash(e: CliError, id: &str) -> CliError {
    if e.to_string()
        .contains("cannot squash a commit that has no children")
    {
        return CliError::Hinted {
            error: Box::new(e),
            hint: format!(
                "to remove the commit set with its data, use `pipectl delete commit {id}`"
            ),
        };
    }
    e
}

/// A drop refused for a commit with children: say which command keeps their data.
fn teach_delete(e: CliError, id: &str) -> CliError {
    if e.to_string()
        .contains("cannot drop a commit that has children")
    {
        return CliError::Hinted {
            error: Box::new(e),
            hint: format!(
                "to remove it and keep its changes in its children, use `pipectl squash commit {id}`"
            ),
        };
    }
    e
}

/// What a squash or drop did: the commits removed, where their changes went, the heads
/// that moved and the jobs stopped.
fn print_removed(done: &RemovedCommitSet, format: Format) -> Res {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if format == Format::Json {
        return json_pretty(&mut out, done);
    }
    let c = &done.commits;
    let w =
        |out: &mut io::StdoutLock<'_>, line: String| writeln!(out, "{line}").map_err(io_err("-"));
    let removed: Vec<String> = c.removed.iter().map(|i| i.commit.to_string()).collect();
    w(
        &mut out,
        format!(
            "{} commit set {}: {} commit(s) removed: {}",
            c.op.past_tense(),
            c.commit_set,
            removed.len(),
            removed.join(", ")
        ),
    )?;
    for m in &c.merged_into {
        w(&mut out, format!("changes kept in {m}"))?;
    }
    for r in &c.rebuilt {
        w(
            &mut out,
            format!("{r} starts again from its new parent when its job runs"),
        )?;
    }
    for m in &c.moved_heads {
        w(
            &mut out,
            format!("branch {} moved from {} to {}", m.branch, m.from, m.to),
        )?;
    }
    for j in &done.jobs {
        let reason = if j.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", j.reason)
        };
        w(
            &mut out,
            format!("job {}@{} {}{reason}", j.pipeline, j.id, j.state.as_str()),
        )?;
    }
    Ok(())
}

/// `wait commitset ID`: until every commit of the set is finished; prints them (exit 1 when
/// one finished with an error or is still open).
pub fn wait(g: &Global, args: WaitCommitSetArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let id = commit_set_id(&conn, &args.commit_set)?;
    let timeout_ms = args
        .timeout
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let commits = conn.call(conn.client.inspect_commit_set(&id, true, timeout_ms))?;
    let stdout = io::stdout();
    let mut out = io::LineWriter::new(stdout.lock());
    match args.output {
        Format::Json => {
            for c in &commits {
                json_line(&mut out, c)?;
            }
        }
        Format::Text | Format::Yaml => {
            print_commit_header(&mut out)?;
            for c in &commits {
                print_commit_row(&mut out, c)?;
            }
        }
    }
    out.flush().map_err(io_err("-"))?;
    let errored: Vec<String> = commits
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("{} ({e})", c.commit)))
        .collect();
    if !errored.is_empty() {
        return Err(CliError::Usage(format!(
            "commit set {id}: {} commit(s) finished with an error: {}",
            errored.len(),
            errored.join("; ")
        )));
    }
    let open: Vec<String> = commits
        .iter()
        .filter(|c| !c.is_finished())
        .map(|c| c.commit.to_string())
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let why = if conn.client.is_in_process() {
        "no server runs, so nothing can finish them while this command holds the store; \
         finish them (`pipectl finish commit`) or run `pipectl serve` and wait through it"
            .to_string()
    } else {
        match args.timeout {
            Some(t) => format!("still open after {t:?}"),
            None => "still open".to_string(),
        }
    };
    Err(CliError::Usage(format!(
        "commit set {id}: {} commit(s) open: {}; {why}",
        open.len(),
        open.join(", ")
    )))
}
