//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use clap::{CommandFactory, Parser, Subcommand};

pub mod datum;

pub mod validate;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate pipeline spec files (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate::ValidateArgs),
    /// List objects.
    #[command(subcommand)]
    List(ListCommand),
}

/// `pipectl list ...`
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Preview a spec's datums without running anything.
    Datum(datum::ListDatumArgs),
}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::Validate(args)) => validate::run(args),
        Some(Command::List(ListCommand::Datum(args))) => datum::list_datum(&args),
        None => {
            let _ = Cli::command().print_help();
            0
        }
    }
}
