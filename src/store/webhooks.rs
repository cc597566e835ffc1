//! Webhook endpoints and their deliveries (issue 17; DESIGN.md section 9). An endpoint's URL and
//! signing secret arrive encrypted (the master key is not the store's); deliveries are queued
//! per (endpoint, event) and claimed with the outbox's lease, only the oldest pending one per
//! endpoint at a time, so each endpoint gets its events in order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::insert_audit_event;
use super::{Actor, AuditAction, Backend, BeginWrite, Conflict, Recipients, Store, StoreError, on_pool};
use crate::domain::webhook::{DISABLE_AFTER, DISABLE_AFTER_ATTEMPTS, MAX_ENDPOINTS, WebhookEvent, WebhookFormat};

/// An endpoint to add: its URL and signing secret already encrypted.
#[derive(Clone)]
pub struct NewWebhookEndpoint {
    /// The application.
    pub application_id: Uuid,
    /// How it wants its events.
    pub format: WebhookFormat,
    /// The URL, encrypted with the master key (purpose `webhook-url`).
    pub url_enc: Vec<u8>,
    /// The URL's host, in clear (pages, audit details).
    pub host: String,
    /// The events it is told about (at least one).
    pub events: Vec<WebhookEvent>,
    /// A `standard` endpoint's signing secret, encrypted (purpose `webhook-signing-secret`).
    pub signing_secret_enc: Option<Vec<u8>>,
    /// The credential manager who added it, if a person did.
    pub created_by: Option<Uuid>,
    /// The add form's one-time id: a second submit of the same form adds nothing.
    pub form_id: Option<Uuid>,
}

impl std::fmt::Debug for NewWebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookEndpoint")
            .field("application_id", &self.application_id)
            .field("format", &self.format)
            .field("host", &self.host)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// An endpoint as stored.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: Uuid,
    /// What it was added with (URL and signing secret encrypted; `Debug` shows the host only).
    pub endpoint: NewWebhookEndpoint,
    /// When it was added (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was disabled, if it is.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Its last 2xx answer (UTC).
    pub last_success_at: Option<DateTime<Utc>>,
    /// The first refusal since its last 2xx answer, if one came since (UTC).
    pub failing_since: Option<DateTime<Utc>>,
    /// Refusals since its last 2xx answer.
    pub failed_attempts: i32,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    application_id: Uuid,
    format: String,
    url_enc: Vec<u8>,
    host: String,
    events: String,
    signing_secret_enc: Option<Vec<u8>>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    failed_attempts: i32,
}

const ENDPOINT_COLUMNS: &str = "e.id, e.application_id, e.format, e.url_enc, e.host, e.events, e.signing_secret_enc, e.created_by, e.created_at, e.disabled_at, e.last_success_at, e.failing_since, e.failed_attempts";

fn endpoint(r: EndpointRow) -> Result<WebhookEndpoint, StoreError> {
    let format = WebhookFormat::parse(&r.format).ok_or(StoreError::Corrupt("webhook_endpoint.format"))?;
    let endpoint = NewWebhookEndpoint {
        application_id: r.application_id,
        format,
        url_enc: r.url_enc,
        host: r.host,
        events: WebhookEvent::parse_list(&r.events),
        signing_secret_enc: r.signing_secret_enc,
        created_by: r.created_by,
        form_id: None,
    };
    Ok(WebhookEndpoint {
        id: r.id,
        endpoint,
        created_at: r.created_at,
        disabled_at: r.disabled_at,
        last_success_at: r.last_success_at,
        failing_since: r.failing_since,
        failed_attempts: r.failed_attempts,
    })
}

/// A delivery claimed for an attempt, with what sending it needs.
#[derive(Clone)]
pub struct ClaimedDelivery {
    /// Its id (also its order within the endpoint).
    pub id: i64,
    /// The event's id: `webhook-id` is `msg_` and it.
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: String,
    /// The event's data as queued (JSON; never a secret value or hash): each attempt renders
    /// it in the endpoint's format, the same way every time.
    pub data: String,
    /// When the event happened (UTC): a delivery failing [`crate::domain::webhook::FAIL_AFTER`]
    /// after it is failed.
    pub created_at: DateTime<Utc>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Its format.
    pub format: String,
    /// Its URL, encrypted.
    pub url_enc: Vec<u8>,
    /// Its signing secret, encrypted.
    pub signing_secret_enc: Option<Vec<u8>>,
    /// When its first attempt was refused, if one was: it is given up
    /// [`crate::domain::webhook::FAIL_AFTER`] after.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// The lease this claim holds: marking it is conditional on it, so a deliverer whose lease ran
    /// out (and another took the row over) changes nothing.
    pub claimed_until: DateTime<Utc>,
}

impl std::fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("endpoint_id", &self.endpoint_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A claimed delivery's row with its endpoint's (`c` the delivery, `e` the endpoint).
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    data: String,
    created_at: DateTime<Utc>,
    attempts: i32,
    endpoint_id: Uuid,
    format: String,
    url_enc: Vec<u8>,
    signing_secret_enc: Option<Vec<u8>>,
    first_failed_at: Option<DateTime<Utc>>,
}

const CLAIM_COLUMNS: &str = "c.id, c.event_id, c.event_type, c.data, c.created_at, c.attempts, c.endpoint_id, e.format, e.url_enc, e.signing_secret_enc, c.first_failed_at";

impl ClaimRow {
    fn claimed(self, claimed_until: DateTime<Utc>) -> ClaimedDelivery {
        ClaimedDelivery {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            data: self.data,
            created_at: self.created_at,
            attempts: self.attempts,
            endpoint_id: self.endpoint_id,
            format: self.format,
            url_enc: self.url_enc,
            signing_secret_enc: self.signing_secret_enc,
            first_failed_at: self.first_failed_at,
            claimed_until,
        }
    }
}

/// A delivery as the pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// Its id (the order within the endpoint).
    pub id: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: String,
    /// When the event happened (UTC).
    pub created_at: DateTime<Utc>,
    /// When it is due again, while it is pending (UTC).
    pub next_attempt_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i32,
    /// When it succeeded.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub failed_at: Option<DateTime<Utc>>,
    /// The last answer's status, if one came.
    pub last_status: Option<i32>,
    /// The last error, in words (no URL path).
    pub last_error: Option<String>,
}

/// Inserts one delivery of the event `$event_id` (`$event` a [`WebhookEvent`], `$data` its data,
/// a `serde_json::Value`) for every endpoint of application `$application_id` subscribed to it
/// (a disabled one's wait until it is enabled again), through `$tx` (the open transaction of what caused the event, or one of its own).
/// Evaluates to the number queued. A macro so the text compiles against both backends.
macro_rules! queue_webhook_event {
    ($tx:expr, $application_id:expr, $event:expr, $event_id:expr, $data:expr, $now:expr) => {
        async {
            let endpoints: Vec<(Uuid, String)> = sqlx::query_as(
                "select id, events from webhook_endpoint
                 where application_id = $1 and removed_at is null order by created_at, id",
            )
            .bind($application_id)
            .fetch_all(&mut *$tx)
            .await?;
            let data = $data.to_string();
            let mut queued = 0usize;
            for (endpoint_id, events) in endpoints {
                if !$crate::domain::webhook::WebhookEvent::parse_list(&events).contains(&$event) {
                    continue;
                }
                sqlx::query(
                    "insert into webhook_delivery (endpoint_id, event_id, event_type, data, created_at, next_attempt_at)
                     values ($1, $2, $3, $4, $5, $5)",
                )
                .bind(endpoint_id)
                .bind($event_id)
                .bind($event.as_str())
                .bind(&data)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
                queued += 1;
            }
            Ok::<usize, sqlx::Error>(queued)
        }
        .await
    };
}
pub(crate) use queue_webhook_event;

/// Queues `$event` (a [`WebhookEvent`]) about the client secret `$secret_id` for its
/// application's subscribed endpoints, through `$tx`, the open transaction of what caused it: the
/// event's data is read from the secret's row ([`crate::domain::webhook::secret_event_data`]),
/// with `days_left` for `secret.expiring`.
/// Evaluates to the number queued.
macro_rules! queue_secret_event {
    ($tx:expr, $secret_id:expr, $event:expr, $now:expr) => {
        async {
            type Row = (Uuid, String, Uuid, String, String, i32, chrono::NaiveDate, DateTime<Utc>);
            let row: Option<Row> = sqlx::query_as(
                // Nothing more to read when the application has no endpoint (most have none).
                "select a.id, a.name, a.client_id, s.name, s.hint, s.value_format, s.expires_on, s.expires_at
                 from client_secret s join application a on a.id = s.application_id
                 where s.id = $1 and exists (select 1 from webhook_endpoint e where e.application_id = a.id and e.removed_at is null)",
            )
            .bind($secret_id)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some((application_id, application, client_id, name, hint, format, expires_on, expires_at)) = row else {
                return Ok::<usize, sqlx::Error>(0);
            };
            let hint = $crate::domain::Hint::stored(hint, format).to_string();
            let client_id = $crate::domain::ClientId::from_uuid(client_id).to_string();
            let mut data = $crate::domain::webhook::secret_event_data(
                (&application, &client_id),
                ($secret_id, &name, &hint),
                (expires_on, expires_at),
            );
            if $event == $crate::domain::webhook::WebhookEvent::Expiring {
                // Whole UTC days from the notice's day to the expiration date (0: today; below: expired).
                data["days_left"] = serde_json::json!((expires_on - $now.date_naive()).num_days());
            }
            $crate::store::webhooks::queue_webhook_event!($tx, application_id, $event, Uuid::new_v4(), data, $now)
        }
        .await
    };
}
pub(crate) use queue_secret_event;

impl Store {
    /// Adds an endpoint at `now`, within [`MAX_ENDPOINTS`] per application (counted under the
    /// application's lock), audited as `webhook.added` with the host only (a Slack or Teams URL
    /// is a credential).
    ///
    /// # Errors
    /// [`Conflict::WebhookLimit`]; [`Conflict::FormAlreadySubmitted`] when an endpoint was added
    /// with the same `form_id`; [`StoreError::NotFound`] for an unknown application.
    pub async fn add_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update",
            Backend::Sqlite(_) => "",
        };
        let app_sql = format!("select organisation_id, name from application where id = $1{lock}");
        let id = Uuid::new_v4();
        let events = WebhookEvent::join(&new.events);
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let app: Option<(Uuid, String)> =
                    sqlx::query_as(&app_sql).bind(new.application_id).fetch_optional(&mut *tx).await?;
                let (organisation_id, application) = app.ok_or(StoreError::NotFound)?;
                if let Some(form_id) = new.form_id {
                    let replay: Option<Uuid> = sqlx::query_scalar("select id from webhook_endpoint where form_id = $1")
                        .bind(form_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if replay.is_some() {
                        return Err(StoreError::Conflict(Conflict::FormAlreadySubmitted));
                    }
                }
                let count: i64 = sqlx::query_scalar(
                    "select count(*) from webhook_endpoint where application_id = $1 and removed_at is null",
                )
                .bind(new.application_id)
                .fetch_one(&mut *tx)
                .await?;
                if count >= MAX_ENDPOINTS {
                    return Err(StoreError::Conflict(Conflict::WebhookLimit));
                }
                sqlx::query(
                    "insert into webhook_endpoint (id, application_id, format, url_enc, host, events, signing_secret_enc, created_at, created_by, form_id)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id)
                .bind(new.application_id)
                .bind(new.format.as_str())
                .bind(new.url_enc.as_slice())
                .bind(&new.host)
                .bind(&events)
                .bind(new.signing_secret_enc.as_deref())
                .bind(now)
                .bind(new.created_by)
                .bind(new.form_id)
                .execute(&mut *tx)
                .await?;
                let event = actor.event(AuditAction::WebhookAdded, now).with_details(serde_json::json!({
                    "application": application,
                    "host": new.host,
                    "format": new.format.as_str(),
                    "events": new.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                })).on(organisation_id, "webhook_endpoint", id);
                insert_audit_event!(&mut *tx, &event)?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await
        })?;
        let endpoint = NewWebhookEndpoint { events: WebhookEvent::parse_list(&events), ..new.clone() };
        Ok(WebhookEndpoint {
            id,
            endpoint,
            created_at: now,
            disabled_at: None,
            last_success_at: None,
            failing_since: None,
            failed_attempts: 0,
        })
    }

    /// The application's endpoints that are not removed, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn webhook_endpoints(&self, application_id: Uuid) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "select {ENDPOINT_COLUMNS} from webhook_endpoint e where e.application_id = $1 and e.removed_at is null order by e.created_at, e.id"
        );
        let rows: Vec<EndpointRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(application_id).fetch_all(pool).await)?;
        rows.into_iter().map(endpoint).collect()
    }

    /// Removes the endpoint `endpoint_id` of `application_id` at `now`: its pending deliveries
    /// stop. Audited as `webhook.removed`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not an endpoint of that application, or removed.
    pub async fn remove_webhook_endpoint(
        &self,
        (application_id, endpoint_id): (Uuid, Uuid),
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let found: Option<(String, Uuid, String)> = sqlx::query_as(
                    "select e.host, a.organisation_id, a.name from webhook_endpoint e join application a on a.id = e.application_id
                     where e.id = $1 and e.application_id = $2 and e.removed_at is null",
                )
                .bind(endpoint_id)
                .bind(application_id)
                .fetch_optional(&mut *tx)
                .await?;
                let (host, organisation_id, application) = found.ok_or(StoreError::NotFound)?;
                // Conditional: of two removals at once, one changes it and is audited.
                let removed = sqlx::query("update webhook_endpoint set removed_at = $2 where id = $1 and removed_at is null")
                    .bind(endpoint_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if removed != 1 {
                    return Err(StoreError::NotFound);
                }
                let event = actor
                    .event(AuditAction::WebhookRemoved, now)
                    .with_details(serde_json::json!({ "application": application, "host": host })).on(organisation_id, "webhook_endpoint", endpoint_id);
                insert_audit_event!(&mut *tx, &event)?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await
        })
    }

    /// Queues `event` (id `event_id`, data `data`) for the application's endpoints on its own,
    /// outside any other change ([`queue_webhook_event`] does it inside one). Returns how many
    /// were queued.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn queue_webhook_event(
        &self,
        application_id: Uuid,
        event: WebhookEvent,
        event_id: Uuid,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let queued = queue_webhook_event!(tx, application_id, event, event_id, data, now)?;
                tx.commit().await?;
                Ok::<_, StoreError>(queued)
            }
            .await
        })
    }

    /// Claims up to `limit` due deliveries until `lease_until`: for each enabled endpoint, only
    /// its oldest pending delivery (not delivered, not failed), when it is due and not held by
    /// another deliverer. Postgres skips rows another deliverer holds (and then, that endpoint's
    /// later rows are not its oldest: they wait); SQLite takes the write lock first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn claim_due_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Microseconds, as Postgres keeps them: the marks compare the lease for equality.
        let lease_until = chrono::SubsecRound::trunc_subsecs(lease_until, 6);
        let due = "select d.id from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id
             where d.delivered_at is null and d.failed_at is null and e.removed_at is null and e.disabled_at is null
               and d.next_attempt_at <= $1 and (d.claimed_until is null or d.claimed_until < $1)
               and d.id = (select min(o.id) from webhook_delivery o
                           where o.endpoint_id = d.endpoint_id and o.delivered_at is null and o.failed_at is null)
             order by d.id limit $3";
        let claim = |due: &str| {
            format!(
                "with claimed as (
                     update webhook_delivery set claimed_until = $2, attempts = attempts + 1 where id in ({due})
                     returning id, event_id, event_type, data, created_at, attempts, endpoint_id, first_failed_at
                 )
                 select {CLAIM_COLUMNS} from claimed c join webhook_endpoint e on e.id = c.endpoint_id"
            )
        };
        let mut rows: Vec<ClaimRow> = match self.backend() {
            Backend::Postgres(pool) => {
                let sql = claim(&format!("{due} for update of d skip locked"));
                sqlx::query_as(&sql).bind(now).bind(lease_until).bind(limit).fetch_all(pool).await?
            }
            Backend::Sqlite(pool) => {
                // SQLite has no UPDATE inside WITH: claim, then read what was claimed.
                let mut tx = pool.begin_write().await?;
                let ids: Vec<i64> = sqlx::query_scalar(&format!(
                    "update webhook_delivery set claimed_until = $2, attempts = attempts + 1 where id in ({due}) returning id"
                ))
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let read = format!(
                    "select {CLAIM_COLUMNS} from webhook_delivery c join webhook_endpoint e on e.id = c.endpoint_id where c.id = $1"
                );
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    let row: ClaimRow = sqlx::query_as(&read).bind(id).fetch_one(&mut *tx).await?;
                    rows.push(row);
                }
                tx.commit().await?;
                rows
            }
        };
        rows.sort_by_key(|r| r.id);
        Ok(rows.into_iter().map(|r| r.claimed(lease_until)).collect())
    }

    /// Marks a delivery delivered with the answer's `status` (2xx) at `now`, while the claim `d`
    /// still holds its lease; the endpoint's last success, its failing streak ended.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_webhook_delivered(
        &self,
        d: &ClaimedDelivery,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let marked = sqlx::query(
                    "update webhook_delivery set delivered_at = $2, claimed_until = null, last_status = $3, last_error = null
                     where id = $1 and claimed_until = $4 and delivered_at is null and failed_at is null",
                )
                .bind(d.id)
                .bind(now)
                .bind(i32::from(status))
                .bind(d.claimed_until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 1 {
                    sqlx::query(
                        "update webhook_endpoint set last_success_at = $2, failing_since = null, failed_attempts = 0 where id = $1",
                    )
                    .bind(d.endpoint_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await
        })
    }

    /// Releases a delivery (while the claim `d` still holds its lease) for another attempt at
    /// `next_attempt_at`, or, with `failed_at`, gives it up (the endpoint's next delivery
    /// proceeds); records the answer's status, if one came, and the error in words, the
    /// delivery's first refusal, and the endpoint's failing streak (since when, how many).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_webhook_undelivered(
        &self,
        d: &ClaimedDelivery,
        (now, next_attempt_at, failed_at): (DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>),
        status: Option<u16>,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let marked = sqlx::query(
                    "update webhook_delivery set claimed_until = null, next_attempt_at = $2, failed_at = $3, last_status = $4,
                            last_error = $5, first_failed_at = coalesce(first_failed_at, $6)
                     where id = $1 and claimed_until = $7 and delivered_at is null and failed_at is null",
                )
                .bind(d.id)
                .bind(next_attempt_at)
                .bind(failed_at)
                .bind(status.map(i32::from))
                .bind(error)
                .bind(now)
                .bind(d.claimed_until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 1 {
                    sqlx::query(
                        "update webhook_endpoint set failing_since = coalesce(failing_since, $2), failed_attempts = failed_attempts + 1
                         where id = $1",
                    )
                    .bind(d.endpoint_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                if marked == 1 && failed_at.is_some() {
                    // Given up: audited, so the application's managers see it (issue 18).
                    let (organisation_id, host): (Uuid, String) = sqlx::query_as(
                        "select a.organisation_id, e.host from webhook_endpoint e join application a on a.id = e.application_id where e.id = $1",
                    )
                    .bind(d.endpoint_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let audit = super::Actor::system()
                        .event(AuditAction::WebhookDeliveryFailed, now)
                        .with_details(serde_json::json!({ "host": host, "event": d.event_type, "error": error }))
                        .on(organisation_id, "webhook_endpoint", d.endpoint_id);
                    insert_audit_event!(&mut *tx, &audit)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await
        })
    }

    /// The endpoint's latest `limit` deliveries, newest first (pages; tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn webhook_deliveries(&self, endpoint_id: Uuid, limit: i64) -> Result<Vec<DeliveryView>, StoreError> {
        let sql = format!(
            "select {DELIVERY_COLUMNS} from webhook_delivery d where d.endpoint_id = $1 order by d.id desc limit $2"
        );
        let rows: Vec<DeliveryRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(endpoint_id).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|r| delivery(r).1).collect())
    }

    /// The endpoints of the applications `user_id` manages now (an enabled user, a grant), each
    /// with its latest `per_endpoint` deliveries, newest first: the Manage page's webhooks, the
    /// authorisation in the query. One query when the user's applications have no endpoint, two
    /// otherwise.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn managed_webhooks(
        &self,
        user_id: Uuid,
        per_endpoint: i64,
    ) -> Result<Vec<EndpointWithDeliveries>, StoreError> {
        self.webhooks_in(super::manage::GRANTED, (Some(user_id), None), per_endpoint).await
    }

    /// The endpoints of application `application_id`, each with its latest `per_endpoint`
    /// deliveries (the admin application page).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn application_webhooks(
        &self,
        application_id: Uuid,
        per_endpoint: i64,
    ) -> Result<Vec<EndpointWithDeliveries>, StoreError> {
        self.webhooks_in(super::manage::ALL_APPLICATIONS, (Some(application_id), None), per_endpoint).await
    }

    /// The endpoints (not removed) of the applications `scope` selects (as
    /// [`super::manage::GRANTED`], with `$1` and `$2`), oldest first, with their latest deliveries.
    async fn webhooks_in(
        &self,
        scope: &str,
        (p1, p2): (Option<Uuid>, Option<Uuid>),
        per_endpoint: i64,
    ) -> Result<Vec<EndpointWithDeliveries>, StoreError> {
        let endpoints_sql = format!(
            "select {ENDPOINT_COLUMNS} from {} and e.removed_at is null order by e.created_at, e.id",
            super::manage::joined(scope, "join webhook_endpoint e on e.application_id = a.id")
        );
        let deliveries_sql = format!(
            "select * from (
                 select {DELIVERY_COLUMNS}, row_number() over (partition by d.endpoint_id order by d.id desc) as n
                 from {} and e.removed_at is null
             ) x where x.n <= $3 order by x.id desc",
            super::manage::joined(
                scope,
                "join webhook_endpoint e on e.application_id = a.id join webhook_delivery d on d.endpoint_id = e.id"
            )
        );
        let (endpoints, deliveries): (Vec<EndpointRow>, Vec<DeliveryRow>) = on_pool!(self, |pool| async {
            let mut conn = pool.acquire().await?;
            let endpoints: Vec<EndpointRow> =
                sqlx::query_as(&endpoints_sql).bind(p1).bind(p2).fetch_all(&mut *conn).await?;
            if endpoints.is_empty() || per_endpoint <= 0 {
                return Ok::<_, sqlx::Error>((endpoints, Vec::new()));
            }
            let deliveries =
                sqlx::query_as(&deliveries_sql).bind(p1).bind(p2).bind(per_endpoint).fetch_all(&mut *conn).await?;
            Ok((endpoints, deliveries))
        }
        .await)?;
        let mut by_endpoint: std::collections::HashMap<Uuid, Vec<DeliveryView>> = std::collections::HashMap::new();
        for row in deliveries {
            let (endpoint_id, view) = delivery(row);
            by_endpoint.entry(endpoint_id).or_default().push(view);
        }
        endpoints
            .into_iter()
            .map(|row| {
                let endpoint = endpoint(row)?;
                let deliveries = by_endpoint.remove(&endpoint.id).unwrap_or_default();
                Ok(EndpointWithDeliveries { endpoint, deliveries })
            })
            .collect()
    }

    /// The latest `limit` deliveries of every endpoint, newest first, with their application and
    /// host (the admin reminders page), and how many are pending and failed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_webhook_deliveries(
        &self,
        limit: i64,
    ) -> Result<(Vec<DeliveryLine>, DeliveryCounts), StoreError> {
        let sql = format!(
            "select {DELIVERY_COLUMNS}, a.name, e.host, e.format, e.removed_at is not null as removed from webhook_delivery d
             join webhook_endpoint e on e.id = d.endpoint_id join application a on a.id = e.application_id
             order by d.id desc limit $1"
        );
        // A removed endpoint's undelivered events are dropped, not pending.
        let counts_sql = "select
                 coalesce(sum(case when d.delivered_at is null and d.failed_at is null and e.removed_at is null then 1 else 0 end), 0),
                 coalesce(sum(case when d.failed_at is not null then 1 else 0 end), 0)
             from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id";
        let (rows, (pending, failed)): (Vec<DeliveryLineRow>, (i64, i64)) = on_pool!(self, |pool| async {
            let mut conn = pool.acquire().await?;
            let rows = sqlx::query_as(&sql).bind(limit).fetch_all(&mut *conn).await?;
            let counts = sqlx::query_as(counts_sql).fetch_one(&mut *conn).await?;
            Ok::<_, sqlx::Error>((rows, counts))
        }
        .await)?;
        let lines = rows
            .into_iter()
            .map(|row| {
                let (endpoint_id, delivery) = delivery(row.delivery);
                DeliveryLine {
                    endpoint_id,
                    application: row.name,
                    host: row.host,
                    format: row.format,
                    removed: row.removed,
                    delivery,
                }
            })
            .collect();
        Ok((lines, DeliveryCounts { pending, failed }))
    }

    /// Queues a test event (`webhook.test`, `data`) for the endpoint `endpoint_id` of
    /// `application_id` at `now`, whatever it subscribed to, at most once per
    /// [`crate::domain::webhook::TEST_EVERY`] (counted under the endpoint's lock). It goes behind
    /// the endpoint's pending events, as every event does.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not an endpoint of that application, or removed.
    pub async fn queue_test_webhook_event(
        &self,
        (application_id, endpoint_id): (Uuid, Uuid),
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<TestEvent, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres(_) => " for update",
            Backend::Sqlite(_) => "",
        };
        let find_sql = format!(
            "select disabled_at from webhook_endpoint where id = $1 and application_id = $2 and removed_at is null{lock}"
        );
        let test = WebhookEvent::Test;
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let found: Option<(Option<DateTime<Utc>>,)> =
                    sqlx::query_as(&find_sql).bind(endpoint_id).bind(application_id).fetch_optional(&mut *tx).await?;
                let (disabled_at,) = found.ok_or(StoreError::NotFound)?;
                if disabled_at.is_some() {
                    return Ok(TestEvent::Disabled);
                }
                let last: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "select max(created_at) from webhook_delivery where endpoint_id = $1 and event_type = $2",
                )
                .bind(endpoint_id)
                .bind(test.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if let Some(last) = last.filter(|l| now - *l < crate::domain::webhook::TEST_EVERY) {
                    return Ok(TestEvent::TooSoon { again_at: last + crate::domain::webhook::TEST_EVERY });
                }
                let pending: i64 = sqlx::query_scalar(
                    "select count(*) from webhook_delivery where endpoint_id = $1 and delivered_at is null and failed_at is null",
                )
                .bind(endpoint_id)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "insert into webhook_delivery (endpoint_id, event_id, event_type, data, created_at, next_attempt_at)
                     values ($1, $2, $3, $4, $5, $5)",
                )
                .bind(endpoint_id)
                .bind(Uuid::new_v4())
                .bind(test.as_str())
                .bind(data.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(TestEvent::Queued { behind: pending })
            }
            .await
        })
    }

    /// Disables the endpoint `endpoint_id` at `now` when its refusals, with no 2xx answer
    /// between, began [`DISABLE_AFTER`] ago or more and number at least
    /// [`DISABLE_AFTER_ATTEMPTS`] (a quiet endpoint's time without events does not count): audited as `webhook.disabled` by `actor`, and
    /// `render`'s emails (application name, host) go to the application's eligible credential
    /// managers (the WMDA admins when it has none). Its pending deliveries wait. Returns how many
    /// emails were queued, or `None` when it was not disabled.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn disable_dead_webhook_endpoint(
        &self,
        endpoint_id: Uuid,
        actor: &Actor,
        render: &RenderWebhookDisabledEmails<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let found: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
                    "select e.application_id, a.organisation_id, a.name, e.host
                     from webhook_endpoint e join application a on a.id = e.application_id
                     where e.id = $1 and e.disabled_at is null and e.removed_at is null
                       and e.failing_since <= $2 and e.failed_attempts >= $3",
                )
                .bind(endpoint_id)
                .bind(now - DISABLE_AFTER)
                .bind(DISABLE_AFTER_ATTEMPTS)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((application_id, organisation_id, application, host)) = found else { return Ok(None) };
                sqlx::query("update webhook_endpoint set disabled_at = $2 where id = $1 and disabled_at is null")
                    .bind(endpoint_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let event = actor
                    .event(AuditAction::WebhookDisabled, now)
                    .with_details(serde_json::json!({ "application": application, "host": host }))
                    .on(organisation_id, "webhook_endpoint", endpoint_id);
                insert_audit_event!(&mut *tx, &event)?;
                let recipients = super::reminders::eligible_recipients!(&mut *tx, application_id)?;
                let emails = render(&application, &host, &recipients);
                for email in &emails {
                    super::outbox::insert_email!(&mut *tx, email, now)?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(Some(emails.len()))
            }
            .await
        })
    }

    /// A manager's "Enable" (issue 17, point 4): the disabled endpoint `endpoint_id` of
    /// `application_id` gets events again at `now`, starting with its oldest pending delivery,
    /// which is due at once. Audited as `webhook.enabled`. Returns whether it was disabled
    /// (`false`: enabled already, nothing changed).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not an endpoint of that application.
    pub async fn enable_webhook_endpoint(
        &self,
        (application_id, endpoint_id): (Uuid, Uuid),
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                let found: Option<(String, Uuid, String)> = sqlx::query_as(
                    "select e.host, a.organisation_id, a.name from webhook_endpoint e join application a on a.id = e.application_id
                     where e.id = $1 and e.application_id = $2 and e.disabled_at is not null and e.removed_at is null",
                )
                .bind(endpoint_id)
                .bind(application_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((host, organisation_id, application)) = found else {
                    // Not disabled (enabled already, by a second click or another manager) or not one of this application's.
                    let exists: Option<Uuid> = sqlx::query_scalar(
                        "select id from webhook_endpoint where id = $1 and application_id = $2 and removed_at is null",
                    )
                    .bind(endpoint_id)
                    .bind(application_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    return if exists.is_some() { Ok(false) } else { Err(StoreError::NotFound) };
                };
                // A fresh streak, so one more refusal does not disable it again at once. Conditional:
                // of two enables at once, one changes it and is audited.
                let enabled = sqlx::query(
                    "update webhook_endpoint set disabled_at = null, failing_since = null, failed_attempts = 0
                     where id = $1 and disabled_at is not null",
                )
                .bind(endpoint_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if enabled != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "update webhook_delivery set next_attempt_at = $2
                     where endpoint_id = $1 and delivered_at is null and failed_at is null and next_attempt_at > $2",
                )
                .bind(endpoint_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let event = actor
                    .event(AuditAction::WebhookEnabled, now)
                    .with_details(serde_json::json!({ "application": application, "host": host })).on(organisation_id, "webhook_endpoint", endpoint_id);
                insert_audit_event!(&mut *tx, &event)?;
                tx.commit().await?;
                Ok::<_, StoreError>(true)
            }
            .await
        })
    }
}

/// What "Send test event" did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEvent {
    /// Queued behind `behind` pending events of the endpoint.
    Queued {
        /// Pending events it waits for.
        behind: i64,
    },
    /// The endpoint is disabled: nothing queued (enabling it resumes deliveries).
    Disabled,
    /// The last test was less than a minute ago: nothing queued.
    TooSoon {
        /// When another may be sent (UTC).
        again_at: DateTime<Utc>,
    },
}

/// An endpoint with its latest deliveries, newest first.
#[derive(Debug, Clone)]
pub struct EndpointWithDeliveries {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its latest deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// A delivery with its endpoint's application and host (the admin reminders page).
#[derive(Debug, Clone)]
pub struct DeliveryLine {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The application's name.
    pub application: String,
    /// The endpoint's host.
    pub host: String,
    /// The endpoint's format (`standard`, `slack`, `teams`).
    pub format: String,
    /// The endpoint was removed: an undelivered event is dropped.
    pub removed: bool,
    /// The delivery.
    pub delivery: DeliveryView,
}

/// Deliveries by state, over every endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Neither delivered nor failed yet, of endpoints not removed.
    pub pending: i64,
    /// Given up after a day of refusals.
    pub failed: i64,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, d.event_type, d.created_at, d.next_attempt_at, d.attempts, d.delivered_at, d.failed_at, d.last_status, d.last_error";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: String,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    attempts: i32,
    delivered_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    last_status: Option<i32>,
    last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DeliveryLineRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    name: String,
    host: String,
    format: String,
    removed: bool,
}

fn delivery(r: DeliveryRow) -> (Uuid, DeliveryView) {
    let view = DeliveryView {
        id: r.id,
        event_id: r.event_id,
        event_type: r.event_type,
        created_at: r.created_at,
        next_attempt_at: r.next_attempt_at,
        attempts: r.attempts,
        delivered_at: r.delivered_at,
        failed_at: r.failed_at,
        last_status: r.last_status,
        last_error: r.last_error,
    };
    (r.endpoint_id, view)
}

/// Renders the emails about a disabled endpoint (application name, host) for its recipients.
pub type RenderWebhookDisabledEmails<'a> = dyn Fn(&str, &str, &Recipients) -> Vec<crate::domain::NewEmail> + Sync + 'a;
