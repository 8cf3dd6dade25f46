//! `create secret -f`, `list secret`, `inspect secret`, `delete secret`: Kubernetes `Secret`
//! manifests kept in the store (`pipeline_core::pps::secrets`). Values are never printed.

use std::io::Read;

use pipeline_core::pfs::Store;
use pipeline_core::pps::secrets::{self, SecretInfo};

use crate::conn::Global;
use crate::error::{CliError, Res, io_err};
use crate::output::{Format, outln, print_json, timestamp};

/// `create secret -f FILE`.
#[derive(Debug, clap::Args)]
pub struct CreateSecretArgs {
    /// A Kubernetes `Secret` manifest, JSON or YAML (`-` reads stdin).
    #[arg(short = 'f', long = "file")]
    pub file: String,
}

/// `list secret`.
#[derive(Debug, clap::Args)]
pub struct ListSecretArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `inspect secret NAME`.
#[derive(Debug, clap::Args)]
pub struct InspectSecretArgs {
    /// Secret name.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `delete secret NAME`.
#[derive(Debug, clap::Args)]
pub struct DeleteSecretArgs {
    /// Secret name.
    pub name: String,
}

fn read_manifest(file: &str) -> Res<String> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(io_err("-"))?;
    } else {
        text = std::fs::read_to_string(file).map_err(io_err(file))?;
    }
    Ok(text)
}

fn engine_err(e: secrets::SecretError) -> CliError {
    CliError::Engine(e.into())
}

/// Stores the secret of a manifest; prints nothing (as pachctl).
pub fn create(g: &Global, args: CreateSecretArgs) -> Res {
    let root = g.root.as_path();
    let manifest = read_manifest(&args.file)?;
    let store = Store::open(root)?;
    secrets::create_secret(&store, &manifest).map_err(engine_err)?;
    Ok(())
}

/// Lists secrets: name, type, keys, creation time.
pub fn list(g: &Global, args: ListSecretArgs) -> Res {
    let root = g.root.as_path();
    let store = Store::open(root)?;
    let all = secrets::list_secrets(&store).map_err(engine_err)?;
    match args.output {
        Format::Json => all.iter().for_each(print_json),
        Format::Yaml => print_yaml(&all)?,
        Format::Text => {
            outln!("{:<30} {:<16} {:<21} KEYS", "NAME", "TYPE", "CREATED");
            for s in &all {
                print_row(s);
            }
        }
    }
    Ok(())
}

/// Shows one secret without its values.
pub fn inspect(g: &Global, args: InspectSecretArgs) -> Res {
    let root = g.root.as_path();
    let store = Store::open(root)?;
    let s = secrets::inspect_secret(&store, &args.name).map_err(engine_err)?;
    match args.output {
        Format::Json => {
            let text =
                serde_json::to_string_pretty(&s).map_err(|e| CliError::Usage(e.to_string()))?;
            outln!("{text}");
        }
        Format::Yaml => print_yaml(&s)?,
        Format::Text => {
            outln!("Name: {}", s.name);
            outln!("Type: {}", s.secret_type);
            outln!("Created: {}", timestamp(s.created_ms));
            outln!("Keys: {}", s.keys.join(", "));
        }
    }
    Ok(())
}

/// Deletes a secret.
pub fn delete(g: &Global, args: DeleteSecretArgs) -> Res {
    let root = g.root.as_path();
    let store = Store::open(root)?;
    secrets::delete_secret(&store, &args.name).map_err(engine_err)?;
    Ok(())
}

fn print_row(s: &SecretInfo) {
    outln!(
        "{:<30} {:<16} {:<21} {}",
        s.name,
        s.secret_type,
        timestamp(s.created_ms),
        s.keys.join(",")
    );
}

fn print_yaml<T: serde::Serialize>(v: &T) -> Res {
    let text = serde_saphyr::to_string(v).map_err(|e| CliError::Usage(e.to_string()))?;
    outln!("{}", text.trim_end());
    Ok(())
}
