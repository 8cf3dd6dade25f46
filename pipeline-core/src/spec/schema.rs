//! The JSON Schema of a pipeline spec, shipped as `pipeline-core/schema/pipeline-spec.schema.json`
//! (point an editor at it for completion of JSON and YAML specs), and the structural check that
//! uses it.
//!
//! The schema is generated from the Rust types with schemars ([`generate`]) and post-processed:
//! every snake_case property also gets its camelCase spelling (both are accepted, as by
//! protojson), optional fields are not nullable (a `null` is removed before the check: it means
//! "unset"), durations and string-encoded integers carry patterns. A test keeps the shipped file
//! equal to [`generate`]'s output; regenerate it with
//! `UPDATE_SCHEMA=1 cargo test -p pipeline-core --test spec_schema`.
//!
//! ```
//! let schema = pipeline_core::spec::schema::shipped();
//! assert_eq!(schema["title"], "Pachyderm 2.x pipeline spec");
//! ```

use std::sync::OnceLock;

use serde_json::Value;

use super::PipelineSpec;
use super::duration::DURATION_PATTERN;
use super::lenient::INT_STRING_PATTERN;
use super::source::{Diagnostic, FieldPath, SourceNode, to_camel_case, to_snake_case};

/// The shipped schema file's text.
pub const SCHEMA_JSON: &str = include_str!("../../schema/pipeline-spec.schema.json");

/// The schema generated from the Rust types (what the shipped file must contain).
pub fn generate() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<PipelineSpec>();
    let mut value = schema.to_value();
    postprocess(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert(
            "$id".into(),
            Value::String("https://pipelines-rs.invalid/pipeline-spec.schema.json".into()),
        );
        map.insert(
            "title".into(),
            Value::String("Pachyderm 2.x pipeline spec".into()),
        );
    }
    value
}

/// [`generate`]'s output as the text of the shipped file (pretty JSON, trailing newline).
pub fn generate_text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).unwrap_or_default();
    text.push('\n');
    text
}

/// The shipped schema, parsed.
pub fn shipped() -> &'static Value {
    static SHIPPED: OnceLock<Value> = OnceLock::new();
    SHIPPED.get_or_init(|| serde_json::from_str(SCHEMA_JSON).unwrap_or(Value::Bool(true)))
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn postprocess(v: &mut Value) {
    match v {
        Value::Object(map) => {
            // Option<T> → T (null is stripped before validation).
            if let Some(Value::Array(alts)) = map.get("anyOf")
                && alts.len() == 2
                && alts.iter().any(is_null_schema)
                && let Some(Value::Object(other)) =
                    alts.iter().find(|a| !is_null_schema(a)).cloned()
            {
                map.remove("anyOf");
                for (k, val) in other {
                    map.entry(k).or_insert(val);
                }
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let single = types.remove(0);
                    map.insert("type".into(), single);
                }
            }
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                let extra: Vec<(String, Value)> = props
                    .iter()
                    .filter(|(k, _)| k.contains('_'))
                    .map(|(k, v)| (to_camel_case(k), v.clone()))
                    .collect();
                for (k, val) in extra {
                    props.entry(k).or_insert(val);
                }
            }
            // Defaults describe serialisation, not the file: drop them.
            map.remove("default");
            for (_, child) in map.iter_mut() {
                postprocess(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(postprocess),
        _ => {}
    }
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| jsonschema::validator_for(shipped()).ok())
        .as_ref()
}

/// Follows `$ref`s to the subschema that describes the value at `path`.
fn subschema_at<'a>(root: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let resolve = |mut s: &'a Value| -> Option<&'a Value> {
        for _ in 0..16 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.strip_prefix("#/$defs/")?;
                    s = root.get("$defs")?.get(name)?;
                }
                None => return Some(s),
            }
        }
        None
    };
    let mut s = resolve(root)?;
    for seg in path.segments() {
        s = match seg {
            super::PathSegment::Field(name) => {
                let props = s.get("properties")?;
                props
                    .get(name.as_str())
                    .or_else(|| props.get(to_camel_case(name).as_str()))
                    .or_else(|| match s.get("additionalProperties") {
                        Some(Value::Object(_)) => s.get("additionalProperties"),
                        _ => None,
                    })?
            }
            super::PathSegment::Index(_) => s.get("items")?,
        };
        s = resolve(s)?;
    }
    Some(s)
}

/// Field names known at `path` (snake_case spellings only).
fn known_fields(path: &FieldPath) -> Vec<String> {
    subschema_at(shipped(), path)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| {
            props
                .keys()
                .filter(|k| to_snake_case(k) == **k)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

const REMOVED: &[(&str, &str)] = &[
    ("enable_stats", "stats are always collected"),
    ("standby", "use `autoscaling`"),
    ("cache_size", "workers no longer keep a datum cache"),
    ("max_queue_size", "datums are distributed in datum sets"),
    ("chunk_spec", "use `datum_set_spec`"),
    ("hashtree_spec", "hashtrees no longer exist"),
    ("coefficient", "use `constant`"),
    ("git", "the git input no longer exists"),
    ("atom", "use `pfs`"),
    ("build", "build the image yourself"),
];

/// The known field closest to `unknown`, if it is close enough to be a typo.
pub(crate) fn suggest(unknown: &str, known: &[String]) -> Option<String> {
    let norm = |s: &str| to_snake_case(s).replace('_', "").to_ascii_lowercase();
    let u = norm(unknown);
    known
        .iter()
        .map(|k| (crate::suggest::edit_distance(&u, &norm(k)), k))
        .filter(|(d, k)| *d <= k.len().div_ceil(3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// The message for an unknown field `field` in the object at `parent`.
pub(crate) fn unknown_field_message(field: &str, parent: &FieldPath) -> String {
    let snake = to_snake_case(field);
    if let Some((_, hint)) = REMOVED.iter().find(|(name, _)| *name == snake) {
        return format!("field `{field}` was removed in Pachyderm 2.x ({hint})");
    }
    let place = if parent.segments().is_empty() {
        "the pipeline spec".to_string()
    } else {
        parent.to_string()
    };
    match suggest(field, &known_fields(parent)) {
        Some(s) => format!("unknown field `{field}` in {place}; did you mean `{s}`?"),
        None => format!("unknown field `{field}` in {place}"),
    }
}

fn describe_types(schema: Option<&Value>) -> String {
    let one = |t: &str| match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    };
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => one(t).to_string(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a different type".to_string(),
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Checks `json` (the spec with nulls removed) against the shipped schema; every violation
/// becomes a diagnostic located through `node`.
pub(crate) fn check(json: &Value, node: &SourceNode) -> Vec<Diagnostic> {
    let Some(validator) = validator() else {
        return vec![Diagnostic::error(
            "schema.internal",
            FieldPath::root(),
            "the shipped JSON Schema does not compile (build problem)",
        )];
    };
    let mut out = Vec::new();
    for err in validator.iter_errors(json) {
        let path = FieldPath::from_json_pointer(err.instance_path().as_str());
        match err.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for field in unexpected {
                    let field_path = path.field(&to_snake_case(field));
                    let mut d = Diagnostic::error(
                        if REMOVED.iter().any(|(n, _)| *n == to_snake_case(field)) {
                            "field.removed"
                        } else {
                            "field.unknown"
                        },
                        field_path.clone(),
                        unknown_field_message(field, &path),
                    );
                    // Locate the key as written (it may be camelCase or odd-cased).
                    d.location = node.locate(&path.field(field));
                    out.push(d);
                }
            }
            jsonschema::error::ValidationErrorKind::Type { .. } => {
                let expected = describe_types(subschema_at(shipped(), &path));
                out.push(Diagnostic::error(
                    "type",
                    path,
                    format!("expected {expected}, found {}", short(err.instance())),
                ));
            }
            jsonschema::error::ValidationErrorKind::Pattern { pattern } => {
                let value = err.instance();
                let text = value.as_str().unwrap_or_default();
                let message = if pattern == DURATION_PATTERN {
                    super::DurationError {
                        input: text.to_string(),
                    }
                    .to_string()
                } else if pattern == INT_STRING_PATTERN {
                    format!("invalid integer {text:?}: expected a decimal integer like \"5\"")
                } else {
                    format!("{} does not match the pattern {pattern}", short(value))
                };
                out.push(Diagnostic::error("type", path, message));
            }
            _ => {
                out.push(Diagnostic::error("schema", path, err.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known: Vec<String> = ["glob", "repo", "join_on", "branch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(suggest("glb", &known).as_deref(), Some("glob"));
        assert_eq!(suggest("joinOn", &known).as_deref(), Some("join_on"));
        assert_eq!(suggest("brnch", &known).as_deref(), Some("branch"));
        assert_eq!(suggest("zzzzzz", &known), None);
    }
}
