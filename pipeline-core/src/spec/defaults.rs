//! Cluster and project defaults for pipeline specs (Pachyderm 2.x `ClusterDefaults` and
//! `ProjectDefaults`), and the merge that makes a spec's effective form from them.
//!
//! A defaults document is `{"create_pipeline_request": {...}}` (`createPipelineRequest` is
//! accepted too), the inner object being any part of a pipeline spec, in JSON or YAML:
//!
//! ```yaml
//! create_pipeline_request:
//!   datum_tries: 5
//!   resource_requests: {cpu: 1, memory: 512M}
//!   transform: {image: "python:3.12-slim"}
//! ```
//!
//! At create and update, the spec as written is layered over the defaults as RFC 7386 JSON
//! merge patches ([`merge_patch`](super::merge_patch)), in Pachyderm's order: built-in
//! defaults ← cluster defaults ← project defaults ← the spec ([`apply_defaults`]). So a spec
//! field beats a project default, which beats a cluster default; objects merge field by
//! field, lists are replaced whole, and an explicit `null` (in a spec or a project's
//! defaults) removes a default. Field names are made canonical first (snake_case and
//! camelCase both accepted; map keys such as `transform.env` names are left alone). The
//! built-in defaults are applied afterwards by [`PipelineSpec::effective`], which fills
//! exactly the fields that are still absent or empty, so the result is the same.
//!
//! What a defaults document may hold ([`parse_defaults`] checks it, every problem at once
//! with its field path and `LINE:COL`): the wrapper key and nothing else; inside it, only
//! fields of a pipeline spec with their types (unknown fields are errors, with a suggestion),
//! minus `pipeline` (a pipeline's name and project come from its spec) and the request flags
//! `update`, `reprocess`, `dry_run`, `spec_commit`; and no value that a spec-level rule
//! rejects where it is written (`parallelism_spec.constant` over the bound, `tf_job`, a bad
//! `reprocess_spec` or toleration, malformed `pod_patch`, ...). Pachyderm checks the same
//! way: it decodes the document strictly and validates the defaults merged into an empty spec.

use serde_json::Value;

use super::PipelineSpec;
use super::merge_patch::merge_patch;
use super::parse::{
    MAX_FILE_BYTES, ParseError, drop_schema_keys, invalid_file, parse_error, structural,
};
use super::source::to_snake_case;
use super::source::{Diagnostic, FieldPath, Location, PathSegment, SourceNode, SourceValue};

/// The key that wraps the spec fields of a defaults document.
pub const DEFAULTS_KEY: &str = "create_pipeline_request";

/// Spec fields a defaults document may not set, and why.
const NOT_DEFAULTS: &[(&str, &str)] = &[
    (
        "pipeline",
        "a pipeline's name and project come from its own spec",
    ),
    ("update", "it is a flag of one create request"),
    ("reprocess", "it is a flag of one create request"),
    ("dry_run", "it is a flag of one create request"),
    ("spec_commit", "it is a field of one create request"),
];

/// Fields whose values are maps with free-form keys (environment variable names, labels),
/// by their path of snake_case field names: their keys are never renamed.
const FREE_FORM_MAPS: &[&[&str]] = &[
    &["transform", "env"],
    &["metadata", "annotations"],
    &["metadata", "labels"],
    &["scheduling_spec", "node_selector"],
];

/// Fields whose whole value is opaque JSON, kept as written.
const OPAQUE: &[&str] = &["tf_job", "spec_commit"];

/// A checked defaults document (cluster or project): see the [module docs](self).
///
/// Made by [`parse_defaults`] or [`PipelineDefaults::from_json`]; serialised as the document
/// as written (`$schema` keys dropped), which is what `inspect defaults` prints.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct PipelineDefaults {
    document: serde_json::Map<String, Value>,
}

impl PipelineDefaults {
    /// The empty document `{}`: no defaults.
    pub fn empty() -> Self {
        PipelineDefaults::default()
    }

    /// Checks a document given as JSON (for example read back from storage): the same checks
    /// as [`parse_defaults`], with field paths but without line numbers.
    pub fn from_json(document: &Value, source_name: &str) -> Result<Self, ParseError> {
        let text = serde_json::to_string(document).unwrap_or_default();
        parse_defaults(&text, source_name)
    }

    /// The document as written.
    pub fn document(&self) -> &serde_json::Map<String, Value> {
        &self.document
    }

    /// Whether the document sets no default.
    pub fn is_empty(&self) -> bool {
        self.patch().as_object().is_none_or(|m| m.is_empty())
    }

    /// The spec fields of the document with canonical (snake_case) names, explicit `null`s
    /// kept: the merge patch it applies.
    pub fn patch(&self) -> Value {
        let inner = self
            .document
            .iter()
            .find(|(k, _)| to_snake_case(k) == DEFAULTS_KEY)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        match inner {
            Value::Object(_) => canonical_names(inner, &mut Vec::new()),
            _ => Value::Object(serde_json::Map::new()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for PipelineDefaults {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        PipelineDefaults::from_json(&value, "defaults").map_err(serde::de::Error::custom)
    }
}

/// Parses and checks a defaults document (JSON or YAML): every problem at once, each with its
/// field path (`create_pipeline_request.parallelism_spec.constant`) and line and column.
///
/// ```
/// use pipeline_core::spec::parse_defaults;
/// let d = parse_defaults("create_pipeline_request: {datum_tries: 5}\n", "d.yaml").unwrap();
/// assert_eq!(d.patch(), serde_json::json!({"datum_tries": 5}));
///
/// let err = parse_defaults(r#"{"create_pipeline_request": {"datum_trys": 5}}"#, "d.json")
///     .unwrap_err();
/// let problem = &err.diagnostics()[0];
/// assert_eq!(problem.path.to_string(), "create_pipeline_request.datum_trys");
/// assert!(problem.message.contains("did you mean `datum_tries`?"), "{problem}");
/// ```
pub fn parse_defaults(text: &str, source_name: &str) -> Result<PipelineDefaults, ParseError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(invalid_file(
            source_name,
            "file.too_large",
            Location::new(1, 1),
            format!(
                "defaults text is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                text.len()
            ),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs = super::reader::read_documents(text).map_err(|d| parse_error(source_name, d))?;
    let mut docs = docs.into_iter().filter(|d| d.value != SourceValue::Null);
    let (Some(mut node), None) = (docs.next(), docs.next()) else {
        return Err(invalid_file(
            source_name,
            "defaults.shape",
            Location::new(1, 1),
            "expected one defaults document: {\"create_pipeline_request\": {...}}",
        ));
    };
    drop_schema_keys(&mut node);
    let diagnostics = check_document(&node);
    if !diagnostics.is_empty() {
        let mut diagnostics = diagnostics;
        diagnostics.sort_by_key(|d| d.location);
        return Err(ParseError::Invalid {
            source_name: source_name.to_string(),
            diagnostics,
        });
    }
    match node.to_json_with_nulls() {
        Value::Object(document) => Ok(PipelineDefaults { document }),
        _ => Ok(PipelineDefaults::empty()),
    }
}

/// Every problem of a defaults document's tree.
fn check_document(node: &SourceNode) -> Vec<Diagnostic> {
    let wrapper = FieldPath::root().field(DEFAULTS_KEY);
    let SourceValue::Map(entries) = &node.value else {
        let mut d = Diagnostic::error(
            "defaults.shape",
            FieldPath::root(),
            format!(
                "expected a defaults document {{\"{DEFAULTS_KEY}\": {{...}}}}, found {}",
                node.type_name()
            ),
        );
        d.location = node.location;
        return vec![d];
    };
    let mut out = Vec::new();
    for (key, key_location, value) in entries {
        if to_snake_case(key) != DEFAULTS_KEY {
            let mut d = Diagnostic::error(
                "defaults.field",
                FieldPath::root().field(key),
                format!(
                    "unknown field `{key}` in the defaults document; expected `{DEFAULTS_KEY}`"
                ),
            );
            d.location = *key_location;
            out.push(d);
            continue;
        }
        match &value.value {
            SourceValue::Null => {}
            SourceValue::Map(_) => out.extend(check_request(value, &wrapper)),
            _ => {
                let mut d = Diagnostic::error(
                    "type",
                    wrapper.clone(),
                    format!(
                        "expected a mapping of pipeline spec fields, found {}",
                        value.type_name()
                    ),
                );
                d.location = value.location;
                out.push(d);
            }
        }
    }
    out
}

/// The problems of the spec fields inside the wrapper (paths get the wrapper's prefix).
fn check_request(request: &SourceNode, wrapper: &FieldPath) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if let SourceValue::Map(entries) = &request.value {
        for (key, key_location, _) in entries {
            let name = to_snake_case(key);
            if let Some((_, why)) = NOT_DEFAULTS.iter().find(|(n, _)| *n == name) {
                let mut d = Diagnostic::error(
                    "defaults.field",
                    FieldPath::root().field(&name),
                    format!("`{name}` cannot have a default: {why}"),
                );
                d.location = *key_location;
                found.push(d);
            }
        }
    }
    if found.is_empty() {
        match structural(request) {
            Err(structure) => found.extend(structure),
            Ok(spec) => found.extend(rule_errors(&spec, &request.to_json())),
        }
    }
    found
        .into_iter()
        .map(|mut d| {
            if !d.location.is_known() {
                d.location = request.locate(&d.path);
            }
            d.path = prefixed(wrapper, &d.path);
            d
        })
        .collect()
}

/// The spec rules' errors about fields the document writes: a rule that fires only because
/// the document leaves something to the spec (no `cmd`, no `input`) is not its problem.
fn rule_errors(spec: &PipelineSpec, written: &Value) -> Vec<Diagnostic> {
    let written = canonical_names(written.clone(), &mut Vec::new());
    crate::validate::validate_spec(spec)
        .errors
        .into_iter()
        .filter(|d| !d.path.segments().is_empty() && has_path(&written, &d.path))
        .collect()
}

/// Whether `value` holds something at `path`.
fn has_path(value: &Value, path: &FieldPath) -> bool {
    let mut at = value;
    for seg in path.segments() {
        let next = match seg {
            PathSegment::Field(name) => at.get(name.as_str()),
            PathSegment::Index(i) => at.get(*i),
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    true
}

fn prefixed(prefix: &FieldPath, path: &FieldPath) -> FieldPath {
    path.segments()
        .iter()
        .fold(prefix.clone(), |p, seg| match seg {
            PathSegment::Field(name) => p.field(name),
            PathSegment::Index(i) => p.index(*i),
        })
}

/// `value` with every field name in snake_case, except the keys of free-form maps and
/// opaque values. `at` is the path of snake_case field names to `value` (list indexes are
/// not part of it).
fn canonical_names(value: Value, at: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => {
            let free_form = FREE_FORM_MAPS
                .iter()
                .any(|p| p.len() == at.len() && p.iter().zip(at.iter()).all(|(a, b)| a == b));
            let mut out = serde_json::Map::new();
            for (key, child) in map {
                if free_form {
                    out.insert(key, child);
                    continue;
                }
                let name = to_snake_case(&key);
                let child = if at.is_empty() && OPAQUE.contains(&name.as_str()) {
                    child
                } else {
                    at.push(name.clone());
                    let c = canonical_names(child, at);
                    at.pop();
                    c
                };
                out.insert(name, child);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| canonical_names(item, at))
                .collect(),
        ),
        other => other,
    }
}

/// The merge patch of a spec as written: `spec` as JSON (so changes made to the typed spec
/// after parsing count), plus what its file wrote that the typed value cannot hold: explicit
/// `null`s (which remove defaults) and explicit empty values such as `false` or `[]` (which
/// override them). `node` is the spec's located tree, if it came from a file.
///
/// ```
/// use pipeline_core::spec::{parse_one, spec_patch};
/// let parsed = parse_one("pipeline: {name: p}\nautoscaling: false\nresourceLimits: null\n", "p.yaml")
///     .unwrap();
/// let patch = spec_patch(&parsed.spec, Some(&parsed.node));
/// assert_eq!(patch, serde_json::json!({"pipeline": {"name": "p"}, "autoscaling": false,
///                                      "resource_limits": null}));
/// ```
pub fn spec_patch(spec: &PipelineSpec, node: Option<&SourceNode>) -> Value {
    let mut typed = serde_json::to_value(spec).unwrap_or(Value::Object(serde_json::Map::new()));
    if let Some(node) = node {
        let written = canonical_names(node.to_json_with_nulls(), &mut Vec::new());
        add_written_empties(&mut typed, &written);
    }
    typed
}

/// Copies into `typed` every explicit empty value (`null`, `false`, `[]`, `{}`, `""`) of `written` that `typed` lacks, recursing through objects present in both.
fn add_written_empties(typed: &mut Value, written: &Value) {
    let (Value::Object(typed), Value::Object(written)) = (typed, written) else {
        return;
    };
    for (key, value) in written {
        match typed.get_mut(key) {
            Some(child) => add_written_empties(child, value),
            None if is_empty_value(value) => {
                typed.insert(key.clone(), value.clone());
            }
            None => {}
        }
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

/// Why a spec and its defaults do not make a spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("could not make the effective spec: {message}")]
pub struct MergeError {
    /// What the merged document got wrong.
    pub message: String,
}

/// The spec a pipeline runs, before the built-in defaults: `user` (the spec as written, as
/// JSON; explicit `null`s remove defaults) merged over `layers` (lowest first: cluster
/// defaults, then project defaults). See the [module docs](self).
///
/// ```
/// use pipeline_core::spec::{apply_defaults, parse_defaults};
/// use serde_json::json;
/// let cluster = parse_defaults(r#"{"create_pipeline_request":
///     {"datum_tries": 5, "parallelism_spec": {"constant": 2}}}"#, "cluster").unwrap();
/// let project = parse_defaults(r#"{"createPipelineRequest": {"datumTries": 7}}"#, "p").unwrap();
/// let user = json!({"pipeline": {"name": "edges"}, "transform": {"cmd": ["sh"]},
///                   "parallelism_spec": null});
/// let spec = apply_defaults(&[&cluster, &project], &user).unwrap();
/// assert_eq!(spec.datum_tries, Some(7));
/// assert_eq!(spec.parallelism_spec, None);
/// assert_eq!(spec.effective().datum_tries, 7);
/// ```
pub fn apply_defaults(
    layers: &[&PipelineDefaults],
    user: &Value,
) -> Result<PipelineSpec, MergeError> {
    let mut merged = Value::Object(serde_json::Map::new());
    for layer in layers {
        merge_patch(&mut merged, layer.patch());
    }
    merge_patch(&mut merged, canonical_names(user.clone(), &mut Vec::new()));
    serde_json::from_value(merged).map_err(|e| MergeError {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults(text: &str) -> PipelineDefaults {
        parse_defaults(text, "d").unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> Vec<String> {
        match parse_defaults(text, "d") {
            Ok(_) => Vec::new(),
            Err(e) => e
                .diagnostics()
                .iter()
                .map(|d| format!("{} {}: {}", d.location, d.path, d.message))
                .collect(),
        }
    }

    #[test]
    fn wrapper_in_snake_or_camel_case_and_yaml() {
        let a = defaults(r#"{"create_pipeline_request": {"datum_tries": 4}}"#);
        let b = defaults(r#"{"createPipelineRequest": {"datumTries": 4}}"#);
        let c = defaults("create_pipeline_request:\n  datum_tries: 4\n");
        assert_eq!(a.patch(), json!({"datum_tries": 4}));
        assert_eq!(b.patch(), a.patch());
        assert_eq!(c.patch(), a.patch());
        assert!(defaults("{}").is_empty());
        assert!(defaults(r#"{"create_pipeline_request": null}"#).is_empty());
        assert!(!a.is_empty());
    }

    #[test]
    fn unknown_and_forbidden_fields_are_errors_with_paths_and_positions() {
        let found = problems("create_pipeline_request:\n  datum_trys: 4\n  pipeline: {name: x}\n");
        assert_eq!(
            found,
            [
                "3:3 create_pipeline_request.pipeline: `pipeline` cannot have a default: a pipeline's name and project come from its own spec"
            ]
        );
        let found = problems("create_pipeline_request:\n  datum_trys: 4\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("2:3 create_pipeline_request.datum_trys: unknown field"),
            "{found:?}"
        );
        let found = problems(r#"{"defaults": {}, "create_pipeline_request": {}}"#);
        assert_eq!(
            found,
            [
                "1:2 defaults: unknown field `defaults` in the defaults document; expected `create_pipeline_request`"
            ]
        );
        assert_eq!(
            problems(r#"{"create_pipeline_request": [1]}"#),
            [
                "1:29 create_pipeline_request: expected a mapping of pipeline spec fields, found a list"
            ]
        );
        assert_eq!(problems("").len(), 1);
        assert_eq!(problems("[1]").len(), 1);
        assert_eq!(problems("{}\n---\n{}\n").len(), 1);
        assert_eq!(problems("{").len(), 1);
    }

    #[test]
    fn types_and_rules_are_checked_where_the_document_writes_them() {
        let found = problems(
            r#"{"create_pipeline_request": {"datum_tries": "many", "transform": {"image": "x:1"}}}"#,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("create_pipeline_request.datum_tries"));
        // The bound on workers applies; a missing cmd (the spec's business) does not.
        let found = problems(
            r#"{"create_pipeline_request": {"parallelism_spec": {"constant": 100000}, "transform": {"image": "x:1"}}}"#,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("create_pipeline_request.parallelism_spec.constant"),
            "{found:?}"
        );
        let found = problems(r#"{"create_pipeline_request": {"tf_job": {"a": 1}}}"#);
        assert!(
            found
                .iter()
                .any(|f| f.contains("create_pipeline_request.tf_job")),
            "{found:?}"
        );
        let found = problems(r#"{"create_pipeline_request": {"pod_patch": "{not json"}}"#);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn project_beats_cluster_and_spec_beats_both() {
        let cluster = defaults(
            r#"{"create_pipeline_request": {"datum_tries": 5, "parallelism_spec": {"constant": 2},
                "resource_requests": {"cpu": 1, "memory": "1G"}, "transform": {"image": "a:1"}}}"#,
        );
        let project = defaults(
            r#"{"createPipelineRequest": {"datumTries": 7, "resourceRequests": {"memory": "2G"},
                "transform": {"env": {"someVar": "x"}}}}"#,
        );
        let user = json!({"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"]},
                          "parallelismSpec": {"constant": 3}});
        let spec = apply_defaults(&[&cluster, &project], &user).unwrap();
        let eff = spec.effective();
        assert_eq!(eff.datum_tries, 7);
        assert_eq!(eff.workers(), 3);
        assert_eq!(eff.image(), "a:1");
        assert_eq!(eff.transform.cmd, ["sh"]);
        assert_eq!(
            eff.transform.env.get("someVar").map(String::as_str),
            Some("x")
        );
        let requests = eff.resource_requests.unwrap();
        assert_eq!(requests.cpu, Some(1.0));
        assert_eq!(requests.memory.as_deref(), Some("2G"));
    }

    #[test]
    fn nulls_in_the_spec_or_a_project_remove_defaults() {
        let cluster = defaults(
            r#"{"create_pipeline_request": {"resource_limits": {"memory": "1G"}, "autoscaling": true}}"#,
        );
        let project = defaults(r#"{"create_pipeline_request": {"resource_limits": null}}"#);
        let user = json!({"pipeline": {"name": "p"}, "autoscaling": false});
        let spec = apply_defaults(&[&cluster, &project], &user).unwrap();
        assert_eq!(spec.resource_limits, None);
        assert!(!spec.autoscaling);
        let spec = apply_defaults(&[&cluster], &json!({"pipeline": {"name": "p"}})).unwrap();
        assert!(spec.autoscaling);
        assert!(spec.resource_limits.is_some());
    }

    #[test]
    fn free_form_keys_keep_their_spelling() {
        let user = json!({"transform": {"env": {"fooBar": "1"}},
                          "metadata": {"labels": {"teamName": "a"}},
                          "tfJob": {"someKey": 1}});
        let got = canonical_names(user, &mut Vec::new());
        assert_eq!(
            got,
            json!({"transform": {"env": {"fooBar": "1"}},
                   "metadata": {"labels": {"teamName": "a"}},
                   "tf_job": {"someKey": 1}})
        );
    }

    #[test]
    fn round_trips_through_json() {
        let d = defaults("createPipelineRequest:\n  datumTries: 4\n  resource_limits: null\n");
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(
            text,
            r#"{"createPipelineRequest":{"datumTries":4,"resource_limits":null}}"#
        );
        let back: PipelineDefaults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<PipelineDefaults>(r#"{"x": 1}"#).is_err());
    }
}
