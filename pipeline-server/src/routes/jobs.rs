//! `/api/v1/...` jobs: list, inspect, stop, wait.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The jobs routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
