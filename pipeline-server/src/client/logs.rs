//! Log calls.

use axum::http::Method;
use pipeline_core::pps::LogLine;

use super::{Client, ClientResult, NO_BODY, NdjsonStream, query, seg};

impl Client {
    /// `GET /api/v1/pipelines/{pipeline}/logs`: a pipeline's log lines (optionally one job's,
    /// one datum's); with `follow`, also the lines stored later, until the job is finished.
    pub async fn logs(
        &self,
        pipeline: &str,
        job: Option<&str>,
        datum: Option<&str>,
        follow: bool,
    ) -> ClientResult<NdjsonStream<LogLine>> {
        let mut pairs = Vec::new();
        if let Some(j) = job {
            pairs.push(("job", j.to_string()));
        }
        if let Some(d) = datum {
            pairs.push(("datum", d.to_string()));
        }
        if follow {
            pairs.push(("follow", "true".to_string()));
        }
        let path = format!("/api/v1/pipelines/{}/logs{}", seg(pipeline), query(&pairs));
        let resp = self.request(Method::GET, &path, NO_BODY).await?;
        Ok(NdjsonStream::new(self, resp))
    }
}
