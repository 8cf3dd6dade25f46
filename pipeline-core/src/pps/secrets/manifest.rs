//! Reading a Kubernetes `Secret` manifest (JSON or YAML), as `pachctl create secret -f` takes.
//!
//! Required: `apiVersion: v1`, `kind: Secret`, `metadata.name` (a DNS subdomain: lowercase
//! letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253
//! bytes). Values come from `data` (base64, standard alphabet with padding, as Kubernetes
//! stores them) and/or `stringData` (plain text; it wins over `data` for the same key, as the
//! Kubernetes API server merges them). Keys are `[-._a-zA-Z0-9]+`, at most 253 bytes. `type`
//! defaults to `Opaque`. Everything else (`metadata.namespace`, labels, `immutable`) is ignored.
//!
//! Errors never quote a value: a bad base64 value names its key, not its bytes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::executor::SecretValue;

use super::SecretError;

/// Longest manifest accepted (1 MiB, the Kubernetes limit on a secret's data).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// A parsed, checked `Secret` manifest. `Debug` shows the keys, never the values.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretManifest {
    /// `metadata.name`.
    pub name: String,
    /// `type` (`Opaque` when unset).
    pub secret_type: String,
    /// Values by key, `data` decoded and `stringData` merged over it.
    pub data: BTreeMap<String, SecretValue>,
}

impl std::fmt::Debug for SecretManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretManifest")
            .field("name", &self.name)
            .field("secret_type", &self.secret_type)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn field(field: &str, expected: impl Into<String>) -> SecretError {
    SecretError::Manifest {
        field: field.to_string(),
        expected: expected.into(),
    }
}

/// Parses and checks a `Secret` manifest (JSON or YAML, one document).
pub fn parse_manifest(text: &str) -> Result<SecretManifest, SecretError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(field(
            "(file)",
            format!("a manifest of at most {MAX_MANIFEST_BYTES} bytes"),
        ));
    }
    let docs = crate::spec::reader::read_documents(text).map_err(|d| SecretError::Syntax {
        line: d.location.line,
        column: d.location.column,
        message: d.message,
    })?;
    let [doc] = docs.as_slice() else {
        return Err(field(
            "(file)",
            format!("exactly one Secret document, found {}", docs.len()),
        ));
    };
    from_value(&doc.to_json())
}

fn str_field<'v>(obj: &'v Value, name: &str) -> Result<Option<&'v str>, SecretError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field(name, "a string")),
    }
}

fn from_value(v: &Value) -> Result<SecretManifest, SecretError> {
    if !v.is_object() {
        return Err(field("(file)", "a mapping (a Kubernetes Secret object)"));
    }
    match str_field(v, "apiVersion")? {
        Some("v1") => {}
        _ => return Err(field("apiVersion", "\"v1\"")),
    }
    match str_field(v, "kind")? {
        Some("Secret") => {}
        _ => return Err(field("kind", "\"Secret\"")),
    }
    let meta = v
        .get("metadata")
        .filter(|m| m.is_object())
        .ok_or_else(|| field("metadata", "a mapping with a name"))?;
    let name = str_field(meta, "name")
        .map_err(|_| field("metadata.name", "a string"))?
        .ok_or_else(|| field("metadata.name", "a secret name"))?;
    check_name(name)?;
    let secret_type = str_field(v, "type")?.unwrap_or("Opaque").to_string();
    if secret_type.is_empty() || secret_type.len() > 253 {
        return Err(field("type", "a secret type of 1 to 253 bytes"));
    }
    let mut data = BTreeMap::new();
    for (key, value) in entries(v, "data")? {
        let Value::String(text) = value else {
            return Err(field(&format!("data.{key}"), "a base64 string"));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                field(
                    &format!("data.{key}"),
                    "a base64 value (standard alphabet, padded)",
                )
            })?;
        data.insert(key.clone(), SecretValue(bytes));
    }
    for (key, value) in entries(v, "stringData")? {
        let Value::String(text) = value else {
            return Err(field(&format!("stringData.{key}"), "a string"));
        };
        data.insert(key.clone(), SecretValue(text.clone().into_bytes()));
    }
    Ok(SecretManifest {
        name: name.to_string(),
        secret_type,
        data,
    })
}

/// The entries of mapping `name` (none when it is absent), each key checked.
fn entries<'v>(v: &'v Value, name: &str) -> Result<Vec<(&'v String, &'v Value)>, SecretError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => {
            for key in map.keys() {
                check_key(name, key)?;
            }
            Ok(map.iter().collect())
        }
        Some(_) => Err(field(name, "a mapping of keys to values")),
    }
}

/// Checks a secret name: a DNS subdomain, as Kubernetes requires.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let bytes = name.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 253
        || !bytes.iter().all(|b| ok_char(*b))
        || !edge(bytes.first())
        || !edge(bytes.last())
    {
        return Err(field(
            "metadata.name",
            format!(
                "a DNS subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 bytes), got {name:?}"
            ),
        ));
    }
    Ok(())
}

fn check_key(map: &str, key: &str) -> Result<(), SecretError> {
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if key.is_empty() || key.len() > 253 || !key.as_bytes().iter().all(ok) {
        return Err(field(
            &format!("{map}.{key}"),
            "a key of letters, digits, '-', '.' and '_' (at most 253 bytes)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(text: &str) -> String {
        match parse_manifest(text) {
            Err(SecretError::Manifest { field, .. }) => field,
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    #[test]
    fn json_and_yaml_with_data_and_string_data() {
        let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db-creds"},
            "data":{"user":"YWRtaW4=","pw":"eA=="},"stringData":{"pw":"hunter2"},"type":"Opaque"}"#;
        let m = parse_manifest(json).unwrap();
        assert_eq!(m.name, "db-creds");
        assert_eq!(m.secret_type, "Opaque");
        assert_eq!(m.data["user"].0, b"admin");
        assert_eq!(m.data["pw"].0, b"hunter2", "stringData wins");
        let yaml =
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s.1\nstringData:\n  token: abc\n";
        let m = parse_manifest(yaml).unwrap();
        assert_eq!(m.data["token"].0, b"abc");
        assert_eq!(m.secret_type, "Opaque");
        assert!(!format!("{m:?}").contains("abc"), "Debug shows no value");
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let base = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n";
        assert_eq!(
            err_field("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n"),
            "kind"
        );
        assert_eq!(
            err_field("kind: Secret\nmetadata: {name: s}\n"),
            "apiVersion"
        );
        assert_eq!(err_field("apiVersion: v1\nkind: Secret\n"), "metadata");
        assert_eq!(
            err_field("apiVersion: v1\nkind: Secret\nmetadata: {}\n"),
            "metadata.name"
        );
        assert_eq!(
            err_field("apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n"),
            "metadata.name"
        );
        assert_eq!(
            err_field(&format!("{base}data:\n  k: '!!notbase64'\n")),
            "data.k"
        );
        assert_eq!(
            err_field(&format!("{base}data:\n  'a/b': eA==\n")),
            "data.a/b"
        );
        assert_eq!(
            err_field(&format!("{base}stringData:\n  k: [1]\n")),
            "stringData.k"
        );
        assert_eq!(err_field(&format!("{base}data: [1]\n")), "data");
        assert_eq!(err_field("[1, 2]"), "(file)");
        assert_eq!(err_field(&format!("{base}---\n{base}")), "(file)");
        assert!(matches!(
            parse_manifest("{\"kind\": "),
            Err(SecretError::Syntax { .. })
        ));
        // A bad value is never quoted in the error.
        let e = parse_manifest(&format!("{base}data:\n  k: 'topsecret!'\n")).unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }
}
