//! Stopping cleanly: once [`crate::AppState::begin_stop`] was called, [`refuse_when_stopping`]
//! answers every new request with 503 `unavailable` (the handler never runs).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// Middleware: 503 `unavailable` while the server stops; otherwise the request runs.
pub async fn refuse_when_stopping(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if s.is_stopping() {
        return ApiError::new(
            ErrorKind::Unavailable,
            "the server is stopping; retry when it runs again",
        )
        .into_response();
    }
    next.run(req).await
}
