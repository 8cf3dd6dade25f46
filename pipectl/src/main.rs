//! `pipectl`: a pachctl-like command-line tool over `pipeline-core`.
//!
//! The CLI only parses arguments, calls the library and formats its answers:
//!
//! | module | what |
//! |---|---|
//! | `cli` | the argument grammar and the routing of each command |
//! | `error` | the CLI's one error type and the one place that prints an error chain |
//! | `output` | the output format (`-o text\|json\|yaml`) and printing helpers |
//! | `engine` | opening the store and an engine with the executors its pipelines use; waiting for jobs |
//! | `data` | repos, branches, commits, files |
//! | `fsck` | `fsck [--fix]`: the store's objects and references verified |
//! | `pipeline` | pipelines, jobs, datums, logs, cron |
//! | `serve` | `serve`: the store's one owner, serving the API until stopped |
//! | `secret` | `create/list/inspect/delete secret`: Kubernetes `Secret` manifests in the store |
//! | `preview` | `list datum -f SPEC`: a spec's datums before anything runs |
//! | `validate` | `validate -f SPEC` |
//! | `quickstart` | the README's first command |

use clap::Parser;

mod cli;
mod commit_verbs;
mod conn;
mod data;
mod datum_verbs;
mod draw;
mod engine;
mod error;
mod file_verbs;
mod fsck;
mod output;
mod pipeline;
mod preview;
mod quickstart;
mod secret;
mod serve;
mod validate;

fn main() {
    let args = cli::Cli::parse();
    std::process::exit(cli::run(args));
}
