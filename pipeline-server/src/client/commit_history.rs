//! Commit-set calls: squash, delete (drop), and the set's commits (waiting for them).

use axum::http::Method;
use pipeline_core::pfs::CommitInfo;
use pipeline_core::pps::RemovedCommitSet;

use super::{Client, ClientResult, NO_BODY, query, seg};

impl Client {
    /// `POST /api/v1/commit_sets/{id}/squash`: the set's commits deleted, their changes kept
    /// in their children.
    pub async fn squash_commit_set(&self, id: &str) -> ClientResult<RemovedCommitSet> {
        let path = format!("/api/v1/commit_sets/{}/squash", seg(id));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `DELETE /api/v1/commit_sets/{id}`: the set's commits dropped.
    pub async fn delete_commit_set(&self, id: &str) -> ClientResult<RemovedCommitSet> {
        let path = format!("/api/v1/commit_sets/{}", seg(id));
        self.json(Method::DELETE, &path, NO_BODY).await
    }

    /// `GET /api/v1/commit_sets/{id}[?wait=true&timeout_ms=]`: the set's commits, sorted by
    /// repo; with `wait`, once every one is finished (or `timeout_ms` passed).
    pub async fn inspect_commit_set(
        &self,
        id: &str,
        wait: bool,
        timeout_ms: Option<u64>,
    ) -> ClientResult<Vec<CommitInfo>> {
        let mut q = Vec::new();
        if wait {
            q.push(("wait", "true".to_string()));
        }
        if let Some(t) = timeout_ms {
            q.push(("timeout_ms", t.to_string()));
        }
        let path = format!("/api/v1/commit_sets/{}{}", seg(id), query(&q));
        self.json(Method::GET, &path, NO_BODY).await
    }
}
