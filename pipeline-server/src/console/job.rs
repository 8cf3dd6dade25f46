//! `/pipelines/{pipeline}/jobs/{job}`: one job and its datums, one page at a time.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::session::ActionForm;
use super::view::{Html, PageError, PageResult, shell, url};
use crate::extract::Path;
use crate::state::AppState;

/// `?state=&after=` of the job page.
#[derive(Debug, Default, Deserialize)]
pub struct JobPageQuery {
    /// Only datums in this state (`FAILED`, `RECOVERED`, `SUCCESS`, `SKIPPED`).
    #[serde(default)]
    pub state: Option<String>,
    /// The page after this position (a page's `next`).
    #[serde(default)]
    pub after: Option<String>,
}

/// `GET /pipelines/{pipeline}/jobs/{job}`.
pub async fn page(
    State(_s): State<AppState>,
    Path((p, j)): Path<(String, String)>,
    Query(_q): Query<JobPageQuery>,
) -> PageResult {
    Ok(Html(shell(&j, &[], html! { h1 { (p) "@" (j) } })))
}

/// `POST /pipelines/{pipeline}/jobs/{job}/stop`: KILLED with "job stopped"; back to its page.
pub async fn stop(
    State(s): State<AppState>,
    Path((p, j)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    let (pipeline, prefix) = (p.clone(), j.clone());
    let id = s
        .blocking(move |e| {
            let id = e.resolve_job_id(&pipeline, &prefix)?;
            e.stop_job(&pipeline, &id, None)?;
            Ok(id)
        })
        .await?;
    s.notify_changed();
    Ok(Redirect::to(&url::job(&p, &id)).into_response())
}
