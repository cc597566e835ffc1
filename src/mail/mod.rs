//! Email: the transports (SMTP through lettre, `.eml` files for development, memory for tests)
//! and the email views. Nothing here reads or writes the database.
//!
//! Nothing sends mail directly: every email is an outbox row written in the transaction of what
//! caused it, and the outbox job (`jobs::outbox`) delivers queued rows through a [`Transport`]
//! within seconds (DESIGN.md section 3, Emails).

pub mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::domain::NewEmail;

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

    /// Delivers one email; `id` (its outbox row) and `now` (UTC) name the file of
    /// [`Transport::Files`], e.g. `20261204T101500-<id>.eml`.
    ///
    /// # Errors
    /// [`SendError`].
    pub async fn send(&self, from: &Mailbox, email: &NewEmail, id: Uuid, now: DateTime<Utc>) -> Result<(), SendError> {
        let message = build_message(from, email)?;
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() { SendError::Permanent(e.to_string()) } else { SendError::Transient(e.to_string()) }
            }),
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| SendError::Transient(e.to_string()))?;
                let path = dir.join(format!("{}-{}.eml", now.format("%Y%m%dT%H%M%S"), id.simple()));
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
/// RFC 2047; control characters (a CR/LF header injection) are replaced by spaces first. The
/// parts are 8bit (issue 14, point 6): a link in an `.eml` file or a mail client's source view
/// copies whole, where quoted-printable's soft line breaks would cut it; a body with a line
/// over 998 octets (RFC 5322 2.1.1), which no view writes, falls back to lettre's choice.
fn build_message(from: &Mailbox, email: &NewEmail) -> Result<Message, SendError> {
    let to: Mailbox =
        email.recipient.parse().map_err(|_| SendError::Permanent("the recipient is not an email address".into()))?;
    let subject: String = email.subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(eight_bit(ContentType::TEXT_PLAIN, &email.text_body))
                .singlepart(eight_bit(ContentType::TEXT_HTML, &email.html_body)),
        )
        .map_err(|e| SendError::Permanent(e.to_string()))
}

/// One part of `content_type`, 8bit when its lines allow (see [`build_message`]). lettre's own
/// 8bit check keeps lines under 76 characters, which would push every paragraph with a link to
/// quoted-printable; RFC 5322 2.1.1 allows 998 octets, so the portal checks that limit itself
/// (CRLF line ends, no NUL, no bare CR) and hands lettre the body as it is.
fn eight_bit(content_type: ContentType, text: &str) -> SinglePart {
    let crlf = text.replace("\r\n", "\n").replace('\r', " ").replace('\n', "\r\n");
    let fits = !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= MAX_LINE_OCTETS);
    let body = if fits {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_owned())
    };
    SinglePart::builder().header(content_type).body(body)
}

/// The longest line of a message body, without its CRLF (RFC 5322 2.1.1).
const MAX_LINE_OCTETS: usize = 998;

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
    use crate::domain::EmailKind;

    #[test]
    fn subjects_cannot_inject_headers() {
        let from = parse_from("WMDA <no-reply@wmda.info>").unwrap();
        let email = NewEmail {
            kind: EmailKind::Invitation,
            recipient: "jane@example.org".into(),
            subject: "Hello\r\nBcc: evil@example.org".into(),
            text_body: "text".into(),
            html_body: "<p>html</p>".into(),
        };
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        let email = NewEmail { subject: "Geheim – sleutel ✓".into(), ..email };
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        let subject = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.contains("=?utf-8?b?") && subject.is_ascii(), "{raw}");
    }

    /// Issue 14, point 6: a link copies whole from an `.eml` file: the text and HTML parts are
    /// 7bit or 8bit (never quoted-printable, whose soft breaks cut a link), with lines of at most
    /// 998 octets (RFC 5322 2.1.1).
    #[test]
    fn parts_are_8bit_with_short_lines_so_links_copy_whole() {
        let from = parse_from("WMDA <no-reply@wmda.info>").unwrap();
        let link = format!("https://portal.wmda.info/invite/{}", "A".repeat(43));
        let email = crate::mail::views::link_email(
            crate::domain::LinkPurpose::Invitation,
            "jane@example.org",
            "Jané Müller — “DM”",
            &link,
        );
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        assert!(!raw.to_ascii_lowercase().contains("quoted-printable") && !raw.contains("base64"), "{raw}");
        assert_eq!(
            raw.matches("Content-Transfer-Encoding: 8bit").count()
                + raw.matches("Content-Transfer-Encoding: 7bit").count(),
            2,
            "{raw}"
        );
        assert!(raw.split("\r\n").all(|line| line.len() <= 998), "a line is over 998 octets");
        assert!(raw.matches(&link).count() >= 2, "the link is cut in a part: {raw}");
        // A line past 998 octets (no view writes one) is left to lettre's choice.
        let long = NewEmail { text_body: "é".repeat(600), ..email };
        let raw = String::from_utf8(build_message(&from, &long).unwrap().formatted()).unwrap();
        assert!(raw.split("\r\n").all(|line| line.len() <= 998), "a line is over 998 octets");
        assert!(!raw.contains(&"é".repeat(600)), "sent 8bit past the line limit");
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let from = parse_from("no-reply@wmda.info").unwrap();
        let email = NewEmail {
            kind: EmailKind::Invitation,
            recipient: "not an address".into(),
            subject: "s".into(),
            text_body: "t".into(),
            html_body: "h".into(),
        };
        assert!(matches!(build_message(&from, &email), Err(SendError::Permanent(_))));
    }
}
