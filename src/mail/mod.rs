//! Email: the outbox sender and its transports (SMTP through lettre, `.eml` files for
//! development, memory for tests), and the email views.
//!
//! Nothing sends mail directly: every email is an outbox row written in the transaction of what
//! caused it, and [`Sender`] delivers queued rows within seconds. Connection errors and 4xx
//! replies are retried with capped exponential backoff, without end; a permanent 5xx rejection
//! marks the row failed (DESIGN.md section 3, Emails).

pub mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::Clock;
use crate::store::{QueuedEmail, Store, StoreError};

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server (`PORTAL_SMTP_URL`: `smtps://` for TLS, `smtp://…?tls=required` for
    /// STARTTLS, plain `smtp://`, `user:password@` for credentials).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a folder (the embedded default: `./data/mail`).
    Files(PathBuf),
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<SentEmail>>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
            Transport::Memory(_) => f.write_str("Transport::Memory"),
        }
    }
}

/// An email as delivered to [`Transport::Memory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: connection errors, timeouts, 4xx replies.
    #[error("temporary: {0}")]
    Transient(String),
    /// Not worth retrying: a 5xx rejection, an address that is not one.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl Transport {
    /// An SMTP transport from a `smtp://` or `smtps://` URL.
    ///
    /// # Errors
    /// When the URL is not one lettre understands; the message never contains the URL.
    pub fn smtp(url: &SecretString) -> Result<Self, String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map(|b| Transport::Smtp(b.timeout(Some(StdDuration::from_secs(10))).build()))
            .map_err(|e| {
                format!(
                    "PORTAL_SMTP_URL is not a usable smtp:// or smtps:// URL ({})",
                    e.to_string().replace(url.expose_secret(), "…")
                )
            })
    }

    /// Delivers one email.
    ///
    /// # Errors
    /// [`SendError`].
    pub async fn send(&self, from: &Mailbox, email: &QueuedEmail) -> Result<(), SendError> {
        let message = build_message(from, email)?;
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() { SendError::Permanent(e.to_string()) } else { SendError::Transient(e.to_string()) }
            }),
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| SendError::Transient(e.to_string()))?;
                let path = dir.join(format!("{}-{}.eml", Utc::now().format("%Y%m%dT%H%M%S"), email.id.simple()));
                tokio::fs::write(&path, message.formatted()).await.map_err(|e| SendError::Transient(e.to_string()))
            }
            Transport::Memory(sent) => {
                sent.lock().unwrap_or_else(PoisonError::into_inner).push(SentEmail {
                    to: email.recipient.clone(),
                    subject: email.subject.clone(),
                    text: email.text_body.clone(),
                    html: email.html_body.clone(),
                });
                Ok(())
            }
        }
    }
}

/// A MIME message with a plain-text and an HTML part. lettre encodes non-ASCII subjects per
/// RFC 2047; control characters (a CR/LF header injection) are replaced by spaces first.
fn build_message(from: &Mailbox, email: &QueuedEmail) -> Result<Message, SendError> {
    let to: Mailbox =
        email.recipient.parse().map_err(|_| SendError::Permanent("the recipient is not an email address".into()))?;
    let subject: String = email.subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(email.text_body.clone(), email.html_body.clone()))
        .map_err(|e| SendError::Permanent(e.to_string()))
}

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

/// Delivers the outbox.
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
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let batch = self.store.claim_due_emails(now, now + LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for email in batch {
                match self.transport.send(&self.from, &email).await {
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
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "the mail sender cannot read the outbox");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(POLL) => {},
            }
        }
    }
}

/// Parses `PORTAL_MAIL_FROM` (`Name <address>` or `address`).
///
/// # Errors
/// When it is not a mailbox.
pub fn parse_from(text: &str) -> Result<Mailbox, String> {
    text.parse().map_err(|_| format!("PORTAL_MAIL_FROM {text:?} is not an address like \"WMDA <no-reply@wmda.info>\""))
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

    #[test]
    fn subjects_cannot_inject_headers() {
        let from = parse_from("WMDA <no-reply@wmda.info>").unwrap();
        let email = QueuedEmail {
            id: uuid::Uuid::new_v4(),
            kind: "invitation".into(),
            recipient: "jane@example.org".into(),
            subject: "Hello\r\nBcc: evil@example.org".into(),
            text_body: "text".into(),
            html_body: "<p>html</p>".into(),
            attempts: 1,
            created_at: Utc::now(),
        };
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        let email = QueuedEmail { subject: "Geheim – sleutel ✓".into(), ..email };
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        let subject = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.contains("=?utf-8?b?") && subject.is_ascii(), "{raw}");
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let from = parse_from("no-reply@wmda.info").unwrap();
        let email = QueuedEmail {
            id: uuid::Uuid::new_v4(),
            kind: "invitation".into(),
            recipient: "not an address".into(),
            subject: "s".into(),
            text_body: "t".into(),
            html_body: "h".into(),
            attempts: 1,
            created_at: Utc::now(),
        };
        assert!(matches!(build_message(&from, &email), Err(SendError::Permanent(_))));
    }
}
