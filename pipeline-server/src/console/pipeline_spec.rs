//! The pipeline page's spec section: one version's spec as written and as the engine runs it
//! (effective: every default applied), each as JSON and YAML with a copy button; and the list
//! of versions, each a link to its spec (`?version=N`).

use maud::{Markup, html};
use pipeline_core::pps::{Engine, PipelineInfo, PpsError};
use serde::Serialize;

use super::view::{PageError, copyable, time, url};
use crate::error::ApiError;

/// How many versions the page lists (the newest ones).
pub const MAX_VERSIONS: u64 = 50;

/// A version of a pipeline and when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRow {
    /// The version number.
    pub version: u64,
    /// When it was created or updated to, ms since the epoch.
    pub updated_ms: u64,
}

/// The version `?version=` asks for, checked against the current one; `None` means the
/// current version.
pub fn requested_version(raw: Option<&str>, pipeline: &str, current: u64) -> Result<u64, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(current);
    };
    let v: u64 = raw.trim().parse().map_err(|_| {
        ApiError::invalid(format!(
            "version: expected a version number of pipeline {pipeline} (1 to {current}), got {raw:?}"
        ))
    })?;
    if v == 0 || v > current {
        return Err(ApiError::not_found(format!(
            "pipeline {pipeline} has no version {v} (its versions are 1 to {current})"
        )));
    }
    Ok(v)
}

/// The newest [`MAX_VERSIONS`] versions of a pipeline, newest first (versions whose record is
/// gone are left out), and whether older ones were left out.
///
/// Blocking: one store read per version listed.
pub fn read_versions(
    e: &Engine,
    current: &PipelineInfo,
) -> Result<(Vec<VersionRow>, bool), PpsError> {
    let oldest = current.version.saturating_sub(MAX_VERSIONS - 1).max(1);
    let mut rows = vec![VersionRow {
        version: current.version,
        updated_ms: current.updated_ms,
    }];
    for version in (oldest..current.version).rev() {
        match e.pipeline_version(&current.name, version) {
            Ok(info) => rows.push(VersionRow {
                version,
                updated_ms: info.updated_ms,
            }),
            Err(PpsError::PipelineNotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok((rows, oldest > 1))
}

/// `value` as pretty JSON and as YAML.
fn json_and_yaml(value: &impl Serialize, what: &str) -> Result<(String, String), PageError> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| ApiError::internal(format!("{what} as JSON: {e}")))?;
    let yaml = serde_saphyr::to_string(value)
        .map_err(|e| ApiError::internal(format!("{what} as YAML: {e}")))?;
    Ok((json, yaml))
}

/// The spec of `shown` as written and effective, JSON open and YAML folded.
pub fn spec_section(shown: &PipelineInfo, current_version: u64) -> Result<Markup, PageError> {
    let written = json_and_yaml(&shown.spec, "the spec")?;
    let effective = json_and_yaml(&shown.effective, "the effective spec")?;
    let block = |kind: &str, (json, yaml): &(String, String)| {
        html! {
            details open {
                summary { "JSON" }
                (copyable(&format!("spec-{kind}-json"), json))
            }
            details {
                summary { "YAML" }
                (copyable(&format!("spec-{kind}-yaml"), yaml))
            }
        }
    };
    Ok(html! {
        @if shown.version != current_version {
            p.note #old-version {
                "Version " (shown.version) " of " (current_version) ", from "
                (time(shown.updated_ms)) ". "
                a href=(url::pipeline(&shown.name)) { "Show the current version" }
            }
        }
        div.spec-pair {
            section #spec-written {
                h3 { "As written" }
                p.muted { "The spec as given to create or update, version " (shown.version) "." }
                (block("written", &written))
            }
            section #spec-effective {
                h3 { "Effective" }
                p.muted { "What the engine runs: every default filled in." }
                (block("effective", &effective))
            }
        }
    })
}

/// The versions, newest first, the one shown marked.
pub fn versions_section(pipeline: &str, rows: &[VersionRow], more: bool, shown: u64) -> Markup {
    html! {
        ul.versions #versions {
            @for r in rows {
                li {
                    @if r.version == shown {
                        strong { "version " (r.version) }
                    } @else {
                        a href={ (url::pipeline(pipeline)) "?version=" (r.version) } {
                            "version " (r.version)
                        }
                    }
                    " " span.muted { (time(r.updated_ms)) }
                }
            }
        }
        @if more {
            p.muted { "Only the " (MAX_VERSIONS) " newest versions are listed; open an older one with "
                code { "?version=N" } "." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_requests_are_checked() {
        assert_eq!(requested_version(None, "p", 3).ok(), Some(3));
        assert_eq!(requested_version(Some(""), "p", 3).ok(), Some(3));
        assert_eq!(requested_version(Some("2"), "p", 3).ok(), Some(2));
        let bad = requested_version(Some("two"), "p", 3)
            .err()
            .map(|e| e.message);
        assert_eq!(
            bad.as_deref(),
            Some("version: expected a version number of pipeline p (1 to 3), got \"two\"")
        );
        assert!(requested_version(Some("0"), "p", 3).is_err());
        let missing = requested_version(Some("4"), "p", 3)
            .err()
            .map(|e| e.message);
        assert_eq!(
            missing.as_deref(),
            Some("pipeline p has no version 4 (its versions are 1 to 3)")
        );
    }
}
