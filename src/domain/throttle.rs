//! The failure counts that throttles share through the database (issue 12, point 3): a throttle
//! key (32 bytes, whatever a client typed) and a window of failures that two counters describe.
//!
//! A shared count is a fixed window that starts with a key's first failure: `limit` failures
//! within `period` of it block the key until the window ends. It needs one row per key whatever
//! the number of failures and adds up the same on every replica. It is never stricter than the
//! exact sliding log each replica keeps of its own failures ([`crate::domain::failure_window::FailureWindow`]),
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

/// How a shared throttle counts: its name in the database, and the failures that block a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// The scope's name in the database (`token`, `sign_in`, `link`, `reset`, `pair`).
    pub scope: &'static str,
    /// Failures that block a key.
    pub limit: usize,
    /// [`Counting::Window`]: the window, from its first failure. [`Counting::Consecutive`]: the
    /// first block.
    pub period: Duration,
    /// How failures add up.
    pub counting: Counting,
}

/// How a [`ThrottleRule`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// `limit` failures within `period` of the window's first failure block the key until the
    /// window ends.
    Window,
    /// Consecutive failures (a success deletes the count): the `limit`-th blocks the key for
    /// `period` from the last failure, each further one twice as long as the one before, at most
    /// `longest`; a key without a failure for `longest` starts again (the seed guide's per
    /// (email, address) rule, issue 3).
    Consecutive {
        /// The longest block, and how long a count lasts without a failure.
        longest: Duration,
    },
}

/// Most failures one window counts; more change nothing (the key is blocked for the longest
/// time already) and the database column stays far from its integer bound.
pub const MAX_COUNT: i64 = 1_000_000;

/// One key's shared count: when its window started (UTC; the first failure after the last
/// window ended), or for [`Counting::Consecutive`] the last failure, and the failures counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Start of the window, or the last failure.
    pub start: DateTime<Utc>,
    /// Failures counted (at most [`MAX_COUNT`]).
    pub failures: i64,
}

impl WindowCount {
    /// The count after `failures` more at `now`. A window that ended (`period` after its start)
    /// starts again at `now`; a consecutive count without a failure for more than `longest` starts again (so the
    /// failure that comes as the longest block ends still doubles it).
    /// A `now` before `start` (another replica's clock a little behind) counts as it is.
    pub fn add(self, failures: u32, now: DateTime<Utc>, rule: &ThrottleRule) -> Self {
        let failures = i64::from(failures);
        match rule.counting {
            Counting::Window if now - self.start >= rule.period => {
                Self { start: now, failures: failures.min(MAX_COUNT) }
            }
            Counting::Window => Self { start: self.start, failures: (self.failures + failures).min(MAX_COUNT) },
            Counting::Consecutive { longest } if now - self.start > longest => {
                Self { start: now, failures: failures.min(MAX_COUNT) }
            }
            Counting::Consecutive { .. } => {
                Self { start: self.start.max(now), failures: (self.failures + failures).min(MAX_COUNT) }
            }
        }
    }

    /// Until when the key is refused; `None` when it is not at `now`.
    pub fn blocked_until(self, rule: &ThrottleRule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let limit = rule.limit.max(1) as i64;
        if self.failures < limit {
            return None;
        }
        let end = match rule.counting {
            Counting::Window => self.start + rule.period,
            Counting::Consecutive { longest } => {
                // period x 2^(failures - limit), at most longest (2^10 periods pass any longest used).
                let doublings = u32::try_from(self.failures - limit).unwrap_or(u32::MAX).min(10);
                self.start + (rule.period * (1 << doublings)).min(longest)
            }
        };
        (end > now).then_some(end)
    }

    /// When the row no longer matters: the window's end, or `longest` after the last failure.
    pub fn expires_at(self, rule: &ThrottleRule) -> DateTime<Utc> {
        match rule.counting {
            Counting::Window => self.start + rule.period,
            Counting::Consecutive { longest } => self.start + longest,
        }
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

    const RULE: ThrottleRule = ThrottleRule { scope: "t", limit: 10, period: MINUTE, counting: Counting::Window };
    const PAIR: ThrottleRule = ThrottleRule {
        scope: "pair",
        limit: 5,
        period: Duration::seconds(30),
        counting: Counting::Consecutive { longest: Duration::minutes(15) },
    };

    #[test]
    fn the_limit_blocks_until_the_window_of_the_first_failure_ends() {
        let mut count = WindowCount { start: t0(), failures: 0 };
        for i in 0..9 {
            count = count.add(1, t0() + Duration::seconds(i), &RULE);
            assert_eq!(count.blocked_until(&RULE, t0() + Duration::seconds(i)), None);
        }
        let now = t0() + Duration::seconds(9);
        count = count.add(1, now, &RULE);
        assert_eq!(count.blocked_until(&RULE, now), Some(t0() + MINUTE));
        assert_eq!(count.blocked_until(&RULE, t0() + MINUTE), None, "ends with the window");
        // More failures (refusals) in the window change nothing; the next window starts afresh.
        count = count.add(100, now, &RULE);
        assert_eq!(count.blocked_until(&RULE, now), Some(t0() + MINUTE));
        let next = count.add(1, t0() + MINUTE, &RULE);
        assert_eq!(next, WindowCount { start: t0() + MINUTE, failures: 1 });
        assert_eq!(next.expires_at(&RULE), t0() + MINUTE + MINUTE);
    }

    #[test]
    fn consecutive_failures_block_for_30_seconds_doubling_up_to_15_minutes() {
        let mut count = WindowCount { start: t0(), failures: 0 };
        let mut now = t0();
        for _ in 0..4 {
            count = count.add(1, now, &PAIR);
            assert_eq!(count.blocked_until(&PAIR, now), None);
        }
        let mut expected = 30;
        count = count.add(1, now, &PAIR);
        for _ in 0..8 {
            assert_eq!(count.blocked_until(&PAIR, now), Some(now + Duration::seconds(expected)));
            now += Duration::seconds(expected);
            count = count.add(1, now, &PAIR);
            expected = (expected * 2).min(900);
        }
        assert_eq!(count.blocked_until(&PAIR, now), Some(now + Duration::minutes(15)));
        assert_eq!(count.expires_at(&PAIR), now + Duration::minutes(15));
        // More than fifteen quiet minutes after the last failure: the count starts again.
        let quiet = now + Duration::minutes(15) + Duration::seconds(1);
        assert_eq!(count.add(1, quiet, &PAIR), WindowCount { start: quiet, failures: 1 });
        // A huge count stays at the longest block.
        let huge = WindowCount { start: t0(), failures: MAX_COUNT };
        assert_eq!(huge.blocked_until(&PAIR, t0()), Some(t0() + Duration::minutes(15)));
    }

    #[test]
    fn counts_are_capped_and_a_clock_behind_counts_in_the_window() {
        let huge = WindowCount { start: t0(), failures: 0 }.add(u32::MAX, t0(), &RULE).add(u32::MAX, t0(), &RULE);
        assert_eq!(huge.failures, MAX_COUNT);
        let behind = WindowCount { start: t0(), failures: 3 }.add(1, t0() - Duration::seconds(1), &RULE);
        assert_eq!(behind, WindowCount { start: t0(), failures: 4 });
        let behind = WindowCount { start: t0(), failures: 3 }.add(1, t0() - Duration::seconds(1), &PAIR);
        assert_eq!(behind, WindowCount { start: t0(), failures: 4 });
    }
}
