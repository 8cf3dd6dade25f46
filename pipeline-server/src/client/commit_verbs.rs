//! `copy file`, `find commit` and `wait commit` calls (`routes::commit_verbs`).

use axum::http::Method;
use pipeline_core::pfs::{CommitInfo, FoundCommit};

use super::NdjsonStream;
use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::commit_verbs::CopyFile;
use crate::routes::files::WriteResult;

impl Client {
    /// `POST /api/v1/repos/{repo}/commits/{at}/copy`: copies `req.src_*` to `req.path` of
    /// `repo@at` (auto-commit rule), sharing the stored contents.
    pub async fn copy_file(
        &self,
        repo: &str,
        at: &str,
        req: &CopyFile,
    ) -> ClientResult<WriteResult> {
        let path = format!("/api/v1/repos/{}/commits/{}/copy", seg(repo), seg(at));
        self.json(Method::POST, &path, Some(req)).await
    }

    /// `GET /api/v1/repos/{repo}/commits/{commit}/find`: the commits of `commit`'s history
    /// that changed `path`, newest first, at most `limit` (0: all), streamed.
    pub async fn find_commits(
        &self,
        repo: &str,
        commit: &str,
        path: &str,
        limit: usize,
    ) -> ClientResult<NdjsonStream<FoundCommit>> {
        let mut pairs = vec![("path", path.to_string())];
        if limit > 0 {
            pairs.push(("limit", limit.to_string()));
        }
        let path = format!(
            "/api/v1/repos/{}/commits/{}/find{}",
            seg(repo),
            seg(commit),
            query(&pairs)
        );
        let resp = self.request(Method::GET, &path, NO_BODY).await?;
        Ok(NdjsonStream::new(self, resp))
    }

    /// `POST /api/v1/repos/{repo}/commits/{commit}/wait`: the commit once finished (or as it
    /// is after `timeout_ms`, or at once in embedded mode; check its state).
    pub async fn wait_commit_finished(
        &self,
        repo: &str,
        commit: &str,
        timeout_ms: Option<u64>,
    ) -> ClientResult<CommitInfo> {
        let pairs: Vec<(&str, String)> = timeout_ms
            .map(|t| ("timeout_ms", t.to_string()))
            .into_iter()
            .collect();
        let path = format!(
            "/api/v1/repos/{}/commits/{}/wait{}",
            seg(repo),
            seg(commit),
            query(&pairs)
        );
        self.json(Method::POST, &path, NO_BODY).await
    }
}
