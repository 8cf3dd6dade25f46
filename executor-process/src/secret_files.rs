//! `transform.secrets[i].mount_path`: which secret files a worker's sandbox shows, as the
//! Docker and Kubernetes executors do (`mount_path/<key>` per key of the secret, or only
//! `key` when the spec names one).
//!
//! The files live on a tmpfs inside the worker's private mount namespace (never on the host's
//! disks, never visible to the host), mode 0444, and the tmpfs is read-only for user code.

use std::path::{Component, Path, PathBuf};

use pipeline_core::executor::{ExecutorError, SecretValue, WorkerPoolSpec};

/// One `mount_path` directory and the files in it.
#[derive(Debug, Clone)]
pub(crate) struct SecretMount {
    /// The absolute directory user code sees.
    pub(crate) dir: PathBuf,
    /// `(file name, value)`; `Debug` of a value prints `<redacted>`.
    pub(crate) files: Vec<(String, SecretValue)>,
    /// The spec field, for errors.
    pub(crate) field: String,
}

/// The secret mounts of a pipeline; errors name the field (a relative path or `..`, a secret
/// the host did not supply, a key that is not a file name, two secrets on one directory).
pub(crate) fn secret_mounts(spec: &WorkerPoolSpec) -> Result<Vec<SecretMount>, ExecutorError> {
    let mut mounts: Vec<SecretMount> = Vec::new();
    for (i, s) in spec.spec.transform.secrets.iter().enumerate() {
        let Some(mount) = s.mount_path.as_deref().filter(|m| !m.is_empty()) else {
            continue;
        };
        let field = format!("transform.secrets[{i}]");
        let invalid =
            |field: String, message: String| ExecutorError::InvalidTask { field, message };
        let dir = Path::new(mount);
        let plain = dir.is_absolute()
            && dir
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !plain || dir == Path::new("/") {
            return Err(invalid(
                format!("{field}.mount_path"),
                format!("expected an absolute directory without `..`, got {mount:?}"),
            ));
        }
        if mounts.iter().any(|m| m.dir == dir) {
            return Err(invalid(
                format!("{field}.mount_path"),
                format!("{mount:?} is already the mount path of another secret"),
            ));
        }
        let values = spec.secrets.0.get(&s.name).ok_or_else(|| {
            invalid(
                field.clone(),
                format!("secret {:?} was not supplied", s.name),
            )
        })?;
        let mut files = Vec::new();
        for (key, value) in values {
            if s.key.as_ref().is_some_and(|k| !k.is_empty() && k != key) {
                continue;
            }
            if key.is_empty() || key.contains('/') || key == "." || key == ".." {
                return Err(invalid(
                    field,
                    format!("secret {:?} has a key that is not a file name", s.name),
                ));
            }
            files.push((key.clone(), value.clone()));
        }
        mounts.push(SecretMount {
            dir: dir.to_path_buf(),
            files,
            field,
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use pipeline_core::executor::Secrets;
    use pipeline_core::spec::{EffectiveSpec, SecretMount as SpecSecret};

    use super::*;

    fn pool(secrets: Vec<SpecSecret>, values: &[(&str, &str, &str)]) -> WorkerPoolSpec {
        let mut spec = EffectiveSpec::default();
        spec.transform.secrets = secrets;
        let mut supplied: BTreeMap<String, BTreeMap<String, SecretValue>> = BTreeMap::new();
        for (name, key, value) in values {
            supplied
                .entry(name.to_string())
                .or_default()
                .insert(key.to_string(), SecretValue(value.as_bytes().to_vec()));
        }
        WorkerPoolSpec {
            project: "default".into(),
            pipeline: "p".into(),
            version: 1,
            workers: 1,
            spec: Arc::new(spec),
            secrets: Secrets(supplied),
        }
    }

    fn secret(name: &str, key: Option<&str>, mount: Option<&str>) -> SpecSecret {
        SpecSecret {
            name: name.into(),
            key: key.map(Into::into),
            mount_path: mount.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn every_key_or_the_named_one_becomes_a_file() {
        let values = [("s", "user", "alice"), ("s", "pass", "pw")];
        let all = secret_mounts(&pool(vec![secret("s", None, Some("/var/s"))], &values)).unwrap();
        let names: Vec<&str> = all[0].files.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            (all[0].dir.as_path(), names),
            (Path::new("/var/s"), vec!["pass", "user"])
        );
        let one =
            secret_mounts(&pool(vec![secret("s", Some("user"), Some("/s"))], &values)).unwrap();
        assert_eq!(one[0].files.len(), 1);
        let env_only = secret_mounts(&pool(vec![secret("s", Some("user"), None)], &values));
        assert!(env_only.unwrap().is_empty());
    }

    #[test]
    fn bad_mounts_name_their_field() {
        let values = [("s", "k", "v")];
        for (mount, name) in [
            ("rel", "s"),
            ("/a/../b", "s"),
            ("/", "s"),
            ("/x", "missing"),
        ] {
            let err = secret_mounts(&pool(vec![secret(name, None, Some(mount))], &values))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("transform.secrets[0]"), "{mount}: {err}");
            assert!(!err.contains("\"v\""), "a value leaked: {err}");
        }
        let twice = vec![secret("s", None, Some("/x")), secret("s", None, Some("/x"))];
        let err = secret_mounts(&pool(twice, &values))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("transform.secrets[1].mount_path"), "{err}");
    }
}
