//! The token endpoint's throttle (issue 12, point 3): failures per (parsed client ID, address
//! bucket), shared by replicas through the database, behind a per-address pre-limit kept in
//! memory so a flood of random client IDs is not a flood of writes.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::domain::ClientId;
use crate::domain::failure_window::{FailureWindow, InFlight, ThrottleVerdict, address_bucket};
use crate::domain::throttle::{Counting, ThrottleKey, ThrottleRule};
use crate::store::SharedWindow;

/// Failures per (client ID, address) within a minute that answer 429 (`slow_down`) from then on.
pub const TOKEN_RULE: ThrottleRule =
    ThrottleRule { scope: "token", limit: 10, period: Duration::minutes(1), counting: Counting::Window };

/// Failures per address (any client IDs) within a minute past which this replica refuses the
/// address without reading or writing the database: the pre-limit. Ten client IDs failing their
/// own limit each stay under it.
pub const ADDRESS_FAILURES_PER_MINUTE: usize = 100;

/// A token request in progress ([`TokenThrottle::begin`]).
#[derive(Debug)]
#[must_use = "the attempt is over when this is dropped"]
pub struct TokenAttempt<'a> {
    _address: InFlight<'a, IpAddr>,
    _client: InFlight<'a, ThrottleKey>,
}

/// The token endpoint's throttle; share one per process.
#[derive(Debug)]
pub struct TokenThrottle {
    /// Per (client ID, address), shared by replicas.
    pub clients: std::sync::Arc<SharedWindow>,
    addresses: FailureWindow<IpAddr>,
}

impl TokenThrottle {
    /// A throttle; `enabled = false` (`PORTAL_RATE_LIMITS=off`) allows everything.
    pub fn new(enabled: bool) -> Self {
        Self {
            clients: std::sync::Arc::new(SharedWindow::new(enabled, TOKEN_RULE)),
            addresses: FailureWindow::new(enabled, ADDRESS_FAILURES_PER_MINUTE, Duration::minutes(1)),
        }
    }

    /// The key of a client ID as sent and the address it came from: every spelling
    /// [`ClientId::parse`] accepts is one client (a client ID it refuses is keyed as sent), and
    /// an IPv6 address counts per /64, so refusing one address never refuses the same client
    /// from another.
    pub fn key(client_id: &str, ip: IpAddr) -> ThrottleKey {
        let client = ClientId::parse(client_id).map_or_else(|_| client_id.to_owned(), |id| id.to_string());
        ThrottleKey::of_parts(&[&client, &address_bucket(ip).to_string()])
    }

    /// Begins a token request when it may go on to the database, from memory alone: the
    /// address's pre-limit, then this replica's count of the key or a block it has learnt. Until
    /// the returned attempt is dropped it counts as a failure in both, so a burst of simultaneous
    /// requests meets the limits as sequential ones do.
    ///
    /// # Errors
    /// The verdict when refused.
    pub fn begin(&self, key: ThrottleKey, ip: IpAddr, now: DateTime<Utc>) -> Result<TokenAttempt<'_>, ThrottleVerdict> {
        let address = self.addresses.begin(address_bucket(ip), now)?;
        let client = self.clients.begin(key, now)?;
        Ok(TokenAttempt { _address: address, _client: client })
    }

    /// A failed client authentication.
    pub fn failed(&self, key: ThrottleKey, ip: IpAddr, now: DateTime<Utc>) {
        self.addresses.record(address_bucket(ip), now);
        self.clients.record(key, now);
    }

    /// A request refused with 429: it counts in the address's window; when the address itself
    /// is over its pre-limit nothing is written, otherwise it counts for the key too.
    pub fn refused(&self, key: ThrottleKey, ip: IpAddr, now: DateTime<Utc>) {
        let bucket = address_bucket(ip);
        let address_blocked = self.addresses.check(&bucket, now) != ThrottleVerdict::Allowed;
        self.addresses.refused(bucket, now);
        if !address_blocked {
            self.clients.refused(key, now);
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
    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn attempts_in_progress_count_so_a_burst_meets_the_limit() {
        let th = TokenThrottle::new(true);
        let key = TokenThrottle::key("0f8fad5b-d9cb-469f-a165-70867728950e", A);
        let burst: Vec<_> = (0..TOKEN_RULE.limit).map(|_| th.begin(key, A, t0()).expect("under the limit")).collect();
        assert!(th.begin(key, A, t0()).is_err(), "the eleventh at the same moment is refused");
        drop(burst);
        assert!(th.begin(key, A, t0()).is_ok(), "attempts that ended without a failure free their place");
    }

    #[test]
    fn spellings_of_a_client_id_and_addresses_of_a_64_are_one_key() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(TokenThrottle::key(id, a), TokenThrottle::key(&id.to_uppercase(), b));
        assert_eq!(TokenThrottle::key(id, a), TokenThrottle::key(&id.replace('-', ""), a));
        assert_ne!(TokenThrottle::key(id, a), TokenThrottle::key(id, A));
        assert_ne!(TokenThrottle::key("not-a-uuid", A), TokenThrottle::key(id, A));
    }

    #[test]
    fn random_client_ids_from_one_address_meet_the_pre_limit_and_stop_being_written() {
        let th = TokenThrottle::new(true);
        for i in 0..ADDRESS_FAILURES_PER_MINUTE {
            let key = TokenThrottle::key(&format!("random-{i}"), A);
            drop(th.begin(key, A, t0()).expect("allowed"));
            th.failed(key, A, t0());
        }
        let next = TokenThrottle::key("random-next", A);
        assert!(th.begin(next, A, t0()).is_err());
        let pending = th.clients.sizes().0;
        for _ in 0..1_000 {
            th.refused(next, A, t0());
        }
        assert_eq!(th.clients.sizes().0, pending, "refusals past the pre-limit write nothing");
        let other: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(th.begin(TokenThrottle::key("random-next", other), other, t0()).is_ok());
    }
}
