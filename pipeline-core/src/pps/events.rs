//! The engine's change feed: commits finished, jobs changing state, datums recorded, each
//! published after the metadata transaction that stored it committed; and log lines, each
//! published once, as user code prints it (before the datum's record and lines are stored).
//!
//! [`Engine::subscribe`] merges the store's feed ([`crate::pfs::StoreEvent`]) with the
//! engine's own. Nothing is polled: the writers publish. A subscriber that falls more than
//! [`crate::pfs::FEED_CAPACITY`] events behind gets one [`Event::Lagged`] with the number it
//! missed instead of stalling the writers; it can re-read the current state and carry on.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::pfs::{CommitInfo, StoreEvent};

use super::Engine;
use super::error::Result;
use super::keys::{JobKey, RecordKey};
use super::records::{DatumInfo, JobInfo, LogLine, enc};

/// One change, as the event stream carries it (`type` names the variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A commit was finished (an input commit, or a job's output commit).
    CommitFinished(CommitInfo),
    /// A job was created or changed state (or was resumed: `restarts` grew).
    Job(JobInfo),
    /// A datum's record was stored in a job (processed, skipped, failed or recovered).
    Datum(DatumEvent),
    /// A line of user-code output was printed (published as it is produced, once; it is
    /// stored with its datum's record later).
    Log(LogLine),
    /// This subscriber fell behind and missed `missed` events; re-read what it follows.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

/// A datum recorded in a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatumEvent {
    /// The pipeline.
    pub pipeline: String,
    /// The job the record belongs to (a skipped datum's `datum.job` names the job whose
    /// outputs it kept).
    pub job: String,
    /// The record.
    pub datum: DatumInfo,
}

impl Event {
    /// The variant's name as serialised in `type` (and used as the SSE event name).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CommitFinished(_) => "commit_finished",
            Event::Job(_) => "job",
            Event::Datum(_) => "datum",
            Event::Log(_) => "log",
            Event::Lagged { .. } => "lagged",
        }
    }

    /// The ID of the pipeline the event is about, when it is about one (commits: the
    /// pipeline their repo would be the output of, see [`super::pipeline_id_of_repo`]).
    pub fn pipeline(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Event::CommitFinished(c) => {
                Some(Cow::Owned(super::pipeline_id_of_repo(&c.commit.repo)))
            }
            Event::Job(j) => Some(Cow::Borrowed(&j.pipeline)),
            Event::Datum(d) => Some(Cow::Borrowed(&d.pipeline)),
            Event::Log(l) => Some(Cow::Borrowed(&l.pipeline)),
            Event::Lagged { .. } => None,
        }
    }

    /// The job (commit set) the event is about, when it is about one.
    pub fn job(&self) -> Option<&str> {
        match self {
            Event::CommitFinished(c) => Some(c.commit.id.as_str()),
            Event::Job(j) => Some(&j.id),
            Event::Datum(d) => Some(&d.job),
            Event::Log(l) => Some(&l.job),
            Event::Lagged { .. } => None,
        }
    }
}

/// A subscription to the engine's changes ([`Engine::subscribe`]).
#[derive(Debug)]
pub struct Events {
    store: Option<broadcast::Receiver<StoreEvent>>,
    engine: Option<broadcast::Receiver<Event>>,
}

impl Events {
    /// The next event; `None` once the engine and its store are gone. Store events that are
    /// already published come first, so a job's output commit is seen finished before the
    /// job's terminal state.
    ///
    /// Async: waits for the next change. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            let got = match (self.store.as_mut(), self.engine.as_mut()) {
                (None, None) => return None,
                (Some(s), None) => Side::Store(s.recv().await),
                (None, Some(e)) => Side::Engine(e.recv().await),
                (Some(s), Some(e)) => tokio::select! {
                    biased;
                    r = s.recv() => Side::Store(r),
                    r = e.recv() => Side::Engine(r),
                },
            };
            match got {
                Side::Store(Ok(StoreEvent::CommitFinished(c))) => {
                    return Some(Event::CommitFinished(c));
                }
                Side::Engine(Ok(ev)) => return Some(ev),
                Side::Store(Err(RecvError::Lagged(n)))
                | Side::Engine(Err(RecvError::Lagged(n))) => {
                    return Some(Event::Lagged { missed: n });
                }
                Side::Store(Err(RecvError::Closed)) => self.store = None,
                Side::Engine(Err(RecvError::Closed)) => self.engine = None,
            }
        }
    }
}

/// Which feed an event came from.
enum Side {
    Store(std::result::Result<StoreEvent, RecvError>),
    Engine(std::result::Result<Event, RecvError>),
}

/// The sending side of the engine's feed.
pub(super) fn channel() -> broadcast::Sender<Event> {
    broadcast::channel(crate::pfs::FEED_CAPACITY).0
}

impl Engine {
    /// Subscribes to every change from now on: commits finished, jobs, datums, log lines.
    ///
    /// Does not block.
    pub fn subscribe(&self) -> Events {
        Events {
            store: Some(self.store().subscribe()),
            engine: Some(self.inner.events.subscribe()),
        }
    }

    /// Whether anyone listens (building events is skipped otherwise).
    pub(crate) fn has_subscribers(&self) -> bool {
        self.inner.events.receiver_count() > 0
    }

    /// Publishes events to the current subscribers.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Event>) {
        if self.has_subscribers() {
            for e in events {
                let _ = self.inner.events.send(e);
            }
        }
    }

    /// Stores a job's record (one transaction), then publishes it.
    pub(crate) fn put_job(&self, job: &JobInfo) -> Result<()> {
        self.store().engine_write(vec![(
            JobKey::new(&job.pipeline, &job.id).encode(),
            Some(enc(job)),
        )])?;
        self.publish([Event::Job(job.clone())]);
        Ok(())
    }
}
