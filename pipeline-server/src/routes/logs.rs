//! `/api/v1/...` logs: read and follow user-code logs.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The logs routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
