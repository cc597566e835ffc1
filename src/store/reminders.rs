//! Expiry reminders: the secrets to consider, what was sent, and queueing a notice with its
//! emails in one transaction (exactly once per secret and notice, whatever runs concurrently).

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::webhooks::queue_secret_event;
use super::{BeginWrite, Store, StoreError, on_pool};
use crate::domain::ClientId;
use crate::domain::NewEmail;
use crate::domain::reminder::{EXPIRED_NOTICE_UNTIL, Notice, SecretUsage};
use crate::domain::webhook::WebhookEvent;

/// A secret the reminder pass considers, with what its emails name.
#[derive(Debug, Clone)]
pub struct ReminderSecret {
    /// Usage facts for the schedule.
    pub usage: SecretUsage,
    /// The secret's name.
    pub name: String,
    /// Its hint.
    pub hint: crate::domain::Hint,
    /// Its application's name.
    pub application: String,
    /// Its application's client ID.
    pub client_id: ClientId,
}

/// Who receives a notice: the application's enabled, enrolled credential managers, or, when it
/// has none, the WMDA admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    /// (email, display name).
    pub people: Vec<(String, String)>,
    /// The application has no eligible credential manager; these are the WMDA admins.
    pub to_admins: bool,
}

/// A notice that was recorded, for the admin page.
#[derive(Debug, Clone)]
pub struct SentReminder {
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// The application.
    pub application: String,
    /// The secret's name.
    pub secret: String,
    /// The notice.
    pub notice: Notice,
    /// How many emails.
    pub recipients: i32,
    /// Sent to the WMDA admins.
    pub to_admins: bool,
    /// The secret's expiration date (UTC): with `queued_at`, the days left the notice said.
    pub expires_on: chrono::NaiveDate,
}

/// An outbox row for the admin page (bodies never leave the store here).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Kind.
    pub kind: String,
    /// Recipient.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i32,
    /// Next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// Delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Failed for good, or cancelled.
    pub failed_at: Option<DateTime<Utc>>,
    /// The latest error.
    pub last_error: Option<String>,
}

type CandidateRow = (
    Uuid,
    Uuid,
    String,
    String,
    i32,
    DateTime<Utc>,
    NaiveDate,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
    Uuid,
);

/// The recipients of an application's reminders as they are now, through an executor (a pool or
/// an open transaction): its credential managers who are enabled and enrolled, or, when it has
/// none, the enabled and enrolled WMDA admins (DESIGN.md section 3, Reminders). A macro so the
/// same text compiles against both backends' executors.
macro_rules! eligible_recipients {
    ($executor:expr, $application_id:expr) => {
        async {
            let managers: Vec<(String, String)> =
                sqlx::query_as(super::users::ELIGIBLE_MANAGERS).bind($application_id).fetch_all($executor).await?;
            if !managers.is_empty() {
                return Ok::<_, sqlx::Error>(Recipients { people: managers, to_admins: false });
            }
            let admins: Vec<(String, String)> = sqlx::query_as(
                "select email, display_name from portal_user
                 where is_wmda_admin and disabled_at is null and totp_secret_enc is not null order by email",
            )
            .fetch_all($executor)
            .await?;
            Ok(Recipients { people: admins, to_admins: true })
        }
        .await
    };
}
pub(super) use eligible_recipients;

impl Store {
    /// The undeleted secrets of every application that has one within the reminder horizon
    /// (expiring in the next 42 days or in the last 7), and the notices already sent for them.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reminder_candidates(
        &self,
        today: NaiveDate,
    ) -> Result<(Vec<ReminderSecret>, HashSet<(Uuid, Notice)>), StoreError> {
        let from = today - Duration::days(EXPIRED_NOTICE_UNTIL);
        let to = today + Duration::days(42);
        let (rows, sent): (Vec<CandidateRow>, Vec<(Uuid, String)>) = on_pool!(self, |pool| {
            async {
            let rows = sqlx::query_as(
                "select s.id, s.application_id, s.name, s.hint, s.value_format, s.created_at, s.expires_on, s.first_used_at, s.last_used_at,
                        a.name, a.client_id
                 from client_secret s join application a on a.id = s.application_id
                 where s.deleted_at is null and s.application_id in (
                     select application_id from client_secret where deleted_at is null and expires_on >= $1 and expires_on <= $2)",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            let sent = sqlx::query_as(
                "select r.secret_id, r.notice from reminder_sent r join client_secret s on s.id = r.secret_id
                 where s.deleted_at is null and s.expires_on >= $1 and s.expires_on <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            Ok::<_, sqlx::Error>((rows, sent))
        }
        .await
        })?;
        let secrets = rows
            .into_iter()
            .map(
                |(
                    id,
                    application_id,
                    name,
                    hint,
                    value_format,
                    created_at,
                    expires_on,
                    first_used_at,
                    last_used_at,
                    application,
                    client_id,
                )| {
                    ReminderSecret {
                        usage: SecretUsage { id, application_id, created_at, expires_on, first_used_at, last_used_at },
                        name,
                        hint: crate::domain::Hint::stored(hint, value_format),
                        application,
                        client_id: ClientId::from_uuid(client_id),
                    }
                },
            )
            .collect();
        let sent = sent.into_iter().filter_map(|(id, key)| Notice::parse(&key).map(|n| (id, n))).collect();
        Ok((secrets, sent))
    }

    /// Records `notice` for a secret and queues its emails, in one transaction: the recipients are
    /// read inside it (as they are when queued), `render` makes one email per recipient, and the
    /// record's primary key makes a second attempt (another process, a rerun) queue nothing.
    /// Returns the number of emails queued and their recipients, or `None` when the notice was
    /// already recorded (or the secret is deleted).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn queue_reminder(
        &self,
        secret_id: Uuid,
        application_id: Uuid,
        notice: Notice,
        now: DateTime<Utc>,
        render: &(dyn Fn(&Recipients) -> Vec<NewEmail> + Sync),
    ) -> Result<Option<(usize, Recipients)>, StoreError> {
        on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let live: Option<Uuid> =
                sqlx::query_scalar("select id from client_secret where id = $1 and deleted_at is null")
                    .bind(secret_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if live.is_none() {
                return Ok(None);
            }
            let recipients = eligible_recipients!(&mut *tx, application_id)?;
            let emails = render(&recipients);
            let recorded = sqlx::query(
                "insert into reminder_sent (secret_id, notice, queued_at, recipients, to_admins) values ($1, $2, $3, $4, $5)
                 on conflict (secret_id, notice) do nothing",
            )
            .bind(secret_id)
            .bind(notice.key())
            .bind(now)
            .bind(i32::try_from(emails.len()).unwrap_or(i32::MAX))
            .bind(recipients.to_admins)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if recorded != 1 {
                return Ok(None);
            }
            // Its audit event (issue 18): the managers' activity page shows who was told, by name.
            let organisation_id: Uuid = sqlx::query_scalar("select organisation_id from application where id = $1")
                .bind(application_id)
                .fetch_one(&mut *tx)
                .await?;
            let details = if recipients.to_admins {
                serde_json::json!({ "notice": notice.label(), "recipients": "WMDA admins" })
            } else {
                let names: Vec<&str> = recipients
                    .people
                    .iter()
                    .map(|(_, name)| if name.trim().is_empty() { "a credential manager" } else { name.as_str() })
                    .collect();
                serde_json::json!({ "notice": notice.label(), "recipients": names })
            };
            let audit = super::Actor::system()
                .event(super::AuditAction::ReminderQueued, now)
                .with_details(details)
                .on(organisation_id, "client_secret", secret_id);
            super::audit::insert_audit_event!(&mut *tx, &audit)?;
            // The notice's webhook event, exactly once per notice like its emails (issue 17).
            let event = if notice == Notice::RotationComplete { WebhookEvent::Replaced } else { WebhookEvent::Expiring };
            queue_secret_event!(tx, secret_id, event, now)?;
            for email in &emails {
                sqlx::query(INSERT_EMAIL_WITH_SECRET)
                    .bind(Uuid::new_v4())
                    .bind(email.kind.as_str())
                    .bind(email.recipient.as_str())
                    .bind(email.subject.as_str())
                    .bind(email.text_body.as_str())
                    .bind(email.html_body.as_str())
                    .bind(now)
                    .bind(secret_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(Some((emails.len(), recipients)))
        }
        .await
        })
    }

    /// Who a reminder of the application `application_id` would go to now (for the dry run;
    /// [`Store::queue_reminder`] reads the same inside its transaction).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reminder_recipients(&self, application_id: Uuid) -> Result<Recipients, StoreError> {
        Ok(on_pool!(self, |pool| eligible_recipients!(pool, application_id))?)
    }

    /// The latest `limit` recorded notices, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_reminders(&self, limit: i64) -> Result<Vec<SentReminder>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            queued_at: DateTime<Utc>,
            application: String,
            secret: String,
            notice: String,
            recipients: i32,
            to_admins: bool,
            expires_on: chrono::NaiveDate,
        }
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(
                "select r.queued_at, a.name as application, s.name as secret, r.notice, r.recipients, r.to_admins, s.expires_on
                 from reminder_sent r join client_secret s on s.id = r.secret_id join application a on a.id = s.application_id
                 order by r.queued_at desc limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Notice::parse(&r.notice).map(|notice| SentReminder {
                    queued_at: r.queued_at,
                    application: r.application,
                    secret: r.secret,
                    notice,
                    recipients: r.recipients,
                    to_admins: r.to_admins,
                    expires_on: r.expires_on,
                })
            })
            .collect())
    }

    /// The latest `limit` outbox rows, newest first, without their bodies.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_outbox(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "select kind, recipient, subject, created_at, attempts, next_attempt_at, sent_at, failed_at, last_error
             from outbox order by created_at desc, id limit $1"
        )
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }
}

/// An outbox row tied to a secret (so deleting the secret cancels it).
const INSERT_EMAIL_WITH_SECRET: &str =
    "insert into outbox (id, kind, recipient, subject, text_body, html_body, created_at, next_attempt_at, secret_id)
     values ($1, $2, $3, $4, $5, $6, $7, $7, $8)";

/// Cancels the queued reminder emails of a deleted secret (inside the deletion's transaction).
pub(crate) const CANCEL_SECRET_EMAILS: &str =
    "update outbox set failed_at = $2, last_error = 'cancelled: the secret was deleted'
     where secret_id = $1 and sent_at is null and failed_at is null";
