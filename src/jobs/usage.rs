//! Writing recorded secret uses: the token endpoint notes each use in memory
//! (`oauth::usage::UsageRecorder`, coalesced to about one write a minute per secret) and this job
//! writes what is pending every second, and once more at shutdown.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use super::Pass;
use crate::domain::Clock;

/// How often pending uses are written.
pub const FLUSH_EVERY: StdDuration = StdDuration::from_secs(1);

/// Writes what is pending now.
pub async fn run_once(flush: &Pass, clock: &dyn Clock) {
    if let Err(e) = flush(clock.now()).await {
        tracing::warn!(error = %e, "cannot record the secrets' uses");
    }
}

/// Writes every [`FLUSH_EVERY`] until `stop`, then once more.
pub async fn run_loop(flush: Pass, clock: Arc<dyn Clock>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(FLUSH_EVERY) => run_once(&flush, clock.as_ref()).await,
        }
    }
    run_once(&flush, clock.as_ref()).await;
}
