//! The egress target a spec names, and the create-time checks of it (each finding at its
//! field: `egress.URL`, `egress.object_storage.url`, `egress.sql_database.*`).

use std::path::PathBuf;

use crate::spec::{Diagnostic, EffectiveSpec, Egress, FieldPath, FileFormatType, SecretRef};

use super::super::Engine;
use super::EgressError;

/// Where a pipeline's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EgressTarget {
    /// `file:///DIR`: a local directory (any build).
    Directory {
        /// The spec field the URL came from.
        field: &'static str,
        /// The directory.
        dir: PathBuf,
    },
    /// `s3://BUCKET/PREFIX`, `gs://…`, `az://…` (feature `store-object`), configured from
    /// the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and the engine's
    /// [`egress_options`](super::super::EngineBuilder::egress_options).
    Objects {
        /// The URL.
        url: String,
        /// `object_store` configuration keys over the environment.
        options: Vec<(String, String)>,
    },
    /// A PostgreSQL database (feature `store-postgres`).
    Sql(SqlTarget),
}

/// `egress.sql_database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTarget {
    /// `postgres://USER@HOST:PORT/DB` (no password: it comes from the secret).
    pub url: String,
    /// How output files are read.
    pub format: SqlFormat,
    /// `file_format.columns`.
    pub columns: Vec<String>,
    /// The secret holding the password.
    pub secret: SecretRef,
}

/// The output file format of a SQL egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlFormat {
    /// CSV: without `columns`, rows carry every table column in table order and no header;
    /// with `columns`, each file starts with a header naming its columns.
    Csv,
    /// JSON: a stream of objects, one per row; keys are column names (`columns`, else every
    /// table column); a missing key is NULL.
    Json,
}

impl EgressTarget {
    /// The target `egress` names, with `options` for object stores. Errors name the field.
    pub fn of_spec(egress: &Egress, options: &[(String, String)]) -> Result<Self, EgressError> {
        if let Some(url) = egress.url.as_deref().filter(|u| !u.is_empty()) {
            return object_target("egress.URL", url, options);
        }
        if let Some(o) = &egress.object_storage {
            return object_target("egress.object_storage.url", &o.url, options);
        }
        let Some(sql) = &egress.sql_database else {
            return Err(invalid(
                "egress",
                "no target: set egress.URL, egress.object_storage.url or egress.sql_database",
            ));
        };
        sql_target(sql)
    }

    /// The spec field the target came from.
    pub fn field(&self) -> &'static str {
        match self {
            EgressTarget::Directory { field, .. } => field,
            EgressTarget::Objects { .. } => "egress.object_storage.url",
            EgressTarget::Sql(_) => "egress.sql_database.url",
        }
    }

    /// The target as shown to users (a URL's password hidden).
    pub fn display(&self) -> String {
        match self {
            EgressTarget::Directory { dir, .. } => format!("file://{}", dir.display()),
            EgressTarget::Objects { url, .. } => hide_password(url),
            EgressTarget::Sql(s) => hide_password(&s.url),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> EgressError {
    EgressError::Target {
        field: field.to_string(),
        message: message.into(),
    }
}

/// An object-storage URL: `file://` in any build, the clouds with `store-object`.
fn object_target(
    field: &'static str,
    url: &str,
    options: &[(String, String)],
) -> Result<EgressTarget, EgressError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            field,
            format!(
                "{:?} is not a URL; expected file:///DIR, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX",
                hide_password(url)
            ),
        ));
    };
    match scheme {
        "file" => {
            let dir = PathBuf::from(rest);
            if !dir.is_absolute() {
                return Err(invalid(
                    field,
                    format!("{url:?}: expected file:///ABSOLUTE/DIR"),
                ));
            }
            Ok(EgressTarget::Directory { field, dir })
        }
        "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure" => {
            if cfg!(feature = "store-object") {
                Ok(EgressTarget::Objects {
                    url: url.to_string(),
                    options: options.to_vec(),
                })
            } else {
                Err(invalid(
                    field,
                    format!(
                        "egress to {scheme}:// needs the store-object feature of pipeline-core, which this build lacks"
                    ),
                ))
            }
        }
        other => Err(invalid(
            field,
            format!("scheme {other}:// is not supported; expected file://, s3://, gs:// or az://"),
        )),
    }
}

/// `egress.sql_database`: a `postgres://` URL, CSV or JSON, a secret.
fn sql_target(sql: &crate::spec::SqlDatabaseEgress) -> Result<EgressTarget, EgressError> {
    let scheme = sql.url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("postgres" | "postgresql") => {}
        Some(other) => {
            return Err(invalid(
                "egress.sql_database.url",
                format!(
                    "{other}:// databases are not supported; expected postgres://USER@HOST:PORT/DATABASE"
                ),
            ));
        }
        None => {
            return Err(invalid(
                "egress.sql_database.url",
                format!(
                    "{:?} is not a URL; expected postgres://USER@HOST:PORT/DATABASE",
                    hide_password(&sql.url)
                ),
            ));
        }
    }
    if !cfg!(feature = "store-postgres") {
        return Err(invalid(
            "egress.sql_database.url",
            "egress to postgres:// needs the store-postgres feature of pipeline-core, which this build lacks",
        ));
    }
    let format = sql.file_format.as_ref();
    let format = match format.and_then(|f| f.format_type.as_ref()) {
        Some(FileFormatType::Csv) => SqlFormat::Csv,
        Some(FileFormatType::Json) => SqlFormat::Json,
        Some(other) => {
            return Err(invalid(
                "egress.sql_database.file_format.type",
                format!(
                    "{} is not supported by this engine; use CSV or JSON",
                    other.as_str()
                ),
            ));
        }
        None => {
            return Err(invalid(
                "egress.sql_database.file_format.type",
                "a file format is required: CSV or JSON",
            ));
        }
    };
    let secret = sql.secret.clone().ok_or_else(|| {
        invalid(
            "egress.sql_database.secret",
            "egress.sql_database.secret is required",
        )
    })?;
    Ok(EgressTarget::Sql(SqlTarget {
        url: sql.url.clone(),
        format,
        columns: sql
            .file_format
            .as_ref()
            .map(|f| f.columns.clone())
            .unwrap_or_default(),
        secret,
    }))
}

/// `scheme://user:***@host/...`: a URL with its password hidden.
pub(crate) fn hide_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..end].rfind('@').map(|i| start + i) else {
        return url.to_string();
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
        None => url.to_string(),
    }
}

/// The create-time findings for a spec's egress: a target this engine can push to, and for
/// SQL the secret and key the password comes from.
pub(crate) fn check_spec(engine: &Engine, effective: &EffectiveSpec, out: &mut Vec<Diagnostic>) {
    let Some(egress) = &effective.egress else {
        return;
    };
    let target = match EgressTarget::of_spec(egress, &engine.inner.egress_options) {
        Ok(t) => t,
        Err(EgressError::Target { field, message }) => {
            out.push(Diagnostic::error(
                "egress.target",
                field_path(&field),
                message,
            ));
            return;
        }
        Err(e) => {
            out.push(Diagnostic::error(
                "egress.target",
                field_path("egress"),
                e.to_string(),
            ));
            return;
        }
    };
    let EgressTarget::Sql(sql) = target else {
        return;
    };
    let message = match engine.secret_keys(&sql.secret.name) {
        Ok(None) => format!("missing Kubernetes secret {}", sql.secret.name),
        Ok(Some(keys)) if !keys.contains(&sql.secret.key) => format!(
            "Kubernetes secret {} missing key {}",
            sql.secret.name, sql.secret.key
        ),
        Ok(Some(_)) => return,
        Err(e) => format!("reading secret {}: {e}", sql.secret.name),
    };
    out.push(Diagnostic::error(
        "egress.sql.secret",
        field_path("egress.sql_database.secret"),
        message,
    ));
}

/// `a.b.c` as a field path.
fn field_path(dotted: &str) -> FieldPath {
    dotted
        .split('.')
        .fold(FieldPath::root(), |path, part| path.field(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress(json: &str) -> Egress {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn targets_come_from_either_form_and_errors_name_the_field() {
        let t = EgressTarget::of_spec(&egress(r#"{"URL": "file:///tmp/out"}"#), &[]).unwrap();
        assert_eq!(t.field(), "egress.URL");
        let t = EgressTarget::of_spec(
            &egress(r#"{"object_storage": {"url": "file:///tmp/out"}}"#),
            &[],
        )
        .unwrap();
        assert_eq!(t.display(), "file:///tmp/out");
        let e = EgressTarget::of_spec(&egress(r#"{"URL": "ftp://x/y"}"#), &[]).unwrap_err();
        assert!(
            e.to_string().starts_with("egress.URL: scheme ftp://"),
            "{e}"
        );
        let e = EgressTarget::of_spec(&egress(r#"{"URL": "file://rel"}"#), &[]).unwrap_err();
        assert!(e.to_string().contains("ABSOLUTE"), "{e}");
        let e = EgressTarget::of_spec(&egress("{}"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("egress: no target"), "{e}");
    }

    #[test]
    fn sql_targets_need_postgres_a_format_and_a_secret() {
        let e = EgressTarget::of_spec(
            &egress(
                r#"{"sql_database": {"url": "mysql://u@h:1/d", "file_format": {"type": "CSV"}}}"#,
            ),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("egress.sql_database.url: mysql://"),
            "{e}"
        );
        let e = EgressTarget::of_spec(
            &egress(r#"{"sql_database": {"url": "postgres://u@h:1/d", "file_format": {"type": "PARQUET"}, "secret": {"name": "s", "key": "k"}}}"#),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("egress.sql_database.file_format.type: PARQUET"),
            "{e}"
        );
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            hide_password("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(hide_password("s3://bucket/p@x"), "s3://bucket/p@x");
        assert_eq!(hide_password("file:///a"), "file:///a");
    }
}
