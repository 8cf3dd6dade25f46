//! The background runner of a server ([`crate::JobRunner::Background`]): runs pending jobs,
//! cron ticks and trigger crons as they fall due. A write wakes it at once
//! ([`AppState::notify_changed`]); otherwise it looks again after the poll interval, or
//! earlier when the next cron tick is due.

use std::time::Duration;

use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pps::Engine;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Runs jobs until `stop` is cancelled or the engine is parked ([`Engine::park`]); returns
/// when the round in progress has ended (a parked engine ends it promptly).
pub async fn run_jobs(state: AppState, poll: Duration, stop: CancellationToken) {
    let poll = poll.max(Duration::from_millis(10));
    let engine = state.engine().clone();
    let mut writes = state.watch_changes();
    while !stop.is_cancelled() && !engine.is_parked() {
        // Writes made from here on wake the next wait, even those during this round.
        writes.mark_unchanged();
        let wait = match round(&engine).await {
            Ok(Some(due_s)) => {
                let until = due_s.saturating_mul(1000).saturating_sub(now_ms());
                poll.min(Duration::from_millis(until))
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::error!(error = %ErrorChain(&e), "server: running pending jobs failed; retrying");
                poll
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = writes.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round: every job that can run, then when the next cron tick is due (seconds).
async fn round(engine: &Engine) -> pipeline_core::pps::Result<Option<u64>> {
    engine.run_pending().await?;
    engine.next_cron_due()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
