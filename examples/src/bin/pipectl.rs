//! `pipectl`: a pachctl-like command-line tool built on `pipeline-core`.

use clap::Parser;

/// Pachyderm-style pipelines, embedded: specs, datums, data, jobs.
#[derive(Debug, Parser)]
#[command(name = "pipectl", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
