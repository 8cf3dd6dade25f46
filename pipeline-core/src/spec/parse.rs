//! Reading spec files: JSON or YAML, one spec, a `---` stream, or a top-level list.
//!
//! # The YAML reader, and why
//!
//! Every file, JSON included, is read by the **serde-saphyr** stack: its event parser,
//! `granit-parser` (pure safe Rust, fuzzed upstream, YAML 1.2, precise line/column), driven by
//! our own small tree builder (module `spec::reader`). JSON is YAML 1.2 flow syntax and Pachyderm
//! itself converts YAML to JSON before decoding, so one reader gives the same behaviour and the
//! same line/column quality for both. `serde_yaml` is archived, its maintained forks sit on
//! transpiled C (`unsafe-libyaml`), and `serde_yml` is unsound (`shared/reference/rust-crates.md`
//! §4.1).
//!
//! Why the event layer and not `serde_saphyr::from_str`: (1) serde deserialisation recurses
//! once per nesting level and needed ~30 KiB of stack per level in debug builds, so a deeply
//! nested file overflowed a 2 MiB thread before the depth budget fired; the tree builder keeps
//! an explicit stack, so nesting costs heap and is refused at [`MAX_DEPTH`] with the line of the
//! offending bracket; (2) every key and value keeps its own line and column, so any later
//! finding (schema, validation) is reported at `FILE:LINE:COL` with its field path; (3) scalar
//! typing is exactly Pachyderm's, the effect serde-saphyr's `strict_booleans` and
//! `leading_zero_numbers_as_strings` options aim at: only `true`/`false` are booleans (`no`,
//! `on`, `yes` stay strings), integers must match `^(0|-?[1-9][0-9]*)$` (`0755` stays a string);
//! (4) anchors and aliases are refused where they are written (Pachyderm rejects them), and
//! duplicate keys at the duplicate.
//!
//! Limits: files over [`MAX_FILE_BYTES`] are refused, nesting deeper than [`MAX_DEPTH`] is an
//! error (a 10,000-level nested `cross` never reaches the stack), at most [`MAX_SPECS`] specs.
//!
//! **`$schema`.** A `$schema` key, at any mapping level, is dropped before anything else looks
//! at the spec, as Pachyderm drops it: editors that validate against the published JSON Schema
//! insert it. Every other key keeps its line and column.
//!
//! `null` means "unset" (protojson); an explicit `"transform": null` is still visible to the
//! validator, which rejects it as Pachyderm does.
//!
//! **Integers as strings.** protojson accepts `"5"` for every integer field (int64 values are
//! strings in canonical protojson), so we accept a string holding a decimal integer wherever an
//! integer is expected, and serialise integers back as numbers.
//!
//! With the `schema` feature (default), the structural check is the shipped JSON Schema
//! ([`crate::spec::schema`]), which reports **every** unknown field, wrong type and bad duration at
//! once. Without it, the typed deserialisation reports the first structural error only.

use std::path::Path;

use super::PipelineSpec;
use super::source::{Diagnostic, FieldPath, Location, SourceNode, SourceValue};

/// Largest spec file accepted (8 MiB).
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Deepest nesting of lists and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most specs in one file.
pub const MAX_SPECS: usize = 10_000;

/// A spec parsed from a file, with the located tree it came from.
#[derive(Debug, Clone)]
pub struct ParsedSpec {
    /// The file name (or `<stdin>`, or whatever the caller named the text).
    pub source_name: String,
    /// Index of this spec in its file (document/array order, 0-based).
    pub index: usize,
    /// The spec as written (no defaults applied).
    pub spec: PipelineSpec,
    /// The located tree of this spec, to map field paths to line/column.
    pub node: SourceNode,
}

impl ParsedSpec {
    /// Where `path` (or its nearest written ancestor) is in the file.
    pub fn locate(&self, path: &FieldPath) -> Location {
        self.node.locate(path)
    }

    /// Fills in the location and spec index of a diagnostic about this spec.
    pub fn locate_diagnostic(&self, mut d: Diagnostic) -> Diagnostic {
        d.location = self.locate(&d.path);
        d.spec_index = self.index;
        d
    }

    /// The pipeline's name, if it has one (for messages).
    pub fn pipeline_name(&self) -> Option<&str> {
        self.spec.pipeline.as_ref().map(|p| p.name.as_str())
    }
}

/// Why a spec file could not be turned into specs.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but holds no valid spec: syntax errors, unknown fields, wrong types.
    /// Every problem found is listed (all specs of the file are checked).
    #[error("{source_name}: {}", summarize(.diagnostics))]
    Invalid {
        /// The file name.
        source_name: String,
        /// Every problem, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn summarize(diagnostics: &[Diagnostic]) -> String {
    match diagnostics {
        [] => "invalid spec file".to_string(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl ParseError {
    /// The diagnostics of an invalid file (empty for I/O errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ParseError::Io { .. } => &[],
            ParseError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Reads and parses a spec file. See [`parse_str`].
pub fn parse_file(path: impl AsRef<Path>) -> Result<Vec<ParsedSpec>, ParseError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |source| ParseError::Io {
        path: name.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(invalid(
            &name,
            file_error(
                "file.too_large",
                Location::new(1, 1),
                format!(
                    "spec file is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    meta.len()
                ),
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_bytes(&bytes, &name)
}

/// Parses spec bytes (must be UTF-8). See [`parse_str`].
pub fn parse_bytes(bytes: &[u8], source_name: &str) -> Result<Vec<ParsedSpec>, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text, source_name),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
            let column = 1 + valid.iter().rev().take_while(|b| **b != b'\n').count();
            Err(invalid(
                source_name,
                file_error(
                    "file.not_utf8",
                    Location::new(line, column),
                    "spec file is not UTF-8 text (binary data?)",
                ),
            ))
        }
    }
}

fn file_error(code: &'static str, location: Location, message: impl Into<String>) -> Diagnostic {
    let mut d = Diagnostic::error(code, FieldPath::root(), message);
    d.location = location;
    d
}

fn invalid(source_name: &str, d: Diagnostic) -> ParseError {
    ParseError::Invalid {
        source_name: source_name.to_string(),
        diagnostics: vec![d],
    }
}

/// The error of a file with one problem `d` (for other readers of spec-shaped files).
pub(crate) fn parse_error(source_name: &str, d: Diagnostic) -> ParseError {
    invalid(source_name, d)
}

/// The error of a file with one problem of the whole file, at `location`.
pub(crate) fn invalid_file(
    source_name: &str,
    code: &'static str,
    location: Location,
    message: impl Into<String>,
) -> ParseError {
    invalid(source_name, file_error(code, location, message))
}

/// Parses specs from text: JSON or YAML, one spec, a `---` stream of specs, or a top-level
/// list of specs. Returns every spec with its located tree, or **all** problems found in the
/// file (syntax, unknown fields, wrong types, bad durations) with line and column.
///
/// Defaults are not applied (see [`PipelineSpec::effective`]) and semantic checks are not run
/// (see [`crate::validate::validate`]).
///
/// ```
/// use pipeline_core::spec::parse_str;
/// let specs = parse_str("pipeline: {name: edges}\ntransform: {cmd: [sh]}\n", "edges.yaml").unwrap();
/// assert_eq!(specs[0].pipeline_name(), Some("edges"));
///
/// let err = parse_str(r#"{"pipeline": {"name": "x"}, "input": {"pfs": {"glb": "/"}}}"#, "x.json")
///     .unwrap_err();
/// let d = &err.diagnostics()[0];
/// assert_eq!(d.path.to_string(), "input.pfs.glb");
/// assert_eq!(d.message, "unknown field `glb` in input.pfs; did you mean `glob`?");
/// ```
pub fn parse_str(text: &str, source_name: &str) -> Result<Vec<ParsedSpec>, ParseError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(invalid(
            source_name,
            file_error(
                "file.too_large",
                Location::new(1, 1),
                format!(
                    "spec text is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    text.len()
                ),
            ),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs = super::reader::read_documents(text).map_err(|d| invalid(source_name, d))?;

    let mut nodes = Vec::new();
    let mut diagnostics = Vec::new();
    for doc in docs {
        match doc.value {
            SourceValue::Null => {}
            SourceValue::Seq(items) => nodes.extend(items),
            SourceValue::Map(_) => nodes.push(doc),
            _ => diagnostics.push(file_error(
                "file.not_a_spec",
                doc.location,
                format!(
                    "expected a pipeline spec (a mapping) or a list of specs, found {}",
                    doc.type_name()
                ),
            )),
        }
    }
    if nodes.is_empty() && diagnostics.is_empty() {
        return Err(invalid(
            source_name,
            file_error(
                "file.empty",
                Location::new(1, 1),
                "no pipeline spec in the file",
            ),
        ));
    }

    let mut specs = Vec::with_capacity(nodes.len());
    for (index, mut node) in nodes.into_iter().enumerate() {
        drop_schema_keys(&mut node);
        match structural(&node) {
            Ok(spec) => specs.push(ParsedSpec {
                source_name: source_name.to_string(),
                index,
                spec,
                node,
            }),
            Err(found) => diagnostics.extend(found.into_iter().map(|mut d| {
                d.spec_index = index;
                if !d.location.is_known() {
                    d.location = node.locate(&d.path);
                }
                d
            })),
        }
    }
    if diagnostics.is_empty() {
        Ok(specs)
    } else {
        diagnostics.sort_by_key(|d| (d.location, d.spec_index));
        Err(ParseError::Invalid {
            source_name: source_name.to_string(),
            diagnostics,
        })
    }
}

/// Parses text that must hold exactly one spec: [`parse_str`], then an error (code
/// `file.not_one_spec`, at the second spec) when the text holds several. Text with no spec is
/// the same `file.empty` error as for [`parse_str`].
///
/// ```
/// use pipeline_core::spec::parse_one;
/// let one = parse_one("pipeline: {name: edges}\ntransform: {cmd: [sh]}\n", "edges.yaml").unwrap();
/// assert_eq!(one.pipeline_name(), Some("edges"));
///
/// let two = "pipeline: {name: a}\n---\npipeline: {name: b}\n";
/// let err = parse_one(two, "two.yaml").unwrap_err();
/// assert_eq!(err.diagnostics()[0].code, "file.not_one_spec");
/// assert!(parse_one("", "empty.yaml").is_err());
/// ```
pub fn parse_one(text: &str, origin: &str) -> Result<ParsedSpec, ParseError> {
    let mut specs = parse_str(text, origin)?;
    if specs.len() == 1 {
        return Ok(specs.remove(0));
    }
    let second = &specs[1];
    let mut diagnostic = file_error(
        "file.not_one_spec",
        second.node.location,
        format!("expected exactly one pipeline spec, found {}", specs.len()),
    );
    diagnostic.spec_index = second.index;
    Err(invalid(origin, diagnostic))
}

/// The key editors insert to name the JSON Schema a document follows.
pub const SCHEMA_KEY: &str = "$schema";

/// Removes every [`SCHEMA_KEY`] entry from the mappings of `node`, at any depth (an explicit
/// stack: the tree is at most [`MAX_DEPTH`] deep, but no recursion is needed).
pub(crate) fn drop_schema_keys(node: &mut SourceNode) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &mut n.value {
            SourceValue::Map(entries) => {
                entries.retain(|(k, _, _)| k != SCHEMA_KEY);
                stack.extend(entries.iter_mut().map(|(_, _, child)| child));
            }
            SourceValue::Seq(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// The structural check of one spec's tree: schema (with the `schema` feature), then the typed
/// conversion.
pub(crate) fn structural(node: &SourceNode) -> Result<PipelineSpec, Vec<Diagnostic>> {
    if !matches!(node.value, SourceValue::Map(_)) {
        return Err(vec![Diagnostic::error(
            "type",
            FieldPath::root(),
            format!(
                "expected a pipeline spec (a mapping), found {}",
                node.type_name()
            ),
        )]);
    }
    let json = node.to_json();
    #[cfg(feature = "schema")]
    {
        let found = super::schema::check(&json, node);
        if !found.is_empty() {
            return Err(found);
        }
    }
    serde_json::from_value::<PipelineSpec>(json).map_err(|e| {
        vec![Diagnostic::error(
            "type",
            FieldPath::root(),
            serde_message(&e.to_string()),
        )]
    })
}

/// serde's messages end with " at line 0 column 0" for `from_value`; drop that.
fn serde_message(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.invalid/pipeline-spec.schema.json";

    #[test]
    fn schema_keys_are_dropped_at_every_level_in_json_and_yaml() {
        let json = format!(
            r#"{{"$schema": "{URL}", "pipeline": {{"name": "edges", "$schema": 1}},
                "transform": {{"cmd": ["sh"], "$schema": {{"nested": [1]}}}},
                "input": {{"cross": [{{"pfs": {{"repo": "a", "glob": "/*", "$schema": "x"}}}},
                                    {{"pfs": {{"repo": "b", "glob": "/"}}}}]}}}}"#
        );
        let yaml = format!(
            "$schema: {URL}\npipeline:\n  name: edges\n  $schema: x\ntransform:\n  cmd: [sh]\n\
             input:\n  cross:\n  - pfs: {{repo: a, glob: /*, $schema: x}}\n  - pfs: {{repo: b, glob: /}}\n"
        );
        for (text, name) in [(json, "s.json"), (yaml, "s.yaml")] {
            let specs = parse_str(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(specs[0].pipeline_name(), Some("edges"));
            let tree = serde_json::to_string(&specs[0].node.to_json()).unwrap();
            assert!(!tree.contains("$schema"), "{name}: {tree}");
        }
    }

    #[test]
    fn errors_next_to_a_schema_key_keep_their_line_and_column() {
        let yaml = format!("$schema: {URL}\npipeline:\n  name: x\n  $schema: y\n  nmae: z\n");
        let err = parse_str(&yaml, "x.yaml").unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!(d.path.to_string(), "pipeline.nmae");
        assert_eq!((d.location.line, d.location.column), (5, 3));
    }

    #[test]
    fn only_the_exact_schema_key_is_dropped() {
        for key in ["$Schema", "schema", "$schemas", "$id"] {
            let text = format!("{{\"{key}\": \"u\", \"pipeline\": {{\"name\": \"x\"}}}}");
            let err = parse_str(&text, "x.json").unwrap_err();
            let d = &err.diagnostics()[0];
            assert!(
                d.message.contains(&format!("unknown field `{key}`")),
                "{key}: {err}"
            );
            assert_eq!((d.location.line, d.location.column), (1, 2), "{key}");
        }
    }
}
