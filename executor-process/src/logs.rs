//! Forwarding a child's stdout/stderr to a [`LogSink`] line by line, with bounded memory,
//! through the core's [`LineSplitter`].

use std::sync::Arc;

use pipeline_core::executor::lines::LineSplitter;
use pipeline_core::executor::{LogSink, LogStream};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Reads `reader` to EOF and hands each line to `sink`, split as [`LineSplitter`] does with
/// lines of at most `max_line` bytes. Read errors end the stream quietly (the child is gone
/// or was killed).
pub(crate) async fn forward_lines<R>(
    mut reader: R,
    stream: LogStream,
    sink: Arc<dyn LogSink>,
    max_line: usize,
) where
    R: AsyncBufRead + Unpin,
{
    let mut lines = LineSplitter::with_max(stream, max_line);
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => buf,
        };
        lines.push(buf, &*sink);
        let n = buf.len();
        reader.consume(n);
    }
    lines.finish(&*sink);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::testkit::RecordingLogSink;

    async fn split(input: &[u8], max: usize) -> Vec<String> {
        let sink = RecordingLogSink::new();
        let reader = tokio::io::BufReader::with_capacity(3, input);
        forward_lines(reader, LogStream::Stdout, sink.clone(), max).await;
        sink.stream(LogStream::Stdout)
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        assert_eq!(split(b"a\nbb\n\nccc", 100).await, ["a", "bb", "", "ccc"]);
        assert_eq!(split(b"abcdefg\nh\n", 3).await, ["abc", "def", "g", "h"]);
        assert_eq!(split(b"abcdef", 3).await, ["abc", "def"]);
        assert_eq!(split(b"", 3).await, Vec::<String>::new());
    }
}
