//! Pipeline specs: typed values for every Pachyderm 2.x field, parsed from JSON or YAML.
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

mod duration;
pub mod effective;
mod types;

pub use duration::{Duration, DurationError};
pub use effective::normalize_glob;
pub use types::*;
