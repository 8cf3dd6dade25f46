//! `/api/v1/gc` and `/api/v1/fsck`: the store as a whole.

use std::time::Duration;

use axum::extract::State;
use pipeline_core::pfs::{CheckReport, GcStats};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, JobRunner};

/// The admin routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(gc))
        .routes(routes!(fsck))
}

/// `?grace_secs=` of a garbage collection.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct GcQuery {
    /// Keep unreferenced contents written less than this many seconds ago (uploads in
    /// progress write contents before they reference them; default 3600). A server that
    /// runs jobs in the background (`pipectl serve`) keeps at least [`SERVED_MIN_GRACE_SECS`]:
    /// other clients' uploads and running jobs' outputs may be in flight.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
}

fn default_grace() -> u64 {
    3600
}

/// The least grace period a server that others may be writing through applies (one hour).
pub const SERVED_MIN_GRACE_SECS: u64 = 3600;

/// `?fix=` of a check.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct FsckQuery {
    /// Move damaged objects into the store's `lost+found` (never deleted).
    #[serde(default)]
    pub fix: bool,
}

/// Removes stored contents no file refers to any more.
#[utoipa::path(post, path = "/api/v1/gc", tag = "admin", params(GcQuery),
    responses((status = 200, body = GcStats), (status = 400, body = ErrorBody),
        (status = 500, body = ErrorBody)))]
async fn gc(State(s): State<AppState>, Query(q): Query<GcQuery>) -> ApiResult<Json<GcStats>> {
    let secs = match s.runner() {
        // Only this command uses the store (pipectl's embedded mode): nothing is in flight.
        JobRunner::OnWait => q.grace_secs,
        JobRunner::Background => q.grace_secs.max(SERVED_MIN_GRACE_SECS),
    };
    let grace = Duration::from_secs(secs);
    let stats = s.blocking(move |e| Ok(e.store().gc(grace)?)).await?;
    s.notify_changed();
    Ok(Json(stats))
}

/// Verifies every object and every reference of the store; the report lists what is wrong
/// (a damaged store is a 200 with problems; only an unreadable one is an error).
#[utoipa::path(post, path = "/api/v1/fsck", tag = "admin", params(FsckQuery),
    responses((status = 200, body = CheckReport), (status = 400, body = ErrorBody),
        (status = 500, body = ErrorBody)))]
async fn fsck(
    State(s): State<AppState>,
    Query(q): Query<FsckQuery>,
) -> ApiResult<Json<CheckReport>> {
    let report = s.blocking(move |e| Ok(e.store().check(q.fix)?)).await?;
    if q.fix {
        s.notify_changed();
    }
    Ok(Json(report))
}
