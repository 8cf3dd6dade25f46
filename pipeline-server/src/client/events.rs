//! Following the server's changes: `GET /api/v1/events` as a stream of [`Event`]s.

use axum::http::Method;
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use pipeline_core::pps::Event;

use super::{Client, ClientError, ClientResult, NO_BODY, query};

impl Client {
    /// `GET /api/v1/events`: every change from now on (only those about `pipeline` and/or
    /// `job` when given), until the server stops. The subscription exists when this returns,
    /// so changes made afterwards are all seen (or counted in an [`Event::Lagged`]).
    pub async fn events(
        &self,
        pipeline: Option<&str>,
        job: Option<&str>,
    ) -> ClientResult<BoxStream<'static, ClientResult<Event>>> {
        let mut pairs = Vec::new();
        if let Some(p) = pipeline {
            pairs.push(("pipeline", p.to_string()));
        }
        if let Some(j) = job {
            pairs.push(("job", j.to_string()));
        }
        let path = format!("/api/v1/events{}", query(&pairs));
        let resp = self.request(Method::GET, &path, NO_BODY).await?;
        let target = self.target();
        let body = resp.into_body().into_data_stream();
        let parser = SseParser::default();
        let stream = futures::stream::unfold(
            (body, parser, target),
            |(mut body, mut parser, target)| async move {
                loop {
                    if let Some(item) = parser.next_event() {
                        let item = item.map_err(|e| protocol(&target, e));
                        return Some((item, (body, parser, target)));
                    }
                    match body.next().await? {
                        Ok(chunk) => parser.push(&chunk),
                        Err(e) => {
                            let err = protocol(&target, e.to_string());
                            return Some((Err(err), (body, parser, target)));
                        }
                    }
                }
            },
        );
        Ok(stream.boxed())
    }
}

fn protocol(target: &str, message: String) -> ClientError {
    ClientError::Protocol {
        target: target.to_string(),
        message,
    }
}

/// Splits a `text/event-stream` into events' data and parses each as an [`Event`].
#[derive(Default)]
struct SseParser {
    buf: BytesMut,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event with data (comments and keep-alives are skipped).
    fn next_event(&mut self) -> Option<Result<Event, String>> {
        loop {
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let block = self.buf.split_to(end);
            self.buf.advance(2);
            let text = String::from_utf8_lossy(&block);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue;
            }
            let json = data.join("\n");
            return Some(
                serde_json::from_str(&json).map_err(|e| format!("bad event {json:?}: {e}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut p = SseParser::default();
        p.push(b": keep-alive\n\nevent: lagged\nda");
        assert!(p.next_event().is_none());
        p.push(b"ta: {\"type\":\"lagged\",\"missed\":3}\n\n");
        match p.next_event() {
            Some(Ok(Event::Lagged { missed })) => assert_eq!(missed, 3),
            other => panic!("{other:?}"),
        }
        assert!(p.next_event().is_none());
    }
}
