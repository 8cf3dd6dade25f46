//! Job calls. A job ID may be a prefix of 8+ characters.

use axum::http::Method;
use pipeline_core::pps::JobInfo;

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::jobs::{CommitSetJobs, RestartDatums, RestartedDatums};

impl Client {
    /// `GET /api/v1/jobs[?pipeline=]`: newest first.
    pub async fn list_jobs(&self, pipeline: Option<&str>) -> ClientResult<Vec<JobInfo>> {
        let q = match pipeline {
            Some(p) => query(&[("pipeline", p.to_string())]),
            None => String::new(),
        };
        self.json(Method::GET, &format!("/api/v1/jobs{q}"), NO_BODY)
            .await
    }

    /// `GET /api/v1/jobs/{pipeline}/{job}`.
    pub async fn inspect_job(&self, pipeline: &str, job: &str) -> ClientResult<JobInfo> {
        let path = format!("/api/v1/jobs/{}/{}", seg(pipeline), seg(job));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `POST /api/v1/jobs/{pipeline}/{job}/stop`.
    pub async fn stop_job(&self, pipeline: &str, job: &str) -> ClientResult<JobInfo> {
        let path = format!("/api/v1/jobs/{}/{}/stop", seg(pipeline), seg(job));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/jobs/{pipeline}/{job}/restart_datum`: the IDs of the datums restarted.
    pub async fn restart_datum(
        &self,
        pipeline: &str,
        job: &str,
        datums: &[String],
    ) -> ClientResult<RestartedDatums> {
        let path = format!("/api/v1/jobs/{}/{}/restart_datum", seg(pipeline), seg(job));
        let body = RestartDatums {
            datums: datums.to_vec(),
        };
        self.json(Method::POST, &path, Some(&body)).await
    }

    /// `POST /api/v1/jobs/{pipeline}/{job}/wait`: the job once finished or waiting for an
    /// open commit.
    pub async fn wait_job(&self, pipeline: &str, job: &str) -> ClientResult<JobInfo> {
        let path = format!("/api/v1/jobs/{}/{}/wait", seg(pipeline), seg(job));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `POST /api/v1/jobs/wait?commit=REPO@COMMIT`: the jobs of that commit's commit set once
    /// none can progress.
    pub async fn wait_commit(&self, commit: &str) -> ClientResult<CommitSetJobs> {
        let path = format!(
            "/api/v1/jobs/wait{}",
            query(&[("commit", commit.to_string())])
        );
        self.json(Method::POST, &path, NO_BODY).await
    }
}
