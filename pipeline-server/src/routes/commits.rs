//! `/api/v1/...` commits: start, finish, list, inspect, diff.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The commits routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
