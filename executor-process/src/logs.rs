//! Forwarding a child's stdout/stderr to a [`LogSink`] line by line, with bounded memory.

use std::sync::Arc;

use pipeline_core::executor::{LogSink, LogStream};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Reads `reader` to EOF and hands each line (without `\n`) to `sink`. A line longer than
/// `max_line` bytes is delivered in pieces of `max_line` bytes; a last line without `\n` is
/// delivered too. Invalid UTF-8 is replaced lossily. Read errors end the stream quietly (the
/// child is gone or was killed).
pub(crate) async fn forward_lines<R>(
    mut reader: R,
    stream: LogStream,
    sink: Arc<dyn LogSink>,
    max_line: usize,
) where
    R: AsyncBufRead + Unpin,
{
    let max_line = max_line.max(1);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => buf,
        };
        let mut consumed = 0;
        while let Some(&first) = buf.get(consumed) {
            if line.len() >= max_line {
                // A full piece: deliver it; a newline right after it just ends it.
                emit(&*sink, stream, &line);
                line.clear();
                if first == b'\n' {
                    consumed += 1;
                }
                continue;
            }
            let rest = &buf[consumed..];
            let window = &rest[..rest.len().min(max_line - line.len())];
            match window.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    line.extend_from_slice(&window[..nl]);
                    emit(&*sink, stream, &line);
                    line.clear();
                    consumed += nl + 1;
                }
                None => {
                    line.extend_from_slice(window);
                    consumed += window.len();
                }
            }
        }
        reader.consume(consumed);
    }
    if !line.is_empty() {
        emit(&*sink, stream, &line);
    }
}

fn emit(sink: &dyn LogSink, stream: LogStream, line: &[u8]) {
    sink.line(stream, &String::from_utf8_lossy(line));
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
        assert_eq!(split(b"abc\n", 3).await, ["abc"]);
        assert_eq!(split(b"abcdef", 3).await, ["abc", "def"]);
        assert_eq!(split(b"", 3).await, Vec::<String>::new());
        assert_eq!(split(b"\xff\n", 3).await, ["\u{fffd}"]);
    }
}
