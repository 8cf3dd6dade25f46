//! Pipeline specs: typed values for every Pachyderm 2.x field, parsed from JSON or YAML with
//! line/column for every field.
//!
//! - [`types`](PipelineSpec): the spec as written (snake_case and camelCase names accepted).
//! - [`parse_str`] / [`parse_file`]: JSON or YAML, one spec, a `---` stream or a list; every
//!   problem reported at once with its field path and `LINE:COL` (see [`parse`] for the YAML
//!   reader choice and options).
//! - [`PipelineSpec::effective`]: Pachyderm's defaults applied explicitly ([`effective`]),
//!   giving an [`EffectiveSpec`] (what planning and executors read).
//! - [`parse_one`]: the one-spec case of [`parse_str`].
//! - [`defaults`]: cluster and project defaults ([`parse_defaults`]) merged under a spec as
//!   RFC 7386 merge patches ([`apply_defaults`], [`merge_patch`]).
//! - [`Resources`]: `resource_requests` / `resource_limits` in numbers, checked, for backends.
//! - [`schema`]: the shipped JSON Schema (feature `schema`).
//!
//! ```
//! use pipeline_core::spec::PipelineSpec;
//! let spec: PipelineSpec = serde_json::from_str(r#"{
//!     "pipeline": {"name": "edges"},
//!     "transform": {"cmd": ["python3", "/edges.py"]},
//!     "input": {"pfs": {"repo": "images", "glob": "/*"}}
//! }"#).unwrap();
//! assert_eq!(spec.pipeline.unwrap().name, "edges");
//! ```

pub mod defaults;
mod duration;
pub mod effective;
mod effective_spec;
mod enums;
mod lenient;
mod merge_patch;
pub mod parse;
pub(crate) mod reader;
mod resources;
#[cfg(feature = "schema")]
pub mod schema;
mod source;
mod types;

pub use defaults::{
    DEFAULTS_KEY, MergeError, PipelineDefaults, apply_defaults, parse_defaults, spec_patch,
};
pub use duration::{DURATION_PATTERN, Duration, DurationError};
pub use effective::normalize_glob;
pub use effective_spec::{EffectiveSpec, MAX_TRIES, MAX_WORKERS};
pub use enums::{
    FileFormatType, RepoType, ReprocessSpec, ServiceType, TolerationEffect, TolerationOperator,
};
pub use merge_patch::merge_patch;
pub use parse::{ParseError, ParsedSpec, parse_bytes, parse_file, parse_one, parse_str};
pub use resources::{
    MAX_CPUS, MAX_PIDS, MIN_MEMORY_BYTES, ResourceAmounts, ResourceError, Resources, parse_memory,
};
pub use source::{Diagnostic, FieldPath, Location, PathSegment, Severity, SourceNode, SourceValue};
pub use types::*;
