//! Partner activity (issue 18; DESIGN.md section 10): the audit events a credential manager may
//! read, those of the applications granted to them now whose action they see
//! ([`AuditAction::shown_to_managers`]). The authorisation is in the query: the grant as it is
//! now, an enabled user.

use chrono::NaiveDate;
use uuid::Uuid;

use super::{AuditAction, AuditEvent, Store, StoreError, on_pool};

/// What the activity page asks for; empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Only this application (by client ID); one the user does not manage gives nothing.
    pub client_id: Option<Uuid>,
    /// Only this action (a stored name); one managers do not see gives nothing.
    pub action: Option<String>,
    /// From this UTC date on.
    pub from: Option<NaiveDate>,
    /// Up to and including this UTC date.
    pub to: Option<NaiveDate>,
}

/// An event of the activity page, with what the page shows beside it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActivityEvent {
    /// The event.
    #[sqlx(flatten)]
    pub event: AuditEvent,
    /// Its application's name.
    pub application: String,
    /// Its application's client ID.
    pub client_id: Uuid,
    /// The acting person's display name, when a person acted.
    pub actor_name: Option<String>,
    /// Whether the acting person is a WMDA admin (their name is not shown: "WMDA").
    pub actor_is_admin: Option<bool>,
}

/// The stored names of the actions managers see, quoted for SQL (the enum's own names, never
/// input).
fn manager_actions() -> String {
    AuditAction::ALL
        .iter()
        .filter(|a| a.shown_to_managers())
        .map(|a| format!("'{}'", a.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// One page (`limit`, `offset`) of the events of the applications `user_id` manages now,
    /// newest first, matching `filter`, and how many match. A revoked grant or a disabled user
    /// sees nothing of that application; events from before a grant are shown.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn manager_activity(
        &self,
        user_id: Uuid,
        filter: &ActivityFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ActivityEvent>, i64), StoreError> {
        let (from, to) = super::audit::day_bounds(filter.from, filter.to);
        // The events of the user's applications now; `{actor}` is where the page joins the actor.
        let scope = |actor: &str| {
            format!(
                "audit_event e
                 join application a on a.id = e.application_id
                 join credential_manager_grant g on g.application_id = a.id and g.user_id = $1
                 join portal_user me on me.id = g.user_id and me.disabled_at is null
                 {actor}
                 where e.action in ({}) and ($2 is null or a.client_id = $2) and ($3 is null or e.action = $3)
                   and ($4 is null or e.occurred_at >= $4) and ($5 is null or e.occurred_at < $5)",
                manager_actions()
            )
        };
        let page_sql = format!(
            "select e.id, e.occurred_at, e.actor_user_id, e.actor_label, e.ip, e.action, e.organisation_id, e.target_type,
                    e.target_id, e.details, a.name as application, a.client_id, actor.display_name as actor_name,
                    case when actor.id is null then null when actor.organisation_id is null then true else false end as actor_is_admin
             from {} order by e.id desc limit $6 offset $7",
            scope("left join portal_user actor on actor.id = e.actor_user_id")
        );
        let count_sql = format!("select count(*) from {}", scope(""));
        Ok(on_pool!(self, |pool| async {
            let mut conn = pool.acquire().await?;
            let rows = sqlx::query_as(&page_sql)
                .bind(user_id)
                .bind(filter.client_id)
                .bind(&filter.action)
                .bind(from)
                .bind(to)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *conn)
                .await?;
            let count: i64 = sqlx::query_scalar(&count_sql)
                .bind(user_id)
                .bind(filter.client_id)
                .bind(&filter.action)
                .bind(from)
                .bind(to)
                .fetch_one(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>((rows, count))
        }
        .await)?)
    }
}
