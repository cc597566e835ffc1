//! Client secrets: metadata, hash, tombstone. Every write to `client_secret` is here: seeding,
//! the credential manager's create (with the limit, under the application's lock) and delete, the
//! admin's delete, and recorded uses; both deletions go through one [`tombstone!`].

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::audit::insert_audit_event;
use super::manage::{GRANTED, SECRET_JOIN, SECRET_VIEW_COLUMNS, SecretViewRow, joined};
use super::outbox::insert_email;
use super::webhooks::queue_secret_event;
use super::{
    Actor, AuditAction, Backend, BeginWrite, Conflict, Deletion, NewSecret, SecretView, Store, StoreError, on_pool,
};
use crate::domain::secret::expiry_instant;
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ClientId, Hint, NewEmail, SecretHash};

/// A client secret's metadata as stored; the value itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Internal id.
    pub id: Uuid,
    /// The application it authenticates.
    pub application_id: Uuid,
    /// The name its creator gave it.
    pub name: String,
    /// Its hint: three characters of the value and its format (`hint`, `value_format`).
    pub hint: Hint,
    /// Expiration date D (UTC); the secret works up to and including D.
    pub expires_on: NaiveDate,
    /// D+1 00:00:00Z, when it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who created it; `None` for seeded secrets (shown as "WMDA").
    pub created_by: Option<Uuid>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// First successful use at the token endpoint.
    pub first_used_at: Option<DateTime<Utc>>,
    /// Latest successful use at the token endpoint.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was deleted (a tombstone), if it was.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When and where a leak report found it in public, if one did (issue 15).
    pub exposure: Option<Exposure>,
    /// The secret that created it through the machine API, if one did (issue 16).
    pub created_by_secret_id: Option<Uuid>,
}

/// The first leak report of a secret: when (UTC), where (the report's URL) and by what (its
/// source), as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// When the report came in.
    pub at: DateTime<Utc>,
    /// The URL where it was found; may be empty.
    pub url: String,
    /// What found it (`content`, `commit`, ...); may be empty.
    pub source: String,
}

/// A secret to store as it is, past dates included: the demo loader and imports use this; the
/// credential manager's create path checks the rules and the limit instead.
#[derive(Debug, Clone)]
pub struct SeedSecret {
    /// The application.
    pub application_id: Uuid,
    /// The name (a checked [`crate::domain::SecretName`] as text).
    pub name: String,
    /// Its hint ([`crate::domain::PlainSecret::hint`]), which also says the value's format.
    pub hint: Hint,
    /// SHA-256 of the value.
    pub hash: SecretHash,
    /// Expiration date D, in the past or the future.
    pub expires_on: NaiveDate,
    /// Creator; `None` shows as "WMDA".
    pub created_by: Option<Uuid>,
    /// Creation instant, in the past or now.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct SecretRow {
    id: Uuid,
    application_id: Uuid,
    name: String,
    hint: String,
    value_format: i32,
    expires_on: NaiveDate,
    expires_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    first_used_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    exposed_at: Option<DateTime<Utc>>,
    exposed_url: Option<String>,
    exposed_source: Option<String>,
    created_by_secret_id: Option<Uuid>,
}

impl From<SecretRow> for ClientSecret {
    fn from(r: SecretRow) -> Self {
        ClientSecret {
            id: r.id,
            application_id: r.application_id,
            name: r.name,
            hint: Hint::stored(r.hint, r.value_format),
            expires_on: r.expires_on,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
            first_used_at: r.first_used_at,
            last_used_at: r.last_used_at,
            deleted_at: r.deleted_at,
            exposure: r.exposed_at.map(|at| Exposure {
                at,
                url: r.exposed_url.unwrap_or_default(),
                source: r.exposed_source.unwrap_or_default(),
            }),
            created_by_secret_id: r.created_by_secret_id,
        }
    }
}

/// Tombstones a secret inside an open transaction (both deletions, the credential manager's and
/// the admin's, go through this): wipes its hash, so the token endpoint refuses it from the next
/// request on, records when and by whom (`None`: the command line), and cancels its queued
/// reminder emails, so its notices stop at once; `reason` is the `deleted_reason` (`person`,
/// `admin`, `api`, `leak_report`, `abandoned`; DESIGN.md section 8). Yields the rows changed: 0 when it was deleted
/// already. A macro rather than a function: the text must compile against both backends'
/// transactions.
macro_rules! tombstone {
    ($tx:expr, $secret_id:expr, $by:expr, $now:expr, $reason:expr) => {{
        let (secret_id, by, now, reason): (Uuid, Option<Uuid>, DateTime<Utc>, &str) = ($secret_id, $by, $now, $reason);
        async {
            let n = sqlx::query(
                "update client_secret set deleted_at = $2, deleted_by = $3, secret_hash = null, deleted_reason = $4
                 where id = $1 and deleted_at is null",
            )
            .bind(secret_id)
            .bind(now)
            .bind(by)
            .bind(reason)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(super::reminders::CANCEL_SECRET_EMAILS)
                    .bind(secret_id)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<u64, sqlx::Error>(n)
        }
        .await
    }};
}
pub(super) use tombstone;

/// The application `$1`'s live secrets at `$2` (undeleted, not past their expiry instant): what
/// the secret limit counts, for the page's create and the API's alike.
pub(super) const LIVE_SECRETS: &str =
    "select count(*) from client_secret where application_id = $1 and deleted_at is null and expires_at > $2";

impl Store {
    /// Stores a secret without the create path's checks (limit, date window), for seeding.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown application; [`StoreError::Database`] when the
    /// schema refuses it (a hash already stored, a name or hint of the wrong shape).
    pub async fn seed_client_secret(&self, seed: &SeedSecret) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let inserted = on_pool!(self, |pool| {
            sqlx::query(
            "insert into client_secret (id, application_id, name, hint, value_format, secret_hash, expires_on, expires_at, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(id)
        .bind(seed.application_id)
        .bind(&seed.name)
        .bind(seed.hint.chars())
        .bind(seed.hint.format().stored())
        .bind(seed.hash.as_bytes().as_slice())
        .bind(seed.expires_on)
        .bind(expiry_instant(seed.expires_on))
        .bind(seed.created_by)
        .bind(seed.created_at)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        });
        match inserted {
            Ok(_) => Ok(id),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The secrets of an application, deleted ones included, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_client_secrets(&self, application_id: Uuid) -> Result<Vec<ClientSecret>, StoreError> {
        let rows: Vec<SecretRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "select id, application_id, name, hint, value_format, expires_on, expires_at, created_by, created_at,
                    first_used_at, last_used_at, deleted_at, exposed_at, exposed_url, exposed_source, created_by_secret_id
             from client_secret where application_id = $1 order by created_at desc, id",
            )
            .bind(application_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Records a successful use of a secret at `at`: sets `first_used_at` once and moves
    /// `last_used_at` forward (never back, so late or reordered writes do no harm).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_secret_use(&self, secret_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "update client_secret set
                first_used_at = case when first_used_at is null or first_used_at > $2 then $2 else first_used_at end,
                last_used_at = case when last_used_at is null or last_used_at < $2 then $2 else last_used_at end
             where id = $1"
        )
        .bind(secret_id)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Creates a secret for an application the user manages: checks the one-time form id and the
    /// limit of unexpired, undeleted secrets, inserts, and records `secret.created` by `actor`
    /// (with the application, the name, the hint and the expiration date), in one
    /// transaction that holds the application's lock (`FOR UPDATE` on Postgres, the write lock
    /// on SQLite), so concurrent creates never pass the limit.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] unless the user manages the application;
    /// [`Conflict::FormAlreadySubmitted`]; [`Conflict::SecretLimitReached`].
    pub async fn create_client_secret(
        &self,
        (user_id, actor): (Uuid, &Actor),
        client_id: ClientId,
        new: &NewSecret,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<ClientSecret, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update of a",
            Backend::Sqlite(_) => "",
        };
        let find_sql = format!("select a.id, a.organisation_id, a.name from {GRANTED}{lock}");
        let id = Uuid::new_v4();
        let secret = ClientSecret {
            id,
            application_id: Uuid::nil(),
            name: new.name.as_str().to_owned(),
            hint: new.hint.clone(),
            expires_on: new.expires.date(),
            expires_at: expiry_instant(new.expires.date()),
            created_by: Some(user_id),
            created_at: now,
            first_used_at: None,
            last_used_at: None,
            deleted_at: None,
            exposure: None,
            created_by_secret_id: None,
        };
        let application_id = on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let found: Option<(Uuid, Uuid, String)> =
                sqlx::query_as(&find_sql).bind(user_id).bind(Some(client_id.as_uuid())).fetch_optional(&mut *tx).await?;
            let (application_id, organisation_id, application) = found.ok_or(StoreError::NotFound)?;
            let replay: Option<Uuid> = sqlx::query_scalar("select secret_id from secret_form where form_id = $1")
                .bind(new.form_id)
                .fetch_optional(&mut *tx)
                .await?;
            if replay.is_some() {
                return Err(Conflict::FormAlreadySubmitted.into());
            }
            let live: i64 = sqlx::query_scalar(LIVE_SECRETS)
            .bind(application_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if crate::domain::secret::secret_limit_reached(live, limit) {
                return Err(Conflict::SecretLimitReached.into());
            }
            sqlx::query(
                "insert into client_secret (id, application_id, name, hint, value_format, secret_hash, expires_on, expires_at, created_by, created_at, replaces_secret_id)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                     (select r.id from client_secret r where r.id = $11 and r.application_id = $2 and r.deleted_at is null))",
            )
            .bind(id)
            .bind(application_id)
            .bind(&secret.name)
            .bind(secret.hint.chars())
            .bind(secret.hint.format().stored())
            .bind(new.hash.as_bytes().as_slice())
            .bind(secret.expires_on)
            .bind(secret.expires_at)
            .bind(user_id)
            .bind(now)
            .bind(new.replaces)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into secret_form (form_id, user_id, application_id, secret_id, submitted_at) values ($1, $2, $3, $4, $5)",
            )
            .bind(new.form_id)
            .bind(user_id)
            .bind(application_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let event = actor.event(AuditAction::SecretCreated, now).with_details(serde_json::json!({
                "application": application,
                "name": new.name.as_str(),
                "hint": new.hint,
                "expires_on": new.expires.date().to_string(),
            })).on(organisation_id, "client_secret", id);
            insert_audit_event!(&mut *tx, &event)?;
            queue_secret_event!(tx, id, WebhookEvent::Created, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(application_id)
        }
        .await
        })?;
        Ok(ClientSecret { application_id, ..secret })
    }

    /// Deletes (tombstones) a secret of an application the user manages: wipes its hash so the
    /// token endpoint refuses it from the next request on, and records `secret.deleted` by
    /// `actor` with the secret's name and hint.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the secret is not of that application or the user does not
    /// manage it.
    pub async fn delete_client_secret(
        &self,
        (user_id, actor): (Uuid, &Actor),
        client_id: ClientId,
        secret_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Deletion, StoreError> {
        let find_sql = format!(
            "select {SECRET_VIEW_COLUMNS}, a.organisation_id from {} and s.id = $3",
            joined(GRANTED, SECRET_JOIN)
        );
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let row: Option<SecretViewRowWithOrg> = sqlx::query_as(&find_sql)
                    .bind(user_id)
                    .bind(Some(client_id.as_uuid()))
                    .bind(secret_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = row.ok_or(StoreError::NotFound)?;
                let organisation_id = row.organisation_id;
                let view: SecretView = row.view.into();
                if view.secret.deleted_at.is_some() {
                    return Ok(Deletion::AlreadyDeleted(view.secret));
                }
                if tombstone!(&mut *tx, secret_id, Some(user_id), now, "person")? != 1 {
                    return Ok(Deletion::AlreadyDeleted(view.secret));
                }
                let details = serde_json::json!({ "name": view.secret.name, "hint": view.secret.hint });
                let event = actor.event(AuditAction::SecretDeleted, now).with_details(details).on(
                    organisation_id,
                    "client_secret",
                    secret_id,
                );
                insert_audit_event!(&mut *tx, &event)?;
                queue_secret_event!(tx, secret_id, WebhookEvent::Deleted, now)?;
                tx.commit().await?;
                Ok::<_, StoreError>(Deletion::Deleted(ClientSecret { deleted_at: Some(now), ..view.secret }))
            }
            .await
        })
    }

    /// Deletes a secret of any application (a compromised one), with the admin's reason in the
    /// audit event, and queues `render`'s emails to the application's credential managers
    /// (enabled and enrolled; (email, display name) pairs) in the same transaction. Returns the
    /// deleted secret and how many emails were queued.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the secret is not of that application or already deleted.
    pub async fn admin_delete_secret(
        &self,
        (application_id, secret_id): (Uuid, Uuid),
        reason: &str,
        actor: &Actor,
        render: &RenderDeletionEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<(DeletedSecret, usize), StoreError> {
        let mut event = actor.event(AuditAction::SecretDeleted, now);
        event.target_type = Some("client_secret");
        event.target_id = Some(secret_id.to_string());
        on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let found: Option<(String, String, i32, Uuid, String, Uuid)> = sqlx::query_as(
                "select s.name, s.hint, s.value_format, a.organisation_id, a.name, a.client_id from client_secret s join application a on a.id = s.application_id
                 where s.id = $1 and s.application_id = $2 and s.deleted_at is null",
            )
            .bind(secret_id)
            .bind(application_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((name, hint, value_format, organisation_id, application, client_id)) = found else { return Err(StoreError::NotFound) };
            let hint = Hint::stored(hint, value_format);
            if tombstone!(&mut *tx, secret_id, actor.user_id, now, "admin")? != 1 {
                return Err(StoreError::NotFound);
            }
            event.organisation_id = Some(organisation_id);
            event.details = serde_json::json!({ "application": application, "name": name, "hint": hint, "reason": reason, "by": "wmda-admin" });
            insert_audit_event!(&mut *tx, &event)?;
            queue_secret_event!(tx, secret_id, WebhookEvent::Deleted, now)?;
            let managers: Vec<(String, String)> = sqlx::query_as(super::users::ELIGIBLE_MANAGERS)
            .bind(application_id)
            .fetch_all(&mut *tx)
            .await?;
            let deleted = DeletedSecret { name, hint, application, client_id: crate::domain::ClientId::from_uuid(client_id) };
            let emails = render(&deleted, &managers);
            for email in &emails {
                insert_email!(&mut *tx, email, now)?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>((deleted, emails.len()))
        }
        .await
        })
    }
}

/// Renders the emails about a deleted secret for its application's credential managers, given
/// as (email, display name) pairs.
pub type RenderDeletionEmails<'a> = dyn Fn(&DeletedSecret, &[(String, String)]) -> Vec<NewEmail> + Sync + 'a;

/// A secret a WMDA admin deleted, for the emails to its application's credential managers.
#[derive(Debug, Clone)]
pub struct DeletedSecret {
    /// Its name.
    pub name: String,
    /// Its hint.
    pub hint: Hint,
    /// Its application's name.
    pub application: String,
    /// Its application's client ID.
    pub client_id: crate::domain::ClientId,
}

#[derive(sqlx::FromRow)]
struct SecretViewRowWithOrg {
    #[sqlx(flatten)]
    view: SecretViewRow,
    organisation_id: Uuid,
}
