//! Commit calls.

use axum::http::Method;
use pipeline_core::pfs::{CommitInfo, DiffEntry};

use super::NdjsonStream;
use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::commits::{DiffQuery, StartCommit};

impl Client {
    /// `GET /api/v1/repos/{repo}/commits`: a branch's history (or every commit), newest
    /// first, at most `number` (0: all).
    pub async fn list_commits(
        &self,
        repo: &str,
        branch: Option<&str>,
        number: usize,
    ) -> ClientResult<Vec<CommitInfo>> {
        let mut q = Vec::new();
        if let Some(b) = branch {
            q.push(("branch", b.to_string()));
        }
        if number > 0 {
            q.push(("number", number.to_string()));
        }
        let path = format!("/api/v1/repos/{}/commits{}", seg(repo), query(&q));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `POST /api/v1/repos/{repo}/commits`: starts a commit on `branch`.
    pub async fn start_commit(
        &self,
        repo: &str,
        branch: &str,
        description: &str,
    ) -> ClientResult<CommitInfo> {
        let body = StartCommit {
            branch: branch.into(),
            description: description.into(),
        };
        let path = format!("/api/v1/repos/{}/commits", seg(repo));
        self.json(Method::POST, &path, Some(&body)).await
    }

    /// `GET /api/v1/repos/{repo}/commits/{commit}` (`commit`: ID, branch, `BRANCH^N`).
    pub async fn inspect_commit(&self, repo: &str, commit: &str) -> ClientResult<CommitInfo> {
        let path = format!("/api/v1/repos/{}/commits/{}", seg(repo), seg(commit));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `POST /api/v1/repos/{repo}/commits/{commit}/finish`, with an error when given.
    pub async fn finish_commit(
        &self,
        repo: &str,
        commit: &str,
        error: Option<&str>,
    ) -> ClientResult<CommitInfo> {
        let q: Vec<(&str, String)> = error
            .map(|e| ("error", e.to_string()))
            .into_iter()
            .collect();
        let path = format!(
            "/api/v1/repos/{}/commits/{}/finish{}",
            seg(repo),
            seg(commit),
            query(&q)
        );
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `GET /api/v1/repos/{repo}/commits/{commit}/diff`: what changed since `q.old` (a
    /// commit-ish of the repo or `REPO@COMMIT`; default the parent), below `q.path` (and
    /// `q.old_path`), one level deep with `q.shallow`; streamed.
    pub async fn diff_commit(
        &self,
        repo: &str,
        commit: &str,
        q: &DiffQuery,
    ) -> ClientResult<NdjsonStream<DiffEntry>> {
        let mut pairs = Vec::new();
        if let Some(o) = &q.old {
            pairs.push(("old", o.clone()));
        }
        if let Some(p) = &q.path {
            pairs.push(("path", p.clone()));
        }
        if let Some(p) = &q.old_path {
            pairs.push(("old_path", p.clone()));
        }
        if q.shallow {
            pairs.push(("shallow", "true".to_string()));
        }
        let path = format!(
            "/api/v1/repos/{}/commits/{}/diff{}",
            seg(repo),
            seg(commit),
            query(&pairs)
        );
        let resp = self.request(Method::GET, &path, NO_BODY).await?;
        Ok(NdjsonStream::new(self, resp))
    }
}
