//! Secrets kept in the store: Kubernetes `Secret` manifests (`pachctl create secret -f`),
//! their values readable only by the store's owner and never printed.
//!
//! # Storage and who can read it
//!
//! A secret is one record in the store's metadata database (engine table, key
//! `S/{name}`, see `keys`): name, type, creation time and the values. The database file is
//! the store owner's alone (the store root is 0700, `meta.redb` 0600), so reading a secret
//! takes the owner's rights; values are not encrypted at rest (as Kubernetes keeps them in
//! etcd by default). Nothing that lists or inspects a secret returns values
//! ([`SecretInfo`] has names only), `Debug` of every type holding values prints
//! `<redacted>`, and the engine redacts every value of a pipeline's secrets from its logs
//! and datum errors (`executor::redact`).
//!
//! # Pachyderm's rules, followed
//!
//! - `create secret` on an existing name fails ("secret \"X\" already exists", as the
//!   Kubernetes API answers pachd); delete it first to replace it.
//! - `delete secret` does not check pipelines (pachd just deletes the Kubernetes object). A
//!   pipeline that still names it fails its next job with "missing Kubernetes secret X";
//!   `update pipeline` refuses the spec until the secret exists again.
//! - `create pipeline` / `update pipeline` refuse a spec whose `transform.secrets[i]` names a
//!   secret that does not exist ("missing Kubernetes secret X") or a `key` it lacks
//!   ("Kubernetes secret X missing key Y"), at field `transform.secrets[i]`.
//!
//! # Secrets from the host application
//!
//! [`Engine::builder`](super::Engine::builder)`.secrets(...)` still supplies values; a name
//! the host supplies replaces the stored secret of that name as a whole (the host wins), and
//! the store supplies the names the host does not.

pub mod manifest;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::executor::{SecretValue, Secrets};
use crate::pfs::{PfsError, Store};
use crate::spec::Transform;

use super::Engine;
use super::error::PpsError;
use super::keys::{RecordKey, SecretKey};
use super::records::PipelineInfo;
pub use manifest::{SecretManifest, parse_manifest};

/// What can go wrong with a secret. Messages name the secret or field, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The manifest is not JSON or YAML.
    #[error("secret manifest line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A field of the manifest is missing or wrong.
    #[error("secret manifest field {field}: expected {expected}")]
    Manifest {
        /// The field, e.g. `metadata.name` or `data.password`.
        field: String,
        /// What was expected there.
        expected: String,
    },
    /// `create secret` on a name that exists.
    #[error("secret \"{0}\" already exists")]
    Exists(String),
    /// No secret of that name.
    #[error("missing Kubernetes secret {0}")]
    NotFound(String),
    /// A pipeline names a key the secret lacks.
    #[error("Kubernetes secret {name} missing key {key}")]
    MissingKey {
        /// Secret name.
        name: String,
        /// Key.
        key: String,
    },
    /// The stored record cannot be read back.
    #[error("corrupt secret record {0}")]
    Corrupt(String),
    /// The store failed.
    #[error("store")]
    Store(#[from] PfsError),
}

/// What is shown of a secret: never its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInfo {
    /// Secret name.
    pub name: String,
    /// Kubernetes secret type (`Opaque` unless the manifest said otherwise).
    #[serde(rename = "type")]
    pub secret_type: String,
    /// The keys it holds, sorted.
    pub keys: Vec<String>,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
}

/// The stored record (values base64-encoded).
#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    #[serde(rename = "type")]
    secret_type: String,
    created_ms: u64,
    data: BTreeMap<String, String>,
}

impl Record {
    fn info(&self) -> SecretInfo {
        SecretInfo {
            name: self.name.clone(),
            secret_type: self.secret_type.clone(),
            keys: self.data.keys().cloned().collect(),
            created_ms: self.created_ms,
        }
    }

    fn values(&self) -> Result<BTreeMap<String, SecretValue>, SecretError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.data
            .iter()
            .map(|(k, v)| {
                let bytes = b64
                    .decode(v)
                    .map_err(|_| SecretError::Corrupt(self.name.clone()))?;
                Ok((k.clone(), SecretValue(bytes)))
            })
            .collect()
    }
}

fn decode(name: &str, bytes: &[u8]) -> Result<Record, SecretError> {
    serde_json::from_slice(bytes).map_err(|_| SecretError::Corrupt(name.to_string()))
}

fn read(store: &Store, name: &str) -> Result<Option<Record>, SecretError> {
    match store.engine_get(&SecretKey::new(name).encode())? {
        Some(bytes) => decode(name, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Stores the secret of a manifest (JSON or YAML); fails if the name exists. Only the
/// store's owner can read it: [`Store::open`] keeps the root 0700 and the metadata 0600.
pub fn create_secret(store: &Store, manifest: &str) -> Result<SecretInfo, SecretError> {
    let m = parse_manifest(manifest)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let record = Record {
        name: m.name.clone(),
        secret_type: m.secret_type.clone(),
        created_ms: super::now_ms(),
        data: m
            .data
            .iter()
            .map(|(k, v)| (k.clone(), b64.encode(&v.0)))
            .collect(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|_| SecretError::Corrupt(m.name.clone()))?;
    let key = SecretKey::new(&m.name).encode();
    store.transact(|txn| {
        if txn.engine_get(&key)?.is_some() {
            return Err(SecretError::Exists(m.name.clone()));
        }
        txn.engine_put(&key, &bytes)?;
        Ok(())
    })?;
    Ok(record.info())
}

/// Every stored secret (names, types, keys, creation times), by name.
pub fn list_secrets(store: &Store) -> Result<Vec<SecretInfo>, SecretError> {
    let prefix = SecretKey::all();
    let mut out = Vec::new();
    for kv in store.engine_scan(prefix.as_bytes())? {
        let (key, value) = kv?;
        let name = String::from_utf8_lossy(prefix.rest(&key).unwrap_or_default()).into_owned();
        out.push(decode(&name, &value)?.info());
    }
    Ok(out)
}

/// One stored secret, without its values.
pub fn inspect_secret(store: &Store, name: &str) -> Result<SecretInfo, SecretError> {
    read(store, name)?
        .map(|r| r.info())
        .ok_or_else(|| SecretError::NotFound(name.to_string()))
}

/// Deletes a stored secret (pipelines that name it are not checked, as in pachd).
pub fn delete_secret(store: &Store, name: &str) -> Result<(), SecretError> {
    let key = SecretKey::new(name).encode();
    store.transact(|txn| {
        if txn.engine_get(&key)?.is_none() {
            return Err(SecretError::NotFound(name.to_string()));
        }
        txn.engine_delete(&key)?;
        Ok(())
    })
}

/// The secrets a pipeline's workers get: every secret `host` supplies, plus, from the store,
/// each other secret `transform.secrets` names. Fails naming the first secret or key that is
/// missing.
pub fn resolve(
    store: &Store,
    transform: &Transform,
    host: &Secrets,
) -> Result<Secrets, SecretError> {
    let mut out = host.clone();
    for mount in &transform.secrets {
        if !out.0.contains_key(&mount.name) {
            let values = read(store, &mount.name)?
                .ok_or_else(|| SecretError::NotFound(mount.name.clone()))?
                .values()?;
            out.0.insert(mount.name.clone(), values);
        }
        if let Some(key) = &mount.key
            && out.get(&mount.name, key).is_none()
        {
            return Err(SecretError::MissingKey {
                name: mount.name.clone(),
                key: key.clone(),
            });
        }
    }
    Ok(out)
}

impl Engine {
    /// Stores the secret of a Kubernetes `Secret` manifest (JSON or YAML), as
    /// `pachctl create secret -f`; fails if one of that name exists.
    ///
    /// Blocking: one store transaction.
    pub fn create_secret(&self, manifest: &str) -> Result<SecretInfo, PpsError> {
        Ok(create_secret(self.store(), manifest)?)
    }

    /// Every stored secret, without values.
    ///
    /// Blocking: store reads only.
    pub fn list_secrets(&self) -> Result<Vec<SecretInfo>, PpsError> {
        Ok(list_secrets(self.store())?)
    }

    /// One stored secret, without values.
    ///
    /// Blocking: store reads only.
    pub fn inspect_secret(&self, name: &str) -> Result<SecretInfo, PpsError> {
        Ok(inspect_secret(self.store(), name)?)
    }

    /// Deletes a stored secret.
    ///
    /// Blocking: one store transaction.
    pub fn delete_secret(&self, name: &str) -> Result<(), PpsError> {
        Ok(delete_secret(self.store(), name)?)
    }

    /// The secrets pipeline version `p` runs with (see [`resolve`]).
    pub(crate) fn pipeline_secrets(&self, p: &PipelineInfo) -> Result<Secrets, PpsError> {
        resolve(self.store(), &p.effective.transform, &self.inner.secrets).map_err(PpsError::Secret)
    }

    /// The value of `key` of secret `name` (supplied by the host, else stored) as text: an
    /// SQL egress's password.
    pub(crate) fn secret_value(&self, name: &str, key: &str) -> Result<String, SecretError> {
        let missing_key = || SecretError::MissingKey {
            name: name.to_string(),
            key: key.to_string(),
        };
        let value = match self.inner.secrets.0.get(name) {
            Some(values) => values.get(key).cloned().ok_or_else(missing_key)?,
            None => read(self.store(), name)?
                .ok_or_else(|| SecretError::NotFound(name.to_string()))?
                .values()?
                .remove(key)
                .ok_or_else(missing_key)?,
        };
        String::from_utf8(value.0).map_err(|_| SecretError::Corrupt(name.to_string()))
    }

    /// Whether secret `name` exists for this engine (supplied by the host or stored).
    pub(crate) fn secret_keys(&self, name: &str) -> Result<Option<Vec<String>>, SecretError> {
        if let Some(values) = self.inner.secrets.0.get(name) {
            return Ok(Some(values.keys().cloned().collect()));
        }
        Ok(read(self.store(), name)?.map(|r| r.data.into_keys().collect()))
    }
}
