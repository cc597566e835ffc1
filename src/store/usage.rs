//! Token usage per client secret per UTC day and `invalid_client` refusals per application per
//! UTC day (issue 18, point 2; DESIGN.md section 10), written by the usage flush off the request
//! path and read by the Manage and activity pages, always through the user's grants.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, on_pool};

/// What one UTC day added for a key: how many, the last one's time and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Tokens issued, or requests refused.
    pub count: i64,
    /// The last one (UTC).
    pub last_at: DateTime<Utc>,
    /// The last one's client address.
    pub last_ip: String,
}

/// A secret's usage on one day, as the activity page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    /// The UTC day.
    pub day: NaiveDate,
    /// The application's name.
    pub application: String,
    /// The secret's id.
    pub secret_id: Uuid,
    /// The secret's name.
    pub name: String,
    /// Its hint (a replacement has its predecessor's name, not its hint).
    pub hint: crate::domain::Hint,
    /// Tokens issued that day.
    pub issued: i64,
    /// The last use that day (UTC).
    pub last_used_at: DateTime<Utc>,
    /// Its client address.
    pub last_ip: String,
}

#[derive(sqlx::FromRow)]
struct UsageRow {
    day: NaiveDate,
    application: String,
    secret_id: Uuid,
    name: String,
    hint: String,
    value_format: i32,
    issued: i64,
    last_used_at: DateTime<Utc>,
    last_ip: String,
}

impl UsageRow {
    fn into_day(self) -> UsageDay {
        UsageDay {
            day: self.day,
            application: self.application,
            secret_id: self.secret_id,
            name: self.name,
            hint: crate::domain::Hint::stored(self.hint, self.value_format),
            issued: self.issued,
            last_used_at: self.last_used_at,
            last_ip: self.last_ip,
        }
    }
}

/// Refusals for an application's client ID on one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalDay {
    /// The UTC day.
    pub day: NaiveDate,
    /// The application's id.
    pub application_id: Uuid,
    /// The application's name.
    pub application: String,
    /// `invalid_client` answers that day.
    pub refused: i64,
    /// The last one's client address.
    pub last_ip: String,
}

/// How a day's counts are added to what is stored: counts add up; the later use's time and
/// address win (`$4` and `$5` are the new ones).
const ADD_USAGE: &str = "insert into secret_usage_day (secret_id, day, issued, last_used_at, last_ip) values ($1, $2, $3, $4, $5)
     on conflict (secret_id, day) do update set issued = secret_usage_day.issued + excluded.issued,
         last_ip = case when excluded.last_used_at >= secret_usage_day.last_used_at then excluded.last_ip else secret_usage_day.last_ip end,
         last_used_at = case when excluded.last_used_at >= secret_usage_day.last_used_at then excluded.last_used_at else secret_usage_day.last_used_at end";

/// The same for refusals, keyed by client ID: a client ID no application has is dropped.
const ADD_REFUSALS: &str = "insert into client_refusal_day (application_id, day, refused, last_at, last_ip)
     select a.id, $2, $3, $4, $5 from application a where a.client_id = $1
     on conflict (application_id, day) do update set refused = client_refusal_day.refused + excluded.refused,
         last_ip = case when excluded.last_at >= client_refusal_day.last_at then excluded.last_ip else client_refusal_day.last_ip end,
         last_at = case when excluded.last_at >= client_refusal_day.last_at then excluded.last_at else client_refusal_day.last_at end";

impl Store {
    /// Adds the tokens issued per (secret id, UTC day), in one transaction.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn add_usage_days(&self, uses: &[(Uuid, NaiveDate, DayCount)]) -> Result<(), StoreError> {
        self.add_days(ADD_USAGE, uses).await
    }

    /// Adds the `invalid_client` refusals per (client ID, UTC day), in one transaction; client
    /// IDs of no application are dropped.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn add_refusal_days(&self, refusals: &[(Uuid, NaiveDate, DayCount)]) -> Result<(), StoreError> {
        self.add_days(ADD_REFUSALS, refusals).await
    }

    async fn add_days(&self, sql: &str, rows: &[(Uuid, NaiveDate, DayCount)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        // One order for every replica, so two flushing at once never wait on each other's rows.
        let mut rows: Vec<&(Uuid, NaiveDate, DayCount)> = rows.iter().collect();
        rows.sort_by_key(|(key, day, _)| (*key, *day));
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin_write().await?;
                for (key, day, c) in &rows {
                    sqlx::query(sql)
                        .bind(key)
                        .bind(day)
                        .bind(c.count)
                        .bind(c.last_at)
                        .bind(&c.last_ip)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await
        })
    }

    /// Deletes the usage and refusal days before `before` (90 days are kept). Returns how many
    /// rows went.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_usage_days(&self, before: NaiveDate) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| async {
            let a = sqlx::query("delete from secret_usage_day where day < $1").bind(before).execute(pool).await?;
            let b = sqlx::query("delete from client_refusal_day where day < $1").bind(before).execute(pool).await?;
            Ok::<_, sqlx::Error>(a.rows_affected() + b.rows_affected())
        }
        .await)?)
    }

    /// For the applications `user_id` manages now: each secret's usage per day from `since` on,
    /// newest first, and the refusals per application per day.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn manager_usage(
        &self,
        user_id: Uuid,
        since: NaiveDate,
    ) -> Result<(Vec<UsageDay>, Vec<RefusalDay>), StoreError> {
        let granted = super::manage::GRANTED;
        let usage_sql = format!(
            "select u.day, a.name as application, s.id as secret_id, s.name, s.hint, s.value_format, u.issued, u.last_used_at, u.last_ip
             from {} and u.day >= $3 order by u.day desc, a.name, s.name, s.created_at",
            super::manage::joined(
                granted,
                "join client_secret s on s.application_id = a.id join secret_usage_day u on u.secret_id = s.id"
            )
        );
        let refusals_sql = format!(
            "select r.day, a.id as application_id, a.name as application, r.refused, r.last_ip
             from {} and r.day >= $3 order by r.day desc, a.name",
            super::manage::joined(granted, "join client_refusal_day r on r.application_id = a.id")
        );
        let none: Option<Uuid> = None;
        Ok(on_pool!(self, |pool| async {
            let mut conn = pool.acquire().await?;
            let usage: Vec<UsageRow> =
                sqlx::query_as(&usage_sql).bind(user_id).bind(none).bind(since).fetch_all(&mut *conn).await?;
            let refusals =
                sqlx::query_as(&refusals_sql).bind(user_id).bind(none).bind(since).fetch_all(&mut *conn).await?;
            Ok::<_, sqlx::Error>((usage.into_iter().map(UsageRow::into_day).collect(), refusals))
        }
        .await)?)
    }

    /// The `invalid_client` refusals from `since` on of each application `user_id` manages now,
    /// by application id (the Manage page asks only when an application has recent ones).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn managed_refusals(&self, user_id: Uuid, since: NaiveDate) -> Result<HashMap<Uuid, i64>, StoreError> {
        let sql = format!(
            "select a.id, cast(sum(r.refused) as bigint) from {} and r.day >= $3 group by a.id",
            super::manage::joined(super::manage::GRANTED, "join client_refusal_day r on r.application_id = a.id")
        );
        let none: Option<Uuid> = None;
        let rows: Vec<(Uuid, i64)> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(user_id).bind(none).bind(since).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }
}
