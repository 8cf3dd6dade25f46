//! `pipectl validate -f FILE [-f FILE ...]`: parse and validate pipeline spec files.
//!
//! Exit status: 0 when every spec in every file is valid (warnings allowed), 1 when any spec is
//! invalid, 2 when a file cannot be read. Errors go to stderr as
//! `FILE:LINE:COL: FIELD.PATH: message`, warnings as `warning: FILE:LINE:COL: FIELD.PATH: message`.
//! `-o json` prints a machine-readable report on stdout; `--effective` prints the effective
//! spec(s) (Pachyderm's defaults applied) on stdout, as a stream of JSON documents.

use std::io::Write;
use std::path::{Path, PathBuf};

use pipeline_core::spec::{self, Diagnostic, ParseError, ParsedSpec};
use pipeline_core::validate;
use serde_json::json;

use crate::output::Format;

/// Writes a line to stdout, ignoring a closed pipe (`pipectl validate ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Writes a line to stderr, ignoring errors.
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Arguments of `pipectl validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Spec file to validate (JSON or YAML; one spec, a `---` stream or a list). Repeatable;
    /// `-` reads standard input, `http://` / `https://` fetches a URL.
    #[arg(short = 'f', long = "file", required = true, value_name = "FILE|-|URL")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Also print the effective spec(s): the specs with Pachyderm's defaults applied.
    #[arg(long)]
    pub effective: bool,
}

/// Exit status: every spec valid.
pub const EXIT_VALID: i32 = crate::error::exit::OK;
/// Exit status: some spec invalid.
pub const EXIT_INVALID: i32 = crate::error::exit::FAILED;
/// Exit status: some file unreadable.
pub const EXIT_UNREADABLE: i32 = crate::error::exit::USAGE;

/// What happened to one file.
enum FileOutcome {
    Unreadable(String),
    Invalid(Vec<Diagnostic>),
    Parsed(Vec<(ParsedSpec, validate::Report)>),
}

fn load(path: &Path) -> Result<Vec<ParsedSpec>, ParseError> {
    if path.as_os_str() == "-" || crate::spec_source::is_url(path) {
        let (bytes, name) = crate::spec_source::read(path)?;
        spec::parse_bytes(&bytes, &name)
    } else {
        spec::parse_file(path)
    }
}

fn check_file(path: &Path) -> FileOutcome {
    match load(path) {
        Err(ParseError::Io { source, .. }) => FileOutcome::Unreadable(source.to_string()),
        Err(ParseError::Invalid { diagnostics, .. }) => FileOutcome::Invalid(diagnostics),
        Ok(specs) => FileOutcome::Parsed(
            specs
                .into_iter()
                .map(|s| {
                    let report = validate::validate(&s);
                    (s, report)
                })
                .collect(),
        ),
    }
}

/// `FILE:LINE:COL: FIELD.PATH: message`, with `warning: ` in front of warnings.
pub fn format_diagnostic(file: &str, d: &Diagnostic) -> String {
    let prefix = if d.severity == spec::Severity::Warning {
        "warning: "
    } else {
        ""
    };
    let path = d.path.to_string();
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    format!(
        "{prefix}{file}:{}:{}: {path}{}",
        d.location.line, d.location.column, d.message
    )
}

fn effective_json(s: &ParsedSpec) -> serde_json::Value {
    serde_json::to_value(s.spec.effective()).unwrap_or(serde_json::Value::Null)
}

/// Runs `pipectl validate`; returns the exit status.
pub fn run(args: ValidateArgs) -> i32 {
    let mut status = EXIT_VALID;
    let mut files_json = Vec::new();
    for path in &args.files {
        let name = crate::spec_source::display_name(path);
        let outcome = check_file(path);
        let file_status = match &outcome {
            FileOutcome::Unreadable(_) => EXIT_UNREADABLE,
            FileOutcome::Invalid(_) => EXIT_INVALID,
            FileOutcome::Parsed(specs) => {
                if specs.iter().all(|(_, r)| r.is_valid()) {
                    EXIT_VALID
                } else {
                    EXIT_INVALID
                }
            }
        };
        status = status.max(file_status);
        match args.output {
            Format::Json => files_json.push(file_json(&name, &outcome, args.effective)),
            Format::Text | Format::Yaml => print_text(&name, &outcome, args.effective),
        }
    }
    if args.output == Format::Json {
        let report = json!({
            "valid": status == EXIT_VALID,
            "files": files_json,
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    status
}

fn print_text(name: &str, outcome: &FileOutcome, effective: bool) {
    match outcome {
        FileOutcome::Unreadable(e) => err!("{name}: cannot read file: {e}"),
        FileOutcome::Invalid(diagnostics) => {
            for d in diagnostics {
                err!("{}", format_diagnostic(name, d));
            }
        }
        FileOutcome::Parsed(specs) => {
            for (s, report) in specs {
                for d in report.errors.iter().chain(&report.warnings) {
                    err!("{}", format_diagnostic(name, d));
                }
                if effective && report.is_valid() {
                    out!(
                        "{}",
                        serde_json::to_string_pretty(&effective_json(s)).unwrap_or_default()
                    );
                }
            }
            let invalid = specs.iter().filter(|(_, r)| !r.is_valid()).count();
            if !effective {
                if invalid == 0 {
                    let names: Vec<&str> = specs
                        .iter()
                        .filter_map(|(s, _)| s.pipeline_name())
                        .collect();
                    out!(
                        "{name}: valid ({} spec{}: {})",
                        specs.len(),
                        if specs.len() == 1 { "" } else { "s" },
                        names.join(", ")
                    );
                } else {
                    err!("{name}: {invalid} of {} spec(s) invalid", specs.len());
                }
            }
        }
    }
}

fn diagnostics_json(file: &str, list: &[Diagnostic]) -> Vec<serde_json::Value> {
    list.iter()
        .map(|d| {
            json!({
                "file": file,
                "severity": d.severity,
                "code": d.code,
                "spec_index": d.spec_index,
                "path": d.path.to_string(),
                "line": d.location.line,
                "column": d.location.column,
                "message": d.message,
            })
        })
        .collect()
}

fn file_json(name: &str, outcome: &FileOutcome, effective: bool) -> serde_json::Value {
    match outcome {
        FileOutcome::Unreadable(e) => json!({
            "file": name, "readable": false, "valid": false, "read_error": e,
            "errors": [], "specs": [],
        }),
        FileOutcome::Invalid(diagnostics) => json!({
            "file": name, "readable": true, "valid": false,
            "errors": diagnostics_json(name, diagnostics), "specs": [],
        }),
        FileOutcome::Parsed(specs) => {
            let specs_json: Vec<_> = specs
                .iter()
                .map(|(s, r)| {
                    let mut v = json!({
                        "index": s.index,
                        "pipeline": s.pipeline_name(),
                        "valid": r.is_valid(),
                        "errors": diagnostics_json(name, &r.errors),
                        "warnings": diagnostics_json(name, &r.warnings),
                    });
                    if effective && let Some(obj) = v.as_object_mut() {
                        obj.insert("effective".into(), effective_json(s));
                    }
                    v
                })
                .collect();
            json!({
                "file": name, "readable": true,
                "valid": specs.iter().all(|(_, r)| r.is_valid()),
                "errors": [], "specs": specs_json,
            })
        }
    }
}
