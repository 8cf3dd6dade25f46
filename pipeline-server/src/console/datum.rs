//! `/pipelines/{pipeline}/jobs/{job}/datums/{datum}`: one datum.

use axum::extract::State;
use maud::html;

use super::view::{Html, PageResult, shell};
use crate::extract::Path;
use crate::state::AppState;

/// `GET /pipelines/{pipeline}/jobs/{job}/datums/{datum}`.
pub async fn page(
    State(_s): State<AppState>,
    Path((_p, _j, d)): Path<(String, String, String)>,
) -> PageResult {
    Ok(Html(shell(&d, &[], html! { h1 { (d) } })))
}
