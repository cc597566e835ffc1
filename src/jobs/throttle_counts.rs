//! Writing the shared throttle counts (issue 12, point 3): every second each window's pending
//! failures go to the database in one transaction per window (so a key is written at most once
//! a second per replica), and once a minute the counts whose window and block ended are deleted.
//! At shutdown what is pending is written once more.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use crate::auth::SharedWindow;
use crate::domain::Clock;
use crate::store::Store;

/// How often pending failures are written.
pub const FLUSH_EVERY: StdDuration = StdDuration::from_secs(1);
/// How often ended counts are deleted.
pub const PRUNE_EVERY: StdDuration = StdDuration::from_secs(60);

/// Writes every window's pending failures at the clock's now.
pub async fn flush_all(windows: &[Arc<SharedWindow>], store: &Store, clock: &dyn Clock) {
    for window in windows {
        window.flush(store, clock.now()).await;
    }
}

/// Flushes every [`FLUSH_EVERY`] and prunes every [`PRUNE_EVERY`] until `stop`, then flushes
/// once more.
pub async fn run(windows: Vec<Arc<SharedWindow>>, store: Store, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(FLUSH_EVERY) => {
                flush_all(&windows, &store, clock.as_ref()).await;
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = tokio::time::Instant::now();
                    if let Err(e) = store.prune_throttle_counts(clock.now()).await {
                        tracing::warn!(error = %e, "cannot prune the shared throttle counts");
                    }
                }
            }
        }
    }
    flush_all(&windows, &store, clock.as_ref()).await;
}
