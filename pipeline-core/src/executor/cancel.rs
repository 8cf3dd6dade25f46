//! A runtime-free cancellation token: the engine fires it, a backend awaits or polls it.
//!
//! It lives in the core (rather than borrowing an async runtime's) so that the
//! [`Executor`](super::Executor) seam builds without any runtime: any executor (tokio,
//! another runtime, or a plain thread) can wait on [`CancellationToken::cancelled`].
//!
//! ```
//! use pipeline_core::executor::CancellationToken;
//! let token = CancellationToken::new();
//! let seen_by_worker = token.clone();
//! assert!(!seen_by_worker.is_cancelled());
//! token.cancel();
//! assert!(seen_by_worker.is_cancelled());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A cloneable flag that is set once and wakes every task waiting on it.
///
/// Clones share the flag: cancelling any clone cancels all of them. Cancelling is idempotent
/// and cannot be undone.
#[derive(Clone, Default)]
pub struct CancellationToken {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    cancelled: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// Wakers of the pending [`WaitForCancellation`] futures, by a key each future keeps.
#[derive(Default)]
struct Waiters {
    next_key: u64,
    wakers: BTreeMap<u64, Waker>,
}

impl CancellationToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token and wakes everything waiting on it.
    pub fn cancel(&self) {
        let wakers = {
            let mut waiters = self.shared.lock();
            self.shared.cancelled.store(true, Ordering::SeqCst);
            std::mem::take(&mut waiters.wakers)
        };
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    /// Whether [`CancellationToken::cancel`] was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// A future that completes once the token is cancelled (at once if it already is).
    pub fn cancelled(&self) -> WaitForCancellation<'_> {
        WaitForCancellation {
            token: self,
            key: None,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // The lock guards plain data that every holder leaves consistent: a panic elsewhere
        // cannot leave it half-updated, so a poisoned lock is still usable.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future returned by [`CancellationToken::cancelled`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForCancellation<'a> {
    token: &'a CancellationToken,
    /// This future's slot among the token's wakers, once it has been polled.
    key: Option<u64>,
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = &self.token.shared;
        let mut waiters = shared.lock();
        // Checked under the lock `cancel` takes, so a cancel cannot slip in between the check
        // and the registration of the waker.
        if shared.cancelled.load(Ordering::SeqCst) {
            drop(waiters);
            self.key = None;
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = waiters.next_key;
                waiters.next_key += 1;
                key
            }
        };
        waiters.wakers.insert(key, cx.waker().clone());
        drop(waiters);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for WaitForCancellation<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.token.shared.lock().wakers.remove(&key);
        }
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .field("token", self.token)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(fut: &mut WaitForCancellation<'_>, waker: &Arc<CountingWaker>) -> Poll<()> {
        let waker = Waker::from(waker.clone());
        Pin::new(fut).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn every_waiter_is_woken_once_and_then_ready() {
        let token = CancellationToken::new();
        let clone = token.clone();
        let (w1, w2) = (Arc::default(), Arc::default());
        let mut f1 = token.cancelled();
        let mut f2 = clone.cancelled();
        assert_eq!(poll_once(&mut f1, &w1), Poll::Pending);
        assert_eq!(poll_once(&mut f2, &w2), Poll::Pending);
        assert_eq!(
            poll_once(&mut f1, &w1),
            Poll::Pending,
            "re-poll keeps one slot"
        );
        assert_eq!(token.shared.lock().wakers.len(), 2);
        clone.cancel();
        clone.cancel();
        assert_eq!(w1.0.load(Ordering::SeqCst), 1);
        assert_eq!(w2.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll_once(&mut f1, &w1), Poll::Ready(()));
        assert_eq!(poll_once(&mut f2, &w2), Poll::Ready(()));
        assert!(token.is_cancelled());
    }

    #[test]
    fn already_cancelled_is_ready_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut f = token.cancelled();
        assert_eq!(poll_once(&mut f, &Arc::default()), Poll::Ready(()));
    }

    #[test]
    fn a_dropped_waiter_leaves_no_waker_behind() {
        let token = CancellationToken::new();
        let mut f = token.cancelled();
        assert_eq!(poll_once(&mut f, &Arc::default()), Poll::Pending);
        drop(f);
        assert!(token.shared.lock().wakers.is_empty());
    }

    #[test]
    fn a_cancel_from_another_thread_wakes_a_blocked_waiter() {
        let token = CancellationToken::new();
        let canceller = token.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            canceller.cancel();
        });
        block_on(token.cancelled());
        handle.join().unwrap();
        assert!(token.is_cancelled());
    }

    /// Polls `fut` on this thread, parking between wake-ups.
    fn block_on(fut: WaitForCancellation<'_>) {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        while fut.as_mut().poll(&mut cx).is_pending() {
            std::thread::park();
        }
    }
}
