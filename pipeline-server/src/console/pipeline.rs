//! `/pipelines/{pipeline}`: one pipeline, and its actions.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use pipeline_core::pps::{Engine, PpsError, RerunMode};

use super::session::ActionForm;
use super::view::{Html, PageError, PageResult, shell, url};
use crate::error::ApiError;
use crate::extract::Path;
use crate::state::AppState;

/// `GET /pipelines/{pipeline}`.
pub async fn page(State(_s): State<AppState>, Path(p): Path<String>) -> PageResult {
    Ok(Html(shell(&p, &[], html! { h1 { (p) } })))
}

/// `POST /pipelines/{pipeline}/rerun` (`mode=failed` (default) or `all`): a new job over the
/// current inputs (see [`RerunMode`]); back to the pipeline's page.
pub async fn rerun(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    let mode = match f.mode.as_deref() {
        None | Some("failed") => RerunMode::FailedOnly,
        Some("all") => RerunMode::All,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "mode: expected `failed` or `all`, got {other:?}"
            ))
            .into());
        }
    };
    act(&s, &p, move |e, p| e.rerun_pipeline(p, mode).map(drop)).await
}

/// `POST /pipelines/{pipeline}/stop`: no new jobs, running ones killed.
pub async fn stop(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    act(&s, &p, |e, p| e.stop_pipeline(p).map(drop)).await
}

/// `POST /pipelines/{pipeline}/start`: a job over the current inputs.
pub async fn start(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    f.check(&s)?;
    act(&s, &p, |e, p| e.start_pipeline(p).map(drop)).await
}

/// Runs one engine write on pipeline `p`, wakes the runner and goes back to its page (303).
async fn act(
    s: &AppState,
    p: &str,
    write: impl FnOnce(&Engine, &str) -> Result<(), PpsError> + Send + 'static,
) -> Result<Response, PageError> {
    let name = p.to_string();
    s.blocking(move |e| Ok(write(e, &name)?)).await?;
    s.notify_changed();
    Ok(Redirect::to(&url::pipeline(p)).into_response())
}
