//! Splitting user code's output into log lines, the same way for every backend.
//!
//! A [`LineSplitter`] takes bytes as they arrive (chunks of any size, cut anywhere) and hands
//! complete lines to a [`LogSink`]:
//!
//! - a line ends at `\n`, which is not delivered; a `\r` right before it is dropped too, so
//!   `\r\n` output reads like `\n` output;
//! - a line longer than the maximum ([`MAX_LINE`] unless set otherwise) is delivered in pieces
//!   of exactly that many bytes, no byte dropped (a `\n` right after a full piece just ends it,
//!   without an empty line);
//! - [`LineSplitter::finish`] delivers a last line that has no `\n`;
//! - invalid UTF-8 is replaced lossily.
//!
//! Memory is bounded by the maximum line length whatever the output.

use super::{LogSink, LogStream};

/// The longest log line delivered in one piece (64 KiB); longer lines are split.
pub const MAX_LINE: usize = 64 * 1024;

/// Splits one output stream into lines (see the module docs).
#[derive(Debug)]
pub struct LineSplitter {
    stream: LogStream,
    line: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    /// A splitter for `stream` with the default maximum, [`MAX_LINE`].
    pub fn new(stream: LogStream) -> Self {
        Self::with_max(stream, MAX_LINE)
    }

    /// A splitter for `stream` delivering lines of at most `max` bytes (at least 1).
    pub fn with_max(stream: LogStream, max: usize) -> Self {
        LineSplitter {
            stream,
            line: Vec::new(),
            max: max.max(1),
        }
    }

    /// Takes the next bytes of the stream; delivers every line they complete to `sink`.
    pub fn push(&mut self, bytes: &[u8], sink: &dyn LogSink) {
        let mut consumed = 0;
        while let Some(&first) = bytes.get(consumed) {
            if self.line.len() >= self.max {
                // A full piece: deliver it; a newline right after it just ends it.
                self.emit(sink, first == b'\n');
                if first == b'\n' {
                    consumed += 1;
                }
                continue;
            }
            let rest = &bytes[consumed..];
            let window = &rest[..rest.len().min(self.max - self.line.len())];
            match window.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    self.line.extend_from_slice(&window[..nl]);
                    self.emit(sink, true);
                    consumed += nl + 1;
                }
                None => {
                    self.line.extend_from_slice(window);
                    consumed += window.len();
                }
            }
        }
    }

    /// The stream ended: delivers the last line if it had no `\n`.
    pub fn finish(&mut self, sink: &dyn LogSink) {
        if !self.line.is_empty() {
            self.emit(sink, false);
        }
    }

    fn emit(&mut self, sink: &dyn LogSink, ended_by_newline: bool) {
        let mut line = self.line.as_slice();
        if ended_by_newline && let [rest @ .., b'\r'] = line {
            line = rest;
        }
        sink.line(self.stream, &String::from_utf8_lossy(line));
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl LogSink for Lines {
        fn line(&self, _stream: LogStream, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    /// Splits `input` fed in chunks of `chunk` bytes, lines at most `max` bytes.
    fn split(input: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let sink = Lines::default();
        let mut s = LineSplitter::with_max(LogStream::Stdout, max);
        for c in input.chunks(chunk) {
            s.push(c, &sink);
        }
        s.finish(&sink);
        sink.0.into_inner().unwrap()
    }

    #[test]
    fn lines_are_split_bounded_and_flushed() {
        for chunk in [1, 2, 3, 100] {
            assert_eq!(split(b"a\nbb\n\nccc", chunk, 100), ["a", "bb", "", "ccc"]);
            assert_eq!(split(b"abcdefg\nh\n", chunk, 3), ["abc", "def", "g", "h"]);
            assert_eq!(split(b"abc\n", chunk, 3), ["abc"]);
            assert_eq!(split(b"abcdef", chunk, 3), ["abc", "def"]);
            assert_eq!(split(b"", chunk, 3), Vec::<String>::new());
            assert_eq!(split(b"\xff\n", chunk, 3), ["\u{fffd}"]);
            assert_eq!(split(b"a\r\nb\rc\r\n\r\n", chunk, 100), ["a", "b\rc", ""]);
        }
    }

    #[test]
    fn the_default_bound_keeps_every_byte() {
        let sink = Lines::default();
        let mut s = LineSplitter::new(LogStream::Stderr);
        s.push(&vec![b'x'; MAX_LINE + 10], &sink);
        s.push(b"\nend", &sink);
        s.finish(&sink);
        let lines = sink.0.into_inner().unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1].len(), 10);
        assert_eq!(lines[2], "end");
    }
}
