//! Where things are in a spec file: field paths, line/column locations, diagnostics, and the
//! located value tree that maps one to the other.

use std::fmt;

/// A 1-based line and column in a spec file. `0:0` means "not known" (a spec built in code).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Location {
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
}

impl Location {
    /// A location at `line`, `column` (both 1-based).
    pub fn new(line: usize, column: usize) -> Self {
        Location { line, column }
    }
    /// Whether this location points into a file.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A field, by its snake_case name (`glob`).
    Field(String),
    /// A list element (`[1]`).
    Index(usize),
}

/// The path of a field inside one spec, displayed as `input.cross[1].pfs.glob`.
///
/// ```
/// use pipeline_core::spec::FieldPath;
/// let path = FieldPath::root().field("input").field("cross").index(1).field("pfs");
/// assert_eq!(path.to_string(), "input.cross[1].pfs");
/// assert_eq!(FieldPath::root().to_string(), "");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<PathSegment>);

impl FieldPath {
    /// The empty path: the spec itself.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    /// This path extended by a field.
    pub fn field(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.0.push(PathSegment::Field(name.to_string()));
        p
    }
    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(PathSegment::Index(i));
        p
    }
    /// The segments, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }
    /// Parses a JSON pointer (`/input/cross/1/pfs`) into a path; numeric segments become
    /// indexes and camelCase field names become snake_case.
    pub fn from_json_pointer(pointer: &str) -> Self {
        let mut p = FieldPath::root();
        for raw in pointer.split('/').skip(1) {
            let seg = raw.replace("~1", "/").replace("~0", "~");
            match seg.parse::<usize>() {
                Ok(i) => p.0.push(PathSegment::Index(i)),
                Err(_) => p.0.push(PathSegment::Field(to_snake_case(&seg))),
            }
        }
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                PathSegment::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// `joinOn` → `join_on`; snake_case names are returned unchanged. `URL` stays `URL`.
pub(crate) fn to_snake_case(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_uppercase()) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `join_on` → `joinOn`.
pub(crate) fn to_camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The spec is rejected.
    Error,
    /// The spec is accepted, but something is probably not what the author meant.
    Warning,
}

/// One finding about a spec: what is wrong, where (field path and source location), and a
/// stable machine-readable `code` naming the rule (e.g. `input.glob.required`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable rule identifier, for programs and tests.
    pub code: &'static str,
    /// Index of the spec in its file (0-based, in document/array order).
    pub spec_index: usize,
    /// The field the finding is about, displayed as `input.cross[1].pfs.glob`.
    #[serde(serialize_with = "serialize_display")]
    pub path: FieldPath,
    /// Where the field (or its nearest written ancestor) is in the file.
    pub location: Location,
    /// What is wrong and what is expected.
    pub message: String,
}

fn serialize_display<S: serde::Serializer>(v: &FieldPath, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Diagnostic {
    /// An error diagnostic.
    pub fn error(code: &'static str, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            spec_index: 0,
            path,
            location: Location::default(),
            message: message.into(),
        }
    }
    /// A warning diagnostic.
    pub fn warning(code: &'static str, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, path, message)
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `LINE:COL: FIELD.PATH: message` (the `FILE:` prefix is the caller's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{}: ", self.location)?;
        if !self.path.segments().is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A value of a spec file together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceNode {
    /// Where the value starts.
    pub location: Location,
    /// The value.
    pub value: SourceValue,
}

/// The value of a [`SourceNode`]: JSON's data model, with located keys.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceValue {
    /// `null`, `~` or an empty YAML value.
    Null,
    /// `true` / `false` (YAML 1.2 only: `yes`/`no`/`on`/`off` are strings).
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string (quoted, or a plain scalar that is no other type; `0755` stays a string).
    String(String),
    /// A list.
    Seq(Vec<SourceNode>),
    /// A mapping in written order, with each key's own location.
    Map(Vec<(String, Location, SourceNode)>),
}

impl SourceNode {
    /// The child at `key` of a mapping, matching snake_case and camelCase spellings.
    pub fn get(&self, key: &str) -> Option<&SourceNode> {
        self.get_entry(key).map(|(_, n)| n)
    }

    fn get_entry(&self, key: &str) -> Option<(Location, &SourceNode)> {
        match &self.value {
            SourceValue::Map(entries) => {
                let camel = to_camel_case(key);
                entries
                    .iter()
                    .find(|(k, _, _)| k == key || *k == camel)
                    .map(|(_, l, n)| (*l, n))
            }
            _ => None,
        }
    }

    /// The location of `path`, or of its nearest ancestor that is written in the file. For a
    /// field, the location is that of its key (where an editor should put the cursor).
    pub fn locate(&self, path: &FieldPath) -> Location {
        let mut node = self;
        let mut loc = self.location;
        for seg in path.segments() {
            match seg {
                PathSegment::Field(name) => match node.get_entry(name) {
                    Some((key_loc, child)) => {
                        loc = key_loc;
                        node = child;
                    }
                    None => return loc,
                },
                PathSegment::Index(i) => match &node.value {
                    SourceValue::Seq(items) => match items.get(*i) {
                        Some(child) => {
                            loc = child.location;
                            node = child;
                        }
                        None => return loc,
                    },
                    _ => return loc,
                },
            }
        }
        loc
    }

    /// Whether the mapping has `key` written with an explicit `null` value.
    pub fn is_explicit_null(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some(SourceNode {
                value: SourceValue::Null,
                ..
            })
        )
    }

    /// The node as a JSON value, dropping mapping entries whose value is `null` (protojson
    /// treats `null` as "unset"). Non-finite floats become strings (and then fail the type check).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            SourceValue::Null => Value::Null,
            SourceValue::Bool(b) => Value::Bool(*b),
            SourceValue::Int(i) => Value::from(*i),
            SourceValue::UInt(u) => Value::from(*u),
            SourceValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            SourceValue::String(s) => Value::String(s.clone()),
            SourceValue::Seq(items) => {
                Value::Array(items.iter().map(SourceNode::to_json).collect())
            }
            SourceValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .filter(|(_, _, v)| v.value != SourceValue::Null)
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The node as a JSON value with explicit `null`s kept (a merge patch: `null` removes
    /// what a lower layer set, see [`merge_patch`](super::merge_patch)).
    pub fn to_json_with_nulls(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            SourceValue::Seq(items) => {
                Value::Array(items.iter().map(SourceNode::to_json_with_nulls).collect())
            }
            SourceValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json_with_nulls()))
                    .collect(),
            ),
            _ => self.to_json(),
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            SourceValue::Null => "null",
            SourceValue::Bool(_) => "a boolean",
            SourceValue::Int(_) | SourceValue::UInt(_) => "an integer",
            SourceValue::Float(_) => "a number",
            SourceValue::String(_) => "a string",
            SourceValue::Seq(_) => "a list",
            SourceValue::Map(_) => "a mapping",
        }
    }
}
