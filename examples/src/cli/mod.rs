//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod data;
pub mod datum;
pub mod validate;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
pub struct Cli {
    /// Store directory.
    #[arg(long, global = true, env = "PIPECTL_ROOT", default_value = ".pipectl")]
    pub root: PathBuf,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level verbs; each command group flattens its nouns into them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate pipeline spec files (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate::ValidateArgs),
    /// Create a repo, branch, ...
    Create {
        /// What to create.
        #[command(subcommand)]
        what: Create,
    },
    /// List repos, branches, files, commits, ...
    List {
        /// What to list.
        #[command(subcommand)]
        what: List,
    },
    /// Delete a repo, branch, file, ...
    Delete {
        /// What to delete.
        #[command(subcommand)]
        what: Delete,
    },
    /// Inspect a commit, repo, branch, file, ...
    Inspect {
        /// What to inspect.
        #[command(subcommand)]
        what: Inspect,
    },
    /// Upload data.
    Put {
        /// What to upload.
        #[command(subcommand)]
        what: data::Put,
    },
    /// Download data.
    Get {
        /// What to download.
        #[command(subcommand)]
        what: data::Get,
    },
    /// Match files with a glob.
    Glob {
        /// What to match.
        #[command(subcommand)]
        what: data::Glob,
    },
    /// Compare two commits.
    Diff {
        /// What to compare.
        #[command(subcommand)]
        what: data::Diff,
    },
    /// Start a commit, ...
    Start {
        /// What to start.
        #[command(subcommand)]
        what: Start,
    },
    /// Finish a commit, ...
    Finish {
        /// What to finish.
        #[command(subcommand)]
        what: Finish,
    },
}

/// Nouns of `create`.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// Data objects.
    #[command(flatten)]
    Data(data::Create),
}

/// Nouns of `list`.
#[derive(Debug, Subcommand)]
pub enum List {
    /// Preview a spec's datums without running anything.
    Datum(datum::ListDatumArgs),
    /// Data objects.
    #[command(flatten)]
    Data(data::List),
}

/// Nouns of `delete`.
#[derive(Debug, Subcommand)]
pub enum Delete {
    /// Data objects.
    #[command(flatten)]
    Data(data::Delete),
}

/// Nouns of `inspect`.
#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// Data objects.
    #[command(flatten)]
    Data(data::Inspect),
}

/// Nouns of `start`.
#[derive(Debug, Subcommand)]
pub enum Start {
    /// Data objects.
    #[command(flatten)]
    Data(data::Start),
}

/// Nouns of `finish`.
#[derive(Debug, Subcommand)]
pub enum Finish {
    /// Data objects.
    #[command(flatten)]
    Data(data::Finish),
}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let root = cli.root;
    let result = match cli.command {
        Command::Validate(args) => return validate::run(args),
        Command::List {
            what: List::Datum(args),
        } => return datum::list_datum(&args),
        Command::Create {
            what: Create::Data(c),
        } => data::create(&root, c),
        Command::List {
            what: List::Data(c),
        } => data::list(&root, c),
        Command::Delete {
            what: Delete::Data(c),
        } => data::delete(&root, c),
        Command::Inspect {
            what: Inspect::Data(c),
        } => data::inspect(&root, c),
        Command::Put { what } => data::put(&root, what),
        Command::Get { what } => data::get(&root, what),
        Command::Glob { what } => data::glob(&root, what),
        Command::Diff { what } => data::diff(&root, what),
        Command::Start {
            what: Start::Data(c),
        } => data::start(&root, c),
        Command::Finish {
            what: Finish::Data(c),
        } => data::finish(&root, c),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let mut msg = format!("pipectl: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                let s_str = s.to_string();
                if !msg.contains(&s_str) {
                    msg.push_str(&format!(": {s_str}"));
                }
                src = s.source();
            }
            eprintln!("{msg}");
            1
        }
    }
}
