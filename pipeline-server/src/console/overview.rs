//! `/`: the overview.

use axum::extract::State;
use maud::html;

use super::view::{Html, PageResult, shell};
use crate::state::AppState;

/// `GET /`: the DAG of repos and pipelines.
pub async fn page(State(_s): State<AppState>) -> PageResult {
    Ok(Html(shell("Overview", &[], html! { h1 { "Overview" } })))
}
