//! Bounded bridges between blocking tar code (on `spawn_blocking` threads) and async byte
//! streams, so archive-mode transfers stream with flat memory whatever their size.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight per bridge (each up to [`CHUNK`] bytes).
const DEPTH: usize = 8;
/// Size of the chunks a [`ChannelWriter`] sends.
const CHUNK: usize = 256 * 1024;

/// A blocking `Write` whose bytes arrive, in chunks, on the paired receiver.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

/// A writer and the stream of what is written to it (ends when the writer is dropped).
pub fn writer() -> (ChannelWriter, mpsc::Receiver<Result<Bytes, io::Error>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        rx,
    )
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "receiver gone"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A blocking `Read` over chunks sent from async code; EOF when the sender is dropped.
pub struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    cur: Bytes,
}

/// A sender for async code and the blocking reader of what it sends.
pub fn reader() -> (mpsc::Sender<Result<Bytes, io::Error>>, ChannelReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        tx,
        ChannelReader {
            rx,
            cur: Bytes::new(),
        },
    )
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_cross_both_bridges() {
        let (mut w, mut rx) = writer();
        let producer = tokio::task::spawn_blocking(move || {
            for i in 0..1000u32 {
                w.write_all(&i.to_le_bytes().repeat(100)).unwrap();
            }
        });
        let (tx, mut r) = reader();
        let consumer = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        while let Some(chunk) = rx.recv().await {
            tx.send(chunk).await.unwrap();
        }
        drop(tx);
        producer.await.unwrap();
        let all = consumer.await.unwrap();
        assert_eq!(all.len(), 1000 * 400);
        assert_eq!(&all[400..404], &1u32.to_le_bytes());
    }
}
