//! `/api/v1/...` `/api/v1/events`: a server-sent-events stream of what changes.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The events routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
