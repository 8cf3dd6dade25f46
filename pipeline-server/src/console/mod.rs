//! The web console: server-rendered HTML pages over the same engine the API serves, with a
//! little hand-written JavaScript for live updates (server-sent events from
//! `/api/v1/events`). Pages and assets are compiled into the binary (`maud` templates, which
//! escape every interpolated value; `include_str!` assets), so there is no build step.
//!
//! Every page has a stable URL:
//!
//! | URL | page |
//! |---|---|
//! | `/` | overview: the DAG of repos and pipelines, each pipeline's last job, staleness |
//! | `/pipelines/{pipeline}` | a pipeline: spec as written and effective, versions, jobs, actions |
//! | `/pipelines/{pipeline}/jobs/{job}` | a job: stats, reason, its datums (failed first, slowest next; `?state=`, `?after=`) |
//! | `/pipelines/{pipeline}/jobs/{job}/datums/{datum}` | a datum: inputs, outputs, attempts, logs |
//! | `/repos/{repo}` | a repo: branches and commits with provenance |
//! | `/repos/{repo}/commits/{commit}` | a commit: its files (`?path=` a directory), its diff against its parent |
//! | `/login` | the token form (TCP listeners with a token only) |
//!
//! Actions (`POST /pipelines/{pipeline}/rerun`, `/stop`, `/start`,
//! `POST /pipelines/{pipeline}/jobs/{job}/stop`) are forms carrying the console's CSRF token
//! ([`session`]); over TCP they need the same token as the API (as the session cookie).

pub mod commit;
pub mod commit_diff;
pub mod dag_layout;
pub mod dag_svg;
pub mod datum;
pub mod datum_fields;
pub mod dir_page;
pub mod file_browser;
pub mod job;
pub mod job_datums;
pub mod log_lines;
pub mod overview;
pub mod pipeline;
pub mod pipeline_spec;
pub mod pipeline_status;
pub mod repo;
pub mod reproduce;
pub mod session;
pub mod staleness;
pub mod view;

mod assets;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The console's routes (merged into [`crate::router()`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(session::login_form).post(session::login))
        .route("/assets/{file}", get(assets::asset))
        .route("/pipelines/{pipeline}", get(pipeline::page))
        .route("/pipelines/{pipeline}/rerun", post(pipeline::rerun))
        .route("/pipelines/{pipeline}/stop", post(pipeline::stop))
        .route("/pipelines/{pipeline}/start", post(pipeline::start))
        .route("/pipelines/{pipeline}/jobs/{job}", get(job::page))
        .route("/pipelines/{pipeline}/jobs/{job}/stop", post(job::stop))
        .route(
            "/pipelines/{pipeline}/jobs/{job}/datums/{datum}",
            get(datum::page),
        )
        .route("/repos/{repo}", get(repo::page))
        .route("/repos/{repo}/commits/{commit}", get(repo::commit_page))
}
