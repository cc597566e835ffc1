//! Throttling of failed sign-in attempts.
//!
//! Two rules (issue 3, ASVS 5.0 6.3.1):
//! - per (email, client IP), known email or not: after 5 consecutive failures (password or TOTP),
//!   further attempts from that IP are refused, not delayed, for 30 s, doubling with each further
//!   failure up to 15 minutes; a success resets the count. Keyed on the pair, so an attacker
//!   elsewhere cannot lock a victim out.
//! - per client IP: 30 failures in 10 minutes make the sign-in, invitation and password routes
//!   answer 429 with `Retry-After` until the window has room again. Shared by replicas through
//!   the database ([`SharedWindow`], issue 12), as are the window of bad one-time links and the
//!   pair rule's consecutive failures (each replica counts its own exactly and learns the others'
//!   from the database).
//!
//! Time comes from the caller's clock. Memory is bounded whatever clients send (issue 12): a key
//! is the SHA-256 of the normalised value ([`ThrottleKey`], 32 bytes however long the email or
//! client ID typed), entries that no longer matter are pruned once per period, and at most
//! [`crate::domain::failure_window::MAX_ENTRIES`] keys are kept per map (the least recent go first).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

use crate::domain::failure_window::{InFlight, MAX_ENTRIES, ThrottleVerdict, address_bucket};
pub use crate::domain::throttle::ThrottleKey;
use crate::domain::throttle::{Counting, ThrottleRule};
use crate::store::{SharedWindow, Store};

/// Consecutive failures before a (email, IP) pair is refused.
pub const FAILURES_BEFORE_BLOCK: u32 = 5;
/// The first refusal lasts this long, and doubles.
pub const FIRST_BLOCK: Duration = Duration::seconds(30);
/// The longest refusal.
pub const LONGEST_BLOCK: Duration = Duration::minutes(15);
/// Failures per IP within [`IP_WINDOW`] that trigger 429.
pub const IP_FAILURES: usize = 30;
/// The per-IP window.
pub const IP_WINDOW: Duration = Duration::minutes(10);
/// Unknown or unusable one-time-link tokens per IP within [`IP_WINDOW`] that make the link
/// routes answer 429. Their own window: a page of image tags pointing at bad links must not lock
/// an office out of signing in.
pub const LINK_FAILURES: usize = 30;
#[derive(Debug, Clone)]
struct PairState {
    consecutive: u32,
    blocked_until: Option<DateTime<Utc>>,
    last_block: Option<Duration>,
    last_failure: DateTime<Utc>,
    /// The block whose refusal was reported (audited) already.
    reported_block: Option<DateTime<Utc>>,
    /// Attempts begun and not over ([`Throttle::begin_pair`]).
    in_flight: u32,
}

/// A sign-in attempt of an (email, address) pair in progress ([`Throttle::begin_pair`]):
/// counted as a failure until dropped.
#[derive(Debug)]
#[must_use = "the attempt is over when this is dropped"]
pub struct PairAttempt<'a> {
    throttle: Option<(&'a Throttle, (ThrottleKey, IpAddr))>,
}

impl Drop for PairAttempt<'_> {
    fn drop(&mut self) {
        if let Some((throttle, key)) = self.throttle.take() {
            if let Some(pair) = throttle.state().pairs.get_mut(&key) {
                pair.in_flight = pair.in_flight.saturating_sub(1);
            }
        }
    }
}

impl PairState {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            consecutive: 0,
            blocked_until: None,
            last_block: None,
            last_failure: now,
            reported_block: None,
            in_flight: 0,
        }
    }
}

#[derive(Debug)]
struct State {
    pairs: HashMap<(ThrottleKey, IpAddr), PairState>,
    last_prune: Option<DateTime<Utc>>,
}

/// Sign-in failures per address, shared by replicas: 30 within 10 minutes.
pub const SIGN_IN_RULE: ThrottleRule =
    ThrottleRule { scope: "sign_in", limit: IP_FAILURES, period: IP_WINDOW, counting: Counting::Window };
/// Unknown or unusable one-time-link tokens per address, shared by replicas.
pub const LINK_RULE: ThrottleRule =
    ThrottleRule { scope: "link", limit: LINK_FAILURES, period: IP_WINDOW, counting: Counting::Window };

/// Password-reset requests per address within an hour before 429 (issue 12), shared by replicas.
pub const RESET_RULE: ThrottleRule =
    ThrottleRule { scope: "reset", limit: 10, period: chrono::Duration::hours(1), counting: Counting::Window };

/// Consecutive failures per (email, address), shared by replicas: the 5th blocks for 30 s, each
/// further one twice as long, at most 15 minutes.
pub const PAIR_RULE: ThrottleRule = ThrottleRule {
    scope: "pair",
    limit: FAILURES_BEFORE_BLOCK as usize,
    period: FIRST_BLOCK,
    counting: Counting::Consecutive { longest: LONGEST_BLOCK },
};

/// The key of an (email, address bucket) pair in the shared pair counts.
pub fn pair_key(email: &str, ip: IpAddr) -> ThrottleKey {
    ThrottleKey::of_parts(&[email, &address_bucket(ip).to_string()])
}

/// The key of an address's throttle bucket (IPv6: its /64) in a shared window.
pub fn address_key(ip: IpAddr) -> ThrottleKey {
    ThrottleKey::of(&address_bucket(ip).to_string())
}

/// The throttle; share one per process. Every count is shared by replicas ([`SharedWindow`]):
/// the per-address windows keep their exact count in the window, the per-(email, address) pairs
/// in this throttle's own map, and what other replicas counted is read from the database.
#[derive(Debug)]
pub struct Throttle {
    enabled: bool,
    state: Mutex<State>,
    ips: Arc<SharedWindow>,
    links: Arc<SharedWindow>,
    pairs: Arc<SharedWindow>,
}

impl Throttle {
    /// A throttle; `enabled = false` (`PORTAL_RATE_LIMITS=off`, for benchmarks only) allows
    /// everything and records nothing.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::new(State { pairs: HashMap::new(), last_prune: None }),
            ips: Arc::new(SharedWindow::new(enabled, SIGN_IN_RULE)),
            links: Arc::new(SharedWindow::new(enabled, LINK_RULE)),
            pairs: Arc::new(SharedWindow::shared_only(enabled, PAIR_RULE)),
        }
    }

    /// The windows the flush job writes to the database.
    pub fn shared_windows(&self) -> [Arc<SharedWindow>; 3] {
        [self.ips.clone(), self.links.clone(), self.pairs.clone()]
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an attempt for `email` (normalised) from `ip` may proceed.
    pub fn check_pair(&self, email: &str, ip: IpAddr, now: DateTime<Utc>) -> ThrottleVerdict {
        if !self.enabled {
            return ThrottleVerdict::Allowed;
        }
        match self.state().pairs.get(&(ThrottleKey::of(email), address_bucket(ip))).and_then(|p| p.blocked_until) {
            Some(until) if until > now => ThrottleVerdict::Blocked { retry_after: until - now },
            // A block another replica's failures made, once learnt.
            _ => self.pairs.check(&pair_key(email, ip), now),
        }
    }

    /// Whether an attempt for `email` (normalised) from `ip` may proceed among all replicas:
    /// memory, then the database's block of the pair (one primary-key lookup).
    pub async fn check_pair_shared(
        &self,
        store: &Store,
        email: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> ThrottleVerdict {
        match self.check_pair(email, ip, now) {
            ThrottleVerdict::Allowed if self.enabled => self.pairs.check_shared(store, &pair_key(email, ip), now).await,
            verdict => verdict,
        }
    }

    /// Begins a sign-in attempt for `email` (normalised) from `ip` when the pair may try, among
    /// all replicas ([`Throttle::check_pair_shared`]). Until the returned attempt is dropped it
    /// counts as a failure, so simultaneous attempts cannot all pass before any failure is
    /// recorded: the pair has as many attempts in progress as failures left before its block
    /// (one once it has been blocked). Record the failure, if it is one, before dropping it.
    ///
    /// # Errors
    /// The verdict when refused (1 s while the attempts in progress use up what is left).
    pub async fn begin_pair(
        &self,
        store: &Store,
        email: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<PairAttempt<'_>, ThrottleVerdict> {
        if let blocked @ ThrottleVerdict::Blocked { .. } = self.check_pair_shared(store, email, ip, now).await {
            return Err(blocked);
        }
        if !self.enabled {
            return Ok(PairAttempt { throttle: None });
        }
        let key = (ThrottleKey::of(email), address_bucket(ip));
        let mut state = self.state();
        let pair = state.pairs.entry(key).or_insert_with(|| PairState::new(now));
        let left = FAILURES_BEFORE_BLOCK.saturating_sub(pair.consecutive).max(1);
        if pair.in_flight >= left {
            return Err(ThrottleVerdict::Blocked { retry_after: Duration::seconds(1) });
        }
        pair.in_flight += 1;
        Ok(PairAttempt { throttle: Some((self, key)) })
    }

    /// Begins a request on the sign-in routes from `ip` ([`crate::domain::FailureWindow::begin`] on the shared
    /// per-address window): refused once its failures and requests in progress reach 30.
    ///
    /// # Errors
    /// The verdict when refused.
    pub fn begin_ip(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<InFlight<'_, ThrottleKey>, ThrottleVerdict> {
        self.ips.begin(address_key(ip), now)
    }

    /// Begins a one-time-link request from `ip`, as [`Throttle::begin_ip`] for the link window.
    ///
    /// # Errors
    /// The verdict when refused.
    pub fn begin_link(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<InFlight<'_, ThrottleKey>, ThrottleVerdict> {
        self.links.begin(address_key(ip), now)
    }

    /// Whether `ip` is over its failure budget, from this replica's memory.
    pub fn check_ip(&self, ip: IpAddr, now: DateTime<Utc>) -> ThrottleVerdict {
        self.ips.check(&address_key(ip), now)
    }

    /// Whether `ip` is over its failure budget among all replicas: memory, then the database's
    /// block (one primary-key lookup).
    pub async fn check_ip_shared(&self, store: &Store, ip: IpAddr, now: DateTime<Utc>) -> ThrottleVerdict {
        self.ips.check_shared(store, &address_key(ip), now).await
    }

    /// Records a failed attempt. `email` is `None` for failures not tied to an account (a bad
    /// link token). Returns the refusal that starts now, if one does.
    pub fn record_failure(&self, email: Option<&str>, ip: IpAddr, now: DateTime<Utc>) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        self.ips.record(address_key(ip), now);
        if let Some(email) = email {
            self.pairs.record(pair_key(email, ip), now);
        }
        let ip = address_bucket(ip);
        let mut state = self.state();
        let block = email.and_then(|email| {
            let pair = state.pairs.entry((ThrottleKey::of(email), ip)).or_insert_with(|| PairState::new(now));
            pair.consecutive += 1;
            pair.last_failure = now;
            (pair.consecutive >= FAILURES_BEFORE_BLOCK).then(|| {
                let block = pair.last_block.map_or(FIRST_BLOCK, |b| (b * 2).min(LONGEST_BLOCK));
                pair.last_block = Some(block);
                pair.blocked_until = Some(now + block);
                block
            })
        });
        if state.pairs.len() > MAX_ENTRIES || state.last_prune.is_none_or(|t| now - t >= LONGEST_BLOCK) {
            prune(&mut state, now);
        }
        block
    }

    /// A sign-in request refused because `ip` (or the pair of `email` and `ip`) is blocked: it
    /// counts in the address's own window; `true` for the first refusal of the block, so the
    /// caller writes one audit event per block period.
    pub fn refused(&self, email: Option<&str>, ip: IpAddr, now: DateTime<Utc>) -> bool {
        if !self.enabled {
            return false;
        }
        let first_of_ip = self.ips.refused(address_key(ip), now);
        let Some(email) = email else { return first_of_ip };
        let shared_key = pair_key(email, ip);
        let ip = address_bucket(ip);
        let mut state = self.state();
        match state.pairs.get_mut(&(ThrottleKey::of(email), ip)) {
            Some(pair) if pair.blocked_until.is_some_and(|u| u > now) => {
                let first = pair.reported_block != pair.blocked_until;
                pair.reported_block = pair.blocked_until;
                first
            }
            // A refusal is not a failure of the pair: nothing more is counted for it.
            _ => self.pairs.first_report(&shared_key, now) || first_of_ip,
        }
    }

    /// Whether `ip` may try another one-time link.
    pub fn check_link(&self, ip: IpAddr, now: DateTime<Utc>) -> ThrottleVerdict {
        self.links.check(&address_key(ip), now)
    }

    /// Whether `ip` may try another one-time link, among all replicas.
    pub async fn check_link_shared(&self, store: &Store, ip: IpAddr, now: DateTime<Utc>) -> ThrottleVerdict {
        self.links.check_shared(store, &address_key(ip), now).await
    }

    /// Records an unknown, used or expired one-time-link token from `ip` (its own window, not a
    /// sign-in failure).
    pub fn record_link_failure(&self, ip: IpAddr, now: DateTime<Utc>) {
        self.links.record(address_key(ip), now);
    }

    /// A link request refused while `ip` is blocked for links; `true` for the block's first.
    pub fn link_refused(&self, ip: IpAddr, now: DateTime<Utc>) -> bool {
        self.links.refused(address_key(ip), now)
    }

    /// What a success does in memory: the pair's count, pending failures and learnt block go.
    pub fn forget_pair(&self, email: &str, ip: IpAddr) {
        self.state().pairs.remove(&(ThrottleKey::of(email), address_bucket(ip)));
        self.pairs.forget(&pair_key(email, ip));
    }

    /// Records a success: the pair's count starts again, here and in the database.
    pub async fn record_success(&self, store: &Store, email: &str, ip: IpAddr) {
        if self.enabled {
            self.forget_pair(email, ip);
            if let Err(e) = store.clear_throttle_count(PAIR_RULE.scope, &pair_key(email, ip)).await {
                tracing::warn!(error = %e, "cannot clear a shared sign-in count");
            }
        }
    }
}

/// Drops pairs that no longer matter; if still too many, drops the least recent.
fn prune(state: &mut State, now: DateTime<Utc>) {
    state.last_prune = Some(now);
    state.pairs.retain(|_, p| {
        p.in_flight > 0 || p.blocked_until.is_some_and(|u| u > now) || p.last_failure > now - LONGEST_BLOCK
    });
    if state.pairs.len() > MAX_ENTRIES {
        let mut by_age: Vec<_> = state.pairs.iter().map(|(k, p)| (p.last_failure, *k)).collect();
        by_age.sort();
        for (_, key) in by_age.into_iter().take(state.pairs.len() - MAX_ENTRIES / 2) {
            state.pairs.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FailureWindow;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
    }
    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn five_failures_block_the_pair_for_30_seconds_then_doubling_up_to_15_minutes() {
        let th = Throttle::new(true);
        let mut now = t0();
        for _ in 0..4 {
            assert_eq!(th.record_failure(Some("jane@x.org"), A, now), None);
        }
        assert_eq!(th.check_pair("jane@x.org", A, now), ThrottleVerdict::Allowed);
        assert_eq!(th.record_failure(Some("jane@x.org"), A, now), Some(Duration::seconds(30)));
        assert_eq!(
            th.check_pair("jane@x.org", A, now),
            ThrottleVerdict::Blocked { retry_after: Duration::seconds(30) }
        );
        // Another IP, or another email from the same IP, is not affected.
        assert_eq!(th.check_pair("jane@x.org", B, now), ThrottleVerdict::Allowed);
        assert_eq!(th.check_pair("piet@x.org", A, now), ThrottleVerdict::Allowed);
        let mut expected = 30;
        for _ in 0..8 {
            now += Duration::seconds(expected);
            assert_eq!(th.check_pair("jane@x.org", A, now), ThrottleVerdict::Allowed);
            expected = (expected * 2).min(900);
            assert_eq!(th.record_failure(Some("jane@x.org"), A, now), Some(Duration::seconds(expected)));
        }
        assert_eq!(expected, 900);
        // A success resets the count.
        now += Duration::seconds(900);
        th.forget_pair("jane@x.org", A);
        assert_eq!(th.record_failure(Some("jane@x.org"), A, now), None);
    }

    #[test]
    fn thirty_failures_in_ten_minutes_block_the_ip() {
        let th = Throttle::new(true);
        let now = t0();
        for i in 0..29 {
            th.record_failure(Some(&format!("user{i}@x.org")), A, now + Duration::seconds(i));
        }
        assert_eq!(th.check_ip(A, now + Duration::seconds(30)), ThrottleVerdict::Allowed);
        th.record_failure(None, A, now + Duration::seconds(29));
        assert_eq!(
            th.check_ip(A, now + Duration::seconds(30)),
            ThrottleVerdict::Blocked { retry_after: Duration::seconds(570) }
        );
        assert_eq!(th.check_ip(B, now), ThrottleVerdict::Allowed);
        assert_eq!(th.check_ip(A, now + Duration::minutes(10)), ThrottleVerdict::Allowed);
    }

    #[test]
    fn switched_off_it_allows_everything() {
        let th = Throttle::new(false);
        for _ in 0..100 {
            assert_eq!(th.record_failure(Some("jane@x.org"), A, t0()), None);
        }
        assert_eq!(th.check_pair("jane@x.org", A, t0()), ThrottleVerdict::Allowed);
        assert_eq!(th.check_ip(A, t0()), ThrottleVerdict::Allowed);
    }

    #[test]
    fn messages_round_minutes_up() {
        assert_eq!(ThrottleVerdict::message(Duration::seconds(30)), "Too many attempts: try again in 1 minute.");
        assert_eq!(ThrottleVerdict::message(Duration::seconds(61)), "Too many attempts: try again in 2 minutes.");
        assert_eq!(ThrottleVerdict::message(Duration::minutes(15)), "Too many attempts: try again in 15 minutes.");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_eq!(address_bucket(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(address_bucket(a), address_bucket(other));
        assert_eq!(address_bucket("::ffff:192.0.2.1".parse().unwrap()), A);
        assert_eq!(address_bucket(A), A);
        // Thirty failures spread over one /64 block it, and not the next /64.
        let th = Throttle::new(true);
        for i in 0..30u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i));
            th.record_failure(Some(&format!("u{i}@x.org")), ip, t0());
        }
        assert!(matches!(th.check_ip(b, t0()), ThrottleVerdict::Blocked { .. }));
        assert_eq!(th.check_ip(other, t0()), ThrottleVerdict::Allowed);
        // The pair too: five failures from two addresses of one /64.
        for ip in [a, b, a, b, a] {
            th.record_failure(Some("jane@x.org"), ip, t0());
        }
        assert!(matches!(th.check_pair("jane@x.org", b, t0()), ThrottleVerdict::Blocked { .. }));
    }

    #[test]
    fn refused_requests_count_in_the_window_and_a_block_is_reported_once() {
        let w = FailureWindow::new(true, 3, Duration::minutes(1));
        let now = t0();
        for _ in 0..3 {
            w.record(1u8, now);
        }
        assert!(w.refused(1, now + Duration::seconds(1)), "the block's first refusal");
        for s in 2..59 {
            assert!(!w.refused(1, now + Duration::seconds(s)));
        }
        // Refusals kept the window full: still blocked after the first failures' minute.
        assert!(matches!(w.check(&1, now + Duration::seconds(70)), ThrottleVerdict::Blocked { .. }));
        // Once it ends, a new block is reported again.
        let later = now + Duration::minutes(3);
        assert_eq!(w.check(&1, later), ThrottleVerdict::Allowed);
        for _ in 0..3 {
            w.record(1, later);
        }
        assert!(w.refused(1, later));
        // A refusal of an address that is not blocked reports nothing.
        assert!(!w.refused(2, later));

        let th = Throttle::new(true);
        for _ in 0..5 {
            th.record_failure(Some("jane@x.org"), A, now);
        }
        assert!(th.refused(Some("jane@x.org"), A, now));
        assert!(!th.refused(Some("jane@x.org"), A, now + Duration::seconds(1)));
    }

    #[test]
    fn bad_links_have_their_own_window() {
        let th = Throttle::new(true);
        for _ in 0..LINK_FAILURES {
            th.record_link_failure(A, t0());
        }
        assert!(matches!(th.check_link(A, t0()), ThrottleVerdict::Blocked { .. }));
        assert_eq!(th.check_ip(A, t0()), ThrottleVerdict::Allowed, "sign-in is not affected");
    }

    #[test]
    fn a_key_is_32_bytes_however_long_the_value() {
        assert_eq!(std::mem::size_of::<ThrottleKey>(), 32);
        assert_eq!(ThrottleKey::of(&"x".repeat(100_000)), ThrottleKey::of(&"x".repeat(100_000)));
        assert_ne!(ThrottleKey::of("a@x.org"), ThrottleKey::of("b@x.org"));
    }

    #[test]
    fn pairs_are_forgotten_once_they_no_longer_matter() {
        let th = Throttle::new(true);
        let now = t0();
        for i in 0..500 {
            th.record_failure(Some(&format!("u{i}@x.org")), A, now);
        }
        assert_eq!(th.state().pairs.len(), 500);
        th.record_failure(Some("late@x.org"), B, now + LONGEST_BLOCK + Duration::seconds(1));
        assert_eq!(th.state().pairs.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_random_emails() {
        let th = Throttle::new(true);
        let now = t0();
        for i in 0..(MAX_ENTRIES + 10) {
            th.record_failure(Some(&format!("u{i}@x.org")), A, now);
        }
        assert!(th.state().pairs.len() <= MAX_ENTRIES);
    }
}
