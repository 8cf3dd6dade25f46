//! `/repos/{repo}` and `/repos/{repo}/commits/{commit}`: branches, commits, files, diffs.

use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;

use super::view::{Html, PageResult, shell};
use crate::extract::Path;
use crate::state::AppState;

/// `?path=` of the commit page.
#[derive(Debug, Default, Deserialize)]
pub struct CommitPageQuery {
    /// The directory shown (default `/`).
    #[serde(default)]
    pub path: Option<String>,
}

/// `GET /repos/{repo}`.
pub async fn page(State(_s): State<AppState>, Path(r): Path<String>) -> PageResult {
    Ok(Html(shell(&r, &[], html! { h1 { (r) } })))
}

/// `GET /repos/{repo}/commits/{commit}`.
pub async fn commit_page(
    State(_s): State<AppState>,
    Path((r, c)): Path<(String, String)>,
    Query(_q): Query<CommitPageQuery>,
) -> PageResult {
    Ok(Html(shell(&c, &[], html! { h1 { (r) "@" (c) } })))
}
