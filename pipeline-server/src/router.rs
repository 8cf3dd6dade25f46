//! The whole API as one axum [`Router`], and its OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::routes;
use crate::state::AppState;

/// The largest JSON request body accepted (a pipeline spec, a secret manifest). File uploads
/// stream and have no limit.
pub const MAX_JSON_BODY: usize = 8 << 20;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipeline-server",
        description = "Pachyderm-style versioned data and pipelines over HTTP/JSON: repos, \
            branches, commits, files, pipelines, jobs, datums, logs, secrets. Errors are \
            `ErrorBody` with a `kind` that decides the status."
    ),
    components(schemas(ErrorBody, ErrorKind))
)]
struct ApiDoc;

/// Every route with its description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::projects::routes())
        .merge(routes::repos::routes())
        .merge(routes::branches::routes())
        .merge(routes::commits::routes())
        .merge(routes::commit_sets::routes())
        .merge(routes::commit_verbs::routes())
        .merge(routes::commit_history::routes())
        .merge(routes::files::routes())
        .merge(routes::pipelines::routes())
        .merge(routes::jobs::routes())
        .merge(routes::datums::routes())
        .merge(routes::logs::routes())
        .merge(routes::secrets::routes())
        .merge(routes::transactions::routes())
        .merge(routes::defaults::routes())
        .merge(routes::events::routes())
        .merge(routes::admin::routes())
}

/// The OpenAPI document of the API (served at `/api/v1/openapi.json`; the copy in the repo,
/// `pipeline-server/openapi.json`, is checked against it by a test).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The API over `state`: every route, the OpenAPI document, JSON errors for unknown routes
/// and methods, and the request body limit.
pub fn router(state: AppState) -> Router {
    let (router, doc) = api().split_for_parts();
    let doc = Arc::new(doc);
    router
        .merge(crate::console::routes())
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|uri: Uri| async move { ApiError::not_found(format!("no route {}", uri.path())) })
        .method_not_allowed_fallback(|uri: Uri| async move {
            ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("method not allowed on {}", uri.path()),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::spout::guard_output_writes,
        ))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}
