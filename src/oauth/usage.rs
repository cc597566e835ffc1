//! Recording when secrets are used, off the request path and coalesced: a successful token
//! request marks its secret; a background task writes at most about one update a minute per
//! secret (and flushes what is pending at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::store::Store;

/// Writes for one secret are at least this far apart.
pub const COALESCE: Duration = Duration::seconds(60);

/// Most secrets tracked at once (each entry is a secret that authenticated, so a real deployment
/// stays far below it); past it a use is written without coalescing rather than kept.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    last_written: HashMap<Uuid, DateTime<Utc>>,
    pending: HashMap<Uuid, DateTime<Utc>>,
    latest: Option<DateTime<Utc>>,
}

/// The usage recorder; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct UsageRecorder(Arc<Mutex<State>>);

impl UsageRecorder {
    /// Notes a use at `at`; costs a map lookup on the request path.
    pub fn record(&self, secret_id: Uuid, at: DateTime<Utc>) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.latest = Some(s.latest.map_or(at, |l| l.max(at)));
        let due = s.last_written.get(&secret_id).is_none_or(|last| at - *last >= COALESCE);
        if due {
            if s.last_written.len() >= MAX_TRACKED {
                // Entries older than COALESCE no longer coalesce anything.
                let latest = s.latest.unwrap_or(at);
                s.last_written.retain(|_, t| latest - *t < COALESCE);
                if s.last_written.len() >= MAX_TRACKED {
                    s.last_written.clear();
                }
            }
            if s.pending.len() < MAX_TRACKED || s.pending.contains_key(&secret_id) {
                s.last_written.insert(secret_id, at);
                s.pending.insert(secret_id, at);
            }
        }
    }

    /// How many secrets are tracked (coalescing and pending).
    pub fn tracked(&self) -> (usize, usize) {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (s.last_written.len(), s.pending.len())
    }

    /// Writes what is pending.
    pub async fn flush(&self, store: &Store) {
        for (id, at) in self.take_pending() {
            if let Err(e) = store.record_secret_use(id, at).await {
                tracing::warn!(secret_id = %id, error = %e, "cannot record a secret's use");
            }
        }
    }

    /// The pending uses, leaving none; prunes by time the entries older than [`COALESCE`] (they
    /// no longer hold a write back).
    fn take_pending(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(latest) = s.latest {
            s.last_written.retain(|_, t| latest - *t < COALESCE);
        }
        std::mem::take(&mut s.pending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn the_recorder_tracks_at_most_its_cap_and_forgets_by_time() {
        let r = UsageRecorder::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        for _ in 0..(MAX_TRACKED + 100) {
            r.record(Uuid::new_v4(), t0);
        }
        let (written, pending) = r.tracked();
        assert!(written <= MAX_TRACKED && pending <= MAX_TRACKED, "{written} {pending}");
        // A use a minute later, then the flush's prune: the old entries are gone.
        r.take_pending();
        r.record(Uuid::new_v4(), t0 + COALESCE);
        assert_eq!(r.take_pending().len(), 1);
        let s = r.0.lock().unwrap();
        assert_eq!(s.last_written.len(), 1);
    }
}
