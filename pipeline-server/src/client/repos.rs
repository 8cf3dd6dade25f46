//! Repo calls.

use axum::http::Method;
use pipeline_core::pfs::RepoInfo;

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::repos::CreateRepo;

impl Client {
    /// `GET /api/v1/repos`.
    pub async fn list_repos(&self) -> ClientResult<Vec<RepoInfo>> {
        self.json(Method::GET, "/api/v1/repos", NO_BODY).await
    }

    /// `POST /api/v1/repos`.
    pub async fn create_repo(&self, name: &str, description: &str) -> ClientResult<RepoInfo> {
        let body = CreateRepo {
            name: name.into(),
            description: description.into(),
        };
        self.json(Method::POST, "/api/v1/repos", Some(&body)).await
    }

    /// `GET /api/v1/repos/{repo}`.
    pub async fn inspect_repo(&self, repo: &str) -> ClientResult<RepoInfo> {
        let path = format!("/api/v1/repos/{}", seg(repo));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `DELETE /api/v1/repos/{repo}`.
    pub async fn delete_repo(&self, repo: &str, force: bool) -> ClientResult<()> {
        let q = if force {
            query(&[("force", "true".into())])
        } else {
            String::new()
        };
        let path = format!("/api/v1/repos/{}{q}", seg(repo));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }
}
