//! `/api/v1/...` pipelines: create, update, list, inspect, stop, start, delete, run cron.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The pipelines routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
