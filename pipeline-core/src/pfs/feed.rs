//! The store's change feed: typed events published after the transaction that made the change
//! committed, to every subscriber ([`Store::subscribe`]). A subscriber that falls more than
//! [`FEED_CAPACITY`] events behind misses the oldest ones and is told how many (tokio's
//! `broadcast` semantics), so a slow reader never holds up a writer.

use tokio::sync::broadcast;

use super::model::CommitInfo;
use super::store::Store;

/// Events kept for the slowest subscriber before it starts missing them.
pub const FEED_CAPACITY: usize = 4096;

/// A change in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// A commit was finished (with or without an error).
    CommitFinished(CommitInfo),
}

/// The sending side of the feed, owned by the store.
pub(crate) fn channel() -> broadcast::Sender<StoreEvent> {
    broadcast::channel(FEED_CAPACITY).0
}

impl Store {
    /// Subscribes to the store's changes from now on (see [`StoreEvent`]).
    ///
    /// Does not block.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.feed.subscribe()
    }

    /// Publishes `event` to the current subscribers (none: nothing happens).
    pub(crate) fn publish(&self, event: impl FnOnce() -> StoreEvent) {
        if self.inner.feed.receiver_count() > 0 {
            let _ = self.inner.feed.send(event());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pfs::{FinishOptions, MemMetaStore, RepoRef, Store, StoreEvent};

    #[test]
    fn finishing_a_commit_publishes_it_to_subscribers() {
        let dir = tempfile::tempdir().unwrap();
        let objects =
            crate::pfs::object::LocalObjectStore::open(&dir.path().join("objects")).unwrap();
        let store = Store::with_backends(Box::new(MemMetaStore::default()), Box::new(objects));
        let repo = RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        let mut rx = store.subscribe();
        let c = store
            .start_commit(&repo.branch("master").unwrap(), "")
            .unwrap()
            .commit;
        assert!(rx.try_recv().is_err(), "starting a commit is not a finish");
        store.finish_commit(&c, FinishOptions::default()).unwrap();
        match rx.try_recv().unwrap() {
            StoreEvent::CommitFinished(info) => {
                assert_eq!(info.commit, c);
                assert!(info.is_finished());
            }
        }
    }
}
