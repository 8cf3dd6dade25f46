//! Datum calls.

use axum::http::Method;
use pipeline_core::pps::DatumInfo;

use super::NdjsonStream;
use super::{Client, ClientResult, NO_BODY, seg};
use crate::routes::datums::{PreviewDatums, PreviewLine};

impl Client {
    /// `GET /api/v1/jobs/{pipeline}/{job}/datums`.
    pub async fn list_datums(&self, pipeline: &str, job: &str) -> ClientResult<Vec<DatumInfo>> {
        let path = format!("/api/v1/jobs/{}/{}/datums", seg(pipeline), seg(job));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `GET /api/v1/jobs/{pipeline}/{job}/datums/{datum}` (a unique datum ID prefix is
    /// enough).
    pub async fn inspect_datum(
        &self,
        pipeline: &str,
        job: &str,
        datum: &str,
    ) -> ClientResult<DatumInfo> {
        let path = format!(
            "/api/v1/jobs/{}/{}/datums/{}",
            seg(pipeline),
            seg(job),
            seg(datum)
        );
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `POST /api/v1/datums/preview`: the preview's lines as they stream.
    pub async fn preview_datums(
        &self,
        req: &PreviewDatums,
    ) -> ClientResult<NdjsonStream<PreviewLine>> {
        let resp = self
            .request(Method::POST, "/api/v1/datums/preview", Some(req))
            .await?;
        Ok(NdjsonStream::new(self, resp))
    }
}
