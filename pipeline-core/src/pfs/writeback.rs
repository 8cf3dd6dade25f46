//! Early writeback of a large object while it is still being written.
//!
//! A durable put fsyncs its object before recording it. Left alone, the kernel holds the
//! written pages in memory and that one fsync then waits for all of them: a put costs the
//! copy *plus* the disk write. [`EarlyWriteback`] flushes what has been written so far from
//! a helper thread every [`STEP`] bytes, so the disk works while the put reads, hashes and
//! writes the rest, and the final fsync waits only for the tail: about the larger of the
//! two instead of their sum.
//!
//! Only the standard library's `fdatasync` is used (the crate forbids `unsafe`, which
//! `sync_file_range(2)` would need). The helper shares the file's open file description, so
//! an I/O error it sees would not be reported to the final fsync again: it is kept and
//! returned by [`EarlyWriteback::finish`].

use std::fs::File;
use std::io;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes written between two flushes.
pub(crate) const STEP: u64 = 64 << 20;

/// A helper thread flushing one file's written pages on request (see the module docs).
pub(crate) struct EarlyWriteback {
    flush: SyncSender<()>,
    helper: JoinHandle<()>,
    error: Arc<Mutex<Option<io::Error>>>,
    requested_at: u64,
}

impl EarlyWriteback {
    /// Starts a helper for `file`; `None` when the handle cannot be shared or no thread can
    /// be started (the put then simply flushes everything at its end).
    pub(crate) fn start(file: &File) -> Option<Self> {
        let shared = file.try_clone().ok()?;
        let error = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&error);
        let (flush, requests) = sync_channel::<()>(1);
        let helper = std::thread::Builder::new()
            .name("pfs-writeback".into())
            .spawn(move || {
                for () in requests {
                    if let Err(e) = shared.sync_data() {
                        let mut slot = seen.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                        return;
                    }
                }
            })
            .ok()?;
        Some(EarlyWriteback {
            flush,
            helper,
            error,
            requested_at: 0,
        })
    }

    /// Tells the helper that `written` bytes are in the file: asks for a flush once
    /// [`STEP`] more bytes were written since the last request and the helper is idle.
    pub(crate) fn wrote(&mut self, written: u64) {
        if written.saturating_sub(self.requested_at) >= STEP && self.flush.try_send(()).is_ok() {
            self.requested_at = written;
        }
    }

    /// Waits for the helper; the first error a flush met, if any.
    pub(crate) fn finish(self) -> io::Result<()> {
        drop(self.flush);
        if self.helper.join().is_err() {
            return Err(io::Error::other("the writeback helper panicked"));
        }
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Flushes are requested at most once per step and the helper ends cleanly.
    #[test]
    fn a_large_write_is_flushed_in_steps_and_finishes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = File::create(dir.path().join("f")).expect("create");
        let mut wb = EarlyWriteback::start(&file).expect("helper");
        let chunk = vec![7u8; 1 << 20];
        let mut written = 0u64;
        let mut requests = 0;
        for _ in 0..(3 * STEP / chunk.len() as u64) {
            file.write_all(&chunk).expect("write");
            written += chunk.len() as u64;
            let before = wb.requested_at;
            wb.wrote(written);
            requests += usize::from(wb.requested_at != before);
        }
        assert!((1..=3).contains(&requests), "{requests} flush requests");
        wb.finish().expect("no flush error");
        assert_eq!(file.metadata().expect("stat").len(), 3 * STEP);
    }
}
