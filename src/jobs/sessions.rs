//! Deleting expired session records (tower-sessions' `ExpiredDeletion` on the store's session
//! table); a record past its expiry is refused on load anyway, so this only keeps the table small.

use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;
use tower_sessions::session_store::ExpiredDeletion as _;

use crate::store::sessions::PortalSessionStore;

/// How often expired session records are deleted.
pub const CLEANUP_EVERY: StdDuration = StdDuration::from_secs(600);

/// Deletes the expired records now; a failure is logged.
pub async fn run_once(sessions: &PortalSessionStore) {
    if let Err(e) = sessions.delete_expired().await {
        tracing::warn!(error = %e, "cannot delete the expired sessions");
    }
}

/// Deletes every `every` (the first time `every` after start) until `stop`.
pub async fn run_loop(sessions: PortalSessionStore, every: StdDuration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => run_once(&sessions).await,
        }
    }
}
