//! Project calls.

use axum::http::Method;
use pipeline_core::pfs::ProjectInfo;

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::projects::{CreateProject, UpdateProject};

impl Client {
    /// `GET /api/v1/projects`.
    pub async fn list_projects(&self) -> ClientResult<Vec<ProjectInfo>> {
        self.json(Method::GET, "/api/v1/projects", NO_BODY).await
    }

    /// `POST /api/v1/projects`.
    pub async fn create_project(&self, name: &str, description: &str) -> ClientResult<ProjectInfo> {
        let body = CreateProject {
            name: name.into(),
            description: description.into(),
        };
        self.json(Method::POST, "/api/v1/projects", Some(&body))
            .await
    }

    /// `GET /api/v1/projects/{project}`.
    pub async fn inspect_project(&self, project: &str) -> ClientResult<ProjectInfo> {
        let path = format!("/api/v1/projects/{}", seg(project));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `PATCH /api/v1/projects/{project}`.
    pub async fn update_project(
        &self,
        project: &str,
        description: &str,
    ) -> ClientResult<ProjectInfo> {
        let path = format!("/api/v1/projects/{}", seg(project));
        let body = UpdateProject {
            description: description.into(),
        };
        self.json(Method::PATCH, &path, Some(&body)).await
    }

    /// `DELETE /api/v1/projects/{project}`.
    pub async fn delete_project(&self, project: &str, force: bool) -> ClientResult<()> {
        let q = if force {
            query(&[("force", "true".into())])
        } else {
            String::new()
        };
        let path = format!("/api/v1/projects/{}{q}", seg(project));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }
}
