//! The mail outbox: every email is a row written in the transaction of what caused it; the
//! sender claims due rows, delivers them, and marks them sent, to retry, or failed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Backend, BeginWrite, Store, StoreError, on_pool};
use crate::domain::NewEmail;

/// A claimed row, ready to deliver.
#[derive(Clone, sqlx::FromRow)]
pub struct QueuedEmail {
    /// Row id.
    pub id: Uuid,
    /// The kind's database value (`invitation`, `password_reset`, `mfa_reenrolment`, `reminder`),
    /// the `email` label of the mail metrics.
    pub kind: String,
    /// Recipient.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body.
    pub html_body: String,
    /// Delivery attempts so far, this one included.
    pub attempts: i32,
    /// When it was queued; a batch is delivered in this order.
    pub created_at: DateTime<Utc>,
}

impl QueuedEmail {
    /// The email to deliver; `None` when the row's kind is none this portal writes.
    pub fn email(&self) -> Option<NewEmail> {
        Some(NewEmail {
            kind: crate::domain::EmailKind::parse(&self.kind)?,
            recipient: self.recipient.clone(),
            subject: self.subject.clone(),
            text_body: self.text_body.clone(),
            html_body: self.html_body.clone(),
        })
    }
}

impl std::fmt::Debug for QueuedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedEmail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Counts of outbox rows by state, for `/metrics` and the admin page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Not yet sent and never tried.
    pub queued: i64,
    /// Tried and failing, to be retried.
    pub retrying: i64,
    /// Refused for good.
    pub failed: i64,
}

/// The insert statement of an outbox row.
pub(crate) const INSERT_EMAIL: &str =
    "insert into outbox (id, kind, recipient, subject, text_body, html_body, created_at, next_attempt_at)
     values ($1, $2, $3, $4, $5, $6, $7, $7)";

/// Inserts a [`NewEmail`] through an executor (a pool or an open transaction).
macro_rules! insert_email {
    ($executor:expr, $email:expr, $now:expr) => {{
        let email: &$crate::domain::NewEmail = $email;
        sqlx::query($crate::store::outbox::INSERT_EMAIL)
            .bind(uuid::Uuid::new_v4())
            .bind(email.kind.as_str())
            .bind(email.recipient.as_str())
            .bind(email.subject.as_str())
            .bind(email.text_body.as_str())
            .bind(email.html_body.as_str())
            .bind($now)
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    }};
}
pub(crate) use insert_email;

const CLAIM_COLUMNS: &str = "id, kind, recipient, subject, text_body, html_body, attempts, created_at";

impl Store {
    /// Queues one email on its own.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn queue_email(&self, email: &NewEmail, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| insert_email!(pool, email, now))?;
        Ok(())
    }

    /// Claims up to `limit` due rows until `lease_until`: rows not sent, not failed, due, and not
    /// held by another sender (or held by one that has not finished before its lease ran out).
    /// Postgres skips rows another sender has locked; SQLite takes the write lock first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn claim_due_emails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<QueuedEmail>, StoreError> {
        let due = "sent_at is null and failed_at is null and next_attempt_at <= $1 and (claimed_until is null or claimed_until < $1)";
        let mut rows: Vec<QueuedEmail> = match self.backend() {
            Backend::Postgres(pool) => {
                let sql = format!(
                    "update outbox set claimed_until = $2, attempts = attempts + 1
                     where id in (select id from outbox where {due} order by next_attempt_at limit $3 for update skip locked)
                     returning {CLAIM_COLUMNS}"
                );
                sqlx::query_as(&sql).bind(now).bind(lease_until).bind(limit).fetch_all(pool).await?
            }
            Backend::Sqlite(pool) => {
                let sql = format!(
                    "update outbox set claimed_until = $2, attempts = attempts + 1
                     where id in (select id from outbox where {due} order by next_attempt_at limit $3)
                     returning {CLAIM_COLUMNS}"
                );
                let mut tx = pool.begin_write().await?;
                let rows = sqlx::query_as(&sql).bind(now).bind(lease_until).bind(limit).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        // RETURNING gives no order; deliver in the order the mail was queued.
        rows.sort_by_key(|r| (r.created_at, r.id));
        Ok(rows)
    }

    /// Marks a row delivered and empties its bodies (link emails carry one-time tokens).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_email_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
            "update outbox set sent_at = $2, failed_at = null, claimed_until = null, text_body = '', html_body = '', last_error = null where id = $1"
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Releases a row for another attempt at `next_attempt_at`, remembering the error.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_email_retry(
        &self,
        id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "update outbox set claimed_until = null, next_attempt_at = $2, last_error = $3 where id = $1"
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Marks a row failed for good (a permanent SMTP rejection); it is not retried.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_email_failed(&self, id: Uuid, now: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
            "update outbox set failed_at = $2, claimed_until = null, last_error = $3, text_body = '', html_body = '' where id = $1"
        )
        .bind(id)
        .bind(now)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// How many rows wait, retry, or failed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        let (queued, retrying, failed): (i64, i64, i64) = on_pool!(self, |pool| {
            sqlx::query_as(
            "select
                coalesce(sum(case when sent_at is null and failed_at is null and last_error is null then 1 else 0 end), 0),
                coalesce(sum(case when sent_at is null and failed_at is null and last_error is not null then 1 else 0 end), 0),
                coalesce(sum(case when failed_at is not null then 1 else 0 end), 0)
             from outbox"
        )
        .fetch_one(pool)
        .await
        })?;
        Ok(OutboxDepth { queued, retrying, failed })
    }
}
