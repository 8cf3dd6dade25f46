//! `/api/v1/...` files: streaming upload (a file, a tar archive, a server-side directory) and download, list, glob, delete.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The files routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
