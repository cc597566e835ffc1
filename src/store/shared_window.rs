//! A failure window shared by replicas (issue 12, point 3): the counts live in the database
//! (`throttle_window`, one row per key), so two replicas allow what one allows, within one
//! unwritten batch per replica.
//!
//! On the request path a [`SharedWindow`] costs no query of its own: this replica's failures are
//! counted exactly in memory (a [`FailureWindow`], so one replica blocks at the limit as before),
//! a block learnt from the database is cached until it ends, and failures wait in a bounded
//! pending map that the flush job writes in one transaction a second, at most one write per key
//! per flush. A block another replica caused is learnt where the caller reads the database anyway
//! (the token endpoint's secret lookup joins the block row) or by [`SharedWindow::check_shared`],
//! one primary-key lookup, on the routes where a query more is nothing next to a password hash.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::Store;
use crate::domain::failure_window::{FailureWindow, InFlight, MAX_ENTRIES, ThrottleVerdict};
use crate::domain::throttle::{ThrottleKey, ThrottleRule};

/// A block learnt from the database: its end, and whether its first refusal was reported.
#[derive(Debug, Clone, Copy)]
struct Learnt {
    until: DateTime<Utc>,
    reported: bool,
}

#[derive(Debug, Default)]
struct State {
    blocks: HashMap<ThrottleKey, Learnt>,
    /// Failures not yet written, with the time of the first of them (the count is added as of
    /// then, not as of the flush, so a late flush never starts a window late).
    pending: HashMap<ThrottleKey, (u32, DateTime<Utc>)>,
}

/// One shared throttle (a [`ThrottleRule`]); share one per process.
#[derive(Debug)]
pub struct SharedWindow {
    enabled: bool,
    rule: ThrottleRule,
    local: FailureWindow<ThrottleKey>,
    max_entries: usize,
    state: Mutex<State>,
    /// Held for a whole flush: a flush that starts while another writes waits for it, so when
    /// it returns every failure recorded before it began is in the database (the job's flush
    /// every second and a caller's own, e.g. at shutdown or in a test, never overlap).
    flushing: tokio::sync::Mutex<()>,
}

impl SharedWindow {
    /// A window; `enabled = false` allows everything, records nothing and writes nothing.
    pub fn new(enabled: bool, rule: ThrottleRule) -> Self {
        Self::with_capacity(enabled, rule, MAX_ENTRIES)
    }

    /// A window keeping at most `max_entries` keys in each of its maps (tests use small caps).
    pub fn with_capacity(enabled: bool, rule: ThrottleRule, max_entries: usize) -> Self {
        Self {
            enabled,
            rule,
            local: FailureWindow::with_capacity(enabled, rule.limit, rule.period, max_entries),
            max_entries: max_entries.max(2),
            state: Mutex::new(State::default()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// A window that keeps no count of its own in memory, only what it learns from the database
    /// and what waits to be written: for a rule the caller counts exactly itself (the
    /// per-(email, address) pairs of `auth::Throttle`).
    pub fn shared_only(enabled: bool, rule: ThrottleRule) -> Self {
        Self {
            enabled,
            rule,
            local: FailureWindow::new(false, rule.limit, rule.period),
            max_entries: MAX_ENTRIES,
            state: Mutex::new(State::default()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Forgets what this replica holds of `key` (its pending failures and a learnt block), as a
    /// success does; the caller deletes the database's count.
    pub fn forget(&self, key: &ThrottleKey) {
        let mut state = self.state();
        state.pending.remove(key);
        state.blocks.remove(key);
    }

    /// Whether a refusal of `key` now is the first of the block this replica learnt (without
    /// counting it as a failure); `false` when no block is learnt.
    pub fn first_report(&self, key: &ThrottleKey, now: DateTime<Utc>) -> bool {
        match self.state().blocks.get_mut(key) {
            Some(learnt) if learnt.until > now && !learnt.reported => {
                learnt.reported = true;
                true
            }
            _ => false,
        }
    }

    /// The rule it counts by.
    pub fn rule(&self) -> ThrottleRule {
        self.rule
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `key` may try now, from memory alone: this replica's own count, or a block it
    /// has learnt from the database.
    pub fn check(&self, key: &ThrottleKey, now: DateTime<Utc>) -> ThrottleVerdict {
        if !self.enabled {
            return ThrottleVerdict::Allowed;
        }
        if let blocked @ ThrottleVerdict::Blocked { .. } = self.local.check(key, now) {
            return blocked;
        }
        match self.state().blocks.get(key) {
            Some(learnt) if learnt.until > now => ThrottleVerdict::Blocked { retry_after: learnt.until - now },
            _ => ThrottleVerdict::Allowed,
        }
    }

    /// Begins an attempt of `key` ([`FailureWindow::begin`]): refused while a learnt block lasts
    /// or this replica's failures and attempts in progress reach the limit.
    ///
    /// # Errors
    /// The verdict when refused.
    pub fn begin(&self, key: ThrottleKey, now: DateTime<Utc>) -> Result<InFlight<'_, ThrottleKey>, ThrottleVerdict> {
        match self.check(&key, now) {
            ThrottleVerdict::Allowed => self.local.begin(key, now),
            blocked => Err(blocked),
        }
    }

    /// [`SharedWindow::check`], then, when memory allows, the database's block of `key` (one
    /// primary-key lookup), learnt for later. A database that does not answer leaves the
    /// verdict to memory (the request's own queries will fail).
    pub async fn check_shared(&self, store: &Store, key: &ThrottleKey, now: DateTime<Utc>) -> ThrottleVerdict {
        let verdict = self.check(key, now);
        if !self.enabled || verdict != ThrottleVerdict::Allowed {
            return verdict;
        }
        match store.throttle_block(self.rule.scope, key, now).await {
            Ok(Some(until)) => {
                self.learn(*key, until, now);
                ThrottleVerdict::Blocked { retry_after: until - now }
            }
            Ok(None) => ThrottleVerdict::Allowed,
            Err(e) => {
                tracing::warn!(scope = self.rule.scope, error = %e, "cannot read a shared throttle count");
                ThrottleVerdict::Allowed
            }
        }
    }

    /// Caches that `key` is blocked until `until` (read from the database).
    pub fn learn(&self, key: ThrottleKey, until: DateTime<Utc>, now: DateTime<Utc>) {
        if !self.enabled || until <= now {
            return;
        }
        // A block this replica counted itself reports its refusals through its own count.
        let counted_here = self.local.check(&key, now) != ThrottleVerdict::Allowed;
        let mut state = self.state();
        if let Some(learnt) = state.blocks.get_mut(&key) {
            if until > learnt.until {
                // A longer block is the same refusal period, reported once.
                learnt.until = until;
            }
            return;
        }
        if state.blocks.len() >= self.max_entries {
            state.blocks.retain(|_, l| l.until > now);
            if state.blocks.len() >= self.max_entries {
                // Not cached: the database still answers the block where it is read.
                return;
            }
        }
        state.blocks.insert(key, Learnt { until, reported: counted_here });
    }

    /// Records a failure of `key` at `now`: counted here at once, written with the next batch.
    pub fn record(&self, key: ThrottleKey, now: DateTime<Utc>) {
        if !self.enabled {
            return;
        }
        self.local.record(key, now);
        self.pend(key, now);
    }

    /// A request of `key` refused while it is blocked: it counts as a failure (here and in the
    /// database), and the answer is `true` only for the first refusal of a block, so a block
    /// writes one audit event, not one per request.
    pub fn refused(&self, key: ThrottleKey, now: DateTime<Utc>) -> bool {
        if !self.enabled {
            return false;
        }
        let first_here = self.local.refused(key, now);
        self.pend(key, now);
        let mut state = self.state();
        match state.blocks.get_mut(&key) {
            Some(learnt) if learnt.until > now => {
                let first = first_here || !learnt.reported;
                learnt.reported = true;
                first
            }
            _ => first_here,
        }
    }

    fn pend(&self, key: ThrottleKey, now: DateTime<Utc>) {
        let mut state = self.state();
        let full = state.pending.len() >= self.max_entries;
        match state.pending.get_mut(&key) {
            Some((n, _)) => *n = n.saturating_add(1),
            // Past the cap a new key's failure is not written (this replica still counts it);
            // the per-address pre-limit in front keeps a flood from getting here.
            None if full => metrics::counter!("throttle_failures_unwritten_total").increment(1),
            None => {
                state.pending.insert(key, (1, now));
            }
        }
    }

    /// How many keys wait to be written, and how many learnt blocks are cached.
    pub fn sizes(&self) -> (usize, usize) {
        let state = self.state();
        (state.pending.len(), state.blocks.len())
    }

    /// Writes the pending failures in one transaction at `now` and learns the blocks they make;
    /// forgets learnt blocks that ended. One flush at a time: a second waits for the first, so
    /// on return everything recorded before the call is written (or its batch was refused). A batch the database refuses is dropped with a
    /// warning (this replica's own counts still hold).
    pub async fn flush(&self, store: &Store, now: DateTime<Utc>) {
        let _one_at_a_time = self.flushing.lock().await;
        let batch: Vec<(ThrottleKey, u32, DateTime<Utc>)> = {
            let mut state = self.state();
            state.blocks.retain(|_, l| l.until > now);
            std::mem::take(&mut state.pending).into_iter().map(|(key, (n, at))| (key, n, at)).collect()
        };
        if batch.is_empty() {
            return;
        }
        match store.add_throttle_failures(self.rule, &batch, now).await {
            Ok(blocks) => {
                for (key, until) in blocks {
                    if let Some(until) = until {
                        self.learn(key, until, now);
                    }
                }
            }
            Err(e) => {
                metrics::counter!("throttle_failures_unwritten_total").increment(batch.len() as u64);
                tracing::warn!(scope = self.rule.scope, keys = batch.len(), error = %e, "cannot write shared throttle counts");
            }
        }
    }
}

/// Writes every window's pending failures at `now` (UTC): the pass of `jobs::throttle_counts`.
pub async fn flush_all(windows: &[std::sync::Arc<SharedWindow>], store: &Store, now: DateTime<Utc>) {
    for window in windows {
        window.flush(store, now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone as _};

    const RULE: ThrottleRule = ThrottleRule {
        scope: "test",
        limit: 3,
        period: Duration::minutes(1),
        counting: crate::domain::throttle::Counting::Window,
    };

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    #[test]
    fn its_maps_keep_at_most_their_cap() {
        let w = SharedWindow::with_capacity(true, RULE, 50);
        for i in 0..1_000 {
            let key = ThrottleKey::of(&i.to_string());
            w.record(key, t0());
            w.learn(key, t0() + Duration::minutes(1), t0());
            let (pending, blocks) = w.sizes();
            assert!(pending <= 50 && blocks <= 50, "{pending} {blocks} after {i}");
        }
        // Ended blocks make room again.
        w.learn(ThrottleKey::of("late"), t0() + Duration::minutes(5), t0() + Duration::minutes(2));
        assert_eq!(w.sizes().1, 1);
    }

    #[test]
    fn a_learnt_block_refuses_until_it_ends_and_is_reported_once() {
        let w = SharedWindow::new(true, RULE);
        let key = ThrottleKey::of("k");
        assert_eq!(w.check(&key, t0()), ThrottleVerdict::Allowed);
        w.learn(key, t0() + Duration::seconds(20), t0());
        assert_eq!(w.check(&key, t0()), ThrottleVerdict::Blocked { retry_after: Duration::seconds(20) });
        assert!(w.refused(key, t0()));
        assert!(!w.refused(key, t0() + Duration::seconds(1)));
        assert_eq!(w.check(&key, t0() + Duration::seconds(20)), ThrottleVerdict::Allowed);
        // The refusals were counted: two of them, plus one failure, reach the limit here too.
        w.record(key, t0() + Duration::seconds(21));
        assert!(matches!(w.check(&key, t0() + Duration::seconds(21)), ThrottleVerdict::Blocked { .. }));
        assert_eq!(w.sizes().0, 1, "one key pending, however many failures");
    }

    #[test]
    fn switched_off_it_keeps_nothing() {
        let w = SharedWindow::new(false, RULE);
        let key = ThrottleKey::of("k");
        for _ in 0..10 {
            w.record(key, t0());
        }
        w.learn(key, t0() + Duration::minutes(1), t0());
        assert_eq!(w.check(&key, t0()), ThrottleVerdict::Allowed);
        assert_eq!(w.sizes(), (0, 0));
    }
}
