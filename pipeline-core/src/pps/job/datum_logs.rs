//! One datum's log lines, collected in memory (bounded) with timestamps, secrets redacted;
//! and [`LiveLogs`], the lines of the datums running now, which `Engine::logs` shows before
//! a datum's record (with its lines) is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::super::records::LogLine;

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

    /// A copy of the lines collected so far.
    fn snapshot(&self) -> Vec<(u64, LogStream, String)> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `stdout` or `stderr`, as a stored [`LogLine`] names its stream.
pub(crate) fn stream_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}

/// (pipeline, job, datum).
type LiveKey = (String, String, String);

/// The [`DatumLogs`] of the datums running now. A running datum's lines so far are always
/// the first lines it will have once stored (one collection per datum, across attempts), so
/// a reader that counts lines per datum (as `logs --follow` does) never sees one twice.
#[derive(Clone, Default)]
pub(crate) struct LiveLogs(Arc<Mutex<HashMap<LiveKey, Arc<DatumLogs>>>>);

impl LiveLogs {
    /// Shows `logs` as datum `datum` of `pipeline@job` until the guard is dropped.
    pub(crate) fn register(
        &self,
        pipeline: &str,
        job: &str,
        datum: &str,
        logs: Arc<DatumLogs>,
    ) -> LiveGuard {
        let key = (pipeline.to_string(), job.to_string(), datum.to_string());
        self.map().insert(key.clone(), logs);
        LiveGuard {
            live: self.clone(),
            key,
        }
    }

    /// The lines so far of the running datums of `pipeline` (one job, one datum), by job,
    /// datum and time.
    pub(crate) fn lines(
        &self,
        pipeline: &str,
        job: Option<&str>,
        datum: Option<&str>,
    ) -> Vec<LogLine> {
        let mut running: Vec<(LiveKey, Arc<DatumLogs>)> = self
            .map()
            .iter()
            .filter(|((p, j, d), _)| {
                p == pipeline && job.is_none_or(|x| x == j) && datum.is_none_or(|x| x == d)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        running.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for ((p, j, d), logs) in running {
            for (ts, stream, message) in logs.snapshot() {
                out.push(LogLine {
                    ts_ms: ts,
                    pipeline: p.clone(),
                    job: j.clone(),
                    datum: d.clone(),
                    stream: stream_name(stream).into(),
                    message,
                });
            }
        }
        out
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<LiveKey, Arc<DatumLogs>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a running datum from [`LiveLogs`] when dropped.
pub(crate) struct LiveGuard {
    live: LiveLogs,
    key: LiveKey,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live.map().remove(&self.key);
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
