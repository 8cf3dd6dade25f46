//! How commands print: the one output format type and small printing helpers.

use std::io::Write;

use crate::error::{CliError, Res};

/// Output format (`-o`) of every command that prints something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text or table.
    #[default]
    #[value(alias = "table")]
    Text,
    /// JSON: one object per line for lists (streamable), one pretty object for inspections.
    Json,
    /// YAML, where a command has it (`create pipeline --dry-run --executor kubernetes`: the
    /// worker pods); text elsewhere.
    Yaml,
}

/// `println!` that ends the process quietly when stdout is a closed pipe (`| head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
pub(crate) use outln;

/// Prints `v` as one line of JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) {
    outln!("{}", serde_json::to_string(v).unwrap_or_default());
}

/// Writes `v` as one line of JSON.
pub fn json_line<T: serde::Serialize>(out: &mut impl Write, v: &T) -> Res {
    let s = serde_json::to_string(v).map_err(|e| CliError::Usage(e.to_string()))?;
    writeln!(out, "{s}").map_err(crate::error::io_err("-"))
}

/// Writes `v` as pretty JSON.
pub fn json_pretty<T: serde::Serialize>(out: &mut impl Write, v: &T) -> Res {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Usage(e.to_string()))?;
    writeln!(out, "{s}").map_err(crate::error::io_err("-"))
}

/// Civil time (UTC) of a Unix-epoch millisecond count, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn timestamp(ms: u64) -> String {
    pipeline_core::civil_time::rfc3339(ms / 1000)
}

/// A byte count for people: `512 B`, `1.5 KiB`, ...
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS.get(u).unwrap_or(&"B"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_sizes() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
