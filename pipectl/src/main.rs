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
//! | `defaults` | `create/update/inspect/delete defaults --cluster\|--project P`: pipeline defaults |
//! | `preview` | `list datum -f SPEC`: a spec's datums before anything runs |
//! | `validate` | `validate -f SPEC` |
//! | `spec_source` | where a `-f` spec comes from: a file, `-` (stdin) or an `http(s)://` URL |
//! | `quickstart` | the README's first command |
//! | `version`, `completion` | `pipectl version`, shell completion scripts |
//! | `teach` | "did you mean ...?" for a repo or pipeline that is not found |
//! | `push_images` | `create\|update pipeline --push-images`: local images pushed, the spec sent with the pushed references |
//! | `jsonnet` | `--jsonnet TEMPLATE --arg K=V`: Jsonnet spec templates evaluated to specs |
//! | `edit_pipeline` | `edit pipeline`: the spec in `$EDITOR`, validated, applied as an update |
//! | `debug_datum` | `debug datum`: one recorded datum run again here and compared with its record |
//! | `transaction` | `start\|stop\|resume\|finish\|delete\|list\|inspect transaction`, where the active one is remembered, and the queuing of the commands a transaction takes |
//! | `file_verbs`, `commit_verbs`, `datum_verbs`, `draw` | `copy/diff/glob file`, `find/wait/subscribe commit`, `list datum` paging, `draw pipeline` |

use clap::Parser;

mod allocator;
mod cli;
mod commit_history;
mod commit_verbs;
mod completion;
mod conn;
mod data;
mod datum_verbs;
mod debug_datum;
mod defaults;
mod draw;
mod edit_pipeline;
mod engine;
mod error;
mod file_verbs;
mod fsck;
mod jsonnet;
mod next_datum;
mod output;
mod pipeline;
mod preview;
mod project;
mod push_images;
mod quickstart;
mod secret;
mod serve;
mod serve_hosts;
mod spec_source;
mod teach;
mod transaction;
mod validate;
mod version;

/// Sends the engine's `tracing` events to stderr from level `PIPECTL_LOG` (`error`, `warn`
/// (default), `info`, `debug`, `trace`) up: retries, lost leases and host take-overs say so
/// there.
fn log_to_stderr() {
    let level = std::env::var("PIPECTL_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() {
    allocator::limit_arenas();
    log_to_stderr();
    let args = cli::Cli::parse();
    std::process::exit(cli::run(args));
}
