//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use clap::{Parser, Subcommand};

pub mod datum;

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
    }
}
