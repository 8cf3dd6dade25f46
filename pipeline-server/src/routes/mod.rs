//! The API's routes, one module per resource. Each handler carries its OpenAPI description
//! (`#[utoipa::path]`), and each module's `routes()` registers handlers and descriptions
//! together, so the served document and the router cannot disagree.

pub mod admin;
pub mod branches;
pub mod commit_history;
pub mod commit_sets;
pub mod commit_verbs;
pub mod commits;
pub mod datums;
pub mod defaults;
pub mod events;
pub mod files;
pub mod jobs;
pub mod logs;
pub mod pipelines;
pub mod projects;
pub mod repos;
pub mod secrets;
pub mod transactions;

use serde::Deserialize;
use utoipa::IntoParams;

/// `?force=true`: also remove provenance edges pointing at what is deleted.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ForceQuery {
    /// Also remove provenance edges pointing at it.
    #[serde(default)]
    pub force: bool,
}
