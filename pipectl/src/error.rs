//! The CLI's error type, its exit codes, and [`report`]: the one place that prints an error
//! with its sources.

use std::io;
use std::path::PathBuf;

use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::ExecutorError;
use pipeline_core::pfs::PfsError;
use pipeline_core::pps::PpsError;
use pipeline_core::spec::ParseError;
use pipeline_server::ClientError;
use pipeline_server::error::{ErrorKind, pfs_kind, pps_kind};

/// The exit codes of `pipectl` (README "Exit codes", `pipectl --help`).
pub mod exit {
    /// The command did what it was asked (and every job it ran succeeded).
    pub const OK: i32 = 0;
    /// The command failed and changed nothing (a write that failed is discarded); also
    /// `wait job` when the job did not succeed, and `validate` on an invalid spec.
    pub const FAILED: i32 = 1;
    /// Bad arguments (clap's usage errors), an invalid name, path, reference or spec (the
    /// request was refused before anything changed), or `validate` on an unreadable file.
    pub const USAGE: i32 = 2;
    /// The command's data is committed (a put, a delete, a finished commit, a created
    /// pipeline), but a job it then started failed or could not run (including "store in
    /// use" when reopening it to run them). Do not retry the write.
    pub const COMMITTED_JOB_FAILED: i32 = 3;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] PpsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PfsError),
    /// A spec file could not be read or parsed.
    #[error(transparent)]
    Spec(#[from] ParseError),
    /// An executor could not be used.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// A failure already explained, or that has nothing else to say (exit 1).
    #[error("{0}")]
    Usage(String),
    /// Arguments that do not fit together or do not parse (exit 2).
    #[error("{0}")]
    BadArgs(String),
    /// Local I/O on a path (`-` for stdio).
    #[error("{}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Writing the command's output (a closed pipe ends the command quietly).
    #[error("writing output")]
    Output(#[source] io::Error),
    /// Other local I/O (starting the runtime, reading a stored file).
    #[error(transparent)]
    System(#[from] io::Error),
    /// The command's change is committed; running the jobs it started then failed.
    #[error("{what} committed; running the jobs it started then failed")]
    Committed {
        /// What is committed (e.g. `data@<id>`).
        what: String,
        /// Why running the jobs failed.
        #[source]
        source: Box<CliError>,
    },
    /// The command's change is committed; jobs it started did not succeed.
    #[error("{what} committed; {} job(s) it started did not succeed: {}", jobs.len(), jobs.join("; "))]
    JobsFailed {
        /// What is committed (e.g. `data@<id>`).
        what: String,
        /// `PIPELINE@JOB STATE (reason)` of each.
        jobs: Vec<String>,
    },
    /// A read found no store: nothing is created by reads.
    #[error("no store at {}: create one with `pipectl init` (or any write, e.g. `pipectl create repo`), or point --root / PIPECTL_ROOT at an existing one", .0.display())]
    NoStore(PathBuf),
    /// The API answered with an error, or could not be reached.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// An error with a hint that teaches what to do next (`did you mean ...?`, `use update
    /// pipeline`). The error's own chain is printed first.
    #[error("{}; {hint}", ErrorChain(&**error))]
    Hinted {
        /// The error.
        error: Box<CliError>,
        /// What to do.
        hint: String,
    },
    /// `wait job`: the job did not succeed (or cannot progress yet).
    #[error("job {job} {state}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    JobNotSucceeded {
        /// `PIPELINE@JOB`.
        job: String,
        /// What it is: "ended JOB_FAILURE", "is still JOB_STARTING".
        state: String,
        /// Its reason (e.g. which input commit it waits for).
        reason: String,
    },
}

impl CliError {
    /// The exit code (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Committed { .. } | CliError::JobsFailed { .. } => exit::COMMITTED_JOB_FAILED,
            CliError::BadArgs(_) | CliError::Spec(_) => exit::USAGE,
            CliError::Api(e) => exit_of(e.kind()),
            CliError::Store(e) => exit_of(pfs_kind(e)),
            CliError::Engine(e) => exit_of(pps_kind(e)),
            CliError::Hinted { error, .. } => error.exit_code(),
            _ => exit::FAILED,
        }
    }
}

/// The exit code of an API error kind: refused input is a usage error, anything else failed.
fn exit_of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Invalid => exit::USAGE,
        _ => exit::FAILED,
    }
}

/// The result of a command.
pub type Res<T = ()> = Result<T, CliError>;

/// Maps an I/O error on `path` into [`CliError::Io`].
pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Io { path, source }
}

/// Prints `pipectl: ERROR: SOURCE: ...` on stderr; returns the exit code
/// ([`CliError::exit_code`], or 0 when only the reader of our output went away).
pub fn report(e: &CliError) -> i32 {
    if let CliError::Output(io) = e
        && io.kind() == io::ErrorKind::BrokenPipe
    {
        return exit::OK;
    }
    eprintln!("pipectl: {}", ErrorChain(e));
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_prints_once() {
        let e = CliError::Io {
            path: "spec.yaml".into(),
            source: io::Error::other("disk on fire"),
        };
        assert_eq!(ErrorChain(&e).to_string(), "spec.yaml: disk on fire");
        let e = CliError::from(io::Error::other("no runtime"));
        assert_eq!(ErrorChain(&e).to_string(), "no runtime");
        let e = CliError::from(PfsError::Io {
            path: "/x".into(),
            source: io::Error::other("gone"),
        });
        assert_eq!(ErrorChain(&e).to_string(), "I/O error on /x: gone");
    }

    #[test]
    fn committed_errors_have_their_own_code_and_name_the_commit() {
        let e = CliError::Committed {
            what: "data@abc".into(),
            source: Box::new(CliError::Usage("store in use".into())),
        };
        assert_eq!(e.exit_code(), exit::COMMITTED_JOB_FAILED);
        assert_eq!(
            ErrorChain(&e).to_string(),
            "data@abc committed; running the jobs it started then failed: store in use"
        );
        let e = CliError::JobsFailed {
            what: "data@abc".into(),
            jobs: vec!["p@abc JOB_FAILURE (boom)".into()],
        };
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("1 job(s)"));
        assert_eq!(CliError::Usage("x".into()).exit_code(), exit::FAILED);
    }

    #[test]
    fn a_hint_follows_the_whole_chain_once_and_keeps_the_exit_code() {
        let e = CliError::Hinted {
            error: Box::new(CliError::Io {
                path: "spec.yaml".into(),
                source: io::Error::other("gone"),
            }),
            hint: "did you mean `spec.yml`?".into(),
        };
        assert_eq!(
            ErrorChain(&e).to_string(),
            "spec.yaml: gone; did you mean `spec.yml`?"
        );
        assert_eq!(e.exit_code(), exit::FAILED);
        let e = CliError::Hinted {
            error: Box::new(CliError::BadArgs("bad".into())),
            hint: "h".into(),
        };
        assert_eq!(e.exit_code(), exit::USAGE);
    }
}
