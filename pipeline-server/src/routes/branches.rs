//! `/api/v1/...` branches: create, list, inspect, delete.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The branches routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
