//! Bodies between S3 and the store, streamed both ways: a request body as a blocking reader
//! for the store's streaming put, and a store reader as a response body fed by a blocking
//! task through a small channel (memory stays at a few chunks whatever the object's size).
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use s3s::dto::StreamingBlob;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Chunks in flight between the reading task and the response.
const IN_FLIGHT: usize = 8;
/// Bytes per chunk.
const CHUNK: usize = 256 << 10;

/// How long a request body may send nothing before the request fails: a write holds its
/// branch's turn while its body arrives, so a stalled client must not hold it for ever.
const BODY_IDLE: Duration = Duration::from_secs(60);

/// A request body as a blocking reader (use it on the blocking pool); a body that breaks off
/// or sends nothing for [`BODY_IDLE`] is a read error, never an early end. Call from within
/// the runtime.
pub fn reader(body: Option<StreamingBlob>) -> Box<dyn Read + Send> {
    match body {
        None => Box::new(io::empty()),
        Some(b) => {
            let stream = Idle::new(b.map_err(io::Error::other), BODY_IDLE);
            Box::new(SyncIoBridge::new_with_handle(
                StreamReader::new(stream),
                tokio::runtime::Handle::current(),
            ))
        }
    }
}

/// A stream that fails with `TimedOut` when its inner stream yields nothing for `limit`.
struct Idle<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Idle<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Idle {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Idle<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                let next = tokio::time::Instant::now() + this.limit;
                this.timer.as_mut().reset(next);
                Poll::Ready(item)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the request body sent nothing for {} s",
                        this.limit.as_secs()
                    ),
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The receiving end of [`pump`], as a response body.
pub struct Chunks {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A channel for [`pump`] and the body that reads it.
pub fn channel() -> (mpsc::Sender<io::Result<Bytes>>, StreamingBlob) {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    (tx, StreamingBlob::wrap(Chunks { rx }))
}

/// Sends `len` bytes of `reader` (from its current position) into `tx` (blocking). A read
/// error, or an end before `len` bytes, ends the body with an error (the client sees a
/// broken-off response, never short content); stops quietly when the client went away.
pub fn pump(reader: &mut dyn Read, mut len: u64, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut buf = vec![0u8; CHUNK];
    while len > 0 {
        let want = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
        match reader.read(&mut buf[..want]) {
            Ok(0) => {
                let _ = tx.blocking_send(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stored object ended {len} bytes early"),
                )));
                return;
            }
            Ok(n) => {
                len -= n as u64;
                if tx
                    .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    // A whole-object read goes on to the end so that the store's verification runs.
    let mut rest = [0u8; 1];
    if let Err(e) = reader.read(&mut rest) {
        let _ = tx.blocking_send(Err(e));
    }
}

/// Skips `n` bytes of `reader` (the store streams; a ranged read starts by reading past what
/// comes before the range).
pub fn skip(reader: &mut dyn Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stored object is shorter than recorded",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_body_that_stalls_fails_instead_of_hanging() {
        let stalled = futures::stream::pending::<io::Result<Bytes>>();
        let chunks = futures::stream::iter([Ok(Bytes::from_static(b"ab"))]).chain(stalled);
        let mut idle = Idle::new(Box::pin(chunks), Duration::from_millis(100));
        assert_eq!(idle.next().await.unwrap().unwrap(), &b"ab"[..]);
        let err = idle.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
