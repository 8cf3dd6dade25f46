//! `create|update|inspect|delete defaults --cluster | --project P`: the cluster's and a
//! project's pipeline defaults (`pipeline_core::spec::defaults`), merged under every spec at
//! create and update.
//!
//! As in pachctl: `create` and `update` both replace the defaults with the file's document
//! (`-f`, default stdin); `delete` removes them; none changes a pipeline unless
//! `--regenerate` (or `--reprocess`, which implies it) asks for new versions of the pipelines
//! whose effective spec changes. `--cluster` and the global `--project` are exclusive and one
//! of them is required.

use std::path::PathBuf;

use pipeline_core::pps::{DefaultsChange, DefaultsScope, SetDefaultsOptions};

use crate::conn::{Access, Global, connect};
use crate::error::{CliError, Res};
use crate::output::{Format, outln};

/// `create defaults` and `update defaults`.
#[derive(Debug, clap::Args)]
pub struct SetDefaultsArgs {
    /// The cluster defaults (else the defaults of the global `--project`).
    #[arg(long)]
    pub cluster: bool,
    /// The defaults document, JSON or YAML: `{"create_pipeline_request": {...}}` (`-` reads
    /// stdin, an `http(s)://` URL is fetched).
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: PathBuf,
    /// Give every pipeline whose effective spec the new defaults change a new version now.
    #[arg(long)]
    pub regenerate: bool,
    /// Regenerated pipelines reprocess every datum (implies `--regenerate`).
    #[arg(long)]
    pub reprocess: bool,
    /// Check the document and list the pipelines it would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format (`json`: the affected pipelines as an object).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `inspect defaults`.
#[derive(Debug, clap::Args)]
pub struct InspectDefaultsArgs {
    /// The cluster defaults (else the defaults of the global `--project`).
    #[arg(long)]
    pub cluster: bool,
    /// Output format: `text` prints the document, `json` the record (document and time).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `delete defaults`.
#[derive(Debug, clap::Args)]
pub struct DeleteDefaultsArgs {
    /// The cluster defaults (else the defaults of the global `--project`).
    #[arg(long)]
    pub cluster: bool,
    /// Give every pipeline whose effective spec changes without them a new version now.
    #[arg(long)]
    pub regenerate: bool,
    /// Regenerated pipelines reprocess every datum (implies `--regenerate`).
    #[arg(long)]
    pub reprocess: bool,
    /// List the pipelines it would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format (`json`: the affected pipelines as an object).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Whose defaults: `--cluster`, or the global `--project`; exactly one.
fn scope(g: &Global, cluster: bool) -> Res<DefaultsScope> {
    match (cluster, &g.project) {
        (true, None) => Ok(DefaultsScope::Cluster),
        (false, Some(p)) => Ok(DefaultsScope::Project(p.clone())),
        (true, Some(p)) => Err(CliError::BadArgs(format!(
            "--cluster and --project {p} (or PIPECTL_PROJECT) are exclusive: give one of them"
        ))),
        (false, None) => Err(CliError::BadArgs(
            "which defaults? give --cluster or --project PROJECT".into(),
        )),
    }
}

/// `create defaults` / `update defaults`: replaces the defaults with the file's document.
pub fn set(g: &Global, args: SetDefaultsArgs) -> Res {
    let scope = scope(g, args.cluster)?;
    let (bytes, name) = crate::spec_source::read(&args.file)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("{name}: the defaults file is not UTF-8 text")))?;
    let opts = SetDefaultsOptions {
        regenerate: args.regenerate || args.reprocess,
        reprocess: args.reprocess,
        dry_run: args.dry_run,
    };
    let conn = connect(g, Access::Write, None)?;
    let change = conn.call(conn.client.set_defaults(&scope, &text, &name, opts))?;
    print_change(&scope, "set", &change, opts, args.output)
}

/// `inspect defaults`: the document (`{}` when none are set).
pub fn inspect(g: &Global, args: InspectDefaultsArgs) -> Res {
    let scope = scope(g, args.cluster)?;
    let conn = connect(g, Access::Read, None)?;
    let record = conn.call(conn.client.inspect_defaults(&scope))?;
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&record),
        Format::Text => serde_json::to_string_pretty(&record.defaults),
        Format::Yaml => {
            let yaml = serde_saphyr::to_string(&record.defaults)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            outln!("{}", yaml.trim_end());
            return Ok(());
        }
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// `delete defaults`.
pub fn delete(g: &Global, args: DeleteDefaultsArgs) -> Res {
    let scope = scope(g, args.cluster)?;
    let opts = SetDefaultsOptions {
        regenerate: args.regenerate || args.reprocess,
        reprocess: args.reprocess,
        dry_run: args.dry_run,
    };
    let conn = connect(g, Access::Write, None)?;
    let change = conn.call(conn.client.delete_defaults(&scope, opts))?;
    print_change(&scope, "deleted", &change, opts, args.output)
}

/// What a change did: with `--regenerate`, the affected pipelines (pachctl's wording) on
/// stdout; a one-line confirmation on stderr.
fn print_change(
    scope: &DefaultsScope,
    verb: &str,
    change: &DefaultsChange,
    opts: SetDefaultsOptions,
    output: Format,
) -> Res {
    if output == Format::Json {
        let text =
            serde_json::to_string_pretty(change).map_err(|e| CliError::Usage(e.to_string()))?;
        outln!("{text}");
    } else if opts.regenerate {
        if change.affected_pipelines.is_empty() {
            outln!("no affected pipelines");
        } else {
            outln!("affected pipelines:");
            for p in &change.affected_pipelines {
                outln!("\t{p}");
            }
        }
    }
    if change.dry_run {
        eprintln!("dry run: the {scope} were not changed");
    } else {
        eprintln!("{verb} the {scope}");
    }
    Ok(())
}
