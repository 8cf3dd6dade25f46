//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use clap::{Parser, Subcommand};

pub mod datum;

pub mod validate;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level verbs; each command group flattens its nouns into them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List datums, ...
    List {
        /// What to list.
        #[command(subcommand)]
        what: List,
    },
    /// Parse and validate pipeline spec files (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate::ValidateArgs),
}

/// Nouns of `list`.
#[derive(Debug, Subcommand)]
pub enum List {
    /// Datums.
    #[command(flatten)]
    Datum(datum::List),
}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::List {
            what: List::Datum(c),
        } => datum::list(c),
        Command::Validate(args) => validate::run(args),
    }
}
