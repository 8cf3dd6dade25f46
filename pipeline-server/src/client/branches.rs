//! Branch calls.

use axum::http::Method;
use pipeline_core::pfs::BranchInfo;

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::branches::PutBranch;

impl Client {
    /// `GET /api/v1/repos/{repo}/branches`.
    pub async fn list_branches(&self, repo: &str) -> ClientResult<Vec<BranchInfo>> {
        let path = format!("/api/v1/repos/{}/branches", seg(repo));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `GET /api/v1/repos/{repo}/branches/{branch}`.
    pub async fn inspect_branch(&self, repo: &str, branch: &str) -> ClientResult<BranchInfo> {
        let path = format!("/api/v1/repos/{}/branches/{}", seg(repo), seg(branch));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `PUT /api/v1/repos/{repo}/branches/{branch}`: creates or updates a branch.
    pub async fn put_branch(
        &self,
        repo: &str,
        branch: &str,
        body: &PutBranch,
    ) -> ClientResult<BranchInfo> {
        let path = format!("/api/v1/repos/{}/branches/{}", seg(repo), seg(branch));
        self.json(Method::PUT, &path, Some(body)).await
    }

    /// `DELETE /api/v1/repos/{repo}/branches/{branch}`.
    pub async fn delete_branch(&self, repo: &str, branch: &str, force: bool) -> ClientResult<()> {
        let q = if force {
            query(&[("force", "true".into())])
        } else {
            String::new()
        };
        let path = format!("/api/v1/repos/{}/branches/{}{q}", seg(repo), seg(branch));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }
}
