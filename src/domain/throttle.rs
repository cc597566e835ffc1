//! The failure counts that throttles share through the database (issue 12, point 3): a throttle
//! key (32 bytes, whatever a client typed) and a window of failures that two counters describe.
//!
//! A shared count is a fixed window that starts with a key's first failure: `limit` failures
//! within `period` of it block the key until the window ends. It needs one row per key whatever
//! the number of failures and adds up the same on every replica. It is never stricter than the
//! exact sliding log each replica keeps of its own failures ([`crate::auth::FailureWindow`]),
//! which blocks at least as long, so one replica refuses exactly what it did before the counts
//! were shared, and replicas together refuse once the limit is reached among them.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest as _, Sha256};

/// A throttle key: the SHA-256 of a normalised value (an email as `trim().to_lowercase()`, a
/// client ID, an address bucket, or several of them joined), so what a client types is never
/// kept, in memory or in the database, at its typed size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThrottleKey([u8; 32]);

impl ThrottleKey {
    /// The key of `normalised`.
    pub fn of(normalised: &str) -> Self {
        Self(Sha256::digest(normalised.as_bytes()).into())
    }

    /// The key of several parts, each ended by a newline (which no part holds: emails, client
    /// IDs and addresses have none), so ("a", "bc") and ("ab", "c") differ.
    pub fn of_parts(parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update(part.as_bytes());
            hash.update(b"\n");
        }
        Self(hash.finalize().into())
    }

    /// The 32 bytes, as the database stores them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From the database's 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThrottleKey({})", hex::encode(&self.0[..4]))
    }
}

/// How a shared throttle counts: its name in the database, and the failures within its period
/// that block a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// The scope's name in the database (`token`, `sign_in`, `link`, `reset`).
    pub scope: &'static str,
    /// Failures within `period` that block a key.
    pub limit: usize,
    /// The window.
    pub period: Duration,
}

/// Most failures one window counts; more change nothing (the key is blocked for the longest
/// time already) and the database column stays far from its integer bound.
pub const MAX_COUNT: i64 = 1_000_000;

/// One key's shared count: when its window started (UTC; the first failure after the last
/// window ended) and the failures in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Start of the window.
    pub start: DateTime<Utc>,
    /// Failures in it (at most [`MAX_COUNT`]).
    pub failures: i64,
}

impl WindowCount {
    /// The count after `failures` more at `now`: a window that ended (`period` after its start)
    /// starts again at `now`. A `now` before `start` (another replica's clock a little behind)
    /// counts in the window as it is.
    pub fn add(self, failures: u32, now: DateTime<Utc>, period: Duration) -> Self {
        if now - self.start >= period {
            Self { start: now, failures: i64::from(failures).min(MAX_COUNT) }
        } else {
            Self { start: self.start, failures: (self.failures + i64::from(failures)).min(MAX_COUNT) }
        }
    }

    /// Until when the key is refused: the window's end once it holds `limit` failures; `None`
    /// when it holds fewer or has ended by `now`.
    pub fn blocked_until(self, limit: usize, now: DateTime<Utc>, period: Duration) -> Option<DateTime<Utc>> {
        let end = self.start + period;
        (self.failures >= limit.max(1) as i64 && end > now).then_some(end)
    }

    /// When the row no longer matters: the window's end.
    pub fn expires_at(self, period: Duration) -> DateTime<Utc> {
        self.start + period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }
    const MINUTE: Duration = Duration::minutes(1);

    #[test]
    fn a_key_is_32_bytes_and_parts_do_not_run_together() {
        assert_eq!(ThrottleKey::of(&"x".repeat(100_000)).as_bytes().len(), 32);
        assert_ne!(ThrottleKey::of_parts(&["a", "bc"]), ThrottleKey::of_parts(&["ab", "c"]));
        let key = ThrottleKey::of("a");
        assert_eq!(ThrottleKey::from_slice(key.as_bytes()), Some(key));
        assert_eq!(ThrottleKey::from_slice(&[0; 31]), None);
        assert!(!format!("{key:?}").contains(&hex::encode(key.as_bytes())));
    }

    #[test]
    fn the_limit_blocks_until_the_window_of_the_first_failure_ends() {
        let mut count = WindowCount { start: t0(), failures: 0 };
        for i in 0..9 {
            count = count.add(1, t0() + Duration::seconds(i), MINUTE);
            assert_eq!(count.blocked_until(10, t0() + Duration::seconds(i), MINUTE), None);
        }
        let now = t0() + Duration::seconds(9);
        count = count.add(1, now, MINUTE);
        assert_eq!(count.blocked_until(10, now, MINUTE), Some(t0() + MINUTE));
        assert_eq!(count.blocked_until(10, t0() + MINUTE, MINUTE), None, "ends with the window");
        // More failures (refusals) in the window change nothing; the next window starts afresh.
        count = count.add(100, now, MINUTE);
        assert_eq!(count.blocked_until(10, now, MINUTE), Some(t0() + MINUTE));
        let next = count.add(1, t0() + MINUTE, MINUTE);
        assert_eq!(next, WindowCount { start: t0() + MINUTE, failures: 1 });
        assert_eq!(next.expires_at(MINUTE), t0() + MINUTE + MINUTE);
    }

    #[test]
    fn counts_are_capped_and_a_clock_behind_counts_in_the_window() {
        let huge = WindowCount { start: t0(), failures: 0 }.add(u32::MAX, t0(), MINUTE).add(u32::MAX, t0(), MINUTE);
        assert_eq!(huge.failures, MAX_COUNT);
        let behind = WindowCount { start: t0(), failures: 3 }.add(1, t0() - Duration::seconds(1), MINUTE);
        assert_eq!(behind, WindowCount { start: t0(), failures: 4 });
    }
}
