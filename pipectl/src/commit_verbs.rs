//! pachctl's `find commit`, `wait commit` and `subscribe commit`.
//!
//! `wait commit` and `subscribe commit` never poll: the server answers `wait` when the
//! store's change feed says the commit finished, and `subscribe` reads the server's event
//! stream (`/api/v1/events`). In embedded mode (no server) this command holds the store, so
//! nothing else can finish a commit meanwhile: `wait commit` runs the pending jobs and then
//! answers, and `subscribe commit` prints what is there and ends.

use std::collections::HashSet;
use std::io::{self, Write};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pfs::{CommitInfo, FoundCommit};
use pipeline_core::pps::Event;
use pipeline_core::spec::effective::DEFAULT_BRANCH;
use pipeline_server::error::ErrorKind;

use crate::conn::{Access, Conn, Global, connect};
use crate::data::{commit_text, print_commit_header, print_commit_row};
use crate::error::{CliError, Res, io_err};
use crate::file_verbs::change_name;
use crate::output::{Format, json_line, json_pretty};

/// `find commit`.
#[derive(Debug, Args)]
pub struct FindCommitArgs {
    /// `REPO@BRANCH_OR_COMMIT:PATH`: the history to search and the file or directory.
    pub target: String,
    /// At most this many commits (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `wait commit`.
#[derive(Debug, Args)]
pub struct WaitCommitArgs {
    /// `REPO@COMMIT` (or `REPO@BRANCH`: its head now).
    pub commit: String,
    /// Give up after this long (`500ms`, `30s`, `5m`, `1h`; a bare number is seconds):
    /// exit 1 with the commit still open.
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// `subscribe commit`.
#[derive(Debug, Args)]
pub struct SubscribeCommitArgs {
    /// `REPO@BRANCH`.
    pub branch: String,
    /// Start after this commit of the branch (its later commits first, then new ones).
    #[arg(long, conflicts_with = "new")]
    pub from: Option<String>,
    /// Only commits that finish from now on (none of the existing ones).
    #[arg(long)]
    pub new: bool,
    /// Output format (`json`: one object per line, as each commit finishes).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// A `--timeout` value: a number with `ms`, `s`, `m` or `h` (bare: seconds).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with ms, s, m or h (e.g. 30s)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?}: too long"))
}

/// The commit-ish of a reference (`master` when absent).
fn at_of(r: &FileRef) -> &str {
    r.commit.as_deref().unwrap_or(DEFAULT_BRANCH)
}

/// Runs `find commit`: the commits that changed the path, newest first, as they are found.
pub fn find(g: &Global, args: FindCommitArgs) -> Res {
    let r = crate::project::file_ref(&args.target)?;
    if r.path.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::BadArgs(format!(
            "{:?}: expected REPO@BRANCH:PATH (the path is missing)",
            args.target
        )));
    }
    let path = r.file_path()?;
    let conn = connect(g, Access::Read, None)?;
    let mut found =
        conn.call(
            conn.client
                .find_commits(&r.repo.to_string(), at_of(&r), &path, args.limit),
        )?;
    let stdout = io::stdout();
    let mut out = io::LineWriter::new(stdout.lock());
    if args.output == Format::Text {
        write!(out, "{:<9} ", "CHANGE").map_err(io_err("-"))?;
        print_commit_header(&mut out)?;
    }
    while let Some(f) = conn.call(found.next())? {
        print_found(&mut out, &f, args.output)?;
    }
    out.flush().map_err(io_err("-"))
}

fn print_found(out: &mut impl Write, f: &FoundCommit, format: Format) -> Res {
    match format {
        Format::Json => json_line(out, f),
        Format::Text | Format::Yaml => {
            write!(out, "{:<9} ", change_name(f.change)).map_err(io_err("-"))?;
            print_commit_row(out, &f.commit)
        }
    }
}

/// Runs `wait commit`: prints the commit once it is finished; exit 1 when it finished with
/// an error or is still open (timeout, or embedded mode with nothing to finish it).
pub fn wait(g: &Global, args: WaitCommitArgs) -> Res {
    let r = crate::project::file_ref(&args.commit)?;
    if r.path.is_some() {
        return Err(CliError::BadArgs(format!(
            "{:?}: expected REPO@COMMIT (no path)",
            args.commit
        )));
    }
    let conn = connect(g, Access::Read, None)?;
    let timeout_ms = args
        .timeout
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let info = conn.call(conn.client.wait_commit_finished(
        &r.repo.to_string(),
        at_of(&r),
        timeout_ms,
    ))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.output {
        Format::Json => json_pretty(&mut out, &info)?,
        Format::Text | Format::Yaml => commit_text(&mut out, &info)?,
    }
    if let Some(e) = &info.error {
        return Err(CliError::Usage(format!(
            "{} finished with an error: {e}",
            info.commit
        )));
    }
    if info.is_finished() {
        return Ok(());
    }
    Err(CliError::Usage(match args.timeout {
        _ if conn.client.is_in_process() => format!(
            "{} is open, and no server runs: nothing can finish it while this command holds \
             the store; finish it (`pipectl finish commit {}`) or run `pipectl serve` and wait \
             through it",
            info.commit, info.commit
        ),
        Some(t) => format!("{} is still open after {t:?}", info.commit),
        None => format!("{} is still open", info.commit),
    }))
}

/// Runs `subscribe commit`: the branch's finished commits (all, after `--from`, or none
/// with `--new`), oldest first, then each one as it finishes, until the server stops or
/// Ctrl-C.
pub fn subscribe(g: &Global, args: SubscribeCommitArgs) -> Res {
    let r = crate::project::file_ref(&args.branch)?;
    if r.path.is_some() {
        return Err(CliError::BadArgs(format!(
            "{:?}: expected REPO@BRANCH (no path)",
            args.branch
        )));
    }
    let repo = r.repo.to_string();
    let branch = r.repo.branch(at_of(&r))?.name;
    let conn = connect(g, Access::Read, None)?;
    // Subscribed before listing, so a commit that finishes in between is not missed.
    let mut events = conn.call(conn.client.events(Some(&r.repo.name), None))?;
    conn.call(conn.client.inspect_repo(&repo))?;
    let mut sub = Subscription {
        conn: &conn,
        repo: &repo,
        branch: &branch,
        format: args.output,
        from: None,
        seen: HashSet::new(),
        header: args.output == Format::Text,
    };
    if let Some(from) = &args.from {
        sub.from = Some(
            conn.call(conn.client.inspect_commit(&repo, from))?
                .commit
                .id
                .to_string(),
        );
    }
    if args.new {
        sub.mark_existing()?;
    } else {
        sub.catch_up()?;
    }
    if conn.client.is_in_process() {
        eprintln!(
            "pipectl: no server runs, so nothing else can add commits; run `pipectl serve` \
             to follow {repo}@{branch}"
        );
        return Ok(());
    }
    while let Some(e) = conn.call(async { Ok(events.next().await) })? {
        match e? {
            Event::CommitFinished(info) if sub.wanted(&info) => sub.print(&info)?,
            Event::Lagged { .. } => sub.catch_up()?,
            _ => {}
        }
    }
    eprintln!("pipectl: the server stopped; no more commits to follow");
    Ok(())
}

/// What `subscribe commit` has printed and where.
struct Subscription<'a> {
    conn: &'a Conn,
    repo: &'a str,
    branch: &'a str,
    format: Format,
    /// `--from`: only commits after this one of the history (its ID).
    from: Option<String>,
    /// Commits already printed (or, with `--new`, already there).
    seen: HashSet<String>,
    /// Whether the table header is still to be printed.
    header: bool,
}

impl Subscription<'_> {
    /// Whether `info` is a commit of the branch not printed yet.
    fn wanted(&self, info: &CommitInfo) -> bool {
        info.commit.repo.to_string() == self.repo
            && info.branch.as_deref() == Some(self.branch)
            && info.is_finished()
            && !self.seen.contains(info.commit.id.as_str())
    }

    fn print(&mut self, info: &CommitInfo) -> Res {
        self.seen.insert(info.commit.id.to_string());
        let stdout = io::stdout();
        let mut out = stdout.lock();
        if self.header {
            print_commit_header(&mut out)?;
            self.header = false;
        }
        match self.format {
            Format::Json => json_line(&mut out, info)?,
            Format::Text | Format::Yaml => print_commit_row(&mut out, info)?,
        }
        out.flush().map_err(io_err("-"))
    }

    /// The branch's history, oldest first (the history is read whole: it is the commits'
    /// metadata, not their files).
    /// A branch that does not exist yet has none.
    fn history(&self) -> Res<Vec<CommitInfo>> {
        let listed = self.conn.call(
            self.conn
                .client
                .list_commits(self.repo, Some(self.branch), 0),
        );
        let mut all = match listed {
            Err(CliError::Api(e)) if e.kind() == ErrorKind::NotFound => Vec::new(),
            other => other?,
        };
        all.reverse();
        Ok(all)
    }

    /// Prints the finished commits of the history not printed yet (after `--from`, which
    /// must be a commit of the branch).
    fn catch_up(&mut self) -> Res {
        let mut history = self.history()?;
        if let Some(from) = &self.from {
            let Some(i) = history.iter().position(|c| c.commit.id.as_str() == from) else {
                return Err(CliError::BadArgs(format!(
                    "--from {from}: not a commit of the history of {}@{}",
                    self.repo, self.branch
                )));
            };
            history.drain(..=i);
        }
        for c in history {
            if self.wanted(&c) {
                self.print(&c)?;
            }
        }
        Ok(())
    }

    /// `--new`: the finished commits there now count as printed (an open one is printed
    /// when it finishes).
    fn mark_existing(&mut self) -> Res {
        for c in self.history()? {
            if c.is_finished() {
                self.seen.insert(c.commit.id.to_string());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "1d", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} accepted");
        }
    }
}
