//! Data commands over the versioned store: repos, branches, commits, files.
//!
//! References are pachctl's: `REPO`, `REPO@BRANCH`, `REPO@COMMIT`, `REPO@BRANCH^N`,
//! `REPO@BRANCH:/PATH`, optionally `PROJECT/REPO...`. A missing `@...` means `@master`.
//! `-o json` prints one JSON object per line for lists (streamable) and one pretty object
//! for inspections.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use pipeline_core::pfs::refs::FileRef;
use pipeline_core::pfs::{
    BranchRef, Change, CommitInfo, CommitRef, FileInfo, FileKind, FinishOptions, PfsError, RepoRef,
    Store,
};
use pipeline_core::spec::effective::DEFAULT_BRANCH;

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, human, json_line, json_pretty, timestamp};

/// `create repo|branch`.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// Create a repo.
    Repo {
        /// Repo name (`[PROJECT/]NAME`).
        name: String,
        /// Description.
        #[arg(short, long, default_value = "")]
        description: String,
    },
    /// Create or update a branch.
    Branch {
        /// `REPO@BRANCH`.
        branch: String,
        /// Head commit (`BRANCH`, `COMMIT`, `^N` allowed) of the same repo.
        #[arg(long)]
        head: Option<String>,
        /// Direct provenance `REPO@BRANCH` (repeatable).
        #[arg(short, long = "provenance")]
        provenance: Vec<String>,
    },
}

/// `list repo|branch|file|commit`.
#[derive(Debug, Subcommand)]
pub enum List {
    /// List repos.
    Repo {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List the branches of a repo.
    Branch {
        /// `REPO`.
        repo: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List the files and directories in a directory of a commit (streamed).
    File {
        /// `REPO@BRANCH[:/PATH]`.
        file: String,
        /// Every file below the path instead of one level.
        #[arg(short, long)]
        recursive: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List commits, newest first: a branch's history, or every commit of the repo.
    Commit {
        /// `REPO[@BRANCH]`.
        repo: String,
        /// At most this many.
        #[arg(short, long, default_value_t = 0)]
        number: usize,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `delete repo|branch|file`.
#[derive(Debug, Subcommand)]
pub enum Delete {
    /// Delete a repo and all its commits.
    Repo {
        /// `REPO`.
        name: String,
        /// Also remove provenance edges pointing at it.
        #[arg(short, long)]
        force: bool,
    },
    /// Delete a branch (its commits stay).
    Branch {
        /// `REPO@BRANCH`.
        branch: String,
        /// Also remove provenance edges pointing at it.
        #[arg(short, long)]
        force: bool,
    },
    /// Delete a file or directory (in the open head commit, or a new commit).
    File {
        /// `REPO@BRANCH:/PATH`.
        file: String,
    },
}

/// `put file`.
#[derive(Debug, Subcommand)]
pub enum Put {
    /// Upload a local file, a directory (`-r`) or stdin (`-f -`).
    File {
        /// `REPO@BRANCH[:/PATH]`; a path ending in `/` receives the local file's name.
        file: String,
        /// Local file or directory, or `-` for stdin.
        #[arg(short = 'f', long = "file")]
        local: String,
        /// Upload a local directory recursively (symlinks are skipped, never followed).
        #[arg(short, long)]
        recursive: bool,
    },
}

/// `get file`.
#[derive(Debug, Subcommand)]
pub enum Get {
    /// Download a file (to stdout, or `-o LOCAL`); `-r -o DIR` for a directory.
    File {
        /// `REPO@BRANCH:/PATH`.
        file: String,
        /// Local destination.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Download a directory recursively (needs `-o`).
        #[arg(short, long)]
        recursive: bool,
    },
}

/// `glob file`.
#[derive(Debug, Subcommand)]
pub enum Glob {
    /// List the files and directories matching a glob.
    File {
        /// `REPO@BRANCH:PATTERN`.
        pattern: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `diff file`.
#[derive(Debug, Subcommand)]
pub enum Diff {
    /// Files added, deleted or modified between two commits.
    File {
        /// `REPO@NEW`.
        new: String,
        /// `REPO@OLD` (default: NEW's parent).
        old: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `inspect commit|repo|branch|file`.
#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// A commit (`REPO@COMMIT_OR_BRANCH`, `^N` allowed).
    Commit {
        /// `REPO@COMMIT_OR_BRANCH`.
        commit: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// A repo.
    Repo {
        /// `REPO`.
        name: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// A branch: head, provenance, subvenance.
    Branch {
        /// `REPO@BRANCH`.
        branch: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// A file or directory: size and content hash.
    File {
        /// `REPO@BRANCH:/PATH`.
        file: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `start commit`.
#[derive(Debug, Subcommand)]
pub enum Start {
    /// Start a commit on a branch (puts go into it until it is finished).
    Commit {
        /// `REPO@BRANCH`.
        branch: String,
        /// Description.
        #[arg(short, long, default_value = "")]
        description: String,
    },
}

/// `finish commit`.
#[derive(Debug, Subcommand)]
pub enum Finish {
    /// Finish an open commit.
    Commit {
        /// `REPO@COMMIT_OR_BRANCH`.
        commit: String,
        /// Finish it with this error (it will not be inherited from).
        #[arg(long)]
        error: Option<String>,
    },
}

fn open(root: &Path) -> Res<Store> {
    crate::engine::open_store(root)
}

fn resolve(store: &Store, r: &FileRef) -> Res<CommitRef> {
    Ok(store.resolve_commit(&r.repo, r.commit.as_deref().unwrap_or(DEFAULT_BRANCH))?)
}

fn branch_of(r: &FileRef) -> Res<BranchRef> {
    Ok(r.repo
        .branch(r.commit.as_deref().unwrap_or(DEFAULT_BRANCH))?)
}

/// Fails when the auto commit of a write was finished with an error.
fn check_written<T>(w: &pipeline_core::pfs::Written<T>) -> Res {
    match w.error() {
        Some(e) => Err(CliError::Usage(format!(
            "commit {} finished with error: {e}",
            w.commit
        ))),
        None => Ok(()),
    }
}

const BIG: u64 = 8 << 20;

fn bar(len: Option<u64>) -> indicatif::ProgressBar {
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    match len {
        Some(n) if n >= BIG => indicatif::ProgressBar::new(n).with_style(
            indicatif::ProgressStyle::with_template(
                "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        Some(_) => indicatif::ProgressBar::hidden(),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    }
}

fn print_files(
    out: &mut impl Write,
    files: impl Iterator<Item = Result<FileInfo, PfsError>>,
    format: Format,
) -> Res {
    if format == Format::Text {
        writeln!(out, "{:<60} {:<5} {:>12} HASH", "NAME", "TYPE", "SIZE").map_err(io_err("-"))?;
    }
    for f in files {
        let f = f?;
        match format {
            Format::Json => json_line(out, &f)?,
            Format::Text | Format::Yaml => writeln!(
                out,
                "{:<60} {:<5} {:>12} {}",
                f.path,
                match f.kind {
                    FileKind::File => "file",
                    FileKind::Dir => "dir",
                },
                human(f.size),
                &f.hash.to_hex()[..16]
            )
            .map_err(io_err("-"))?,
        }
    }
    Ok(())
}

fn print_commit_row(out: &mut impl Write, c: &CommitInfo) -> Res {
    writeln!(
        out,
        "{:<20} {:<12} {:<32} {:<20} {:<8} {:<6} {:>10} {}",
        c.commit.repo.name,
        c.branch.as_deref().unwrap_or("-"),
        c.commit.id,
        timestamp(c.started_ms),
        match (&c.error, c.is_finished()) {
            (Some(_), _) => "ERROR",
            (None, true) => "FINISHED",
            (None, false) => "OPEN",
        },
        match c.origin {
            pipeline_core::pfs::Origin::User => "USER",
            pipeline_core::pfs::Origin::Auto => "AUTO",
        },
        c.size_bytes.map(human).unwrap_or_else(|| "-".into()),
        c.description
    )
    .map_err(io_err("-"))
}

/// Runs `create ...`.
pub fn create(g: &Global, cmd: Create) -> Res {
    let root = g.root.as_path();
    match cmd {
        Create::Repo { name, description } => {
            let conn = connect(g, Access::Write, None)?;
            conn.call(conn.client.create_repo(&name, &description))?;
        }
        Create::Branch {
            branch,
            head,
            provenance,
        } => {
            let store = open(root)?;
            let r = FileRef::parse(&branch)?;
            let b = branch_of(&r)?;
            let head = match head {
                Some(h) => Some(store.resolve_commit(&r.repo, &h)?.id),
                None => None,
            };
            let mut prov = Vec::new();
            for p in &provenance {
                prov.push(branch_of(&FileRef::parse(p)?)?);
            }
            store.create_branch(&b, head.as_ref(), &prov)?;
        }
    }
    Ok(())
}

/// Runs `list ...`.
pub fn list(g: &Global, cmd: List) -> Res {
    let root = g.root.as_path();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cmd {
        List::Repo { output } => {
            let conn = connect(g, Access::Read, None)?;
            let repos = conn.call(conn.client.list_repos())?;
            if output == Format::Text {
                writeln!(
                    out,
                    "{:<20} {:<20} {:<20} DESCRIPTION",
                    "PROJECT", "NAME", "CREATED"
                )
                .map_err(io_err("-"))?;
            }
            for r in repos {
                match output {
                    Format::Json => json_line(&mut out, &r)?,
                    Format::Text | Format::Yaml => writeln!(
                        out,
                        "{:<20} {:<20} {:<20} {}",
                        r.repo.project,
                        r.repo.name,
                        timestamp(r.created_ms),
                        r.description
                    )
                    .map_err(io_err("-"))?,
                }
            }
        }
        List::Branch { repo, output } => {
            let store = open(root)?;
            let r = FileRef::parse(&repo)?;
            let branches = store.list_branches(&r.repo)?;
            if output == Format::Text {
                writeln!(out, "{:<20} {:<32} PROVENANCE", "BRANCH", "HEAD").map_err(io_err("-"))?;
            }
            for b in branches {
                match output {
                    Format::Json => json_line(&mut out, &b)?,
                    Format::Text | Format::Yaml => {
                        let prov: Vec<String> =
                            b.direct_provenance.iter().map(|p| p.to_string()).collect();
                        writeln!(
                            out,
                            "{:<20} {:<32} {}",
                            b.branch.name,
                            b.head,
                            prov.join(",")
                        )
                        .map_err(io_err("-"))?
                    }
                }
            }
        }
        List::File {
            file,
            recursive,
            output,
        } => {
            let store = open(root)?;
            let r = FileRef::parse(&file)?;
            let c = resolve(&store, &r)?;
            let path = r.file_path()?;
            let it = if recursive {
                store.list_file_recursive(&c, &path)?
            } else {
                store.list_file(&c, &path)?
            };
            print_files(&mut out, it, output)?;
        }
        List::Commit {
            repo,
            number,
            output,
        } => {
            let store = open(root)?;
            let r = FileRef::parse(&repo)?;
            let commits = store.list_commits(&r.repo, r.commit.as_deref(), number)?;
            if output == Format::Text {
                writeln!(
                    out,
                    "{:<20} {:<12} {:<32} {:<20} {:<8} {:<6} {:>10} DESCRIPTION",
                    "REPO", "BRANCH", "COMMIT", "STARTED", "STATE", "ORIGIN", "SIZE"
                )
                .map_err(io_err("-"))?;
            }
            for c in commits {
                match output {
                    Format::Json => json_line(&mut out, &c)?,
                    Format::Text | Format::Yaml => print_commit_row(&mut out, &c)?,
                }
            }
        }
    }
    out.flush().map_err(io_err("-"))
}

/// Runs `delete ...`; returns what it committed (for the exit code of the jobs it starts).
pub fn delete(g: &Global, cmd: Delete) -> Res<String> {
    let root = g.root.as_path();
    let store = open(root)?;
    Ok(match cmd {
        Delete::Repo { name, force } => {
            store.delete_repo(&RepoRef::parse(&name)?, force)?;
            format!("deletion of repo {name}")
        }
        Delete::Branch { branch, force } => {
            store.delete_branch(&branch_of(&FileRef::parse(&branch)?)?, force)?;
            format!("deletion of branch {branch}")
        }
        Delete::File { file } => {
            let r = FileRef::parse(&file)?;
            let path = r.file_path()?;
            let w = store.write_auto_commit(&r.repo, r.commit.as_deref(), |c| {
                store.delete_file(c, &path).map_err(CliError::from)
            });
            crate::engine::report_recovered(&store);
            let w = w?;
            check_written(&w)?;
            w.commit.to_string()
        }
    })
}

/// Runs `put file` (pachctl's auto-commit rule: [`Store::write_auto_commit`]); returns the
/// commit written (for the exit code of the jobs it starts).
pub fn put(g: &Global, cmd: Put) -> Res<String> {
    let root = g.root.as_path();
    let Put::File {
        file,
        local,
        recursive,
    } = cmd;
    let store = open(root)?;
    let r = FileRef::parse(&file)?;
    let dest = destination(&r, &local, recursive)?;
    let w = store.write_auto_commit(&r.repo, r.commit.as_deref(), |commit| {
        upload(&store, commit, &dest, &local, recursive)
    });
    crate::engine::report_recovered(&store);
    let w = w?;
    check_written(&w)?;
    Ok(w.commit.to_string())
}

/// Where `put file` writes: the path given, or for a path ending in `/` (or none) the local
/// file's name in that directory (`/` for `-r`).
fn destination(r: &FileRef, local: &str, recursive: bool) -> Res<String> {
    let raw = r.path.clone().unwrap_or_default();
    let name = Path::new(local)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    let dest = if local == "-" {
        if raw.is_empty() || raw.ends_with('/') {
            return Err(CliError::Usage(
                "put file from stdin needs a destination path: REPO@BRANCH:/PATH".into(),
            ));
        }
        raw
    } else if recursive {
        if raw.is_empty() { "/".into() } else { raw }
    } else if raw.is_empty() || raw.ends_with('/') {
        format!("{raw}{name}")
    } else {
        raw
    };
    Ok(pipeline_core::pfs::validate_file_path(&dest).map_err(PfsError::from)?)
}

/// Uploads stdin (`-`), a directory (`recursive`) or a file into `commit` at `dest`.
fn upload(store: &Store, commit: &CommitRef, dest: &str, local: &str, recursive: bool) -> Res {
    let local_path = PathBuf::from(local);
    if local == "-" {
        let pb = bar(None);
        let stdin = io::stdin();
        let mut reader = pb.wrap_read(stdin.lock());
        store.put_file(commit, dest, &mut reader)?;
        pb.finish_and_clear();
    } else if recursive {
        let pb = bar(None);
        let stats = store.put_dir_local(commit, dest, &local_path, &mut |b| pb.set_position(b))?;
        pb.finish_and_clear();
        if stats.skipped_symlinks > 0 {
            eprintln!(
                "skipped {} symlink(s) (never followed)",
                stats.skipped_symlinks
            );
        }
    } else {
        let meta = fs::metadata(&local_path).map_err(io_err(&local_path))?;
        if meta.is_dir() {
            return Err(CliError::Usage(format!(
                "{local} is a directory; use -r to upload it recursively"
            )));
        }
        let f = fs::File::open(&local_path).map_err(io_err(&local_path))?;
        let pb = bar(Some(meta.len()));
        let mut reader = pb.wrap_read(f);
        store.put_file(commit, dest, &mut reader)?;
        pb.finish_and_clear();
    }
    Ok(())
}

/// `gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Keep unreferenced contents written less than this many seconds ago (0 is safe here:
    /// pipectl holds the store while it runs).
    #[arg(long, default_value_t = 0)]
    pub grace_secs: u64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `gc`: [`Store::gc`].
pub fn gc(g: &Global, args: GcArgs) -> Res {
    let root = g.root.as_path();
    let store = open(root)?;
    let st = store.gc(std::time::Duration::from_secs(args.grace_secs))?;
    let mut out = io::stdout().lock();
    match args.output {
        Format::Json => json_line(
            &mut out,
            &serde_json::json!({
                "live": st.live,
                "objects": st.objects,
                "removed": st.removed,
                "bytes_removed": st.bytes_removed,
                "kept_young": st.kept_young,
            }),
        ),
        Format::Text | Format::Yaml => writeln!(
            out,
            "removed {} of {} objects ({}); {} in use, {} kept as younger than the grace period",
            st.removed,
            st.objects,
            human(st.bytes_removed),
            st.live,
            st.kept_young
        )
        .map_err(io_err("-")),
    }
}

/// Runs `get file`.
pub fn get(g: &Global, cmd: Get) -> Res {
    let root = g.root.as_path();
    let Get::File {
        file,
        output,
        recursive,
    } = cmd;
    let store = open(root)?;
    let r = FileRef::parse(&file)?;
    let c = resolve(&store, &r)?;
    let path = r.file_path()?;
    if recursive {
        let Some(dir) = output else {
            return Err(CliError::Usage("get file -r needs -o DIR".into()));
        };
        let info = store.inspect_file(&c, &path)?;
        let base = if info.kind == FileKind::Dir {
            info.path.clone()
        } else {
            path.clone()
        };
        let pb = bar(Some(info.size));
        for f in store.list_file_recursive(&c, &path)? {
            let f = f?;
            let rel = f
                .path
                .strip_prefix(&base)
                .unwrap_or(&f.path)
                .trim_start_matches('/');
            let rel = if rel.is_empty() {
                f.path.rsplit('/').next().unwrap_or("file")
            } else {
                rel
            };
            let target = dir.join(rel);
            if let Some(p) = target.parent() {
                fs::create_dir_all(p).map_err(io_err(p))?;
            }
            let (_, mut reader) = store.get_file(&c, &f.path)?;
            let mut w = pb.wrap_write(fs::File::create(&target).map_err(io_err(&target))?);
            io::copy(&mut reader, &mut w).map_err(io_err(&target))?;
        }
        pb.finish_and_clear();
        return Ok(());
    }
    let (info, mut reader) = store.get_file(&c, &path)?;
    let pb = if output.is_some() {
        bar(Some(info.size))
    } else {
        indicatif::ProgressBar::hidden()
    };
    match output {
        Some(p) => {
            let tmp = p.with_extension("pipectl-partial");
            let mut w = pb.wrap_write(fs::File::create(&tmp).map_err(io_err(&tmp))?);
            io::copy(&mut reader, &mut w).map_err(io_err(&tmp))?;
            drop(w);
            fs::rename(&tmp, &p).map_err(io_err(&p))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            io::copy(&mut reader, &mut out).map_err(io_err("-"))?;
            out.flush().map_err(io_err("-"))?;
        }
    }
    pb.finish_and_clear();
    Ok(())
}

/// Runs `glob file`.
pub fn glob(g: &Global, cmd: Glob) -> Res {
    let root = g.root.as_path();
    let Glob::File { pattern, output } = cmd;
    let store = open(root)?;
    // The pattern may contain ':' only after the first one.
    let (head, pat) = pattern.split_once(':').unwrap_or((&pattern, "/"));
    let r = FileRef::parse(head)?;
    let c = resolve(&store, &r)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    print_files(&mut out, store.glob_file(&c, pat)?, output)?;
    out.flush().map_err(io_err("-"))
}

/// Runs `diff file`.
pub fn diff(g: &Global, cmd: Diff) -> Res {
    let root = g.root.as_path();
    let Diff::File { new, old, output } = cmd;
    let store = open(root)?;
    let nr = FileRef::parse(&new)?;
    let nc = resolve(&store, &nr)?;
    let oc = match old {
        Some(o) => resolve(&store, &FileRef::parse(&o)?)?,
        None => {
            let info = store.inspect_commit(&nc)?;
            match info.parent {
                Some(p) => nc.repo.commit(&p),
                None => {
                    return Err(CliError::Usage(format!(
                        "{nc} has no parent; name the old commit"
                    )));
                }
            }
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if output == Format::Text {
        writeln!(
            out,
            "{:<9} {:<60} {:>12} {:>12}",
            "CHANGE", "PATH", "OLD SIZE", "NEW SIZE"
        )
        .map_err(io_err("-"))?;
    }
    for d in store.diff_file(&nc, &oc)? {
        let d = d?;
        match output {
            Format::Json => json_line(&mut out, &d)?,
            Format::Text | Format::Yaml => writeln!(
                out,
                "{:<9} {:<60} {:>12} {:>12}",
                match d.change {
                    Change::Added => "added",
                    Change::Deleted => "deleted",
                    Change::Modified => "modified",
                },
                d.path,
                d.old
                    .as_ref()
                    .map(|f| human(f.size))
                    .unwrap_or_else(|| "-".into()),
                d.new
                    .as_ref()
                    .map(|f| human(f.size))
                    .unwrap_or_else(|| "-".into()),
            )
            .map_err(io_err("-"))?,
        }
    }
    out.flush().map_err(io_err("-"))
}

/// Runs `inspect ...`.
pub fn inspect(g: &Global, cmd: Inspect) -> Res {
    let root = g.root.as_path();
    let store = open(root)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match cmd {
        Inspect::Commit { commit, output } => {
            let r = FileRef::parse(&commit)?;
            let info = store.inspect_commit(&resolve(&store, &r)?)?;
            match output {
                Format::Json => json_pretty(&mut out, &info)?,
                Format::Text | Format::Yaml => {
                    let prov: Vec<String> = info
                        .direct_provenance
                        .iter()
                        .map(|c| c.to_string())
                        .collect();
                    let text = format!(
                        "Commit: {}\nBranch: {}\nParent: {}\nOrigin: {:?}\nState: {:?}\nError: {}\nStarted: {}\nFinished: {}\nSize: {}\nDescription: {}\nProvenance: {}\n",
                        info.commit,
                        info.branch.as_deref().unwrap_or("-"),
                        info.parent
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into()),
                        info.origin,
                        info.state,
                        info.error.as_deref().unwrap_or("-"),
                        timestamp(info.started_ms),
                        info.finished_ms
                            .map(timestamp)
                            .unwrap_or_else(|| "-".into()),
                        info.size_bytes.map(human).unwrap_or_else(|| "-".into()),
                        info.description,
                        prov.join(", ")
                    );
                    out.write_all(text.as_bytes()).map_err(io_err("-"))?;
                }
            }
        }
        Inspect::Repo { name, output } => {
            let info = store.inspect_repo(&RepoRef::parse(&name)?)?;
            match output {
                Format::Json => json_pretty(&mut out, &info)?,
                Format::Text | Format::Yaml => writeln!(
                    out,
                    "Repo: {}\nCreated: {}\nDescription: {}",
                    info.repo,
                    timestamp(info.created_ms),
                    info.description
                )
                .map_err(io_err("-"))?,
            }
        }
        Inspect::Branch { branch, output } => {
            let info = store.inspect_branch(&branch_of(&FileRef::parse(&branch)?)?)?;
            match output {
                Format::Json => json_pretty(&mut out, &info)?,
                Format::Text | Format::Yaml => {
                    let j = |v: &[BranchRef]| {
                        v.iter()
                            .map(|b| b.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    writeln!(
                        out,
                        "Branch: {}\nHead: {}\nProvenance: {}\nSubvenance: {}",
                        info.branch,
                        info.head,
                        j(&info.provenance),
                        j(&info.subvenance)
                    )
                    .map_err(io_err("-"))?
                }
            }
        }
        Inspect::File { file, output } => {
            let r = FileRef::parse(&file)?;
            let info = store.inspect_file(&resolve(&store, &r)?, &r.file_path()?)?;
            match output {
                Format::Json => json_pretty(&mut out, &info)?,
                Format::Text | Format::Yaml => writeln!(
                    out,
                    "Path: {}\nType: {:?}\nSize: {}\nHash: {}",
                    info.path, info.kind, info.size, info.hash
                )
                .map_err(io_err("-"))?,
            }
        }
    }
    Ok(())
}

/// Runs `start commit`.
pub fn start(g: &Global, cmd: Start) -> Res {
    let root = g.root.as_path();
    let Start::Commit {
        branch,
        description,
    } = cmd;
    let store = open(root)?;
    let info = store.start_commit(&branch_of(&FileRef::parse(&branch)?)?, &description)?;
    println!("{}", info.commit.id);
    Ok(())
}

/// Runs `finish commit`; returns the commit finished.
pub fn finish(g: &Global, cmd: Finish) -> Res<String> {
    let root = g.root.as_path();
    let Finish::Commit { commit, error } = cmd;
    let store = open(root)?;
    let c = resolve(&store, &FileRef::parse(&commit)?)?;
    store.finish_commit(
        &c,
        FinishOptions {
            error,
            description: None,
        },
    )?;
    Ok(c.to_string())
}
