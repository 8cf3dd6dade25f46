//! `pipectl` commands. Each command group lives in its own module; this file only routes.

use clap::Parser;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
pub struct Cli {}

/// Runs `pipectl` with the given arguments; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let _ = cli;
    0
}
