//! The in-memory sliding window of failures each process keeps ([`FailureWindow`]), the verdict
//! it gives ([`ThrottleVerdict`]) and the address it counts ([`address_bucket`]): shared by the
//! sign-in throttles (`auth::throttle`), the token endpoint's (`oauth::throttle`) and the
//! windows whose counts replicas share (`store::SharedWindow`). Time comes from the caller.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// The address a throttle counts (issue 12): IPv4 as is; IPv6 per /64, the prefix one
/// subscriber or host gets, so an attacker cannot spread attempts over the 2^64 addresses of
/// their own network; an IPv4-mapped IPv6 address as its IPv4.
pub fn address_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Most keys kept per map; beyond it the oldest are dropped.
pub const MAX_ENTRIES: usize = 100_000;

/// What the throttle says about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleVerdict {
    /// Go ahead.
    Allowed,
    /// Refused for this long.
    Blocked {
        /// Until the next attempt is allowed.
        retry_after: Duration,
    },
}

impl ThrottleVerdict {
    /// A wait as a `Retry-After` value (RFC 9110 10.2.3): whole seconds, rounded up, at least 1.
    pub fn retry_after_seconds(retry_after: Duration) -> i64 {
        ((retry_after.num_milliseconds() + 999) / 1000).max(1)
    }

    /// "Too many attempts: try again in N minutes" (rounded up; "1 minute").
    pub fn message(retry_after: Duration) -> String {
        let minutes = (retry_after.num_seconds() + 59) / 60;
        let minutes = minutes.max(1);
        if minutes == 1 {
            "Too many attempts: try again in 1 minute.".to_owned()
        } else {
            format!("Too many attempts: try again in {minutes} minutes.")
        }
    }
}

/// A sliding window of failures per key: `limit` failures within `period` block the key until
/// the oldest of them leaves the window. Used per client IP for sign-in and per (client ID, IP)
/// at the token endpoint. Memory is bounded: keys without a failure in the window are pruned
/// once per period, and at most [`MAX_ENTRIES`] keys are kept (the least recent go first).
#[derive(Debug)]
pub struct FailureWindow<K> {
    enabled: bool,
    limit: usize,
    period: Duration,
    max_entries: usize,
    state: Mutex<WindowState<K>>,
}

#[derive(Debug)]
struct WindowState<K> {
    map: HashMap<K, Entry>,
    last_prune: Option<DateTime<Utc>>,
}

/// One key's failures, oldest first, and the end of the block whose refusal was last reported.
#[derive(Debug, Default)]
struct Entry {
    times: VecDeque<DateTime<Utc>>,
    reported_until: Option<DateTime<Utc>>,
    /// Attempts begun and not yet over ([`FailureWindow::begin`]): counted as failures, so a
    /// burst of simultaneous requests cannot all pass the check before any failure is recorded.
    in_flight: u32,
}

/// An attempt in progress ([`FailureWindow::begin`]): counted as a failure until dropped.
#[derive(Debug)]
#[must_use = "the attempt is over when this is dropped"]
pub struct InFlight<'a, K: std::hash::Hash + Eq + Clone> {
    window: Option<(&'a FailureWindow<K>, K)>,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for InFlight<'_, K> {
    fn drop(&mut self) {
        if let Some((window, key)) = self.window.take() {
            let mut state = window.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = state.map.get_mut(&key) {
                entry.in_flight = entry.in_flight.saturating_sub(1);
            }
        }
    }
}

/// The wait a refusal for attempts still in progress announces.
const IN_FLIGHT_WAIT: Duration = Duration::seconds(1);

impl<K: std::hash::Hash + Eq + Clone> FailureWindow<K> {
    /// A window; `enabled = false` allows everything and records nothing.
    pub fn new(enabled: bool, limit: usize, period: Duration) -> Self {
        Self::with_capacity(enabled, limit, period, MAX_ENTRIES)
    }

    /// A window keeping at most `max_entries` keys (tests use small caps).
    pub fn with_capacity(enabled: bool, limit: usize, period: Duration, max_entries: usize) -> Self {
        Self {
            enabled,
            limit: limit.max(1),
            period,
            max_entries: max_entries.max(2),
            state: Mutex::new(WindowState { map: HashMap::new(), last_prune: None }),
        }
    }

    /// How many keys are kept now.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).map.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` may try now.
    pub fn check(&self, key: &K, now: DateTime<Utc>) -> ThrottleVerdict {
        if !self.enabled {
            return ThrottleVerdict::Allowed;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = state.map.get_mut(key) else { return ThrottleVerdict::Allowed };
        self.verdict(entry, now)
    }

    fn verdict(&self, entry: &mut Entry, now: DateTime<Utc>) -> ThrottleVerdict {
        while entry.times.front().is_some_and(|t| *t <= now - self.period) {
            entry.times.pop_front();
        }
        match entry.times.front() {
            Some(oldest) if entry.times.len() >= self.limit => {
                ThrottleVerdict::Blocked { retry_after: *oldest + self.period - now }
            }
            _ if entry.times.len() + entry.in_flight as usize >= self.limit => {
                ThrottleVerdict::Blocked { retry_after: IN_FLIGHT_WAIT }
            }
            _ => ThrottleVerdict::Allowed,
        }
    }

    /// Begins an attempt of `key` when it may try now: until the returned guard is dropped the
    /// attempt counts as a failure, so simultaneous attempts meet the limit as sequential ones
    /// do (record the failure, if it is one, before dropping the guard).
    ///
    /// # Errors
    /// The verdict when `key` is blocked, or when its failures and attempts in progress reach
    /// the limit (then `retry_after` is 1 s).
    pub fn begin(&self, key: K, now: DateTime<Utc>) -> Result<InFlight<'_, K>, ThrottleVerdict> {
        if !self.enabled {
            return Ok(InFlight { window: None });
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = state.map.entry(key.clone()).or_default();
        match self.verdict(entry, now) {
            ThrottleVerdict::Allowed => {
                entry.in_flight += 1;
                self.bound(&mut state, now);
                Ok(InFlight { window: Some((self, key)) })
            }
            blocked => Err(blocked),
        }
    }

    /// Records a failure of `key` at `now`.
    pub fn record(&self, key: K, now: DateTime<Utc>) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = state.map.entry(key).or_default();
        entry.times.push_back(now);
        while entry.times.len() > self.limit {
            entry.times.pop_front();
        }
        self.bound(&mut state, now);
    }

    /// A request of `key` refused while it is blocked: it counts in the key's own window (so a
    /// client that keeps trying stays blocked), and the answer is `true` only for the first
    /// refusal of a block, so a block writes one audit event, not one per request (issue 12).
    pub fn refused(&self, key: K, now: DateTime<Utc>) -> bool {
        if !self.enabled {
            return false;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = state.map.entry(key).or_default();
        let first = match self.verdict(entry, now) {
            ThrottleVerdict::Blocked { retry_after } => {
                let first = entry.reported_until.is_none_or(|until| until <= now);
                if first {
                    entry.reported_until = Some(now + retry_after);
                }
                first
            }
            ThrottleVerdict::Allowed => false,
        };
        entry.times.push_back(now);
        while entry.times.len() > self.limit {
            entry.times.pop_front();
        }
        self.bound(&mut state, now);
        first
    }

    /// Prunes keys whose period passed, once per period, and keeps at most `max_entries`.
    fn bound(&self, state: &mut WindowState<K>, now: DateTime<Utc>) {
        let period = self.period;
        let stale = |e: &Entry| e.in_flight == 0 && e.times.back().is_none_or(|t| *t <= now - period);
        if state.last_prune.is_none_or(|t| now - t >= period) {
            state.map.retain(|_, e| !stale(e));
            state.last_prune = Some(now);
        }
        if state.map.len() > self.max_entries {
            state.map.retain(|_, e| !stale(e));
            if state.map.len() > self.max_entries {
                let mut by_age: Vec<_> = state.map.iter().map(|(k, e)| (e.times.back().copied(), k.clone())).collect();
                by_age.sort_by_key(|(t, _)| *t);
                let excess = state.map.len() - self.max_entries / 2;
                for (_, k) in by_age.into_iter().take(excess) {
                    state.map.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_failure_window_keeps_at_most_its_cap_of_keys() {
        let w = FailureWindow::with_capacity(true, 10, Duration::minutes(1), 100);
        let now = t0();
        for i in 0..1_000u32 {
            w.record(i, now + Duration::milliseconds(i64::from(i)));
            assert!(w.len() <= 100, "{} keys after {i}", w.len());
        }
        // The most recent keys are the ones kept.
        assert_eq!(w.check(&999, now + Duration::seconds(1)), ThrottleVerdict::Allowed);
        assert!(w.state.lock().unwrap().map.contains_key(&999));
        assert!(w.is_empty() || w.len() <= 100);
        assert_eq!(FailureWindow::<u32>::new(true, 1, Duration::minutes(1)).max_entries, MAX_ENTRIES);
    }

    #[test]
    fn a_failure_window_forgets_keys_once_their_period_passed() {
        let w = FailureWindow::new(true, 10, Duration::minutes(1));
        let now = t0();
        for i in 0..500u32 {
            w.record(i, now);
        }
        assert_eq!(w.len(), 500);
        w.record(9999, now + Duration::minutes(2));
        assert_eq!(w.len(), 1);
    }
}
