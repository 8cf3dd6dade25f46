//! Pipeline calls.

use axum::http::Method;
use pipeline_core::pps::{PipelineInfo, RerunMode};

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::pipelines::{
    CreatePipelines, CronRun, DryRunPipeline, PipelinesWritten, RerunPipeline,
};

impl Client {
    /// `GET /api/v1/pipelines`.
    pub async fn list_pipelines(&self) -> ClientResult<Vec<PipelineInfo>> {
        self.json(Method::GET, "/api/v1/pipelines", NO_BODY).await
    }

    /// `POST /api/v1/pipelines`: creates (or updates) every pipeline of a spec file.
    pub async fn create_pipelines(&self, req: &CreatePipelines) -> ClientResult<PipelinesWritten> {
        self.json(Method::POST, "/api/v1/pipelines", Some(req))
            .await
    }

    /// `POST /api/v1/dry_run/pipelines`: what [`Client::create_pipelines`] would do.
    pub async fn dry_run_pipelines(
        &self,
        req: &CreatePipelines,
    ) -> ClientResult<Vec<DryRunPipeline>> {
        self.json(Method::POST, "/api/v1/dry_run/pipelines", Some(req))
            .await
    }

    /// `GET /api/v1/pipelines/{pipeline}`.
    pub async fn inspect_pipeline(&self, name: &str) -> ClientResult<PipelineInfo> {
        let path = format!("/api/v1/pipelines/{}", seg(name));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `GET /api/v1/pipelines/{pipeline}/versions/{version}`.
    pub async fn pipeline_version(&self, name: &str, version: u64) -> ClientResult<PipelineInfo> {
        let path = format!("/api/v1/pipelines/{}/versions/{version}", seg(name));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `DELETE /api/v1/pipelines/{pipeline}`.
    pub async fn delete_pipeline(&self, name: &str, keep_repo: bool) -> ClientResult<()> {
        let q = if keep_repo {
            query(&[("keep_repo", "true".into())])
        } else {
            String::new()
        };
        let path = format!("/api/v1/pipelines/{}{q}", seg(name));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }

    /// `POST /api/v1/pipelines/{pipeline}/stop`.
    pub async fn stop_pipeline(&self, name: &str) -> ClientResult<PipelineInfo> {
        let path = format!("/api/v1/pipelines/{}/stop", seg(name));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/pipelines/{pipeline}/start`.
    pub async fn start_pipeline(&self, name: &str) -> ClientResult<PipelinesWritten> {
        let path = format!("/api/v1/pipelines/{}/start", seg(name));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/pipelines/{pipeline}/rerun`: a new version whose job runs only what did
    /// not succeed in the last job ([`RerunMode::FailedOnly`]) or every datum.
    pub async fn rerun_pipeline(&self, name: &str, mode: RerunMode) -> ClientResult<PipelineInfo> {
        let path = format!("/api/v1/pipelines/{}/rerun", seg(name));
        self.json(Method::POST, &path, Some(&RerunPipeline { mode }))
            .await
    }

    /// `POST /api/v1/pipelines/{pipeline}/run_cron`.
    pub async fn run_cron(&self, name: &str) -> ClientResult<CronRun> {
        let path = format!("/api/v1/pipelines/{}/run_cron", seg(name));
        self.json(Method::POST, &path, NO_BODY).await
    }
}
