//! Leak reports (issue 15, point 4; DESIGN.md section 7): a reported value's live secret is marked
//! exposed, audited and its people emailed, in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::insert_audit_event;
use super::outbox::insert_email;
use super::reminders::{Recipients, eligible_recipients};
use super::secrets::tombstone;
use super::webhooks::queue_secret_event;
use super::{Actor, AuditAction, BeginWrite, Store, StoreError, on_pool};
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ClientId, Hint, NewEmail, SecretHash};

/// Where and how a value was found, as a report item gives it (each at most a few hundred
/// characters; the caller cuts them).
#[derive(Debug, Clone)]
pub struct LeakSighting {
    /// The URL where it was found (`url`), as reported; may be empty.
    pub url: String,
    /// What found it (`source`, e.g. `content` or `commit`), as reported; may be empty.
    pub source: String,
    /// The key identifier that signed the report, `None` for an unsigned one.
    pub signed_by: Option<String>,
}

/// A live secret a report found, for the urgent email.
#[derive(Debug, Clone)]
pub struct ExposedSecret {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its hint.
    pub hint: Hint,
    /// Its application's name.
    pub application: String,
    /// Its application's client ID.
    pub client_id: ClientId,
    /// Whether it was deleted as well (`PORTAL_LEAK_ACTION=delete`, signed reports only).
    pub deleted: bool,
}

/// What a report of one value did.
#[derive(Debug, Clone)]
pub enum LeakOutcome {
    /// No live secret has that hash (unknown, deleted or expired): nothing changed.
    NotLive,
    /// The first report of a live secret: marked exposed (and deleted when asked), audited, and
    /// this many emails queued.
    FirstReport(ExposedSecret, usize),
    /// A secret marked exposed before: the report's URL was added to the audit trail (when new),
    /// and this many emails queued (when it was deleted now).
    AlreadyExposed(usize),
}

/// Renders the urgent emails about an exposed secret for its recipients.
pub type RenderExposureEmails<'a> = dyn Fn(&ExposedSecret, &LeakSighting, &Recipients) -> Vec<NewEmail> + Sync + 'a;

impl Store {
    /// Records a leak report of the value whose SHA-256 is `hash` at `now`: when a live secret
    /// (undeleted, not past its expiry instant) has it, the first report marks it exposed
    /// (`exposed_at`, `exposed_url`, `exposed_source`), records `secret.exposed` by `actor` with
    /// the URL and source, queues `render`'s emails to the application's eligible credential
    /// managers (the WMDA admins when it has none), and, when `delete`, deletes it as well
    /// (`secret.deleted`, by a leak report); later reports record `secret.leak_reported` when
    /// their URL is not the first one (and, when `delete`, delete the secret and email its people).
    /// A value no live secret has is answered by one read, without a write lock; the rest is one
    /// transaction holding the secret's row, so two reports at once make one first report.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn report_leak(
        &self,
        hash: &SecretHash,
        sighting: &LeakSighting,
        (actor, delete): (&Actor, bool),
        render: &RenderExposureEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<LeakOutcome, StoreError> {
        let lock = match self.backend() {
            super::Backend::Postgres(_) => " for update of s",
            super::Backend::Sqlite(_) => "",
        };
        const LIVE: &str = "s.secret_hash = $1 and s.deleted_at is null and s.expires_at > $2";
        // A plain read first: a value no live secret has (most reports) takes no write lock.
        let live: Option<Uuid> =
            on_pool!(self, |pool| sqlx::query_scalar(&format!("select s.id from client_secret s where {LIVE}"))
                .bind(hash.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(pool)
                .await)?;
        if live.is_none() {
            return Ok(LeakOutcome::NotLive);
        }
        let find = format!(
            "select s.id, s.name, s.hint, s.value_format, s.exposed_at is not null, coalesce(s.exposed_url, ''),
                    a.id, a.organisation_id, a.name, a.client_id
             from client_secret s join application a on a.id = s.application_id
             where {LIVE}{lock}"
        );
        type Found = (Uuid, String, String, i32, bool, String, Uuid, Uuid, String, Uuid);
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let found: Option<Found> =
                    sqlx::query_as(&find).bind(hash.as_bytes().as_slice()).bind(now).fetch_optional(&mut *tx).await?;
                let Some((
                    id,
                    name,
                    hint,
                    format,
                    exposed,
                    exposed_url,
                    application_id,
                    organisation_id,
                    application,
                    client_id,
                )) = found
                else {
                    return Ok(LeakOutcome::NotLive);
                };
                let hint = Hint::stored(hint, format);
                let event = |action| {
                    actor
                        .event(action, now)
                        .with_details(serde_json::json!({
                            "application": application,
                            "name": name,
                            "hint": hint,
                            "url": sighting.url,
                            "source": sighting.source,
                            "signed_by": sighting.signed_by,
                        }))
                        .on(organisation_id, "client_secret", id)
                };
                if exposed && !delete {
                    // Only a URL not recorded as the first one: a replayed report adds nothing.
                    if sighting.url != exposed_url {
                        insert_audit_event!(&mut *tx, &event(AuditAction::SecretLeakReported))?;
                    }
                    tx.commit().await?;
                    return Ok(LeakOutcome::AlreadyExposed(0));
                }
                if exposed {
                    insert_audit_event!(&mut *tx, &event(AuditAction::SecretLeakReported))?;
                } else {
                    sqlx::query(
                        "update client_secret set exposed_at = $2, exposed_url = $3, exposed_source = $4
                         where id = $1 and exposed_at is null",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(&sighting.url)
                    .bind(&sighting.source)
                    .execute(&mut *tx)
                    .await?;
                    insert_audit_event!(&mut *tx, &event(AuditAction::SecretExposed))?;
                    queue_secret_event!(tx, id, WebhookEvent::Exposed, now)?;
                }
                // Under the row's lock (Postgres) or the write lock (SQLite): the secret is live.
                let deleted = delete && tombstone!(&mut *tx, id, None, now, "leak_report")? == 1;
                if deleted {
                    let gone = actor
                        .event(AuditAction::SecretDeleted, now)
                        .with_details(serde_json::json!({
                            "application": application,
                            "name": name,
                            "hint": hint,
                            "reason": "found in public by a signed leak report",
                            "by": "leak_report",
                        }))
                        .on(organisation_id, "client_secret", id);
                    insert_audit_event!(&mut *tx, &gone)?;
                    queue_secret_event!(tx, id, WebhookEvent::Deleted, now)?;
                }
                let recipients = eligible_recipients!(&mut *tx, application_id)?;
                let secret =
                    ExposedSecret { id, name, hint, application, client_id: ClientId::from_uuid(client_id), deleted };
                let emails = render(&secret, sighting, &recipients);
                for email in &emails {
                    insert_email!(&mut *tx, email, now)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(if exposed {
                    LeakOutcome::AlreadyExposed(emails.len())
                } else {
                    LeakOutcome::FirstReport(secret, emails.len())
                })
            }
            .await
        })
    }
}
