//! `pipectl next datum [--error MESSAGE]`: called by datum-batching user code (reference
//! §3.5) to report the previous datum's result and block until the next datum is mounted
//! under `/pfs` (its per-datum variables in `/pfs/.env`). It talks to the worker over the
//! socket `pipeline_core::executor::batch` describes and never opens the store.
//!
//! Status: no executor runs batching user code yet (`datum_batching` is refused at create
//! time); the command and its protocol are here for that.

use std::path::PathBuf;

use pipeline_core::executor::batch::{self, Report};

use crate::error::{CliError, Res};

/// Arguments of `next datum`.
#[derive(Debug, clap::Args)]
pub struct NextDatumArgs {
    /// Report the previous datum as failed, with this message (default: it succeeded).
    #[arg(long)]
    pub error: Option<String>,
    /// The worker's socket (default: `$PIPECTL_NEXT_DATUM_SOCKET`, else
    /// `/pfs/.batch/next.sock`).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// Runs `next datum`.
pub fn run(args: NextDatumArgs) -> Res {
    let socket = args
        .socket
        .or_else(|| std::env::var_os(batch::SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(batch::DEFAULT_SOCKET));
    let report = args.error.map_or(Report::Ok, Report::Error);
    batch::next_datum(&socket, &report).map_err(|e| CliError::Usage(e.to_string()))
}
