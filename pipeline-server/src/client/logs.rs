//! Log calls, and [`Lines`]: reading a streamed NDJSON answer one value at a time.

use std::marker::PhantomData;

use axum::body::Body;
use axum::http::{Method, Response};
use http_body_util::BodyExt;
use pipeline_core::pps::LogLine;
use serde::de::DeserializeOwned;

use super::{Client, ClientResult, NO_BODY, query, seg};

/// The values of an NDJSON answer, read as they arrive (memory holds one line at a time).
pub struct Lines<T> {
    client: Client,
    body: Body,
    buf: Vec<u8>,
    done: bool,
    _of: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Lines<T> {
    /// The lines of `resp`'s body.
    pub fn new(client: Client, resp: Response<Body>) -> Self {
        Lines {
            client,
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
            _of: PhantomData,
        }
    }

    /// The next value; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<ClientResult<T>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                match self.parse(line.get(..pos).unwrap_or_default()) {
                    Some(v) => return Some(v),
                    None => continue,
                }
            }
            if self.done {
                let rest = std::mem::take(&mut self.buf);
                return self.parse(&rest);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(self.client.protocol(e)));
                }
                None => self.done = true,
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Option<ClientResult<T>> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(
            serde_json::from_slice(line)
                .map_err(|e| self.client.protocol(format!("bad answer line: {e}"))),
        )
    }
}

impl Client {
    /// `GET /api/v1/pipelines/{pipeline}/logs`: a pipeline's log lines (optionally one job's,
    /// one datum's); with `follow`, also the lines stored later, until the job is finished.
    pub async fn logs(
        &self,
        pipeline: &str,
        job: Option<&str>,
        datum: Option<&str>,
        follow: bool,
    ) -> ClientResult<Lines<LogLine>> {
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
        Ok(Lines::new(self.clone(), resp))
    }
}
