//! Time is passed in, never read inside domain, store or jobs (DESIGN.md section 1), so tests can
//! move it.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeDelta, Utc};

/// A source of the current instant (UTC).
///
/// Instants are truncated to whole microseconds, the resolution Postgres keeps, so a value read back
/// from either backend equals the value written.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, UTC, microsecond resolution.
    fn now(&self) -> DateTime<Utc>;

    /// Today's UTC calendar date: the portal's "today" for expiration dates (DESIGN.md section 3).
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// Truncates an instant to whole microseconds.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the one reading of the wall clock (clippy.toml)")]
    fn now(&self) -> DateTime<Utc> {
        to_micros(Utc::now())
    }
}

/// A clock that stands still until moved; tests and benchmarks use it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `start` (truncated to microseconds).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(to_micros(start))))
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = to_micros(t);
    }

    /// Moves the clock forward by `d` (backward when negative).
    pub fn advance(&self, d: Duration) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *guard += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T10:00:00.123456789Z").map(|t| t.to_utc());
        let clock = ManualClock::new(start.unwrap());
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000);
        clock.advance(Duration::days(1));
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    }
}
