//! [`NdjsonStream`]: a streamed NDJSON answer (listings, diffs, logs, datum previews) read one
//! value at a time.

use std::marker::PhantomData;

use axum::body::Body;
use axum::http::Response;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::{Client, ClientError, ClientResult};
use crate::error::ErrorBody;

/// A streamed NDJSON answer, read one item at a time (memory: one chunk and one line).
pub struct NdjsonStream<T> {
    client: Client,
    body: Body,
    buf: Vec<u8>,
    start: usize,
    done: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> NdjsonStream<T> {
    /// The stream over `resp`'s body.
    pub(crate) fn new(client: &Client, resp: Response<Body>) -> Self {
        NdjsonStream {
            client: client.clone(),
            body: resp.into_body(),
            buf: Vec::new(),
            start: 0,
            done: false,
            _item: PhantomData,
        }
    }

    /// The next item; `None` at the end. A line `{"error": ...}` (the server failed
    /// mid-way) is returned as that error.
    pub async fn next(&mut self) -> ClientResult<Option<T>> {
        loop {
            if let Some(i) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let line = self.start..self.start + i;
                self.start += i + 1;
                if self.buf[line.clone()].iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(line).map(Some);
            }
            if self.done {
                if self.buf[self.start..].iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let rest = self.start..self.buf.len();
                self.start = self.buf.len();
                return self.parse(rest).map(Some);
            }
            self.buf.drain(..self.start);
            self.start = 0;
            match self.body.frame().await {
                None => self.done = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(self.client.protocol(e)),
            }
        }
    }

    fn parse(&self, range: std::ops::Range<usize>) -> ClientResult<T> {
        let line = &self.buf[range];
        if line.starts_with(b"{\"error\"")
            && let Ok(b) = serde_json::from_slice::<ErrorBody>(line)
        {
            return Err(ClientError::Api {
                kind: b.error.kind,
                message: b.error.message,
            });
        }
        serde_json::from_slice(line).map_err(|e| self.client.protocol(format!("bad answer: {e}")))
    }
}
