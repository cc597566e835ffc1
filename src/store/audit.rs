//! Audit events: append-only (the schema refuses updates and deletes).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError, on_pool};

/// An audit event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The acting user; `None` for the command line or the system.
    pub actor_user_id: Option<Uuid>,
    /// Who acted, as shown in the log: an email, `cli` or `system`.
    pub actor_label: String,
    /// The client IP, when the action came over HTTP.
    pub ip: Option<String>,
    /// Dotted lower-case name, e.g. `organisation.created`, `secret.deleted`.
    pub action: &'static str,
    /// The organisation concerned, for filtering.
    pub organisation_id: Option<Uuid>,
    /// What was acted on: `organisation`, `application`, `client_secret`, `user`.
    pub target_type: Option<&'static str>,
    /// Its id.
    pub target_id: Option<String>,
    /// A JSON object with details; never a secret value (DESIGN.md section 6).
    pub details: serde_json::Value,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    /// Sequence number.
    pub id: i64,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The acting user, if any.
    pub actor_user_id: Option<Uuid>,
    /// Who acted.
    pub actor_label: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Action name.
    pub action: String,
    /// Organisation concerned.
    pub organisation_id: Option<Uuid>,
    /// Target kind.
    pub target_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// JSON details as text.
    pub details: String,
}

/// The insert statement of an audit event.
pub(crate) const INSERT_AUDIT_EVENT: &str =
    "insert into audit_event (occurred_at, actor_user_id, actor_label, ip, action, organisation_id, target_type, target_id, details)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Inserts a [`NewAuditEvent`] through an executor (a pool or an open transaction), so store
/// methods can record an event inside the transaction of what it describes. A macro rather than a
/// generic function: the same text must compile against both backends' executors.
macro_rules! insert_audit_event {
    ($executor:expr, $event:expr) => {{
        let event: &$crate::store::NewAuditEvent = $event;
        sqlx::query($crate::store::audit::INSERT_AUDIT_EVENT)
            .bind(event.occurred_at)
            .bind(event.actor_user_id)
            .bind(event.actor_label.as_str())
            .bind(event.ip.as_deref())
            .bind(event.action)
            .bind(event.organisation_id)
            .bind(event.target_type)
            .bind(event.target_id.as_deref())
            .bind(event.details.to_string())
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    }};
}
pub(crate) use insert_audit_event;

impl Store {
    /// Records an audit event on its own.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_audit_event(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        on_pool!(self, |pool| insert_audit_event!(pool, event))?;
        Ok(())
    }

    /// The latest `limit` audit events, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_audit_events(&self, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "select id, occurred_at, actor_user_id, actor_label, ip, action, organisation_id, target_type, target_id, details
             from audit_event order by id desc limit $1"
        )
        .bind(limit)
        .fetch_all(pool)
        .await
        })?)
    }
}
