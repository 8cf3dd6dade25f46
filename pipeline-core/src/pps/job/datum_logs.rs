//! One datum's log lines, collected in memory (bounded) with timestamps, secrets redacted.

use std::sync::{Arc, Mutex};

use crate::executor::redact::Redactor;
use crate::executor::{LogSink, LogStream};

/// Collects one datum's log lines in memory (bounded), with timestamps, redacting secrets.
pub(crate) struct DatumLogs {
    lines: Mutex<Vec<(u64, LogStream, String)>>,
    redact: Arc<Redactor>,
    echo: bool,
}

/// Most lines kept per datum; later lines are counted in a final marker line.
const MAX_LINES: usize = 10_000;

impl DatumLogs {
    /// An empty collection; lines are redacted of `redact` and echoed to stderr if `echo`.
    pub(crate) fn new(redact: Arc<Redactor>, echo: bool) -> Self {
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

impl LogSink for DatumLogs {
    fn line(&self, stream: LogStream, line: &str) {
        // Lines cut by a `LineSplitter` come redacted already (in the byte stream, see
        // `redactor`); lines written directly (the engine's own notes) are redacted here.
        let line = self.redact.redact_str(line);
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

    fn redactor(&self) -> Option<Redactor> {
        (!self.redact.is_empty()).then(|| Redactor::clone(&self.redact))
    }
}
