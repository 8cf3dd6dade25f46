//! Telling "the store could not be reached" apart from "this datum failed".
//!
//! A datum reads its inputs from the store and writes its outputs to it. When the object
//! store's server or the metadata server does not answer (after the client's own retries),
//! the datum itself did nothing wrong: it is not recorded as failed. The worker notes the
//! error ([`Outage`]), says so in the log, waits (1 s, doubling up to 30 s) and runs the
//! datum again from the start, for as long as the job runs; the job goes on once the
//! service is back. Any other store error (a damaged object, a missing file) fails the
//! datum as before. With datum batching the process that asked for the datum ends (as on
//! any failure) and, after the pause, a new one gets the same datum, without using up a try.

use std::sync::Mutex;
use std::time::Duration;

use crate::error_chain::ErrorChain;
use crate::pfs::PfsError;

/// The first pause before a datum that met an unreachable store runs again.
pub(super) const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause between runs of such a datum.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(30);

/// What one run of a datum saw of the store: the first error saying it was unreachable.
#[derive(Default)]
pub(super) struct Outage(Mutex<Option<String>>);

impl Outage {
    /// `e` as a datum's failure message; noted when it says the store was unreachable.
    pub(super) fn message(&self, e: &PfsError) -> String {
        let message = ErrorChain(e).to_string();
        if e.is_unavailable() {
            let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| message.clone());
        }
        message
    }

    /// The noted error, if any.
    pub(super) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The pause after `pause`: twice as long, at most [`MAX_PAUSE`].
pub(super) fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreachable_stores_are_noted() {
        let outage = Outage::default();
        let damaged = PfsError::Corrupt("bad bytes".into());
        assert_eq!(outage.message(&damaged), "corrupt store: bad bytes");
        assert_eq!(outage.take(), None);
        let down = PfsError::MetaServer {
            server: "postgres://u@h:5432/db".into(),
            operation: "a read".into(),
            source: "connection refused".into(),
        };
        let message = outage.message(&down);
        assert!(message.contains("connection refused"), "{message}");
        assert_eq!(outage.take(), Some(message));
        assert_eq!(outage.take(), None, "taken once");
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        assert_eq!(next_pause(FIRST_PAUSE), Duration::from_secs(2));
        assert_eq!(next_pause(Duration::from_secs(20)), MAX_PAUSE);
        assert_eq!(next_pause(MAX_PAUSE), MAX_PAUSE);
    }
}
