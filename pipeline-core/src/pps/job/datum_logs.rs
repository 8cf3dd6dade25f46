//! One datum's log lines, collected in memory (bounded) with timestamps, secrets redacted.

use std::sync::{Arc, Mutex};

use crate::executor::{LogSink, LogStream};

/// Collects one datum's log lines in memory (bounded), with timestamps, redacting secrets.
pub(crate) struct DatumLogs {
    lines: Mutex<Vec<(u64, LogStream, String)>>,
    redact: Arc<Vec<String>>,
    echo: bool,
}

/// Most lines kept per datum; later lines are counted in a final marker line.
const MAX_LINES: usize = 10_000;

impl DatumLogs {
    /// An empty collection; lines are redacted of `redact` and echoed to stderr if `echo`.
    pub(crate) fn new(redact: Arc<Vec<String>>, echo: bool) -> Self {
        DatumLogs {
            lines: Mutex::new(Vec::new()),
            redact,
            echo,
        }
    }

    /// The lines collected so far, leaving none.
    pub(crate) fn take(&self) -> Vec<(u64, LogStream, String)> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Replaces every secret value in `text` by `<redacted>`.
pub(crate) fn redact(secrets: &[String], text: &str) -> String {
    let mut s = text.to_string();
    for v in secrets {
        if !v.is_empty() && s.contains(v.as_str()) {
            s = s.replace(v.as_str(), "<redacted>");
        }
    }
    s
}

impl LogSink for DatumLogs {
    fn line(&self, stream: LogStream, line: &str) {
        let line = redact(&self.redact, line);
        if self.echo {
            eprintln!("{line}");
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() < MAX_LINES {
            lines.push((super::super::now_ms(), stream, line));
        } else if lines.len() == MAX_LINES {
            lines.push((
                super::super::now_ms(),
                LogStream::Stderr,
                "(further lines of this datum dropped)".into(),
            ));
        }
    }
}
