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
//! - invalid UTF-8 is replaced lossily;
//! - if the sink has a [`LogSink::redactor`], its secret values are hidden in the raw byte
//!   stream **before** lines are cut ([`super::redact::RedactStream`]), so a value that
//!   straddles the maximum, or two reads, never shows in part; the maximum then applies to
//!   the redacted output.
//!
//! Memory is bounded by the maximum line length (plus the longest secret value) whatever the
//! output.

use super::redact::RedactStream;
use super::{LogSink, LogStream};

/// The longest log line delivered in one piece (64 KiB); longer lines are split.
pub const MAX_LINE: usize = 64 * 1024;

/// Splits one output stream into lines (see the module docs).
#[derive(Debug)]
pub struct LineSplitter {
    stream: LogStream,
    line: Vec<u8>,
    max: usize,
    /// The sink's redaction, asked for on the first bytes.
    redact: Option<RedactStream>,
    asked: bool,
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
            redact: None,
            asked: false,
        }
    }

    /// Takes the next bytes of the stream; delivers every line they complete to `sink`.
    pub fn push(&mut self, bytes: &[u8], sink: &dyn LogSink) {
        if !self.asked {
            self.asked = true;
            self.redact = sink
                .redactor()
                .filter(|r| !r.is_empty())
                .map(RedactStream::new);
        }
        match &mut self.redact {
            Some(r) => {
                let mut clean = Vec::with_capacity(bytes.len() + 16);
                r.push(bytes, &mut clean);
                self.split(&clean, sink);
            }
            None => self.split(bytes, sink),
        }
    }

    /// Cuts (already redacted) bytes into lines.
    fn split(&mut self, bytes: &[u8], sink: &dyn LogSink) {
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
        if let Some(mut r) = self.redact.take() {
            let mut rest = Vec::new();
            r.finish(&mut rest);
            self.split(&rest, sink);
            self.redact = Some(r);
        }
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

    /// A sink that hides `secrets`, as the engine's does.
    struct Hiding(Lines, super::super::redact::Redactor);

    impl LogSink for Hiding {
        fn line(&self, stream: LogStream, line: &str) {
            self.0.line(stream, line);
        }

        fn redactor(&self) -> Option<super::super::redact::Redactor> {
            Some(self.1.clone())
        }
    }

    fn split_hiding(secrets: &[&[u8]], input: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let sink = Hiding(
            Lines::default(),
            super::super::redact::Redactor::new(secrets.iter().copied()),
        );
        let mut s = LineSplitter::with_max(LogStream::Stdout, max);
        for c in input.chunks(chunk) {
            s.push(c, &sink);
        }
        s.finish(&sink);
        sink.0.0.into_inner().unwrap()
    }

    /// No line shows `secret` or any 4-byte piece of it.
    fn assert_hidden(lines: &[String], secret: &[u8]) {
        let all = lines.join("\n");
        for piece in secret.windows(4.min(secret.len())) {
            let piece = String::from_utf8_lossy(piece);
            assert!(!all.contains(&*piece), "{piece:?} leaked in {lines:?}");
        }
    }

    #[test]
    fn a_secret_straddling_the_line_limit_is_hidden_whole() {
        let secret = b"TOPSECRETVALUE";
        for cut in 1..secret.len() {
            // The line limit falls `cut` bytes into the secret.
            let mut input = vec![b'x'; 64 - cut];
            input.extend_from_slice(secret);
            input.extend_from_slice(b"tail\n");
            for chunk in [1, 7, 64, 1000] {
                let lines = split_hiding(&[secret], &input, chunk, 64);
                assert_hidden(&lines, secret);
                assert!(lines.concat().contains("<redacted>"), "{lines:?}");
                assert!(lines.concat().ends_with("tail"), "{lines:?}");
            }
        }
    }

    #[test]
    fn a_secret_as_long_as_the_line_limit_and_at_the_default_limit() {
        let secret: Vec<u8> = (0..64u8).map(|i| b'A' + i % 26).collect();
        let mut input = b"ab".to_vec();
        input.extend_from_slice(&secret);
        input.extend_from_slice(&secret);
        let lines = split_hiding(&[&secret], &input, 5, 64);
        assert_eq!(lines.concat(), "ab<redacted>");
        // The real limit: a value across byte MAX_LINE of one long line.
        let secret = b"s3cr3t-across-the-cut";
        let mut input = vec![b'y'; MAX_LINE - 10];
        input.extend_from_slice(secret);
        input.push(b'\n');
        let sink = Hiding(
            Lines::default(),
            super::super::redact::Redactor::new([secret]),
        );
        let mut s = LineSplitter::new(LogStream::Stdout);
        for c in input.chunks(4096) {
            s.push(c, &sink);
        }
        s.finish(&sink);
        let lines = sink.0.0.into_inner().unwrap();
        assert_eq!(lines.len(), 1, "the redacted line fits");
        assert!(lines[0].ends_with("y<redacted>"));
    }

    #[test]
    fn many_secrets_each_split_anywhere() {
        let secrets: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("key-{i:03}-value").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let mut input = Vec::new();
        for s in secrets.iter().rev() {
            input.extend_from_slice(b"[");
            input.extend_from_slice(s);
            input.extend_from_slice(b"]");
        }
        for (chunk, max) in [(3, 16), (17, 40), (1000, 13)] {
            let lines = split_hiding(&refs, &input, chunk, max);
            for s in &secrets {
                assert!(!lines.concat().contains(&*String::from_utf8_lossy(s)));
            }
            assert_eq!(lines.concat(), "[<redacted>]".repeat(200));
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
