//! Throttle counts shared by replicas (issue 12, point 3): one row per (scope, key) holding a
//! [`WindowCount`] and the block it implies, so every replica refuses what one would.

use chrono::{DateTime, Utc};

use super::{Backend, BeginWrite, Store, StoreError, on_pool};
use crate::domain::throttle::{ThrottleKey, ThrottleRule, WindowCount};

const INSERT: &str = "insert into throttle_window
     (scope, throttle_key, window_start, failures, expires_at)
     values ($1, $2, $3, 0, $4) on conflict (scope, throttle_key) do nothing";
const UPDATE: &str = "update throttle_window
     set window_start = $3, failures = $4, blocked_until = $5, expires_at = $6
     where scope = $1 and throttle_key = $2";

impl Store {
    /// Adds each key's failures to its shared count at `now`, in one transaction (keys in order,
    /// so two replicas flushing at once never deadlock), and returns each key's block end, if
    /// it is blocked after the addition.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn add_throttle_failures(
        &self,
        rule: ThrottleRule,
        batch: &[(ThrottleKey, u32)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(ThrottleKey, Option<DateTime<Utc>>)>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = batch.to_vec();
        batch.sort_by_key(|(key, _)| *key);
        let select = match &self.backend {
            Backend::Postgres(_) => {
                "select window_start, failures from throttle_window
                 where scope = $1 and throttle_key = $2 for update"
            }
            // BEGIN IMMEDIATE holds the database's write lock already.
            Backend::Sqlite(_) => {
                "select window_start, failures from throttle_window
                 where scope = $1 and throttle_key = $2"
            }
        };
        let ThrottleRule { scope, limit, period } = rule;
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let mut blocks = Vec::with_capacity(batch.len());
            for (key, failures) in &batch {
                let bytes = key.as_bytes().as_slice();
                sqlx::query(INSERT).bind(scope).bind(bytes).bind(now).bind(now + period).execute(&mut *tx).await?;
                let (start, counted): (DateTime<Utc>, i32) =
                    sqlx::query_as(select).bind(scope).bind(bytes).fetch_one(&mut *tx).await?;
                // A new row's window is empty: it starts with this batch.
                let count = WindowCount { start, failures: i64::from(counted) };
                let count = if counted == 0 { WindowCount { start: now, failures: 0 } } else { count }
                    .add(*failures, now, period);
                let blocked_until = count.blocked_until(limit, now, period);
                sqlx::query(UPDATE)
                    .bind(scope)
                    .bind(bytes)
                    .bind(count.start)
                    .bind(i32::try_from(count.failures).unwrap_or(i32::MAX))
                    .bind(blocked_until)
                    .bind(count.expires_at(period))
                    .execute(&mut *tx)
                    .await?;
                blocks.push((*key, blocked_until));
            }
            tx.commit().await?;
            Ok::<_, StoreError>(blocks)
        }
        .await)
    }

    /// The end of `key`'s block in `scope`, when it is blocked at `now`: one primary-key lookup.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn throttle_block(
        &self,
        scope: &str,
        key: &ThrottleKey,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "select blocked_until from throttle_window
             where scope = $1 and throttle_key = $2 and blocked_until > $3"
        )
        .bind(scope)
        .bind(key.as_bytes().as_slice())
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// Deletes the counts that no longer matter at `now` (their window and block passed);
    /// returns how many.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_throttle_counts(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query("delete from throttle_window where expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
