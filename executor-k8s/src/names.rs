//! Kubernetes names and labels derived from a pipeline's identity.
//!
//! Pachyderm names its worker controller `<project>-<pipeline>-v<version>`, lowercased with
//! `_` replaced by `-`, and relies on `len(project) + len(pipeline) <= 58` so that the name
//! fits the 63-character DNS label limit (reference §1.1). Worker pods here are named
//! `<project>-<pipeline>-v<version>-w<index>-<5 random characters>`: the fixed part is sent as
//! `metadata.generateName` and the API server appends the random suffix, so a restarted host
//! never collides with a pod that is still terminating. When the fixed part would be longer
//! than 58 characters (63 minus the suffix), the `<project>-<pipeline>` part is shortened and
//! an 8-character hash of the full part is appended, so distinct pipelines keep distinct
//! names and every pod name stays a valid 63-character DNS label (also used as hostname).
//!
//! Label values have their own rules (at most 63 characters of `[A-Za-z0-9._-]`, starting and
//! ending with a letter or digit). Project and pipeline names already use that alphabet but
//! may end with `-` or `_`; such values are made valid the same way (trimmed + hash), and the
//! exact names are always kept in annotations.

use std::collections::BTreeMap;

use pipeline_core::hash::ContentHash;

/// Prefix of every label and annotation key this crate sets.
pub const LABEL_PREFIX: &str = "pipeline-core.dev/";
/// Label: project of the pipeline (label-safe form).
pub const LABEL_PROJECT: &str = "pipeline-core.dev/project";
/// Label: pipeline name (label-safe form).
pub const LABEL_PIPELINE: &str = "pipeline-core.dev/pipeline";
/// Label: pipeline version.
pub const LABEL_VERSION: &str = "pipeline-core.dev/version";
/// Label: worker index within the pool.
pub const LABEL_WORKER: &str = "pipeline-core.dev/worker";
/// Label: the host (engine instance) that owns the pod, see [`crate::K8sConfig::owner`].
pub const LABEL_OWNER: &str = "pipeline-core.dev/owner";
/// Annotation: exact project name.
pub const ANNOTATION_PROJECT: &str = "pipeline-core.dev/project-name";
/// Annotation: exact pipeline name.
pub const ANNOTATION_PIPELINE: &str = "pipeline-core.dev/pipeline-name";
/// Standard label: which tool manages the pod.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Standard label: the pod's role.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "executor-k8s";

/// Longest `generateName` prefix that leaves room for the API server's 5-character suffix
/// inside a 63-character DNS label.
pub const MAX_GENERATE_NAME: usize = 58;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 63;

fn short_hash(s: &str) -> String {
    let mut hex = ContentHash::of_bytes(s.as_bytes()).to_hex();
    hex.truncate(8);
    hex
}

/// `<project>-<pipeline>` lowercased, `_` replaced by `-`, other characters outside
/// `[a-z0-9-]` replaced by `-` (pipeline and project names are validated before they get
/// here; this only makes sure the result is always a valid DNS label fragment).
pub fn dns_base(project: &str, pipeline: &str) -> String {
    format!("{project}-{pipeline}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The `metadata.generateName` of worker `index` of a pipeline version: at most
/// [`MAX_GENERATE_NAME`] characters, ending with `-`.
///
/// ```
/// use executor_k8s::labels::generate_name;
/// assert_eq!(generate_name("default", "edges_v2", 1, 0), "default-edges-v2-v1-w0-");
/// let long = generate_name("default", &"a".repeat(51), 12, 3);
/// assert!(long.len() <= 58 && long.ends_with("-v12-w3-"));
/// ```
pub fn generate_name(project: &str, pipeline: &str, version: u64, index: usize) -> String {
    let base = dns_base(project, pipeline);
    let suffix = format!("-v{version}-w{index}-");
    if base.len() + suffix.len() <= MAX_GENERATE_NAME {
        return format!("{base}{suffix}");
    }
    let hash = short_hash(&base);
    // base is ASCII, so byte truncation is char truncation.
    let keep = MAX_GENERATE_NAME.saturating_sub(suffix.len() + hash.len() + 1);
    let mut short: String = base.chars().take(keep).collect();
    while short.ends_with('-') {
        short.pop();
    }
    if short.is_empty() {
        short.push('p');
    }
    format!("{short}-{hash}{suffix}")
}

fn is_valid_label_value(s: &str) -> bool {
    s.len() <= MAX_LABEL_VALUE
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// A valid label value for `s`: `s` itself when valid, otherwise the longest valid prefix of
/// its label-safe characters followed by `-<8 hex hash of s>`.
///
/// ```
/// use executor_k8s::labels::label_value;
/// assert_eq!(label_value("edges"), "edges");
/// let v = label_value("edges_");
/// assert!(v.starts_with("edges-") && v.len() == "edges-".len() + 8);
/// ```
pub fn label_value(s: &str) -> String {
    if is_valid_label_value(s) {
        return s.to_string();
    }
    let hash = short_hash(s);
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_LABEL_VALUE - hash.len() - 1)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        hash
    } else {
        format!("{trimmed}-{hash}")
    }
}

/// The labels that identify a pipeline's pods for one owner (no version, no worker index):
/// the selector used to find leftovers and to remove a pipeline.
pub fn pipeline_selector_labels(
    project: &str,
    pipeline: &str,
    owner: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_PROJECT.to_string(), label_value(project)),
        (LABEL_PIPELINE.to_string(), label_value(pipeline)),
        (LABEL_OWNER.to_string(), label_value(owner)),
    ])
}

/// Renders labels as a Kubernetes label selector (`k=v,k=v`).
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn short_names_are_kept_readable() {
        assert_eq!(
            generate_name("default", "edges", 1, 0),
            "default-edges-v1-w0-"
        );
        assert_eq!(
            generate_name("My_Proj", "Edges_X", 3, 11),
            "my-proj-edges-x-v3-w11-"
        );
    }

    #[test]
    fn longest_valid_names_fit_with_suffix() {
        // 51-char project and 51-char pipeline: far beyond Pachyderm's own 58 limit.
        for (p, n) in [
            ("default".to_string(), "x".repeat(51)),
            ("p".repeat(51), "n".repeat(51)),
            ("a".to_string(), "b".repeat(50)),
        ] {
            for version in [1, 99, 123_456] {
                for index in [0, 9, 1000] {
                    let g = generate_name(&p, &n, version, index);
                    assert!(g.len() <= MAX_GENERATE_NAME, "{g} too long");
                    let full = format!("{g}abcde");
                    assert!(is_dns_label(&full), "{full} not a DNS label");
                    assert!(g.ends_with(&format!("-v{version}-w{index}-")));
                }
            }
        }
    }

    #[test]
    fn shortened_names_stay_distinct() {
        let a = generate_name("default", &format!("{}a", "x".repeat(50)), 1, 0);
        let b = generate_name("default", &format!("{}b", "x".repeat(50)), 1, 0);
        assert_ne!(a, b);
    }

    #[test]
    fn label_values_are_valid() {
        for s in ["edges", "edges_", "_x", "a-", &"z".repeat(80), "", "ä"] {
            let v = label_value(s);
            assert!(is_valid_label_value(&v), "{s:?} -> {v:?}");
        }
        assert_ne!(label_value("edges_"), label_value("edges-"));
    }

    #[test]
    fn selector_is_sorted_and_joined() {
        let l = pipeline_selector_labels("default", "edges", "host-1");
        assert_eq!(
            selector(&l),
            "app.kubernetes.io/managed-by=executor-k8s,pipeline-core.dev/owner=host-1,\
             pipeline-core.dev/pipeline=edges,pipeline-core.dev/project=default"
        );
    }
}
