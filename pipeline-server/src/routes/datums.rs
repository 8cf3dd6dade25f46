//! `/api/v1/...` datums: list, inspect, preview.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The datums routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
