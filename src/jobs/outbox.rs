//! The outbox job: claims due outbox rows, delivers each through the mail transport, and marks
//! it sent, to retry, or failed. Connection errors and 4xx replies are retried with capped
//! exponential backoff, without end; a permanent 5xx rejection marks the row failed (DESIGN.md
//! section 3, Emails). Two senders (replicas) never claim the same row: a claim holds a lease.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use lettre::message::Mailbox;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::Clock;
use crate::mail::{SendError, Transport};
use crate::store::{Store, StoreError};

/// Delay before retry number `attempts` (1-based): 5 s, doubling, at most 15 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    (Duration::seconds(5) * 2i32.saturating_pow(exponent)).min(Duration::minutes(15))
}

/// How long a claimed row is held before another sender may take it over.
pub const LEASE: Duration = Duration::minutes(2);
/// Rows claimed per pass.
const BATCH: i64 = 20;
/// How often the sender looks for due rows when nobody wakes it.
const POLL: StdDuration = StdDuration::from_secs(1);

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered.
    pub sent: usize,
    /// Failed for now; due again later.
    pub retrying: usize,
    /// Failed for good.
    pub failed: usize,
}

/// Delivers the outbox: [`Sender::run_once`] claims and delivers what is due,
/// [`Sender::run_loop`] does that every second (or when woken) until shutdown.
#[derive(Clone, Debug)]
pub struct Sender {
    store: Store,
    transport: Transport,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl Sender {
    /// A sender over `transport`, mailing from `from`.
    pub fn new(store: Store, transport: Transport, from: Mailbox, clock: Arc<dyn Clock>) -> Self {
        Self { store, transport, from, clock, wake: Arc::new(Notify::new()) }
    }

    /// Wakes the sender now (after queueing mail) instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims and delivers what is due, until nothing due is left.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails; delivery failures are recorded on the rows.
    pub async fn run_once(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let batch = self.store.claim_due_emails(now, now + LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for email in batch {
                let sent = match email.email() {
                    Some(message) => self.transport.send(&self.from, &message, email.id, self.clock.now()).await,
                    // The schema no longer checks the kind (migration 0006); only this portal writes it.
                    None => Err(SendError::Permanent(format!("unknown email kind {:?}", email.kind))),
                };
                match sent {
                    Ok(()) => {
                        self.store.mark_email_sent(email.id, self.clock.now()).await?;
                        metrics::counter!("emails_sent_total", "email" => email.kind.clone()).increment(1);
                        report.sent += 1;
                    }
                    Err(SendError::Transient(reason)) => {
                        let next = self.clock.now() + backoff(email.attempts);
                        tracing::warn!(outbox_id = %email.id, attempts = email.attempts, %reason, "email delivery failed; will retry");
                        self.store.mark_email_retry(email.id, next, &reason).await?;
                        metrics::counter!("emails_failed_total", "email" => email.kind.clone(), "failure" => "transient").increment(1);
                        report.retrying += 1;
                    }
                    Err(SendError::Permanent(reason)) => {
                        tracing::error!(outbox_id = %email.id, %reason, "email refused for good; not retried");
                        self.store.mark_email_failed(email.id, self.clock.now(), &reason).await?;
                        metrics::counter!("emails_failed_total", "email" => email.kind.clone(), "failure" => "permanent").increment(1);
                        report.failed += 1;
                    }
                }
            }
        }
    }

    /// Delivers until `stop` is cancelled: a pass every second, or at once when woken. Database
    /// errors are logged and the loop goes on.
    pub async fn run_loop(self, stop: CancellationToken) {
        let what = "the mail sender cannot read the outbox";
        super::poll_until_stopped(what, &self.wake, POLL, stop, || self.run_once()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5_seconds_to_15_minutes() {
        let secs: Vec<i64> = (1..=10).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(backoff(1000).num_seconds(), 900);
        assert_eq!(backoff(0).num_seconds(), 5);
    }
}
