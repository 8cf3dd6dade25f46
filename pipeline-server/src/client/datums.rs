//! Datum calls.

use axum::http::Method;
use pipeline_core::pps::{DatumInfo, DatumPage, DatumQuery};

use super::NdjsonStream;
use super::{Client, ClientResult, NO_BODY, query, seg};
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

    /// `GET /api/v1/jobs/{pipeline}/{job}/datum_page`: one page of a job's datums in
    /// reading order (pass the page's `next` as `q.after` for the next one).
    pub async fn datum_page(
        &self,
        pipeline: &str,
        job: &str,
        q: &DatumQuery,
    ) -> ClientResult<DatumPage> {
        let mut pairs = Vec::new();
        if let Some(state) = q.state {
            pairs.push(("state", state.as_str().to_string()));
        }
        if let Some(after) = &q.after {
            pairs.push(("after", after.clone()));
        }
        if q.limit > 0 {
            pairs.push(("limit", q.limit.to_string()));
        }
        if q.reverse {
            pairs.push(("reverse", "true".to_string()));
        }
        let path = format!(
            "/api/v1/jobs/{}/{}/datum_page{}",
            seg(pipeline),
            seg(job),
            query(&pairs)
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
