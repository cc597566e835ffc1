//! Recording when secrets are used, off the request path and coalesced: a successful token
//! request marks its secret; a background task writes at most about one update a minute per
//! secret (and flushes what is pending at shutdown). The same task adds up the tokens issued per
//! secret per UTC day and the `invalid_client` refusals per client ID per UTC day, with the last
//! client address of each (issue 18, point 2; DESIGN.md section 10): counted in memory on the
//! request path (a map entry, no query), written by the flush.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::store::{DayCount, Store};

/// Writes for one secret are at least this far apart.
pub const COALESCE: Duration = Duration::seconds(60);

/// Most secrets tracked at once (each entry is a secret that authenticated, so a real deployment
/// stays far below it); past it a use is written without coalescing rather than kept.
pub const MAX_TRACKED: usize = 100_000;
/// Most (client ID, day) keys of refusals held between two flushes (DESIGN.md section 10): a
/// flood of made-up client IDs costs at most this much memory; past it, new keys wait for the
/// next flush's room (their refusals are not counted).
pub const MAX_REFUSAL_KEYS: usize = 10_000;
/// Days of usage and refusals kept (DESIGN.md section 10).
pub const KEEP_DAYS: i64 = 90;
/// How often the flush deletes the days past [`KEEP_DAYS`].
const PRUNE_EVERY: Duration = Duration::hours(1);

/// Day counts as the store adds them: (secret id or client ID, UTC day, count).
type Days = Vec<(Uuid, NaiveDate, DayCount)>;

/// One key's count for one UTC day, in memory until the flush.
#[derive(Debug, Clone, Copy)]
struct Count {
    count: i64,
    last_at: DateTime<Utc>,
    last_ip: IpAddr,
}

impl Count {
    fn add(slot: Option<&mut Count>, at: DateTime<Utc>, ip: IpAddr) -> Option<Count> {
        match slot {
            Some(c) => {
                c.count += 1;
                if at >= c.last_at {
                    (c.last_at, c.last_ip) = (at, ip);
                }
                None
            }
            None => Some(Count { count: 1, last_at: at, last_ip: ip }),
        }
    }

    fn stored(self) -> DayCount {
        DayCount { count: self.count, last_at: self.last_at, last_ip: self.last_ip.to_string() }
    }
}

#[derive(Debug, Default)]
struct State {
    last_written: HashMap<Uuid, DateTime<Utc>>,
    pending: HashMap<Uuid, DateTime<Utc>>,
    latest: Option<DateTime<Utc>>,
    /// Tokens issued per (secret id, UTC day).
    issued: HashMap<(Uuid, NaiveDate), Count>,
    /// `invalid_client` answers per (client ID, UTC day).
    refused: HashMap<(Uuid, NaiveDate), Count>,
    last_pruned: Option<DateTime<Utc>>,
}

/// The usage recorder; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct UsageRecorder(Arc<Mutex<State>>);

impl UsageRecorder {
    /// Notes a token issued with `secret_id` at `at` to `ip`; costs two map lookups on the
    /// request path.
    pub fn record(&self, secret_id: Uuid, at: DateTime<Utc>, ip: IpAddr) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.latest = Some(s.latest.map_or(at, |l| l.max(at)));
        let key = (secret_id, at.date_naive());
        if let Some(new) = Count::add(s.issued.get_mut(&key), at, ip)
            && s.issued.len() < MAX_TRACKED
        {
            s.issued.insert(key, new);
        }
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

    /// Notes an `invalid_client` answer for `client_id` (parsed) at `at` to `ip`; at most
    /// [`MAX_REFUSAL_KEYS`] keys wait for the flush.
    pub fn refused(&self, client_id: Uuid, at: DateTime<Utc>, ip: IpAddr) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (client_id, at.date_naive());
        if let Some(new) = Count::add(s.refused.get_mut(&key), at, ip)
            && s.refused.len() < MAX_REFUSAL_KEYS
        {
            s.refused.insert(key, new);
        }
    }

    /// How many secrets are tracked (coalescing and pending).
    pub fn tracked(&self) -> (usize, usize) {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (s.last_written.len(), s.pending.len())
    }

    /// Writes what is pending at `now` (UTC): each secret's last use, the day counts (added to
    /// the stored ones), and hourly, deletes the days more than [`KEEP_DAYS`] before `now`.
    /// Counts that cannot be written are logged and dropped (they are statistics, not the
    /// record of a secret's use).
    pub async fn flush(&self, store: &Store, now: DateTime<Utc>) {
        for (id, at) in self.take_pending() {
            if let Err(e) = store.record_secret_use(id, at).await {
                tracing::warn!(secret_id = %id, error = %e, "cannot record a secret's use");
            }
        }
        let (issued, refused, prune_before) = self.take_days(now);
        if let Err(e) = store.add_usage_days(&issued).await {
            tracing::warn!(error = %e, days = issued.len(), "cannot record the secrets' daily usage");
        }
        if let Err(e) = store.add_refusal_days(&refused).await {
            tracing::warn!(error = %e, days = refused.len(), "cannot record the daily invalid_client refusals");
        }
        if let Some(before) = prune_before
            && let Err(e) = store.prune_usage_days(before).await
        {
            tracing::warn!(error = %e, "cannot delete the usage days past 90");
        }
    }

    /// The day counts, leaving none, and the day before which stored days go when an hour has
    /// passed since the last prune (by `now`, whatever traffic this process saw).
    fn take_days(&self, now: DateTime<Utc>) -> (Days, Days, Option<NaiveDate>) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = |m: HashMap<(Uuid, NaiveDate), Count>| {
            m.into_iter().map(|((key, day), c)| (key, day, c.stored())).collect::<Vec<_>>()
        };
        let issued = rows(std::mem::take(&mut s.issued));
        let refused = rows(std::mem::take(&mut s.refused));
        let prune = s.last_pruned.is_none_or(|l| now - l >= PRUNE_EVERY).then(|| {
            s.last_pruned = Some(now);
            now.date_naive() - Duration::days(KEEP_DAYS)
        });
        (issued, refused, prune)
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
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..(MAX_TRACKED + 100) {
            r.record(Uuid::new_v4(), t0, ip);
        }
        let (written, pending) = r.tracked();
        assert!(written <= MAX_TRACKED && pending <= MAX_TRACKED, "{written} {pending}");
        // A use a minute later, then the flush's prune: the old entries are gone.
        r.take_pending();
        r.take_days(t0);
        r.record(Uuid::new_v4(), t0 + COALESCE, ip);
        assert_eq!(r.take_pending().len(), 1);
        let s = r.0.lock().unwrap();
        assert_eq!(s.last_written.len(), 1);
    }

    #[test]
    fn days_count_every_token_and_refusal_with_the_last_address() {
        let r = UsageRecorder::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 23, 59, 58).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let secret = Uuid::new_v4();
        r.record(secret, t0, a);
        r.record(secret, t0 + Duration::seconds(1), b);
        // Out of order: an earlier use does not take the last address.
        r.record(secret, t0 - Duration::seconds(5), a);
        r.record(secret, t0 + Duration::seconds(2), a); // the next UTC day
        let client = Uuid::new_v4();
        r.refused(client, t0, b);
        r.refused(client, t0, a);
        let (mut issued, refused, prune) = r.take_days(t0);
        issued.sort_by_key(|(_, day, _)| *day);
        assert_eq!(issued.len(), 2);
        assert_eq!((issued[0].2.count, issued[0].2.last_ip.as_str()), (3, "2001:db8::1"));
        assert_eq!((issued[1].1, issued[1].2.count), (t0.date_naive().succ_opt().unwrap(), 1));
        assert_eq!((refused.len(), refused[0].2.count, refused[0].2.last_ip.as_str()), (1, 2, "192.0.2.1"));
        assert_eq!(prune, Some(t0.date_naive() - Duration::days(KEEP_DAYS)));
        assert_eq!(r.take_days(t0 + Duration::minutes(59)).2, None, "once an hour");
        assert!(r.take_days(t0 + PRUNE_EVERY).2.is_some(), "by the clock, even without tokens");
        // Made-up client IDs: at most MAX_REFUSAL_KEYS wait for a flush.
        for _ in 0..(MAX_REFUSAL_KEYS + 10) {
            r.refused(Uuid::new_v4(), t0, a);
        }
        assert_eq!(r.take_days(t0).1.len(), MAX_REFUSAL_KEYS);
    }
}
