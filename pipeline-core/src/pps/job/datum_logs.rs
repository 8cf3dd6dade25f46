//! One datum's log lines, collected in memory (bounded) with timestamps, secrets redacted;
//! and [`LiveLogs`], the lines of the datums running now, which `Engine::logs` shows before
//! a datum's record (with its lines) is stored, and which are published on the engine's
//! change feed as they are produced (once each: the stored copy is not published again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use super::super::error::Result;
use super::super::events::Event;
use super::super::keys::LogKey;
use super::super::records::LogLine;
use super::super::registry::decode;

use crate::executor::redact::Redactor;
use crate::executor::{LogSink, LogStream};

/// Collects one datum's log lines in memory (bounded), with timestamps, redacting secrets.
pub(crate) struct DatumLogs {
    lines: Mutex<Vec<(u64, LogStream, String)>>,
    redact: Arc<Redactor>,
    echo: bool,
    /// Where each kept line is published as it arrives (set by [`LiveLogs::register`]).
    feed: OnceLock<LineFeed>,
}

/// Publishes one running datum's lines on the engine's change feed.
struct LineFeed {
    events: broadcast::Sender<Event>,
    key: LiveKey,
}

impl LineFeed {
    /// Sends `line` as a `log` event when someone listens.
    fn publish(&self, ts_ms: u64, stream: LogStream, message: &str) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let (pipeline, job, datum) = &self.key;
        let _ = self.events.send(Event::Log(LogLine {
            ts_ms,
            pipeline: pipeline.clone(),
            job: job.clone(),
            datum: datum.clone(),
            stream: stream_name(stream).into(),
            message: message.to_string(),
        }));
    }
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
            feed: OnceLock::new(),
        }
    }

    /// A collection redacting `redact` that continues `earlier` (whose lines move to it): a
    /// spout's next run keeps the lines of the runs before it, with its own secrets hidden.
    pub(crate) fn continuing(redact: Arc<Redactor>, echo: bool, earlier: &DatumLogs) -> Self {
        let logs = DatumLogs::new(redact, echo);
        *logs.lines.lock().unwrap_or_else(|e| e.into_inner()) = earlier.take();
        logs
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
/// Each line is also published as a `log` event when it is produced (the engine's feed).
#[derive(Clone)]
pub(crate) struct LiveLogs {
    running: Arc<Mutex<HashMap<LiveKey, Arc<DatumLogs>>>>,
    events: broadcast::Sender<Event>,
}

impl LiveLogs {
    /// No datum running yet; lines will be published on `events`.
    pub(crate) fn new(events: broadcast::Sender<Event>) -> Self {
        LiveLogs {
            running: Arc::default(),
            events,
        }
    }

    /// Shows `logs` as datum `datum` of `pipeline@job` until the guard is dropped, and
    /// publishes its lines from now on.
    pub(crate) fn register(
        &self,
        pipeline: &str,
        job: &str,
        datum: &str,
        logs: Arc<DatumLogs>,
    ) -> LiveGuard {
        let key = (pipeline.to_string(), job.to_string(), datum.to_string());
        let _ = logs.feed.set(LineFeed {
            events: self.events.clone(),
            key: key.clone(),
        });
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
        self.running.lock().unwrap_or_else(|e| e.into_inner())
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
        let kept = match lines.len() {
            n if n < MAX_LINES => (super::super::now_ms(), stream, line),
            MAX_LINES => (
                super::super::now_ms(),
                LogStream::Stderr,
                "(further lines of this datum dropped)".into(),
            ),
            _ => return,
        };
        // Published under the lock, so subscribers see a datum's lines in stored order.
        if let Some(feed) = self.feed.get() {
            feed.publish(kept.0, kept.1, &kept.2);
        }
        lines.push(kept);
    }

    fn redactor(&self) -> Option<Redactor> {
        (!self.redact.is_empty()).then(|| Redactor::clone(&self.redact))
    }
}

impl super::super::Engine {
    /// The last `limit` log lines of `pipeline@job` (or of one of its datums) as
    /// [`Engine::logs`](super::super::Engine::logs) orders them (stored lines by datum, then
    /// the lines so far of its running datums), and whether earlier lines exist. Reads at
    /// most `limit + 1` stored lines, however long the job's log is.
    ///
    /// Blocking: store reads only.
    pub fn log_tail(
        &self,
        pipeline: &str,
        job: &str,
        datum: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LogLine>, bool)> {
        let pipeline = self.inspect_job(pipeline, job)?.pipeline;
        let pipeline = pipeline.as_str();
        let prefix = LogKey::of(pipeline, Some(job), datum);
        let mut stored = Vec::new();
        for kv in self
            .store()
            .engine_scan_rev(prefix.as_bytes())?
            .take(limit + 1)
        {
            let (k, v) = kv?;
            stored.push(decode::<LogLine>(&k, &v)?);
        }
        stored.reverse();
        stored.extend(self.inner.live_logs.lines(pipeline, Some(job), datum));
        let earlier = stored.len() > limit;
        let cut = stored.len().saturating_sub(limit);
        Ok((stored.split_off(cut), earlier))
    }
}
