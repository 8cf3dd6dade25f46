//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use clap::Parser;

pub mod validate;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `pipectl` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Parse and validate pipeline spec files (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate::ValidateArgs),
}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(args) => validate::run(args),
    }
}
