//! What WMDA admins read and change beyond organisations, applications, users and grants:
//! resource audiences, the overview, and the audit log.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::AuditAction;
use super::audit::insert_audit_event;
use super::{Actor, AuditEvent, BeginWrite, ClientSecret, Conflict, Store, StoreError, on_pool, unique_violation};
use crate::domain::{Audience, ResourceId};

/// A secret on the admin overview.
#[derive(Debug, Clone)]
pub struct ExpiringSecret {
    /// The secret.
    pub secret: ClientSecret,
    /// Its application's name.
    pub application: String,
    /// Its application's id.
    pub application_id: Uuid,
}

/// A secret row of the overview: the secret's columns and its application's name.
const OVERVIEW_COLUMNS: &str = "s.id, s.application_id, s.name, s.hint, s.value_format, s.expires_on, s.expires_at,
    s.created_by, s.created_at, s.first_used_at, s.last_used_at, s.deleted_at, s.exposed_at, s.exposed_url,
    s.exposed_source, s.created_by_secret_id, a.name as application";

#[derive(sqlx::FromRow)]
struct OverviewRow {
    #[sqlx(flatten)]
    secret: super::secrets::SecretRow,
    application: String,
}

impl From<OverviewRow> for ExpiringSecret {
    fn from(r: OverviewRow) -> Self {
        let secret: ClientSecret = r.secret.into();
        ExpiringSecret { application_id: secret.application_id, secret, application: r.application }
    }
}

/// An application on the admin overview.
#[derive(Debug, Clone)]
pub struct ApplicationAttention {
    /// Application id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Unexpired, undeleted secrets.
    pub live_secrets: i64,
    /// Enabled credential managers.
    pub managers: i64,
}

/// Filters of the audit log; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actor label contains this (case-insensitive, ASCII).
    pub actor: Option<String>,
    /// Only this organisation.
    pub organisation_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<String>,
    /// From this UTC date on.
    pub from: Option<NaiveDate>,
    /// Up to and including this UTC date.
    pub to: Option<NaiveDate>,
}

impl Store {
    /// Changes a resource's audience: one value per resource, shared by every application that
    /// holds it; unique; never a resource id. Audited in the same transaction.
    ///
    /// # Errors
    /// [`Conflict::AudienceTaken`] when another resource has it; [`StoreError::NotFound`] for a
    /// resource the database does not hold.
    pub async fn set_resource_audience(
        &self,
        resource: ResourceId,
        audience: &Audience,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let audience = audience.as_str();
        let mut event = actor
            .event(AuditAction::ResourceAudienceChanged, now)
            .with_details(serde_json::json!({ "resource": resource.as_str(), "audience": audience }));
        event.target_type = Some("resource");
        event.target_id = Some(resource.as_str().to_owned());
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let old: Option<String> = sqlx::query_scalar("select audience from resource where id = $1")
                .bind(resource.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(old) = old else { return Err(StoreError::NotFound) };
            if old == audience {
                return Ok(());
            }
            let updated = sqlx::query("update resource set audience = $2 where id = $1")
                .bind(resource.as_str())
                .bind(audience)
                .execute(&mut *tx)
                .await;
            match updated {
                Ok(_) => {}
                Err(e) if unique_violation(&e).is_some() => return Err(Conflict::AudienceTaken.into()),
                Err(e) => return Err(e.into()),
            }
            event.details["previous"] = serde_json::Value::String(old);
            insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }

    /// Undeleted secrets with fewer than 30 days left (not yet expired) across all
    /// organisations, soonest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn secrets_expiring_soon(&self, today: NaiveDate) -> Result<Vec<ExpiringSecret>, StoreError> {
        let rows: Vec<OverviewRow> = on_pool!(self, |pool| sqlx::query_as(&format!(
            "select {OVERVIEW_COLUMNS} from client_secret s join application a on a.id = s.application_id
             where s.deleted_at is null and s.expires_on >= $1 and s.expires_on < $2
             order by s.expires_on, a.name"
        ))
        .bind(today)
        .bind(today + chrono::Duration::days(crate::domain::secret::EXPIRES_SOON_DAYS))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Live secrets (undeleted, not past their expiry instant at `now`) that a leak report found
    /// in public, across all organisations, most recently exposed first: the admin overview lists
    /// them before anything else (issue 15, point 4).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn exposed_secrets(&self, now: DateTime<Utc>) -> Result<Vec<ExpiringSecret>, StoreError> {
        let rows: Vec<OverviewRow> = on_pool!(self, |pool| sqlx::query_as(&format!(
            "select {OVERVIEW_COLUMNS} from client_secret s join application a on a.id = s.application_id
             where s.deleted_at is null and s.exposed_at is not null and s.expires_at > $1
             order by s.exposed_at desc, a.name"
        ))
        .bind(now)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Every application with its number of unexpired secrets and of enabled credential managers,
    /// by name (the overview picks those with no secret or fewer than two managers).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn application_attention(&self, now: DateTime<Utc>) -> Result<Vec<ApplicationAttention>, StoreError> {
        let rows: Vec<(Uuid, String, i64, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
            "select a.id, a.name,
                    (select count(*) from client_secret s where s.application_id = a.id and s.deleted_at is null and s.expires_at > $1),
                    (select count(*) from credential_manager_grant g join portal_user u on u.id = g.user_id
                      where g.application_id = a.id and u.disabled_at is null)
             from application a order by a.name"
        )
        .bind(now)
        .fetch_all(pool)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, live_secrets, managers)| ApplicationAttention { id, name, live_secrets, managers })
            .collect())
    }

    /// One page of the audit log, newest first, and the number of events the filter matches.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        let (from, to) = super::audit::day_bounds(filter.from, filter.to);
        let actor = filter.actor.as_ref().map(|a| format!("%{}%", a.trim().to_lowercase().replace(['%', '_'], "")));
        let condition = "($1 is null or lower(actor_label) like $1) and ($2 is null or organisation_id = $2)
             and ($3 is null or action = $3) and ($4 is null or occurred_at >= $4) and ($5 is null or occurred_at < $5)";
        let page_sql = format!(
            "select id, occurred_at, actor_user_id, actor_label, ip, action, organisation_id, target_type, target_id, details
             from audit_event where {condition} order by id desc limit $6 offset $7"
        );
        let count_sql = format!("select count(*) from audit_event where {condition}");
        Ok(on_pool!(self, |pool| async {
            let rows = sqlx::query_as(&page_sql)
                .bind(&actor)
                .bind(filter.organisation_id)
                .bind(&filter.action)
                .bind(from)
                .bind(to)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let count: i64 = sqlx::query_scalar(&count_sql)
                .bind(&actor)
                .bind(filter.organisation_id)
                .bind(&filter.action)
                .bind(from)
                .bind(to)
                .fetch_one(pool)
                .await?;
            Ok::<_, sqlx::Error>((rows, count))
        }
        .await)?)
    }

    /// The distinct actions in the audit log, for the filter's choices.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn audit_actions(&self) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("select distinct action from audit_event order by action")
            .fetch_all(pool)
            .await)?)
    }
}
