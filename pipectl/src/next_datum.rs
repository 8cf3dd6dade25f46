//! `pipectl next datum [--error MESSAGE]`: called by datum-batching user code (reference
//! §3.5) to report the previous datum's result and block until the next datum is mounted
//! under `/pfs` (its per-datum variables in `/pfs/.env`). It talks to the worker through the
//! control pipes `pipeline_core::executor::batch` describes and never opens the store. The
//! process executor puts this binary's directory on user code's `PATH`; where it is absent
//! (a minimal image) a shell speaks the same protocol with `echo` and `read`.

use std::path::PathBuf;

use pipeline_core::executor::batch::{self, Report};

use crate::error::{CliError, Res};

/// Arguments of `next datum`.
#[derive(Debug, clap::Args)]
pub struct NextDatumArgs {
    /// Report the previous datum as failed, with this message (default: it succeeded).
    #[arg(long)]
    pub error: Option<String>,
    /// The worker's control directory (default: `$PIPECTL_NEXT_DATUM_DIR`, else
    /// `/pfs/.batch`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs `next datum`.
pub fn run(args: NextDatumArgs) -> Res {
    let dir = args
        .dir
        .or_else(|| std::env::var_os(batch::DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(batch::DEFAULT_DIR));
    let report = args.error.map_or(Report::Ok, Report::Error);
    batch::next_datum(&dir, &report).map_err(|e| CliError::Usage(e.to_string()))
}
