//! Reloading the token signing keys: replicas load a key rotated by another process within one
//! interval (it signs only later: `oauth::keys::KeySchedule`).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use super::Pass;
use crate::domain::Clock;

/// Reloads once now; a failure is logged (the keys in memory go on serving).
pub async fn run_once(reload: &Pass, clock: &dyn Clock) {
    if let Err(e) = reload(clock.now()).await {
        tracing::warn!(error = %e, "cannot reload the signing key");
    }
}

/// Reloads every `every` (the first one `every` after start) until `stop`.
pub async fn run_loop(reload: Pass, every: StdDuration, clock: Arc<dyn Clock>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => run_once(&reload, clock.as_ref()).await,
        }
    }
}
