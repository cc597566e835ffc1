//! Recording when secrets are used, off the request path and coalesced: a successful token
//! request marks its secret; a background task writes at most about one update a minute per
//! secret (and flushes what is pending at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::Store;

/// Writes for one secret are at least this far apart.
pub const COALESCE: Duration = Duration::seconds(60);
const FLUSH_EVERY: StdDuration = StdDuration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    last_written: HashMap<Uuid, DateTime<Utc>>,
    pending: HashMap<Uuid, DateTime<Utc>>,
}

/// The usage recorder; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct UsageRecorder(Arc<Mutex<State>>);

impl UsageRecorder {
    /// Notes a use at `at`; costs a map lookup on the request path.
    pub fn record(&self, secret_id: Uuid, at: DateTime<Utc>) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let due = s.last_written.get(&secret_id).is_none_or(|last| at - *last >= COALESCE);
        if due {
            s.last_written.insert(secret_id, at);
            s.pending.insert(secret_id, at);
        }
    }

    /// Writes what is pending.
    pub async fn flush(&self, store: &Store) {
        let pending: Vec<(Uuid, DateTime<Utc>)> =
            std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner).pending).into_iter().collect();
        for (id, at) in pending {
            if let Err(e) = store.record_secret_use(id, at).await {
                tracing::warn!(secret_id = %id, error = %e, "cannot record a secret's use");
            }
        }
    }

    /// Flushes every second until `stop`, then once more.
    pub async fn run(self, store: Store, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(FLUSH_EVERY) => self.flush(&store).await,
            }
        }
        self.flush(&store).await;
    }
}
