//! `pipectl`: a pachctl-like command-line tool built on `pipeline-core`.

use clap::Parser;

fn main() {
    let cli = examples::cli::Cli::parse();
    std::process::exit(examples::cli::run(cli));
}
