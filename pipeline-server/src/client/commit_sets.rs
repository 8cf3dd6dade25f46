//! Waiting for the jobs a write started.

use axum::http::Method;
use pipeline_core::pps::JobInfo;

use super::{Client, ClientResult, NO_BODY, seg};

impl Client {
    /// `POST /api/v1/commit_sets/{id}/wait`: the jobs of commit set `id` once each is done or
    /// waits for an open commit.
    pub async fn wait_commit_set(&self, id: &str) -> ClientResult<Vec<JobInfo>> {
        let path = format!("/api/v1/commit_sets/{}/wait", seg(id));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/jobs/settle`: runs pending jobs on a server that only runs them when
    /// asked; returns the jobs that finished.
    pub async fn settle_jobs(&self) -> ClientResult<Vec<JobInfo>> {
        self.json(Method::POST, "/api/v1/jobs/settle", NO_BODY)
            .await
    }
}
