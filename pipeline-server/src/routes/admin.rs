//! `/api/v1/...` the store as a whole: gc, fsck.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The admin routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
