//! The CLI's error type, and [`report`]: the one place that prints an error with its sources.

use std::io;
use std::path::PathBuf;

use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::ExecutorError;
use pipeline_core::pfs::PfsError;
use pipeline_core::pps::PpsError;
use pipeline_core::spec::ParseError;

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
    /// Bad arguments, or a failure already explained on stderr.
    #[error("{0}")]
    Usage(String),
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
}

/// The result of a command.
pub type Res<T = ()> = Result<T, CliError>;

/// Maps an I/O error on `path` into [`CliError::Io`].
pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Io { path, source }
}

/// Prints `pipectl: ERROR: SOURCE: ...` on stderr; returns the exit code (1, or 0 when only
/// the reader of our output went away).
pub fn report(e: &CliError) -> i32 {
    if let CliError::Output(io) = e
        && io.kind() == io::ErrorKind::BrokenPipe
    {
        return 0;
    }
    eprintln!("pipectl: {}", ErrorChain(e));
    1
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
}
