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
use pipeline_core::pfs::{BranchRef, CommitInfo, FileInfo, FileKind, PfsError};
use pipeline_core::pps::TransactionRequest;
use pipeline_core::spec::effective::DEFAULT_BRANCH;
use pipeline_server::client::{
    BodyOutcome, Download, NdjsonStream, body_from_reader, tar_body_of_dir,
};
use pipeline_server::error::ErrorKind;
use pipeline_server::routes::branches::PutBranch;
use pipeline_server::routes::files::WriteResult;

use crate::conn::{Access, Conn, Global, connect};
use crate::engine::after_write_on;
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
    /// List the repos of the current project (`--project`; all projects with `-A`).
    Repo {
        /// Repos of every project, not only the current one.
        #[arg(short = 'A', long)]
        all_projects: bool,
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
    /// Files added, deleted or modified between two commits (below a path of each).
    File(crate::file_verbs::DiffFileArgs),
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

/// The repo of a reference, as the API names it (`project/name`).
fn repo_of(r: &FileRef) -> String {
    r.repo.to_string()
}

/// The commit-ish of a reference (`master` when absent).
fn at_of(r: &FileRef) -> &str {
    r.commit.as_deref().unwrap_or(DEFAULT_BRANCH)
}

fn branch_of(r: &FileRef) -> Res<BranchRef> {
    Ok(r.repo.branch(at_of(r))?)
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

/// Prints a listing as it arrives.
fn print_files(
    out: &mut impl Write,
    conn: &Conn,
    mut files: NdjsonStream<FileInfo>,
    format: Format,
) -> Res {
    if format == Format::Text {
        writeln!(out, "{:<60} {:<5} {:>12} HASH", "NAME", "TYPE", "SIZE").map_err(io_err("-"))?;
    }
    while let Some(f) = conn.call(files.next())? {
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

/// The header of [`print_commit_row`]'s table.
pub(crate) fn print_commit_header(out: &mut impl Write) -> Res {
    writeln!(
        out,
        "{:<20} {:<12} {:<32} {:<20} {:<8} {:<6} {:>10} DESCRIPTION",
        "REPO", "BRANCH", "COMMIT", "STARTED", "STATE", "ORIGIN", "SIZE"
    )
    .map_err(io_err("-"))
}

/// One commit as a table row.
pub(crate) fn print_commit_row(out: &mut impl Write, c: &CommitInfo) -> Res {
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
    let conn = connect(g, Access::Write, None)?;
    match cmd {
        Create::Repo { name, description } => {
            let repo = crate::project::repo(&name)?;
            conn.call(conn.client.create_repo(&repo.to_string(), &description))?;
        }
        Create::Branch {
            branch,
            head,
            provenance,
        } => {
            let b = branch_of(&crate::project::file_ref(&branch)?)?;
            let provenance = provenance
                .iter()
                .map(|p| Ok(branch_of(&crate::project::file_ref(p)?)?.to_string()))
                .collect::<Res<Vec<String>>>()?;
            let body = PutBranch { head, provenance };
            conn.call(conn.client.put_branch(&b.repo.to_string(), &b.name, &body))?;
        }
    }
    Ok(())
}

/// Runs `list ...`.
pub fn list(g: &Global, cmd: List) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cmd {
        List::Repo {
            all_projects,
            output,
        } => list_repos(&mut out, &conn, output, all_projects)?,
        List::Branch { repo, output } => {
            let r = crate::project::file_ref(&repo)?;
            let branches = conn.call(conn.client.list_branches(&repo_of(&r)))?;
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
            let r = crate::project::file_ref(&file)?;
            let path = r.file_path()?;
            let files =
                conn.call(
                    conn.client
                        .list_files(&repo_of(&r), at_of(&r), &path, recursive),
                )?;
            print_files(&mut out, &conn, files, output)?;
        }
        List::Commit {
            repo,
            number,
            output,
        } => {
            let r = crate::project::file_ref(&repo)?;
            let commits = conn.call(conn.client.list_commits(
                &repo_of(&r),
                r.commit.as_deref(),
                number,
            ))?;
            if output == Format::Text {
                print_commit_header(&mut out)?;
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

fn list_repos(out: &mut impl Write, conn: &Conn, output: Format, all_projects: bool) -> Res {
    let project = crate::project::current();
    let repos = conn
        .call(conn.client.list_repos())?
        .into_iter()
        .filter(|r| all_projects || r.repo.project == project);
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
            Format::Json => json_line(out, &r)?,
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
    Ok(())
}

/// Runs `delete ...`, then waits for the jobs it started (unless `--no-wait`).
pub fn delete(g: &Global, cmd: Delete) -> Res {
    let conn = connect(g, Access::Write, None)?;
    match cmd {
        Delete::Repo { name, force } => {
            conn.call(conn.client.delete_repo(&name, force))?;
            after_write_on(&conn, g.no_wait, None, &format!("deletion of repo {name}"))
        }
        Delete::Branch { branch, force } => {
            let b = branch_of(&crate::project::file_ref(&branch)?)?;
            conn.call(
                conn.client
                    .delete_branch(&b.repo.to_string(), &b.name, force),
            )?;
            after_write_on(
                &conn,
                g.no_wait,
                None,
                &format!("deletion of branch {branch}"),
            )
        }
        Delete::File { file } => {
            let r = crate::project::file_ref(&file)?;
            let path = r.file_path()?;
            let w = conn.call(conn.client.delete_file(&repo_of(&r), at_of(&r), &path));
            written(g, &conn, w)
        }
    }
}

/// After a write with the auto-commit rule: its warnings, the error its commit was finished
/// with, then the jobs it started.
pub(crate) fn written(g: &Global, conn: &Conn, w: Res<WriteResult>) -> Res {
    let w = w?;
    for r in &w.recovered {
        eprintln!("pipectl: warning: {r}");
    }
    if let Some(e) = &w.error {
        return Err(CliError::Usage(format!(
            "commit {} finished with error: {e}",
            w.commit
        )));
    }
    after_write_on(
        conn,
        g.no_wait,
        Some(w.commit.id.as_str()),
        &w.commit.to_string(),
    )
}

/// Runs `put file` (pachctl's auto-commit rule, applied by the server), then waits for the
/// jobs it started (unless `--no-wait`).
pub fn put(g: &Global, cmd: Put) -> Res {
    let Put::File {
        file,
        local,
        recursive,
    } = cmd;
    let r = crate::project::file_ref(&file)?;
    let dest = destination(&r, &local, recursive)?;
    let conn = connect(g, Access::Write, None)?;
    let w = upload(&conn, &r, &dest, &local, recursive);
    written(g, &conn, w)
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

/// Uploads stdin (`-`), a directory (`recursive`) or a file to `dest`.
fn upload(conn: &Conn, r: &FileRef, dest: &str, local: &str, recursive: bool) -> Res<WriteResult> {
    let (repo, at) = (repo_of(r), at_of(r));
    if recursive {
        return upload_dir(conn, &repo, at, dest, Path::new(local));
    }
    let (pb, (body, outcome)) = if local == "-" {
        let pb = bar(None);
        (pb.clone(), body_from_reader(pb.wrap_read(io::stdin())))
    } else {
        let local_path = PathBuf::from(local);
        let meta = fs::metadata(&local_path).map_err(io_err(&local_path))?;
        if meta.is_dir() {
            return Err(CliError::Usage(format!(
                "{local} is a directory; use -r to upload it recursively"
            )));
        }
        let f = fs::File::open(&local_path).map_err(io_err(&local_path))?;
        let pb = bar(Some(meta.len()));
        (pb.clone(), body_from_reader(pb.wrap_read(f)))
    };
    let w = conn.call(conn.client.put_file(&repo, at, dest, body));
    pb.finish_and_clear();
    local_error_first(w, &outcome, local)
}

/// A failed upload whose local side broke first is that local error (the server only saw
/// the body end early).
fn local_error_first(w: Res<WriteResult>, outcome: &BodyOutcome, local: &str) -> Res<WriteResult> {
    match (w, outcome.take_error()) {
        (Err(_), Some(e)) => Err(CliError::Io {
            path: PathBuf::from(local),
            source: e,
        }),
        (w, _) => w,
    }
}

/// Uploads a local directory: by its path when the server may read it (in-process, the
/// Unix socket: as fast as a local put), otherwise as a tar stream.
fn upload_dir(conn: &Conn, repo: &str, at: &str, dest: &str, local: &Path) -> Res<WriteResult> {
    let meta = fs::metadata(local).map_err(io_err(local))?;
    if !meta.is_dir() {
        return Err(PfsError::LocalPath {
            path: local.to_path_buf(),
            reason: "not a directory".into(),
        }
        .into());
    }
    let abs = std::path::absolute(local).map_err(io_err(local))?;
    let pb = bar(None);
    let by_path = conn.call(
        conn.client
            .put_local_dir(repo, at, dest, &abs.to_string_lossy()),
    );
    let w = match by_path {
        Err(CliError::Api(e)) if e.kind() == ErrorKind::Forbidden => {
            let (body, outcome) = tar_body_of_dir(abs);
            let w = conn.call(conn.client.put_tar(repo, at, dest, body));
            let mut w = local_error_first(w, &outcome, &local.to_string_lossy())?;
            w.skipped_symlinks = outcome.skipped_symlinks();
            w
        }
        other => other?,
    };
    pb.finish_and_clear();
    if w.skipped_symlinks > 0 {
        eprintln!("skipped {} symlink(s) (never followed)", w.skipped_symlinks);
    }
    Ok(w)
}

/// `gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Keep unreferenced contents written less than this many seconds ago (0 is safe when
    /// no upload runs at the same time; a server's other clients may be uploading).
    #[arg(long, default_value_t = 0)]
    pub grace_secs: u64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `gc`: removes stored contents no file refers to.
pub fn gc(g: &Global, args: GcArgs) -> Res {
    let conn = connect(g, Access::Write, None)?;
    let st = conn.call(conn.client.gc(args.grace_secs))?;
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
    let Get::File {
        file,
        output,
        recursive,
    } = cmd;
    let r = crate::project::file_ref(&file)?;
    let path = r.file_path()?;
    let conn = connect(g, Access::Read, None)?;
    if recursive {
        let Some(dir) = output else {
            return Err(CliError::Usage("get file -r needs -o DIR".into()));
        };
        return get_dir(&conn, &r, &path, &dir);
    }
    let mut dl = conn.call(conn.client.get_file(&repo_of(&r), at_of(&r), &path))?;
    match output {
        Some(p) => {
            let tmp = p.with_extension("pipectl-partial");
            let pb = bar(Some(dl.info.size));
            let done = download_to(&conn, &mut dl, &tmp, &pb);
            pb.finish_and_clear();
            if let Err(e) = done {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            fs::rename(&tmp, &p).map_err(io_err(&p))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            while let Some(chunk) = conn.call(dl.chunk())? {
                out.write_all(&chunk).map_err(io_err("-"))?;
            }
            out.flush().map_err(io_err("-"))?;
        }
    }
    Ok(())
}

/// Writes a download into local file `target`, counting on `pb`.
pub(crate) fn download_to(
    conn: &Conn,
    dl: &mut Download,
    target: &Path,
    pb: &indicatif::ProgressBar,
) -> Res {
    let mut w = pb.wrap_write(fs::File::create(target).map_err(io_err(target))?);
    while let Some(chunk) = conn.call(dl.chunk())? {
        w.write_all(&chunk).map_err(io_err(target))?;
    }
    w.flush().map_err(io_err(target))
}

/// `get file -r -o DIR`: one export request when the server may write local paths
/// (in-process, the Unix socket: it copies the tree itself, verifying as it goes), else the
/// recursive listing, streamed, and one download per file (each verified on its own, so a
/// damaged file is named by its own error).
pub(crate) fn get_dir(conn: &Conn, r: &FileRef, path: &str, dir: &Path) -> Res {
    let (repo, at) = (repo_of(r), at_of(r));
    let abs = std::path::absolute(dir).map_err(io_err(dir))?;
    let exported = conn.call(
        conn.client
            .export_local_dir(&repo, at, path, &abs.to_string_lossy()),
    );
    match exported {
        Err(CliError::Api(e)) if e.kind() == ErrorKind::Forbidden => {}
        other => return other.map(|_| ()),
    }
    let info = conn.call(conn.client.inspect_file(&repo, at, path))?;
    let base = if info.kind == FileKind::Dir {
        info.path.clone()
    } else {
        path.to_string()
    };
    let pb = bar(Some(info.size));
    let mut files = conn.call(conn.client.list_files(&repo, at, path, true))?;
    // Files come in path order: most share the directory made for the one before.
    let mut made: Option<PathBuf> = None;
    while let Some(f) = conn.call(files.next())? {
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
        if let Some(p) = target.parent()
            && made.as_deref() != Some(p)
        {
            fs::create_dir_all(p).map_err(io_err(p))?;
            made = Some(p.to_path_buf());
        }
        let mut dl = conn.call(conn.client.get_file(&repo, at, &f.path))?;
        download_to(conn, &mut dl, &target, &pb)?;
    }
    pb.finish_and_clear();
    Ok(())
}

/// Runs `glob file`.
pub fn glob(g: &Global, cmd: Glob) -> Res {
    let Glob::File { pattern, output } = cmd;
    // The pattern may contain ':' only after the first one.
    let (head, pat) = pattern.split_once(':').unwrap_or((&pattern, "/"));
    let r = crate::project::file_ref(head)?;
    let conn = connect(g, Access::Read, None)?;
    let files = conn.call(conn.client.glob_files(&repo_of(&r), at_of(&r), pat))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    print_files(&mut out, &conn, files, output)?;
    out.flush().map_err(io_err("-"))
}

/// Runs `diff file`.
pub fn diff(g: &Global, cmd: Diff) -> Res {
    let Diff::File(args) = cmd;
    crate::file_verbs::diff(g, args)
}

/// Runs `inspect ...`.
pub fn inspect(g: &Global, cmd: Inspect) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match cmd {
        Inspect::Commit { commit, output } => {
            let r = crate::project::file_ref(&commit)?;
            let info = conn.call(conn.client.inspect_commit(&repo_of(&r), at_of(&r)))?;
            match output {
                Format::Json => json_pretty(&mut out, &info)?,
                Format::Text | Format::Yaml => commit_text(&mut out, &info)?,
            }
        }
        Inspect::Repo { name, output } => {
            let info = conn.call(conn.client.inspect_repo(&name))?;
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
            let b = branch_of(&crate::project::file_ref(&branch)?)?;
            let info = conn.call(conn.client.inspect_branch(&b.repo.to_string(), &b.name))?;
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
            let r = crate::project::file_ref(&file)?;
            let path = r.file_path()?;
            let info = conn.call(conn.client.inspect_file(&repo_of(&r), at_of(&r), &path))?;
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

/// A commit, one field per line.
pub(crate) fn commit_text(out: &mut impl Write, info: &CommitInfo) -> Res {
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
    out.write_all(text.as_bytes()).map_err(io_err("-"))
}

/// Runs `start commit`.
pub fn start(g: &Global, cmd: Start) -> Res {
    let Start::Commit {
        branch,
        description,
    } = cmd;
    let b = branch_of(&crate::project::file_ref(&branch)?)?;
    let conn = connect(g, Access::Write, None)?;
    let info = conn.call(
        conn.client
            .start_commit(&b.repo.to_string(), &b.name, &description),
    )?;
    println!("{}", info.commit.id);
    Ok(())
}

/// Runs `finish commit`, then waits for the jobs it lets run (unless `--no-wait`).
pub fn finish(g: &Global, cmd: Finish) -> Res {
    let Finish::Commit { commit, error } = cmd;
    let r = crate::project::file_ref(&commit)?;
    let conn = connect(g, Access::Write, None)?;
    let info = conn.call(
        conn.client
            .finish_commit(&repo_of(&r), at_of(&r), error.as_deref()),
    )?;
    after_write_on(
        &conn,
        g.no_wait,
        Some(info.commit.id.as_str()),
        &info.commit.to_string(),
    )
}

/// The transaction request `create repo|branch` makes while a transaction is active.
pub(crate) fn create_request(cmd: &Create) -> TransactionRequest {
    match cmd {
        Create::Repo { name, description } => TransactionRequest::CreateRepo {
            repo: name.clone(),
            description: description.clone(),
        },
        Create::Branch {
            branch,
            head,
            provenance,
        } => TransactionRequest::CreateBranch {
            branch: branch.clone(),
            head: head.clone(),
            provenance: provenance.clone(),
        },
    }
}

/// The transaction request `delete repo|branch` makes while a transaction is active
/// (`delete file` has none: it runs at once).
pub(crate) fn delete_request(cmd: &Delete) -> Option<TransactionRequest> {
    match cmd {
        Delete::Repo { name, force } => Some(TransactionRequest::DeleteRepo {
            repo: name.clone(),
            force: *force,
        }),
        Delete::Branch { branch, force } => Some(TransactionRequest::DeleteBranch {
            branch: branch.clone(),
            force: *force,
        }),
        Delete::File { .. } => None,
    }
}

/// The transaction request `start commit` makes while a transaction is active.
pub(crate) fn start_request(cmd: &Start) -> TransactionRequest {
    let Start::Commit {
        branch,
        description,
    } = cmd;
    TransactionRequest::StartCommit {
        branch: branch.clone(),
        description: description.clone(),
    }
}

/// The transaction request `finish commit` makes while a transaction is active.
pub(crate) fn finish_request(cmd: &Finish) -> TransactionRequest {
    let Finish::Commit { commit, error } = cmd;
    TransactionRequest::FinishCommit {
        commit: commit.clone(),
        error: error.clone(),
    }
}
