//! `create secret -f`, `list secret`, `inspect secret`, `delete secret`: Kubernetes `Secret`
//! manifests kept in the store (`pipeline_core::pps::secrets`). Values are never printed.

use std::io::Read;

use pipeline_core::pps::secrets::SecretInfo;

use crate::conn::{Access, Global, connect};
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

/// Stores the secret of a manifest; prints nothing (as pachctl).
pub fn create(g: &Global, args: CreateSecretArgs) -> Res {
    let manifest = read_manifest(&args.file)?;
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.create_secret(&manifest))?;
    Ok(())
}

/// Lists secrets: name, type, keys, creation time.
pub fn list(g: &Global, args: ListSecretArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let all = conn.call(conn.client.list_secrets())?;
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
    let conn = connect(g, Access::Read, None)?;
    let s = conn.call(conn.client.inspect_secret(&args.name))?;
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
    let conn = connect(g, Access::Write, None)?;
    conn.call(conn.client.delete_secret(&args.name))?;
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
