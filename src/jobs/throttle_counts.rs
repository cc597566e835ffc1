//! Writing the shared throttle counts (issue 12, point 3): every second each window's pending
//! failures go to the database in one transaction per window (so a key is written at most once
//! a second per replica), and once a minute the counts whose window and block ended are deleted.
//! At shutdown what is pending is written once more. The windows are auth's and oauth's
//! (`auth::shared::flush_all`), handed in as a [`Pass`].

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use super::Pass;
use crate::domain::Clock;
use crate::store::Store;

/// How often pending failures are written.
pub const FLUSH_EVERY: StdDuration = StdDuration::from_secs(1);
/// How often ended counts are deleted.
pub const PRUNE_EVERY: StdDuration = StdDuration::from_secs(60);

/// Writes the pending failures now, and with `prune` deletes the ended counts; failures are
/// logged.
pub async fn run_once(flush: &Pass, store: &Store, clock: &dyn Clock, prune: bool) {
    if let Err(e) = flush(clock.now()).await {
        tracing::warn!(error = %e, "cannot write the shared throttle counts");
    }
    if prune {
        if let Err(e) = store.prune_throttle_counts(clock.now()).await {
            tracing::warn!(error = %e, "cannot prune the shared throttle counts");
        }
    }
}

/// Flushes every [`FLUSH_EVERY`] and prunes every [`PRUNE_EVERY`] until `stop`, then flushes
/// once more.
pub async fn run_loop(flush: Pass, store: Store, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(FLUSH_EVERY) => {
                let prune = last_prune.elapsed() >= PRUNE_EVERY;
                if prune {
                    last_prune = tokio::time::Instant::now();
                }
                run_once(&flush, &store, clock.as_ref(), prune).await;
            }
        }
    }
    run_once(&flush, &store, clock.as_ref(), false).await;
}
