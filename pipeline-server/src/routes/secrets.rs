//! `/api/v1/...` secrets: create, list, inspect, delete.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The secrets routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
