//! Calls on the store as a whole: gc, fsck.

use axum::http::Method;
use pipeline_core::pfs::{CheckReport, GcStats};

use super::{Client, ClientResult, NO_BODY, query};

impl Client {
    /// `POST /api/v1/gc`: removes contents no file refers to that are older than
    /// `grace_secs`.
    pub async fn gc(&self, grace_secs: u64) -> ClientResult<GcStats> {
        let path = format!(
            "/api/v1/gc{}",
            query(&[("grace_secs", grace_secs.to_string())])
        );
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/fsck`: verifies the store (with `fix`, moves damaged objects aside).
    pub async fn fsck(&self, fix: bool) -> ClientResult<CheckReport> {
        let path = format!("/api/v1/fsck{}", query(&[("fix", fix.to_string())]));
        self.json(Method::POST, &path, NO_BODY).await
    }
}
