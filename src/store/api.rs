//! The machine API's writes (issue 16; DESIGN.md section 8): a caller secret creates its
//! successor, and deletes its ancestors, each in one transaction under the application's lock.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::audit::insert_audit_event;
use super::outbox::insert_email;
use super::secrets::tombstone;
use super::webhooks::queue_secret_event;
use super::{Actor, AuditAction, Backend, BeginWrite, ClientSecret, Recipients, Store, StoreError, on_pool};
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ClientId, ExpiryDate, Hint, NewEmail, SecretHash, SecretName};

/// A successor made through the API more than this long ago and never used at the token
/// endpoint is abandoned: the caller's next POST replaces it.
pub const ABANDONED_AFTER: Duration = Duration::hours(1);
/// Most secrets made through the API per application within [`API_CREATE_WINDOW`].
pub const API_CREATES_PER_WINDOW: i64 = 2;
/// The window of [`API_CREATES_PER_WINDOW`].
pub const API_CREATE_WINDOW: Duration = Duration::hours(24);

/// A secret the caller asks for, checked by the domain types.
#[derive(Debug, Clone)]
pub struct ApiNewSecret {
    /// Its name.
    pub name: SecretName,
    /// Its expiration date.
    pub expires: ExpiryDate,
    /// SHA-256 of its value.
    pub hash: SecretHash,
    /// Its hint.
    pub hint: Hint,
}

/// What happened to an API write, for the emails to the application's credential managers.
#[derive(Debug, Clone)]
pub struct ApiWrite {
    /// The application's name.
    pub application: String,
    /// Its client ID, as text.
    pub client_id: String,
    /// The secret created or deleted: name and hint.
    pub secret_name: String,
    /// Its hint.
    pub hint: Hint,
    /// `created`, `deleted` or `abandoned` (a successor replaced because it was never used).
    pub what: &'static str,
    /// The application's id (for the admin page's link when the WMDA admins are told).
    pub application_id: Uuid,
}

/// A change of an application's self-rotation, for the emails about it.
#[derive(Debug, Clone)]
pub struct SelfRotationFacts {
    /// The application's name.
    pub application: String,
    /// Its client ID, as text.
    pub client_id: String,
    /// Self-rotation is on after the change.
    pub on: bool,
    /// A WMDA admin forbade it (and so turned it off); otherwise a credential manager changed it.
    pub by_wmda: bool,
}

/// Renders one email per (email, display name) about a change of self-rotation.
pub type RenderSelfRotationEmails<'a> = dyn Fn(&SelfRotationFacts, &[(String, String)]) -> Vec<NewEmail> + Sync + 'a;

/// What a change of self-rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfRotationChange {
    /// Changed, audited, and this many emails queued (wake the sender).
    Changed {
        /// Emails queued.
        emailed: usize,
    },
    /// It was so already: nothing changed, nothing audited.
    Unchanged,
    /// A WMDA admin forbade self-rotation for the application: it stays off.
    Forbidden,
}

/// Renders one email per recipient about an API write: the application's eligible credential
/// managers or, when it has none, the WMDA admins ([`Recipients::to_admins`]).
pub type RenderApiEmails<'a> = dyn Fn(&ApiWrite, &Recipients) -> Vec<NewEmail> + Sync + 'a;

/// Whether the caller is still a live, unexposed secret of the application inside the write (it
/// may have been deleted, expired or reported since it authenticated). A macro so the text
/// compiles against both backends' transactions.
macro_rules! caller_is_live {
    ($tx:expr, $caller:expr, $application_id:expr, $now:expr) => {
        sqlx::query_scalar::<_, Uuid>(
            "select id from client_secret
             where id = $1 and application_id = $2 and deleted_at is null and exposed_at is null and expires_at > $3",
        )
        .bind($caller)
        .bind($application_id)
        .bind($now)
        .fetch_optional($tx)
        .await
        .map(|found| found.is_some())
    };
}

/// A caller's successor: id, hint, value format, name, creation, first use.
type PendingRow = (Uuid, String, i32, String, DateTime<Utc>, Option<DateTime<Utc>>);
/// An ancestor to delete: name, hint, value format, deletion, organisation, application name, client ID.
type AncestorRow = (String, String, i32, Option<DateTime<Utc>>, Uuid, String, Uuid);

/// What `POST /api/v1/self/secrets` did.
#[derive(Debug, Clone)]
pub enum ApiCreate {
    /// Created (and, before it, an abandoned successor replaced).
    Created(Box<ClientSecret>),
    /// The caller has a successor it made itself, not yet abandoned: its id and hint.
    PendingSuccessor(Uuid, Hint),
    /// The application has as many unexpired secrets as allowed.
    AtLimit,
    /// Self-rotation is off for the application; `true` when a WMDA admin forbade it.
    SelfRotationOff(bool),
    /// Two secrets were made through the API for the application within 24 hours: the first of
    /// them leaves the window after this long.
    RateLimited(Duration),
}

fn write_event(
    actor: &Actor,
    action: AuditAction,
    organisation_id: Uuid,
    secret_id: Uuid,
    w: &ApiWrite,
    now: DateTime<Utc>,
) -> super::NewAuditEvent {
    actor
        .event(action, now)
        .with_details(serde_json::json!({
            "application": w.application,
            "name": w.secret_name,
            "hint": w.hint,
            "by": "application",
        }))
        .on(organisation_id, "client_secret", secret_id)
}

impl Store {
    /// Creates a successor of `caller` (a live secret of `application_id`) at `now`, in one
    /// transaction holding the application's lock, so concurrent calls (from one caller, or the
    /// page) never pass a rule: refused when the caller has a pending successor it made (an
    /// abandoned one, [`ABANDONED_AFTER`] old or more and never used, is deleted and replaced,
    /// only when the replacement is created: a refusal rolls everything back), the
    /// application is at `limit`, self-rotation is off, or [`API_CREATES_PER_WINDOW`] secrets
    /// were made through the API within 24 hours (checked in that order). Audited with the
    /// application as `actor`; `render`'s emails go to its eligible credential managers.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::NotFound`] when the caller is not a live secret of the
    /// application.
    pub async fn api_create_secret(
        &self,
        (application_id, caller): (Uuid, Uuid),
        new: &ApiNewSecret,
        (actor, limit): (&Actor, i64),
        render: &RenderApiEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<ApiCreate, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update",
            Backend::Sqlite(_) => "",
        };
        let app_sql = format!(
            "select organisation_id, name, client_id, self_rotation and not self_rotation_forbidden, self_rotation_forbidden from application where id = $1{lock}"
        );
        let id = Uuid::new_v4();
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let app: Option<(Uuid, String, Uuid, bool, bool)> =
                    sqlx::query_as(&app_sql).bind(application_id).fetch_optional(&mut *tx).await?;
                let (organisation_id, application, client_id, self_rotation, forbidden) =
                    app.ok_or(StoreError::NotFound)?;
                if !caller_is_live!(&mut *tx, caller, application_id, now)? {
                    return Err(StoreError::NotFound);
                }
                let recipients = super::reminders::eligible_recipients!(&mut *tx, application_id)?;
                let client_id = crate::domain::ClientId::from_uuid(client_id).to_string();
                let pending: Option<PendingRow> = sqlx::query_as(
                    "select id, hint, value_format, name, created_at, first_used_at from client_secret
                     where created_by_secret_id = $1 and deleted_at is null and exposed_at is null and expires_at > $2
                     order by created_at desc limit 1",
                )
                .bind(caller)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((pending_id, hint, format, name, created_at, first_used_at)) = pending {
                    let hint = Hint::stored(hint, format);
                    if first_used_at.is_some() || created_at >= now - ABANDONED_AFTER {
                        return Ok(ApiCreate::PendingSuccessor(pending_id, hint));
                    }
                    // Abandoned: the caller lost the answer. Deleted, audited and emailed.
                    tombstone!(&mut *tx, pending_id, None, now, "abandoned")?;
                    sqlx::query("update client_secret set deleted_by_secret_id = $2 where id = $1")
                        .bind(pending_id)
                        .bind(caller)
                        .execute(&mut *tx)
                        .await?;
                    let w = ApiWrite {
                        application: application.clone(),
                        client_id: client_id.clone(),
                        secret_name: name,
                        hint,
                        what: "abandoned",
                        application_id,
                    };
                    let mut event = write_event(actor, AuditAction::SecretDeleted, organisation_id, pending_id, &w, now);
                    event.details["reason"] = serde_json::json!("abandoned: never used within an hour of its creation");
                    insert_audit_event!(&mut *tx, &event)?;
                    queue_secret_event!(tx, pending_id, WebhookEvent::Deleted, now)?;
                    for email in render(&w, &recipients) {
                        insert_email!(&mut *tx, &email, now)?;
                    }
                }
                let live: i64 = sqlx::query_scalar(super::secrets::LIVE_SECRETS)
                .bind(application_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                // A refusal rolls back (the transaction is dropped): an abandoned successor is
                // replaced only when its replacement is created.
                if crate::domain::secret::secret_limit_reached(live, limit) {
                    return Ok(ApiCreate::AtLimit);
                }
                if !self_rotation {
                    return Ok(ApiCreate::SelfRotationOff(forbidden));
                }
                let (recent, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "select count(*), min(created_at) from client_secret
                     where application_id = $1 and created_by_secret_id is not null and created_at > $2",
                )
                .bind(application_id)
                .bind(now - API_CREATE_WINDOW)
                .fetch_one(&mut *tx)
                .await?;
                if recent >= API_CREATES_PER_WINDOW {
                    let frees = oldest.map_or(API_CREATE_WINDOW, |t| t + API_CREATE_WINDOW - now);
                    return Ok(ApiCreate::RateLimited(frees.max(Duration::seconds(1))));
                }
                let expires_on = new.expires.date();
                let expires_at = new.expires.expires_at();
                sqlx::query(
                    "insert into client_secret (id, application_id, name, hint, value_format, secret_hash, expires_on, expires_at, created_by, created_at, created_by_secret_id)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, null, $9, $10)",
                )
                .bind(id)
                .bind(application_id)
                .bind(new.name.as_str())
                .bind(new.hint.chars())
                .bind(new.hint.format().stored())
                .bind(new.hash.as_bytes().as_slice())
                .bind(expires_on)
                .bind(expires_at)
                .bind(now)
                .bind(caller)
                .execute(&mut *tx)
                .await?;
                let w = ApiWrite {
                    application,
                    client_id,
                    secret_name: new.name.as_str().to_owned(),
                    hint: new.hint.clone(),
                    what: "created",
                    application_id,
                };
                let mut event = write_event(actor, AuditAction::SecretCreated, organisation_id, id, &w, now);
                event.details["expires_on"] = serde_json::json!(expires_on.to_string());
                insert_audit_event!(&mut *tx, &event)?;
                queue_secret_event!(tx, id, WebhookEvent::Created, now)?;
                for email in render(&w, &recipients) {
                    insert_email!(&mut *tx, &email, now)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(ApiCreate::Created(Box::new(ClientSecret {
                    id,
                    application_id,
                    name: w.secret_name,
                    hint: w.hint,
                    expires_on,
                    expires_at,
                    created_by: None,
                    created_at: now,
                    first_used_at: None,
                    last_used_at: None,
                    deleted_at: None,
                    exposure: None,
                    created_by_secret_id: Some(caller),
                })))
            }
            .await
        })
    }

    /// Deletes `target` when it is an ancestor of `caller` (the secret that created the caller
    /// through the API, or its ancestor, recursively; DESIGN.md section 8), at `now`: `Ok(true)`
    /// when it is one (deleted now or before), `Ok(false)` for anything else (the caller itself,
    /// a newer secret, one made on the page, another application's), so the answer never says
    /// which. Audited with the application as `actor`, emailed like a creation.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::NotFound`] when the caller is no longer live and unexposed.
    pub async fn api_delete_ancestor(
        &self,
        (application_id, caller): (Uuid, Uuid),
        target: Uuid,
        actor: &Actor,
        render: &RenderApiEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let ancestor: Option<AncestorRow> = sqlx::query_as(
                    "with recursive ancestor(id) as (
                         select created_by_secret_id from client_secret where id = $1 and application_id = $2
                         union
                         select s.created_by_secret_id from client_secret s join ancestor on s.id = ancestor.id
                     )
                     select s.name, s.hint, s.value_format, s.deleted_at, a.organisation_id, a.name, a.client_id
                     from client_secret s join application a on a.id = s.application_id
                     where s.id = $3 and s.application_id = $2 and s.id in (select id from ancestor where id is not null)",
                )
                .bind(caller)
                .bind(application_id)
                .bind(target)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((name, hint, format, deleted_at, organisation_id, application, client_id)) = ancestor else {
                    return Ok(false);
                };
                // The caller must still be live and unexposed when it deletes (it may have been
                // deleted or reported since it authenticated).
                if !caller_is_live!(&mut *tx, caller, application_id, now)? {
                    return Err(StoreError::NotFound);
                }
                if deleted_at.is_some() || tombstone!(&mut *tx, target, None, now, "api")? != 1 {
                    return Ok(true);
                }
                sqlx::query("update client_secret set deleted_by_secret_id = $2 where id = $1")
                    .bind(target)
                    .bind(caller)
                    .execute(&mut *tx)
                    .await?;
                let w = ApiWrite {
                    application,
                    client_id: crate::domain::ClientId::from_uuid(client_id).to_string(),
                    secret_name: name,
                    hint: Hint::stored(hint, format),
                    what: "deleted",
                    application_id,
                };
                insert_audit_event!(&mut *tx, &write_event(actor, AuditAction::SecretDeleted, organisation_id, target, &w, now))?;
                queue_secret_event!(tx, target, WebhookEvent::Deleted, now)?;
                let recipients = super::reminders::eligible_recipients!(&mut *tx, application_id)?;
                for email in render(&w, &recipients) {
                    insert_email!(&mut *tx, &email, now)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(true)
            }
            .await
        })
    }

    /// Sets self-rotation of an application directly, without audit or email (tests only; people
    /// use [`Store::set_self_rotation_as_manager`] and [`Store::forbid_self_rotation`]).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_self_rotation(&self, application_id: Uuid, on: bool) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("update application set self_rotation = $2 where id = $1")
            .bind(application_id)
            .bind(on)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The Manage page's switch (issue 16, point 3; DESIGN.md section 8): the credential manager
    /// `user_id` (acting as `actor`) turns self-rotation of `client_id` on or off at `now`, in one
    /// transaction with the audit event `application.self_rotation_changed` and `render`'s
    /// emails to the application's **other** eligible credential managers. Authorisation is the
    /// query's: only an application the user manages now is found. Returns the application's name
    /// and what happened.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user does not manage the application; other
    /// [`StoreError`]s.
    pub async fn set_self_rotation_as_manager(
        &self,
        (user_id, actor): (Uuid, &Actor),
        client_id: ClientId,
        on: bool,
        render: &RenderSelfRotationEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<(String, SelfRotationChange), StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update of a",
            Backend::Sqlite(_) => "",
        };
        let find_sql = format!(
            "select a.id, a.organisation_id, a.name, a.self_rotation, a.self_rotation_forbidden from {}{lock}",
            super::manage::GRANTED
        );
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let row: Option<(Uuid, Uuid, String, bool, bool)> = sqlx::query_as(&find_sql)
                    .bind(user_id)
                    .bind(Some(client_id.as_uuid()))
                    .fetch_optional(&mut *tx)
                    .await?;
                let (application_id, organisation_id, application, current, forbidden) =
                    row.ok_or(StoreError::NotFound)?;
                if on && forbidden {
                    return Ok((application, SelfRotationChange::Forbidden));
                }
                if current == on {
                    return Ok((application, SelfRotationChange::Unchanged));
                }
                sqlx::query("update application set self_rotation = $2 where id = $1")
                    .bind(application_id)
                    .bind(on)
                    .execute(&mut *tx)
                    .await?;
                let event = actor
                    .event(AuditAction::SelfRotationChanged, now)
                    .with_details(serde_json::json!({
                        "application": application,
                        "self_rotation": if on { "on" } else { "off" },
                    }))
                    .on(organisation_id, "application", application_id);
                insert_audit_event!(&mut *tx, &event)?;
                let others: Vec<(String, String)> = sqlx::query_as(super::users::OTHER_ELIGIBLE_MANAGERS)
                    .bind(application_id)
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
                let facts = SelfRotationFacts {
                    application: application.clone(),
                    client_id: client_id.to_string(),
                    on,
                    by_wmda: false,
                };
                let emails = render(&facts, &others);
                for email in &emails {
                    insert_email!(&mut *tx, email, now)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>((application, SelfRotationChange::Changed { emailed: emails.len() }))
            }
            .await
        })
    }

    /// A WMDA admin forbids (or allows again) self-rotation of `application_id` at `now` (issue
    /// 16, point 3). Forbidding also turns it off, in the same statement; allowing again leaves it
    /// off until a credential manager turns it on. Audited as `application.self_rotation_forbidden`;
    /// when forbidding turned it off, `render`'s emails go to every eligible credential manager,
    /// whose partner systems' requests for new secrets are refused from now on.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown application; other [`StoreError`]s.
    pub async fn forbid_self_rotation(
        &self,
        application_id: Uuid,
        forbidden: bool,
        actor: &Actor,
        render: &RenderSelfRotationEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<SelfRotationChange, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update",
            Backend::Sqlite(_) => "",
        };
        let find_sql = format!(
            "select organisation_id, name, client_id, self_rotation, self_rotation_forbidden from application where id = $1{lock}"
        );
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let row: Option<(Uuid, String, Uuid, bool, bool)> =
                    sqlx::query_as(&find_sql).bind(application_id).fetch_optional(&mut *tx).await?;
                let (organisation_id, application, client_id, was_on, was_forbidden) =
                    row.ok_or(StoreError::NotFound)?;
                if was_forbidden == forbidden {
                    return Ok(SelfRotationChange::Unchanged);
                }
                sqlx::query(
                    "update application set self_rotation_forbidden = $2,
                     self_rotation = case when $2 then false else self_rotation end where id = $1",
                )
                .bind(application_id)
                .bind(forbidden)
                .execute(&mut *tx)
                .await?;
                let turned_off = forbidden && was_on;
                let event = actor
                    .event(AuditAction::SelfRotationForbidden, now)
                    .with_details(serde_json::json!({
                        "application": application,
                        "forbidden": forbidden,
                        "turned_off": turned_off,
                    }))
                    .on(organisation_id, "application", application_id);
                insert_audit_event!(&mut *tx, &event)?;
                let mut emailed = 0;
                if turned_off {
                    let managers: Vec<(String, String)> = sqlx::query_as(super::users::ELIGIBLE_MANAGERS)
                        .bind(application_id)
                        .fetch_all(&mut *tx)
                        .await?;
                    let client_id = ClientId::from_uuid(client_id).to_string();
                    let facts = SelfRotationFacts { application, client_id, on: false, by_wmda: true };
                    let emails = render(&facts, &managers);
                    for email in &emails {
                        insert_email!(&mut *tx, email, now)?;
                    }
                    emailed = emails.len();
                }
                tx.commit().await?;
                Ok::<_, StoreError>(SelfRotationChange::Changed { emailed })
            }
            .await
        })
    }
}
